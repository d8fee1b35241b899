"""The course's layers (its second assignment's ``nndl/layers.py``): pure forward/backward
pairs.

Every ``*_forward`` returns ``(out, cache)``; its ``*_backward(dout, cache)`` returns the
gradients of the forward pass's inputs. Nothing here keeps state except what the course
keeps in its parameter dicts (batch normalization's running averages in ``bn_param``).

Conventions, as the course's: an affine layer's weights are ``w`` (D, M) and each input
row is flattened, so ``x`` may be (N, d_1, ..., d_k) images; dropout's ``p`` is the
probability of **keeping** a unit (inverted dropout). nndl's first network keeps other
conventions (``w`` (M, D), ``p`` the probability of dropping) in its private
``nndl._layers``; ``--dropout`` and the estimator's ``dropout`` are drop probabilities too.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np

from nndl._typing import NDArray

__all__ = ["affine_forward", "affine_backward", "relu_forward", "relu_backward",
           "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
           "dropout_forward", "dropout_backward", "svm_loss", "softmax_loss"]

MODES = ("train", "test")


def affine_forward(x: NDArray, w: NDArray, b: NDArray) -> tuple[NDArray, tuple]:
    """Affine (fully connected) layer: each input flattened to D values, then ``x @ w + b``.

    Parameters
    ----------
    x : ndarray of shape (N, d_1, ..., d_k), D = d_1 * ... * d_k
    w : ndarray of shape (D, M)
    b : ndarray of shape (M,)

    Returns
    -------
    out : ndarray of shape (N, M)
    cache : ``(x, w, b)``
    """
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout: NDArray, cache: tuple) -> tuple[NDArray, NDArray, NDArray]:
    """Backward pass of :func:`affine_forward`.

    Parameters
    ----------
    dout : ndarray of shape (N, M), the upstream gradient
    cache : ``(x, w, b)`` from the forward pass

    Returns
    -------
    dx : ndarray shaped like ``x``, (N, d_1, ..., d_k)
    dw : ndarray of shape (D, M)
    db : ndarray of shape (M,)
    """
    x, w, _ = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    return dx, dw, dout.sum(axis=0)


def relu_forward(x: NDArray) -> tuple[NDArray, NDArray]:
    """Rectified linear units, elementwise ``max(0, x)``; ``x`` of any shape.

    Returns ``out`` (shaped like ``x``) and ``cache`` (``x`` itself).
    """
    return np.maximum(x, 0), x


def relu_backward(dout: NDArray, cache: NDArray) -> NDArray:
    """Backward pass of :func:`relu_forward`: ``dout`` where ``x > 0``, else 0 (shaped like
    ``dout``)."""
    return np.where(cache > 0, dout, 0).astype(dout.dtype, copy=False)


def _mode(param: dict[str, Any], name: str) -> str:
    """``param['mode']``, checked: 'train' or 'test'."""
    mode = param.get("mode")
    if mode not in MODES:
        raise ValueError(f"{name}['mode'] must be 'train' or 'test', got {mode!r}")
    return mode


def batchnorm_forward(x: NDArray, gamma: NDArray, beta: NDArray, bn_param: dict[str, Any]
                      ) -> tuple[NDArray, tuple]:
    """Batch normalization of each of the D features, then scale ``gamma`` and shift ``beta``.

    In 'train' mode each feature is normalized with the minibatch's mean and (biased)
    variance, and the running averages are updated in ``bn_param``::

        running_mean = momentum * running_mean + (1 - momentum) * sample_mean
        running_var = momentum * running_var + (1 - momentum) * sample_var

    In 'test' mode the running averages normalize instead.

    Parameters
    ----------
    x : ndarray of shape (N, D)
    gamma, beta : ndarrays of shape (D,)
    bn_param : dict
        ``mode`` ('train' or 'test', required), ``eps`` (default 1e-5), ``momentum``
        (default 0.9), ``running_mean`` and ``running_var`` (shape (D,); zeros when absent,
        then stored here).

    Returns
    -------
    out : ndarray of shape (N, D)
    cache : what :func:`batchnorm_backward` needs
    """
    mode = _mode(bn_param, "bn_param")
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))
    if mode == "train":
        mean, var = x.mean(axis=0), x.var(axis=0)
        bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mean
        bn_param["running_var"] = momentum * running_var + (1 - momentum) * var
    else:
        mean, var = running_mean, running_var
        bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var
    std = np.sqrt(var + eps)
    xhat = (x - mean) / std
    return gamma * xhat + beta, (xhat, gamma, std, mode)


def batchnorm_backward(dout: NDArray, cache: tuple) -> tuple[NDArray, NDArray, NDArray]:
    """Backward pass of :func:`batchnorm_forward`, node by node through its graph
    (``xc = x - mean``, ``var = mean(xc**2)``, ``std = sqrt(var + eps)``, ``xhat = xc / std``).

    Parameters
    ----------
    dout : ndarray of shape (N, D)
    cache : from :func:`batchnorm_forward`

    Returns
    -------
    dx : ndarray of shape (N, D)
    dgamma, dbeta : ndarrays of shape (D,)
    """
    xhat, gamma, std, mode = cache
    dbeta, dgamma = dout.sum(axis=0), (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    if mode == "test":  # mean and std were constants
        return dxhat / std, dgamma, dbeta
    N = dout.shape[0]
    xc = xhat * std
    dxc = dxhat / std
    dstd = -(dxhat * xc).sum(axis=0) / std**2
    dvar = dstd / (2 * std)
    dxc += 2 * xc * dvar / N
    dmean = -dxc.sum(axis=0)
    return dxc + dmean / N, dgamma, dbeta


def batchnorm_backward_alt(dout: NDArray, cache: tuple) -> tuple[NDArray, NDArray, NDArray]:
    """Backward pass of :func:`batchnorm_forward` in closed form::

        dx = gamma / (N * std) * (N * dout - sum(dout) - xhat * sum(dout * xhat))

    Same inputs and outputs as :func:`batchnorm_backward`.
    """
    xhat, gamma, std, mode = cache
    dbeta, dgamma = dout.sum(axis=0), (dout * xhat).sum(axis=0)
    if mode == "test":
        return dout * gamma / std, dgamma, dbeta
    N = dout.shape[0]
    return gamma / (N * std) * (N * dout - dbeta - xhat * dgamma), dgamma, dbeta


def dropout_forward(x: NDArray, dropout_param: dict[str, Any]) -> tuple[NDArray, tuple]:
    """Inverted dropout: in 'train' mode each unit is kept with probability ``p`` and scaled
    by ``1 / p`` (zeroed otherwise); in 'test' mode the layer is the identity.

    Parameters
    ----------
    x : ndarray of any shape
    dropout_param : dict
        ``p`` (the probability of **keeping** a unit, in (0, 1]), ``mode`` ('train' or
        'test'), optional ``seed``. With a seed the mask is drawn from
        ``np.random.RandomState(seed)``: the same mask as the course's
        ``np.random.seed(seed)`` followed by ``np.random.rand``, without reseeding NumPy's
        global generator; without one it is drawn from the global generator.

    Returns
    -------
    out : ndarray shaped like ``x``, of its dtype
    cache : ``(dropout_param, mask)``; ``mask`` (shaped like ``x``, values 0 or 1/p) is None
        in test mode
    """
    mode = _mode(dropout_param, "dropout_param")
    p = dropout_param.get("p")
    if not (isinstance(p, Real) and not isinstance(p, bool) and 0 < float(p) <= 1):
        raise ValueError("dropout_param['p'] (the probability of keeping a unit) must be in "
                         f"(0, 1], got {p!r}")
    if mode == "test":
        return x, (dropout_param, None)
    seed = dropout_param.get("seed")
    source: Any = np.random if seed is None else np.random.RandomState(seed)
    mask = (source.random_sample(x.shape) < p) / p
    return (x * mask).astype(x.dtype, copy=False), (dropout_param, mask)


def dropout_backward(dout: NDArray, cache: tuple) -> NDArray:
    """Backward pass of :func:`dropout_forward`: ``dout * mask`` in train mode, ``dout`` in
    test mode."""
    _, mask = cache
    return dout if mask is None else (dout * mask).astype(dout.dtype, copy=False)


def svm_loss(x: NDArray, y: NDArray) -> tuple[float, NDArray]:
    """Multiclass SVM (hinge) loss with margin 1, averaged over the N rows.

    Parameters
    ----------
    x : ndarray of shape (N, C), class scores
    y : int ndarray of shape (N,), labels in [0, C)

    Returns
    -------
    loss : float
    dx : ndarray of shape (N, C), the gradient of ``loss``
    """
    N = x.shape[0]
    rows = np.arange(N)
    margins = np.maximum(0, x - x[rows, y][:, None] + 1.0)
    margins[rows, y] = 0
    dx = (margins > 0).astype(x.dtype)
    dx[rows, y] -= dx.sum(axis=1)
    dx /= N
    return float(margins.sum() / N), dx


def softmax_loss(x: NDArray, y: NDArray) -> tuple[float, NDArray]:
    """Softmax cross-entropy averaged over the N rows (stable for any finite scores).

    Parameters
    ----------
    x : ndarray of shape (N, C), class scores
    y : int ndarray of shape (N,), labels in [0, C)

    Returns
    -------
    loss : float
    dx : ndarray of shape (N, C), the gradient of ``loss``
    """
    N = x.shape[0]
    rows = np.arange(N)
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    dx = np.exp(log_probs)
    dx[rows, y] -= 1
    dx /= N
    return float(-log_probs[rows, y].sum() / N), dx
