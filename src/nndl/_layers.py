"""The first assignment's layer internals: pure forward/backward pairs.

Every ``*_forward`` returns ``(out, cache)`` and its ``*_backward(dout, cache)``
returns the gradients of its inputs. Weight matrices follow the first assignment's
layout: a layer mapping D features to M units has ``w`` of shape (M, D), and
:func:`dropout_forward` takes ``p`` as the probability of *dropping* a unit (nndl's
own ``--dropout``). They serve the seed-exact :class:`nndl.neural_net.TwoLayerNet`,
the reference loop of the tests, and (``softmax``) the training loop and the
estimator. The course's second assignment has its own, public pairs with other
conventions (``w`` (D, M), ``p`` the probability of keeping a unit): :mod:`nndl.layers`.
Nothing here keeps state; the network composes these functions.
"""

from __future__ import annotations

import numpy as np

from nndl._random import uniform
from nndl._typing import NDArray, RandomState


def affine_forward(x: NDArray, w: NDArray, b: NDArray) -> tuple[NDArray, tuple]:
    """Affine map ``x @ w.T + b``.

    Parameters
    ----------
    x : ndarray of shape (N, D)
    w : ndarray of shape (M, D)
    b : ndarray of shape (M,)

    Returns
    -------
    out : ndarray of shape (N, M)
    cache : tuple ``(x, w)``
    """
    out = x @ w.T
    out += b
    return out, (x, w)


def affine_backward(dout: NDArray, cache: tuple, need_dx: bool = True
                    ) -> tuple[NDArray | None, NDArray, NDArray]:
    """Backward pass of :func:`affine_forward`.

    Parameters
    ----------
    dout : ndarray of shape (N, M)
    cache : tuple ``(x, w)`` from the forward pass.
    need_dx : bool, default True
        False skips the input gradient (``dx`` is then None): a first layer
        never needs it, and it is the largest product of the backward pass.

    Returns
    -------
    dx : ndarray of shape (N, D) or None
    dw : ndarray of shape (M, D)
    db : ndarray of shape (M,)
    """
    x, w = cache
    dx = dout @ w if need_dx else None
    return dx, dout.T @ x, dout.sum(axis=0)


def relu_forward(x: NDArray) -> tuple[NDArray, NDArray]:
    """Elementwise ``max(0, x)``; ``x`` of any shape. Cache: the output."""
    out = np.maximum(x, 0)
    return out, out


def relu_backward(dout: NDArray, cache: NDArray) -> NDArray:
    """Backward pass of :func:`relu_forward`: ``dout`` where the unit was active."""
    return np.where(cache > 0, dout, 0)


def dropout_forward(x: NDArray, p: float, rng: RandomState, train: bool = True
                    ) -> tuple[NDArray, NDArray | None]:
    """Inverted dropout: each unit kept with probability ``1 - p``, scaled by 1/(1-p).

    Parameters
    ----------
    x : ndarray of any shape
    p : float in [0, 1)
        Probability of dropping a unit.
    rng : RNG accepted by :func:`nndl._random.check_random_state`
    train : bool
        At test time (False) the layer is the identity.

    Returns
    -------
    out : ndarray shaped like ``x``
    cache : the scaled keep-mask (None when the layer was the identity)
    """
    if not train or p == 0:
        return x, None
    mask = (uniform(rng, x.shape) >= p).astype(x.dtype) / x.dtype.type(1 - p)
    return x * mask, mask


def dropout_backward(dout: NDArray, cache: NDArray | None) -> NDArray:
    """Backward pass of :func:`dropout_forward`."""
    return dout if cache is None else dout * cache


def softmax(scores: NDArray) -> NDArray:
    """Row-wise softmax of ``scores`` (N, C), stable for any finite input."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    exp /= exp.sum(axis=1, keepdims=True)
    return exp


def softmax_loss(scores: NDArray, y: NDArray, label_smoothing: float = 0.0,
                 soft_targets: NDArray | None = None) -> tuple[float, NDArray]:
    """Softmax cross-entropy averaged over the N rows, and its gradient.

    Parameters
    ----------
    scores : ndarray of shape (N, C)
    y : int ndarray of shape (N,), values in [0, C)
    label_smoothing : float in [0, 1), default 0
        The target puts ``1 - label_smoothing`` on the true class and spreads
        ``label_smoothing`` evenly over all C classes.
    soft_targets : ndarray of shape (N, C) or None
        Full target distributions (rows summing to 1), e.g. a teacher's
        probabilities for distillation; replaces ``y`` and smoothing.

    Returns
    -------
    loss : float
    dscores : ndarray of shape (N, C)
    """
    n, c = scores.shape
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    probs = np.exp(log_probs)
    rows = np.arange(n)
    if soft_targets is None and label_smoothing == 0:
        loss = -log_probs[rows, y].sum() / n
        dscores = probs
        dscores[rows, y] -= 1
    else:
        if soft_targets is None:
            soft_targets = np.full_like(probs, label_smoothing / c)
            soft_targets[rows, y] += 1 - label_smoothing
        loss = -(soft_targets * log_probs).sum() / n
        dscores = probs - soft_targets
    dscores /= n
    return float(loss), dscores
