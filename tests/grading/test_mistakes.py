"""Each part fails on its own for a copy of the course-style solution with one planted
mistake, and the mistake is named (its hint); parts that build on it say so."""

import re

import pytest

from .conftest import CS231N, own_failures, plant, verdict

# (the part that must fail, the edits, the parts failing on their own, words of the hint)
ONE_PART = {
    "scores": ([("if y is None:\n            return scores",
                 "if y is None:\n            return np.exp(scores) / np.sum(np.exp(scores), "
                 "axis=1, keepdims=True)")],
               {"scores"}, "softmax probabilities"),
    "loss": ([("reg_loss = 0.5 * reg * (", "reg_loss = reg * ("),
              ("+ reg * W2", "+ 2 * reg * W2"), ("+ reg * W1", "+ 2 * reg * W1")],
             {"loss"}, "regularization counted as reg * sum(W**2); C147 uses 0.5 * reg"),
    "grad_W1": ([("+ reg * W1", "+ 2 * reg * W1")], {"grad_W1_numeric", "grad_W1_reference"},
                "regularization gradient is twice"),
    "grad_b1": ([("grads['b1'] = np.sum(dh1, axis=0)", "grads['b1'] = np.mean(dh1, axis=0)")],
                {"grad_b1_numeric", "grad_b1_reference"}, "N times too small"),
    "grad_W2": ([("+ reg * W2", "")], {"grad_W2_numeric", "grad_W2_reference"},
                "regularization term's gradient is missing"),
    "grad_b2": ([("grads['b2'] = np.sum(dscores, axis=0)",
                  "grads['b2'] = np.sum(dscores, axis=0) * N")],
                {"grad_b2_numeric", "grad_b2_reference"}, "N times too large"),
    "train": ([("self.params[name] -= learning_rate", "self.params[name] += learning_rate")],
              {"train"}, "did not fall"),
    "predict": ([("np.argmax(scores, axis=1)", "np.argmax(scores, axis=0)")], {"predict"},
                "wrong axis"),
}


@pytest.mark.parametrize("part", list(ONE_PART))
def test_a_planted_mistake_fails_its_part_and_names_the_mistake(session, tmp_path, part):
    edits, failing, hint = ONE_PART[part]
    result = session.grade(plant(tmp_path, *edits))
    assert own_failures(result) == failing
    for name in failing:
        v = verdict(result, name)
        assert v.kind == "wrong" and hint in v.hint, v


def test_a_loss_mistake_labels_the_gradients_that_follow_from_it(session, tmp_path):
    """Consistent gradients of a wrong loss pass against the loss's own numerical
    gradient, and fail against the reference after the loss."""
    result = session.grade(plant(tmp_path, *ONE_PART["loss"][0]))
    for g in ("W1", "W2"):
        assert verdict(result, f"grad_{g}_numeric").passed
        assert verdict(result, f"grad_{g}_reference").because == ["loss"]
    loss = verdict(result, "loss")
    assert loss.tolerance == pytest.approx(1e-10 * loss.expected)  # relative above 1
    assert loss.message.startswith(f"{loss.value:.6g}, expected {loss.expected:.6g} (")


# (mistake, edits, the part whose hint names it, words of the hint)
CATALOG = [
    ("no_relu", [("a1 = np.maximum(0, h1)", "a1 = h1")], "scores", "has no ReLU"),
    ("relu_on_scores", [("scores = a1.dot(W2.T) + b2", "scores = np.maximum(0, a1.dot(W2.T) "
                         "+ b2)")], "scores", "ReLU is applied to the class scores"),
    ("no_b1", [("h1 = X.dot(W1.T) + b1", "h1 = X.dot(W1.T)")], "scores", "b1 is not added"),
    ("no_b2", [("scores = a1.dot(W2.T) + b2", "scores = a1.dot(W2.T)")], "scores",
     "b2 is not added"),
    ("no_reg", [("loss = data_loss + reg_loss", "loss = data_loss")], "loss",
     "no regularization term"),
    ("reg_W1_only", [("(np.sum(W1 * W1) + np.sum(W2 * W2))", "np.sum(W1 * W1)")], "loss",
     "leaves out W2"),
    ("reg_W2_only", [("(np.sum(W1 * W1) + np.sum(W2 * W2))", "np.sum(W2 * W2)")], "loss",
     "leaves out W1"),
    ("reg_biases", [("np.sum(W2 * W2))", "np.sum(W2 * W2) + np.sum(b1 * b1) + "
                     "np.sum(b2 * b2))")], "loss", "includes the biases"),
    ("reg_norm", [("(np.sum(W1 * W1) + np.sum(W2 * W2))",
                   "(np.linalg.norm(W1) + np.linalg.norm(W2))")], "loss", "norm"),
    ("summed", [("np.log(probs[np.arange(N), y])) / N", "np.log(probs[np.arange(N), y]))")],
     "loss", "summed over the minibatch"),
    ("grads_not_averaged", [("dscores /= N", "dscores /= 1")], "grad_W2_reference",
     "N times too large"),
    ("no_relu_mask", [("dh1 = da1 * (h1 > 0)", "dh1 = da1")], "grad_W1_reference",
     "ReLU's gradient mask"),
    ("no_relu_mask, seen numerically", [("dh1 = da1 * (h1 > 0)", "dh1 = da1")],
     "grad_b1_numeric", "ReLU's gradient mask"),
    ("no_minus_one", [("dscores[np.arange(N), y] -= 1", "dscores[np.arange(N), y] -= 0")],
     "grad_b2_reference", "misses the -1"),
    ("returns scores", [("y_pred = np.argmax(scores, axis=1)", "y_pred = scores")],
     "predict", "returns class scores"),
    ("transposed gradient", [("grads['W1'] = dh1.T.dot(X) + reg * W1",
                              "grads['W1'] = X.T.dot(dh1) + reg * W1.T")],
     "grad_W1_reference", "the gradient of W1 is transposed"),
]


