"""The second assignment's layer inputs, drawn at check time from the seed, and the answers.

Shapes are small and fixed (an affine layer on (4, 2, 3) inputs, batch normalization of
8 rows of 5 features, dropout on 60 x 80 units, losses of 10 rows of 5 classes); the numbers
come from ``--seed``, so the same seed draws the same inputs. Features are drawn with
different scales (some small, where ``eps`` matters) and the batch normalization momentum
away from 0.5 (where swapping it would change nothing); a draw is kept only when every
modelled mistake of :mod:`nndl.grading.layer_mistakes` moves a value it changes by far more
than the tolerance, so each hint is certain.

The answers are nndl's reference, :mod:`nndl.layers` and :mod:`nndl.layer_utils`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nndl import layer_utils, layers
from nndl._typing import NDArray
from nndl.grading import layer_mistakes as model
from nndl.grading.compare import Answer, Quantity

EPS = 1e-5  # the course's default
BN_ROWS, BN_FEATURES = 8, 5
DROP_SHAPE, DROP_SMALL = (60, 80), (10, 12)


@dataclass(frozen=True)
class LayerCase:
    """One draw of every layer part's inputs."""

    seed: int
    x: NDArray  # (4, 2, 3), the affine layers' input
    w: NDArray  # (6, 5)
    b: NDArray  # (5,)
    dout: NDArray  # (4, 5)
    relu_x: NDArray  # (4, 5)
    relu_dout: NDArray
    bn_batches: tuple[NDArray, NDArray]  # two (8, 5) minibatches, train mode
    gamma: NDArray  # (5,)
    beta: NDArray
    momentum: float
    running_mean: NDArray  # the running averages before the first train-mode call
    running_var: NDArray
    bn_test_x: NDArray  # (6, 5)
    bn_dout: NDArray  # (8, 5)
    drop_x: NDArray  # (60, 80), away from 0
    drop_p: float  # the probability of keeping a unit
    drop_seed: int
    drop_small: NDArray  # (10, 12), for the backward pass
    drop_dout: NDArray
    scores: NDArray  # (10, 5)
    labels: NDArray  # (10,)
    abr_x: NDArray  # (8, 6), the affine-batchnorm-relu sandwich's input
    abr_w: NDArray  # (6, 5)
    abr_dout: NDArray  # (8, 5)

    def bn_param(self) -> dict[str, Any]:
        """The first train-mode call's ``bn_param`` (mode left out)."""
        return {"momentum": self.momentum, "eps": EPS,
                "running_mean": self.running_mean.copy(),
                "running_var": self.running_var.copy()}


def draw_layer_case(seed: int, attempts: int = 200) -> LayerCase:
    """The inputs of ``seed``: the first draw of its stream whose mistakes are all clear."""
    for attempt in range(attempts):
        case = _draw(np.random.default_rng([seed, 2, attempt]), seed)
        if all(answer.clear() for answer in layer_answers(case).values()):
            return case
    raise RuntimeError(f"no clear layer inputs in {attempts} draws of seed {seed}")


def _draw(rng: np.random.Generator, seed: int) -> LayerCase:
    normal = rng.standard_normal

    def features(rows: int) -> NDArray:
        """Rows of features with their own means and scales (some small: eps shows)."""
        scale = np.exp(rng.uniform(np.log(0.05), np.log(3.0), BN_FEATURES))
        return rng.uniform(-2, 2, BN_FEATURES) + scale * normal((rows, BN_FEATURES))

    return LayerCase(
        seed=seed, x=normal((4, 2, 3)), w=normal((6, 5)), b=normal(5), dout=normal((4, 5)),
        relu_x=normal((4, 5)), relu_dout=normal((4, 5)),
        bn_batches=(features(BN_ROWS), features(BN_ROWS)),
        gamma=rng.uniform(0.5, 2.0, BN_FEATURES), beta=normal(BN_FEATURES),
        momentum=float(rng.uniform(0.6, 0.95)), running_mean=normal(BN_FEATURES),
        running_var=np.exp(rng.uniform(np.log(0.01), np.log(2.0), BN_FEATURES)),
        bn_test_x=features(6), bn_dout=normal((BN_ROWS, BN_FEATURES)),
        drop_x=5.0 + normal(DROP_SHAPE), drop_p=float(rng.uniform(0.6, 0.85)),
        drop_seed=int(rng.integers(0, 2**31 - 1)), drop_small=5.0 + normal(DROP_SMALL),
        drop_dout=normal(DROP_SMALL), scores=normal((10, 5)), labels=rng.integers(0, 5, 10),
        abr_x=normal((BN_ROWS, 6)), abr_w=normal((6, 5)),
        abr_dout=normal((BN_ROWS, 5)))


