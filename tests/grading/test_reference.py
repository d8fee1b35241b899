"""The reference passes: course-style solutions of both variants pass every part, the
toy problem is drawn from the seed, and the mistakes' arithmetic is the reference's."""

import numpy as np
import pytest

from nndl.grading import VARIANTS, Session, Settings
from nndl.grading.mistakes import network
from nndl.grading.toy import answers, draw_case
from nndl.neural_net import TwoLayerNet

from .conftest import C147, CS231N, plant

PARTS = ["scores", "loss", "grad_W1_numeric", "grad_W1_reference", "grad_b1_numeric",
         "grad_b1_reference", "grad_W2_numeric", "grad_W2_reference", "grad_b2_numeric",
         "grad_b2_reference", "train", "predict"]


def test_a_course_style_c147_solution_passes_every_part(session):
    result = session.grade(C147)
    assert [v.part for v in result.verdicts] == PARTS
    assert result.passed, [(v.part, v.message) for v in result.verdicts if not v.passed]
    # the exact run: the same minibatches as the reference, not the loose comparison
    assert "relative difference" in result.verdicts[PARTS.index("train")].message


@pytest.mark.slow
def test_a_cs231n_solution_passes_under_its_variant_and_is_told_of_it_under_c147(
        session, cs231n_session):
    assert cs231n_session.grade(CS231N).passed
    result = session.grade(CS231N)
    assert result.passed_count == 0
    assert any("--variant cs231n" in note and "W1 (D, H)" in note for note in result.notes)
    assert result.verdicts[0].traceback[0].startswith(
        'File "cs231n/classifiers/neural_net.py", line ')


@pytest.mark.parametrize("variant", ["c147", "cs231n"])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_the_mistakes_network_without_a_mistake_is_the_reference(variant, seed):
    v = VARIANTS[variant]
    case = draw_case(seed, v)
    ours = network(case.params, case.X, case.y, v.coefficient(case.reg),
                   v.other.coefficient(case.reg))
    net = TwoLayerNet.from_params(case.params)
    loss, grads = net.loss(case.X, case.y, reg=v.reference_reg(case.reg))
    np.testing.assert_allclose(ours["scores"], net.loss(case.X), rtol=1e-13)
    assert ours["loss"] == pytest.approx(loss, rel=1e-13)
    for name in grads:
        np.testing.assert_allclose(ours[name], grads[name], rtol=1e-12, atol=1e-15)


def test_the_reference_regularizes_each_course_its_own_way():
    """CS231n's loss is the C147 loss with twice the reg (reg vs 0.5 * reg)."""
    case = draw_case(0, VARIANTS["c147"])
    c147, cs231n = answers(case, VARIANTS["c147"]), answers(case, VARIANTS["cs231n"])
    squares = sum(float(np.sum(case.params[w] ** 2)) for w in ("W1", "W2"))
    assert cs231n.loss - c147.loss == pytest.approx(0.5 * case.reg * squares, rel=1e-9)
    # the student's layout is the transpose; the gradient of reg * W**2 is twice 0.5 * reg's
    np.testing.assert_allclose(cs231n.grads["W1"].T - c147.grads["W1"],
                               case.reg * case.params["W1"], rtol=1e-9)


def test_the_toy_problem_is_drawn_from_the_seed():
    c147 = VARIANTS["c147"]
    first, again, other = draw_case(3, c147), draw_case(3, c147), draw_case(4, c147)
    np.testing.assert_array_equal(first.X, again.X)
    assert first.reg == again.reg and first.sample_seed == again.sample_seed
    assert not np.allclose(first.X, other.X)
    assert first.X.shape == (5, 4) and first.params["W1"].shape == (10, 4)
    assert np.all(first.params["b1"] != 0)  # a missing bias shows


@pytest.mark.slow
def test_same_seed_same_verdicts(tmp_path):
    broken = plant(tmp_path, ("dh1 = da1 * (h1 > 0)", "dh1 = da1"))

    def verdicts(seed):
        with Session(Settings(seed=seed, timeout=30)) as s:
            result = s.grade(broken)
        return [{k: v for k, v in d.items() if k != "seconds"}
                for d in (v.to_dict() for v in result.verdicts)]

    first = verdicts(11)
    assert first == verdicts(11)
    assert first != verdicts(12)  # another problem: other values in the messages
    assert {"grad_W1_reference", "grad_b1_reference"} <= {
        v["part"] for v in first if v["status"] == "fail"}
