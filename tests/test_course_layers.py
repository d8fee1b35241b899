"""The course's second-assignment layers (``nndl.layers``): each forward against values
worked out by hand (or the course's printed expectations), each backward against centred
differences, at the course's tolerances (relative errors around 1e-8 in float64)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nndl.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error
from nndl.layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    dropout_backward,
    dropout_forward,
    relu_backward,
    relu_forward,
    softmax_loss,
    svm_loss,
)

FEW = settings(max_examples=12, deadline=None)
seeds = st.integers(0, 2**31 - 1)
# gradients near zero make relative errors meaningless; centred differences of these
# smooth maps are good to about 1e-10 absolute
CLOSE = {"rtol": 1e-7, "atol": 1e-9}


def numeric(f, x, dout):
    return eval_numerical_gradient_array(f, x, dout)


# -- affine ---------------------------------------------------------------------------

def test_affine_forward_by_hand_flattens_each_input():
    x = np.array([[[1.0, 2.0], [3.0, 4.0]]])  # one 2x2 input: the row (1, 2, 3, 4)
    w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]])  # (D, M) = (4, 2)
    out, _ = affine_forward(x, w, np.array([0.5, -1.0]))
    np.testing.assert_array_equal(out, [[1 + 3 + 8 + 0.5, 2 + 3 - 4 - 1.0]])


def test_affine_forward_matches_the_course_notebook():
    input_shape, output_dim = (4, 5, 6), 3
    x = np.linspace(-0.1, 0.5, num=2 * 120).reshape(2, *input_shape)
    w = np.linspace(-0.2, 0.3, num=120 * output_dim).reshape(120, output_dim)
    b = np.linspace(-0.3, 0.1, num=output_dim)
    out, _ = affine_forward(x, w, b)
    expected = [[1.49834967, 1.70660132, 1.91485297], [3.25553199, 3.5141327, 3.77273342]]
    assert rel_error(out, expected) < 1e-8


@FEW
@given(st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 4), st.integers(1, 5)),
       seeds)
def test_affine_backward_is_the_numerical_gradient(shape, seed):
    n, d1, d2, m = shape
    rng = np.random.default_rng(seed)
    x, w, b = rng.normal(size=(n, d1, d2)), rng.normal(size=(d1 * d2, m)), rng.normal(size=m)
    dout = rng.normal(size=(n, m))
    dx, dw, db = affine_backward(dout, affine_forward(x, w, b)[1])
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    np.testing.assert_allclose(dx, numeric(lambda v: affine_forward(v, w, b)[0], x, dout), **CLOSE)
    np.testing.assert_allclose(dw, numeric(lambda v: affine_forward(x, v, b)[0], w, dout), **CLOSE)
    np.testing.assert_allclose(db, numeric(lambda v: affine_forward(x, w, v)[0], b, dout), **CLOSE)


def test_affine_backward_at_the_course_tolerance():
    rng = np.random.RandomState(231)
    x, w, b = rng.randn(10, 2, 3), rng.randn(6, 5), rng.randn(5)
    dout = rng.randn(10, 5)
    dx, dw, db = affine_backward(dout, affine_forward(x, w, b)[1])
    assert rel_error(dx, numeric(lambda v: affine_forward(v, w, b)[0], x, dout)) < 1e-8
    assert rel_error(dw, numeric(lambda v: affine_forward(x, v, b)[0], w, dout)) < 1e-8
    assert rel_error(db, numeric(lambda v: affine_forward(x, w, v)[0], b, dout)) < 1e-8


# -- ReLU -----------------------------------------------------------------------------

def test_relu_forward_matches_the_course_notebook():
    x = np.linspace(-0.5, 0.5, num=12).reshape(3, 4)
    out, _ = relu_forward(x)
    expected = [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.04545455, 0.13636364],
                [0.22727273, 0.31818182, 0.40909091, 0.5]]
    assert rel_error(out, expected) < 5e-8  # the notebook's values have 8 decimals


def test_relu_backward_by_hand():
    x = np.array([[-1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(relu_backward(np.array([[5.0, 6.0, 7.0]]), x), [[0, 0, 7.0]])


@FEW
@given(st.tuples(st.integers(1, 5), st.integers(1, 6)), seeds)
def test_relu_backward_is_the_numerical_gradient(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape)
    x[np.abs(x) < 1e-3] = 0.5  # centred differences straddling the kink are not a gradient
    dout = rng.normal(size=shape)
    dx = relu_backward(dout, relu_forward(x)[1])
    np.testing.assert_allclose(dx, numeric(lambda v: relu_forward(v)[0], x, dout), **CLOSE)


# -- batch normalization --------------------------------------------------------------

def test_batchnorm_forward_by_hand_and_running_averages():
    x = np.array([[1.0, 2.0], [3.0, 6.0]])  # means (2, 4), biased variances (1, 4)
    gamma, beta = np.array([2.0, 3.0]), np.array([0.5, -1.0])
    bn_param = {"mode": "train", "eps": 0.0}
    out, _ = batchnorm_forward(x, gamma, beta, bn_param)
    np.testing.assert_allclose(out, [[-1.5, -4.0], [2.5, 2.0]], rtol=1e-15)
    np.testing.assert_allclose(bn_param["running_mean"], [0.2, 0.4], rtol=1e-15)  # 0.1 * mean
    np.testing.assert_allclose(bn_param["running_var"], [0.1, 0.4], rtol=1e-15)
    bn_param.update(mode="test", running_mean=np.array([2.0, 4.0]),
                    running_var=np.array([1.0, 4.0]))
    out_test, _ = batchnorm_forward(np.array([[4.0, 8.0]]), gamma, beta, bn_param)
    np.testing.assert_allclose(out_test, [[4.5, 5.0]], rtol=1e-15)  # (4-2)/1*2+.5, (8-4)/2*3-1


def test_batchnorm_defaults_eps_and_momentum():
    x = np.array([[0.0], [2.0]])  # mean 1, variance 1
    bn_param = {"mode": "train"}
    out, _ = batchnorm_forward(x, np.ones(1), np.zeros(1), bn_param)
    np.testing.assert_allclose(out, [[-1 / np.sqrt(1 + 1e-5)], [1 / np.sqrt(1 + 1e-5)]])
    np.testing.assert_allclose(bn_param["running_mean"], [0.1])  # momentum 0.9


def test_batchnorm_normalizes_like_the_course_notebook():
    rng = np.random.RandomState(231)
    a = np.maximum(0, rng.randn(200, 50) @ rng.randn(50, 3))
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([11.0, 12.0, 13.0])
    out, _ = batchnorm_forward(a, gamma, beta, {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=0), beta, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), gamma, rtol=1e-6)


def test_batchnorm_test_mode_uses_the_running_averages():
    rng = np.random.RandomState(231)
    W1, W2 = rng.randn(50, 60), rng.randn(60, 3)
    bn_param = {"mode": "train"}
    gamma, beta = np.ones(3), np.zeros(3)
    for _ in range(50):
        batchnorm_forward(np.maximum(0, rng.randn(200, 50) @ W1) @ W2, gamma, beta, bn_param)
    bn_param["mode"] = "test"
    out, _ = batchnorm_forward(np.maximum(0, rng.randn(200, 50) @ W1) @ W2, gamma, beta, bn_param)
    assert np.all(np.abs(out.mean(axis=0)) < 0.2)
    assert np.all(np.abs(out.std(axis=0) - 1) < 0.2)


@FEW
@given(st.tuples(st.integers(2, 6), st.integers(1, 5)), seeds, st.sampled_from(["train", "test"]))
def test_batchnorm_backward_is_the_numerical_gradient(shape, seed, mode):
    rng = np.random.default_rng(seed)
    x = 5 * rng.normal(size=shape) + 12
    gamma, beta, dout = rng.normal(size=shape[1]), rng.normal(size=shape[1]), rng.normal(size=shape)
    bn_param = {"mode": mode, "running_mean": rng.normal(size=shape[1]) + 12,
                "running_var": rng.uniform(1, 30, size=shape[1])}
    fresh = dict(bn_param)

    def forward(x_, g_, b_):
        return batchnorm_forward(x_, g_, b_, dict(fresh))[0]

    cache = batchnorm_forward(x, gamma, beta, bn_param)[1]
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        dx, dgamma, dbeta = backward(dout, cache)
        np.testing.assert_allclose(dx, numeric(lambda v: forward(v, gamma, beta), x, dout),
                                   rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(dgamma, numeric(lambda v: forward(x, v, beta), gamma, dout),
                                   **CLOSE)
        np.testing.assert_allclose(dbeta, numeric(lambda v: forward(x, gamma, v), beta, dout),
                                   **CLOSE)


def test_batchnorm_backward_at_the_course_tolerance_and_alt_agrees():
    rng = np.random.RandomState(231)
    x = 5 * rng.randn(4, 5) + 12
    gamma, beta, dout = rng.randn(5), rng.randn(5), rng.randn(4, 5)
    bn_param = {"mode": "train"}
    cache = batchnorm_forward(x, gamma, beta, bn_param)[1]
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)
    dx_num = numeric(lambda v: batchnorm_forward(v, gamma, beta, bn_param)[0], x, dout)
    assert rel_error(dx, dx_num) < 1e-8
    assert rel_error(dgamma, numeric(lambda v: batchnorm_forward(x, v, beta, bn_param)[0],
                                     gamma, dout)) < 1e-8
    alt = batchnorm_backward_alt(dout, cache)
    for a, b in zip(alt, (dx, dgamma, dbeta)):
        assert rel_error(a, b) < 1e-12


def test_batchnorm_refuses_an_unknown_mode():
    with pytest.raises(ValueError, match="bn_param\\['mode'\\] must be 'train' or 'test'"):
        batchnorm_forward(np.ones((2, 2)), np.ones(2), np.zeros(2), {"mode": "eval"})


# -- dropout --------------------------------------------------------------------------

def test_dropout_p_is_the_probability_of_keeping():
    x = np.random.RandomState(0).randn(500, 500) + 10
    for p in (0.25, 0.4, 0.7):
        out, _ = dropout_forward(x, {"mode": "train", "p": p, "seed": 1})
        kept = out != 0
        assert abs(kept.mean() - p) < 0.01
        np.testing.assert_allclose(out[kept], x[kept] / p)  # inverted: kept units scaled 1/p
        out_test, cache = dropout_forward(x, {"mode": "test", "p": p})
        assert out_test is x and cache[1] is None


def test_dropout_seed_gives_the_courses_mask_without_touching_the_global_rng():
    x = np.arange(1.0, 13.0).reshape(3, 4)
    np.random.seed(123)
    expected_mask = (np.random.rand(3, 4) < 0.6) / 0.6  # the course: seed the global RNG, draw
    state = np.random.get_state()[1].copy()
    out, (_, mask) = dropout_forward(x, {"mode": "train", "p": 0.6, "seed": 123})
    np.testing.assert_array_equal(mask, expected_mask)
    np.testing.assert_array_equal(out, x * expected_mask)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_dropout_keeps_the_dtype_and_p_one_is_the_identity():
    x = np.ones((4, 3), dtype=np.float32)
    out, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    assert out.dtype == np.float32
    np.testing.assert_array_equal(dropout_forward(x, {"mode": "train", "p": 1})[0], x)


@FEW
@given(st.tuples(st.integers(1, 5), st.integers(1, 6)), seeds, st.floats(0.2, 0.9))
def test_dropout_backward_is_the_numerical_gradient(shape, seed, p):
    rng = np.random.default_rng(seed)
    x, dout = rng.normal(size=shape) + 10, rng.normal(size=shape)
    for mode in ("train", "test"):
        param = {"mode": mode, "p": p, "seed": seed}
        dx = dropout_backward(dout, dropout_forward(x, param)[1])
        num = numeric(lambda v, param=param: dropout_forward(v, param)[0], x, dout)
        np.testing.assert_allclose(dx, num, **CLOSE)


@pytest.mark.parametrize("p", [0, -0.1, 1.5, None, "0.5"])
def test_dropout_refuses_a_p_outside_0_1(p):
    with pytest.raises(ValueError, match="probability of keeping a unit"):
        dropout_forward(np.ones(3), {"mode": "train", "p": p})


# -- losses ---------------------------------------------------------------------------

def test_svm_loss_by_hand():
    x, y = np.array([[1.0, 2.0, 0.5], [0.0, 3.0, 3.5]]), np.array([0, 2])
    # row 0: margins 2 - 1 + 1 = 2 and 0.5 - 1 + 1 = 0.5; row 1: 0 - 3.5 + 1 < 0, 3 - 3.5 + 1 = 0.5
    loss, dx = svm_loss(x, y)
    assert loss == pytest.approx((2.5 + 0.5) / 2, rel=1e-15)
    np.testing.assert_array_equal(dx, np.array([[-2, 1, 1], [0, 1, -1]]) / 2)


def test_softmax_loss_by_hand():
    x, y = np.array([[0.0, 0.0], [np.log(1.0), np.log(3.0)]]), np.array([0, 1])
    loss, dx = softmax_loss(x, y)
    assert loss == pytest.approx((np.log(2) - np.log(0.75)) / 2, rel=1e-14)
    np.testing.assert_allclose(dx, np.array([[-0.5, 0.5], [0.25, -0.25]]) / 2, rtol=1e-14)


def test_losses_at_chance_like_the_course_notebook():
    rng = np.random.RandomState(231)
    x, y = 0.001 * rng.randn(50, 10), rng.randint(10, size=50)
    assert svm_loss(x, y)[0] == pytest.approx(9, abs=0.02)
    assert softmax_loss(x, y)[0] == pytest.approx(np.log(10), abs=0.01)


@FEW
@given(st.tuples(st.integers(1, 6), st.integers(2, 6)), seeds)
def test_loss_gradients_are_the_numerical_gradient(shape, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=shape), rng.integers(shape[1], size=shape[0])
    dx = softmax_loss(x, y)[1]
    num = eval_numerical_gradient(lambda v: softmax_loss(v, y)[0], x, verbose=False)
    np.testing.assert_allclose(dx, num, **CLOSE)
    x = rng.uniform(0, 0.5, size=shape)  # hinges away from their kinks: margins stay in (0.5, 1.5)
    dx = svm_loss(x, y)[1]
    num = eval_numerical_gradient(lambda v: svm_loss(v, y)[0], x, verbose=False)
    np.testing.assert_allclose(dx, num, **CLOSE)
