"""The first network's layer internals (``nndl._layers``): weights (M, D), dropout's p
the probability of dropping."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nndl._layers import (
    affine_backward,
    affine_forward,
    dropout_backward,
    dropout_forward,
    relu_backward,
    relu_forward,
    softmax,
    softmax_loss,
)
from nndl.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error

shapes = st.tuples(st.integers(1, 6), st.integers(1, 7), st.integers(1, 5))


@settings(max_examples=25, deadline=None)
@given(shapes, st.integers(0, 2**31 - 1))
def test_affine_gradients(shape, seed):
    n, d, m = shape
    rng = np.random.default_rng(seed)
    x, w, b = rng.normal(size=(n, d)), rng.normal(size=(m, d)), rng.normal(size=m)
    dout = rng.normal(size=(n, m))
    out, cache = affine_forward(x, w, b)
    np.testing.assert_allclose(out, x @ w.T + b)
    dx, dw, db = affine_backward(dout, cache)
    num = eval_numerical_gradient_array
    # central differences of a linear map are exact up to rounding, about 1e-11 absolute; an
    # entry whose gradient nearly cancels to zero can therefore have a large *relative* error
    close = {"rtol": 1e-7, "atol": 1e-9}
    np.testing.assert_allclose(dx, num(lambda v: affine_forward(v, w, b)[0], x, dout), **close)
    np.testing.assert_allclose(dw, num(lambda v: affine_forward(x, v, b)[0], w, dout), **close)
    np.testing.assert_allclose(db, num(lambda v: affine_forward(x, w, v)[0], b, dout), **close)
    assert affine_backward(dout, cache, need_dx=False)[0] is None


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_relu_gradient(n, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
    dout = rng.normal(size=(n, d))
    out, cache = relu_forward(x)
    assert (out >= 0).all() and np.array_equal(out > 0, x > 0)
    numeric = eval_numerical_gradient_array(lambda v: relu_forward(v)[0], x, dout)
    assert rel_error(relu_backward(dout, cache), numeric) < 1e-8


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(2, 6), st.floats(0, 0.5), st.integers(0, 2**31 - 1))
def test_softmax_loss_gradient(n, c, smoothing, seed):
    rng = np.random.default_rng(seed)
    scores, y = rng.normal(size=(n, c)), rng.integers(0, c, n)
    loss, dscores = softmax_loss(scores.copy(), y, label_smoothing=smoothing)
    numeric = eval_numerical_gradient(lambda s: softmax_loss(s, y, smoothing)[0], scores,
                                      verbose=False)
    # entries can be ~0 where a target equals its probability: compare absolutely
    np.testing.assert_allclose(dscores, numeric, rtol=1e-6, atol=1e-9)
    assert loss >= 0


def test_softmax_loss_matches_definition_and_soft_targets():
    rng = np.random.default_rng(1)
    scores, y = rng.normal(size=(4, 3)), np.array([0, 2, 1, 1])
    probs = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    loss, _ = softmax_loss(scores, y)
    assert abs(loss - -np.log(probs[np.arange(4), y]).mean()) < 1e-14
    one_hot = np.eye(3)[y]
    assert abs(softmax_loss(scores, y, soft_targets=one_hot)[0] - loss) < 1e-14


def test_softmax_is_stable_for_huge_scores():
    scores = np.array([[1e4, 0.0, -1e4], [1000.0, 1000.0, 1000.0]])
    p = softmax(scores)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]])
    loss, d = softmax_loss(scores, np.array([2, 0]))
    assert np.isfinite(loss) and np.isfinite(d).all()
    assert abs(loss - (2e4 + np.log(3)) / 2) < 1e-6


def test_dropout_keeps_expectation_and_gradient():
    rng = np.random.default_rng(0)
    x = np.ones((2000, 50))
    out, mask = dropout_forward(x, 0.3, rng)
    assert abs(out.mean() - 1) < 0.02
    assert abs((out == 0).mean() - 0.3) < 0.02
    dout = rng.normal(size=x.shape)
    np.testing.assert_array_equal(dropout_backward(dout, mask), dout * mask)
    same, cache = dropout_forward(x, 0.3, rng, train=False)
    assert same is x and cache is None