# -- answers ------------------------------------------------------------------------------

def _answer(reference: dict[str, Any], names: dict[str, str],
            mistaken: Callable[[str], dict[str, Any]], mistakes: tuple[str, ...]) -> Answer:
    """An :class:`Answer` of the ``reference``'s quantities (``names``: key -> where, in
    words) and those of each mistake that changes one of them."""
    quantities = {k: Quantity(k.rstrip("0123456789") if k.startswith("out") else k,
                              reference[k], names[k]) for k in names}
    answer = Answer(quantities)
    for mistake in mistakes:
        outputs = mistaken(mistake)
        changed = {k: outputs[k] for k in names if not _same(outputs[k], reference[k])}
        if changed:
            answer.mistakes[model.HINTS[mistake]] = changed
    return answer


def _same(a: Any, b: Any) -> bool:
    return bool(np.array_equal(a, b)) if isinstance(b, np.ndarray) else a == b


def layer_answers(case: LayerCase) -> dict[str, Answer]:
    """Every layer part's answer, by part id (dropout's are judged otherwise)."""
    c = case
    out, cache = layers.affine_forward(c.x, c.w, c.b)
    dx, dw, db = layers.affine_backward(c.dout, cache)
    affine = {"out": out, "dx": dx, "dw": dw, "db": db}
    relu_out, relu_cache = layers.relu_forward(c.relu_x)
    relu = {"out": relu_out, "dx": layers.relu_backward(c.relu_dout, relu_cache)}

    def affine_model(m: str) -> dict:
        return model.affine(c.x, c.w, c.b, c.dout, m)

    def relu_model(m: str) -> dict:
        return model.relu(c.relu_x, c.relu_dout, m)

    answers = {
        "affine_forward": _answer(affine, {"out": ""}, affine_model, ("affine_no_bias",)),
        "affine_backward": _answer(affine, {"dx": "", "dw": "", "db": ""}, affine_model,
                                   ("affine_db_averaged",)),
        "relu_forward": _answer(relu, {"out": ""}, relu_model, ()),
        "relu_backward": _answer(relu, {"dx": ""}, relu_model,
                                 ("relu_no_mask", "relu_mask_of_dout")),
        **_batchnorm_answers(c), **_loss_answers(c), **_sandwich_answers(c)}
    return answers


BN_TRAIN_MISTAKES = ("bn_unbiased", "bn_no_eps", "bn_eps_outside", "bn_no_gamma_beta",
                     "bn_momentum_swapped", "bn_running_unchanged", "bn_running_std")
BN_TEST_MISTAKES = ("bn_test_batch", "bn_no_eps", "bn_eps_outside", "bn_no_gamma_beta")
BN_BACKWARD_MISTAKES = ("bn_no_mean_terms", "bn_no_mean_term", "bn_no_var_term",
                        "bn_no_gamma_grad", "bn_dgamma_plain")