@pytest.mark.parametrize("name, edits, part, hint", CATALOG, ids=[c[0] for c in CATALOG])
def test_each_known_mistake_gets_its_hint(session, tmp_path, name, edits, part, hint):
    result = session.grade(plant(tmp_path, *edits), only={part})
    (v,) = result.verdicts
    assert not v.passed and v.kind == "wrong", v.message
    assert hint in v.hint, (v.message, v.hint)


def test_a_wrong_value_without_a_known_mistake_says_where_without_a_hint(session, tmp_path):
    result = session.grade(plant(tmp_path, ("dh1.T.dot(X)", "dh1.T.dot(X) * 1.001")),
                           only={"grad_W1_reference"})
    (v,) = result.verdicts
    assert v.hint == "" and v.tolerance == 1e-7
    assert re.fullmatch(r"largest relative error [1-9]\.\de-04 at W1\[\d, \d\]: yours "
                        r"\S+, expected \S+ \(tolerance 1e-07\)", v.message), v.message
    assert v.value == pytest.approx(1.001 * v.expected, rel=1e-3)


def test_cs231n_conventions_get_their_own_hint(cs231n_session, tmp_path):
    sub = plant(tmp_path, ("loss += reg * (", "loss += 0.5 * reg * ("), source=CS231N,
                file="cs231n/classifiers/neural_net.py")
    (v,) = cs231n_session.grade(sub, only={"loss"}).verdicts
    assert v.hint == ("regularization counted as 0.5 * reg * sum(W**2); CS231n uses reg * "
                      "sum(W**2) (for C147's convention, check with --variant c147)")


def test_a_loss_that_disagrees_with_right_gradients_is_named(session, tmp_path):
    sub = plant(tmp_path, ("reg_loss = 0.5 * reg * (", "reg_loss = reg * ("))
    result = session.grade(sub, only={"grad_W2_numeric", "grad_W2_reference"})
    numeric, reference = result.verdicts
    assert reference.passed and not numeric.passed
    assert numeric.hint == ("your gradient is right (it is the reference's): your loss is "
                            "what disagrees with it")


SAMPLING = "idx = np.random.choice(num_train, batch_size)"


def test_training_with_other_minibatches_passes_loosely_only_when_all_else_is_right(
        session, tmp_path):
    """randint draws choice's numbers: the same run. Weighted choice draws others: another
    run, within 30%, which passes while the loss and gradients pass, and fails after them."""
    same = session.grade(plant(tmp_path, (SAMPLING, "idx = np.random.randint(0, num_train, "
                                          "batch_size)"), name="same"), only={"train"})
    assert "relative difference" in same.verdicts[0].message and same.passed
    other = (SAMPLING, "idx = np.random.choice(num_train, batch_size, p=np.ones(num_train) "
             "/ num_train)")
    (loose,) = session.grade(plant(tmp_path, other, name="other"), only={"train"}).verdicts
    assert loose.passed and "not the same run, but within 30% of it" in loose.message
    assert 1e-6 < abs(loose.value - loose.expected) / loose.expected <= 0.3
    mask = ("dh1 = da1 * (h1 > 0)", "dh1 = da1")
    result = session.grade(plant(tmp_path, other, mask, name="both"))
    train = verdict(result, "train")
    assert not train.passed and train.because == ["grad_W1_reference", "grad_b1_reference"]
    assert train.message.endswith("> tolerance 1e-06")