def _batchnorm_answers(c: LayerCase) -> dict[str, Answer]:
    bn = {**c.bn_param(), "mode": "train"}
    first, _ = layers.batchnorm_forward(c.bn_batches[0], c.gamma, c.beta, bn)
    second, _ = layers.batchnorm_forward(c.bn_batches[1], c.gamma, c.beta, bn)
    train = {"out1": first, "out2": second, "running_mean": bn["running_mean"],
             "running_var": bn["running_var"]}
    names = {"out1": " (first call)", "out2": " (second call)",
             "running_mean": " after two calls", "running_var": " after two calls"}
    test_bn = {"mode": "test", "eps": EPS, "running_mean": c.running_mean,
               "running_var": c.running_var}
    test = {"out": layers.batchnorm_forward(c.bn_test_x, c.gamma, c.beta, test_bn)[0]}
    x = c.bn_batches[0]
    _, cache = layers.batchnorm_forward(x, c.gamma, c.beta, {"mode": "train", "eps": EPS})
    dx, dgamma, dbeta = layers.batchnorm_backward(c.bn_dout, cache)
    alt = layers.batchnorm_backward_alt(c.bn_dout, cache)
    grads = {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}

    def backward_model(m: str) -> dict:
        return model.batchnorm_backward(x, c.gamma, c.bn_dout, EPS, m)

    backward_names = {"dx": "", "dgamma": "", "dbeta": ""}
    return {
        "batchnorm_forward_train": _answer(
            train, names, lambda m: model.batchnorm_train(list(c.bn_batches), c.gamma, c.beta,
                                                          c.bn_param(), m),
            BN_TRAIN_MISTAKES),
        "batchnorm_forward_test": _answer(
            test, {"out": ""}, lambda m: model.batchnorm_test(c.bn_test_x, c.gamma, c.beta,
                                                              test_bn, m),
            BN_TEST_MISTAKES),
        "batchnorm_backward": _answer(grads, backward_names, backward_model,
                                      BN_BACKWARD_MISTAKES),
        "batchnorm_backward_alt": _answer(dict(zip(("dx", "dgamma", "dbeta"), alt)),
                                          backward_names, backward_model,
                                          BN_BACKWARD_MISTAKES)}


def _loss_answers(c: LayerCase) -> dict[str, Answer]:
    def loss_answer(reference: Callable[[NDArray, NDArray], tuple[float, NDArray]],
                    mistaken: Callable[[NDArray, NDArray, str], dict[str, Any]],
                    mistakes: tuple[str, ...]) -> Answer:
        loss, dx = reference(c.scores, c.labels)
        return _answer({"loss": loss, "dx": dx}, {"loss": "", "dx": ""},
                       lambda m: mistaken(c.scores, c.labels, m), mistakes)

    return {"svm_loss": loss_answer(layers.svm_loss, model.svm, (
                "svm_counts_correct", "svm_not_averaged", "svm_loss_not_averaged",
                "svm_dx_not_averaged")),
            "softmax_loss": loss_answer(layers.softmax_loss, model.softmax, (
                "softmax_not_averaged", "softmax_loss_not_averaged", "softmax_dx_not_averaged",
                "softmax_no_minus_one"))}


def _sandwich_answers(c: LayerCase) -> dict[str, Answer]:
    out, cache = layer_utils.affine_relu_forward(c.x, c.w, c.b)
    dx, dw, db = layer_utils.affine_relu_backward(c.dout, cache)
    relu = {"out": out, "dx": dx, "dw": dw, "db": db}
    b, beta = c.b, c.beta
    out, cache = layer_utils.affine_batchnorm_relu_forward(c.abr_x, c.abr_w, b, c.gamma, beta,
                                                           {"mode": "train"})
    grads = layer_utils.affine_batchnorm_relu_backward(c.abr_dout, cache)
    bn = {"out": out, **dict(zip(("dx", "dw", "db", "dgamma", "dbeta"), grads))}

    def relu_model(m: str) -> dict:
        return model.affine_relu(c.x, c.w, c.b, c.dout, m)

    def bn_model(m: str) -> dict:
        return model.affine_batchnorm_relu(c.abr_x, c.abr_w, b, c.gamma, beta, c.abr_dout, EPS,
                                           m)

    return {
        "affine_relu_forward": _answer(relu, {"out": ""}, relu_model, ("affine_relu_no_relu",)),
        "affine_relu_backward": _answer(relu, {"dx": "", "dw": "", "db": ""}, relu_model,
                                        ("affine_relu_no_relu_grad",)),
        "affine_batchnorm_relu_forward": _answer(bn, {"out": ""}, bn_model,
                                                 ("abr_relu_first",)),
        "affine_batchnorm_relu_backward": _answer(
            bn, {k: "" for k in ("dx", "dw", "db", "dgamma", "dbeta")}, bn_model,
            ("abr_backward_order", "abr_relu_first")),
    }
