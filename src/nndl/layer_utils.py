"""The course's "sandwich" layers (its ``nndl/layer_utils.py``): common chains of
:mod:`nndl.layers` as one forward/backward pair each."""

from __future__ import annotations

from typing import Any

from nndl._typing import NDArray
from nndl.layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward,
    batchnorm_forward,
    relu_backward,
    relu_forward,
)

__all__ = ["affine_relu_forward", "affine_relu_backward",
           "affine_batchnorm_relu_forward", "affine_batchnorm_relu_backward"]


def affine_relu_forward(x: NDArray, w: NDArray, b: NDArray) -> tuple[NDArray, tuple]:
    """Affine then ReLU.

    Parameters
    ----------
    x : ndarray of shape (N, d_1, ..., d_k), D = d_1 * ... * d_k
    w : ndarray of shape (D, M)
    b : ndarray of shape (M,)

    Returns
    -------
    out : ndarray of shape (N, M)
    cache : ``(affine cache, relu cache)``
    """
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout: NDArray, cache: tuple) -> tuple[NDArray, NDArray, NDArray]:
    """Backward pass of :func:`affine_relu_forward`: ``dout`` (N, M) -> ``dx`` (shaped like
    ``x``), ``dw`` (D, M), ``db`` (M,)."""
    fc_cache, relu_cache = cache
    return affine_backward(relu_backward(dout, relu_cache), fc_cache)


def affine_batchnorm_relu_forward(x: NDArray, w: NDArray, b: NDArray, gamma: NDArray,
                                  beta: NDArray, bn_param: dict[str, Any]
                                  ) -> tuple[NDArray, tuple]:
    """Affine, batch normalization, then ReLU.

    Parameters
    ----------
    x, w, b : as :func:`affine_relu_forward`
    gamma, beta : ndarrays of shape (M,)
    bn_param : dict, as :func:`nndl.layers.batchnorm_forward` (its running averages are
        updated in train mode)

    Returns
    -------
    out : ndarray of shape (N, M)
    cache : ``(affine cache, batchnorm cache, relu cache)``
    """
    a, fc_cache = affine_forward(x, w, b)
    normed, bn_cache = batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(normed)
    return out, (fc_cache, bn_cache, relu_cache)


def affine_batchnorm_relu_backward(dout: NDArray, cache: tuple
                                   ) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray]:
    """Backward pass of :func:`affine_batchnorm_relu_forward`: ``dout`` (N, M) -> ``dx``
    (shaped like ``x``), ``dw`` (D, M), ``db`` (M,), ``dgamma`` (M,), ``dbeta`` (M,)."""
    fc_cache, bn_cache, relu_cache = cache
    da, dgamma, dbeta = batchnorm_backward(relu_backward(dout, relu_cache), bn_cache)
    dx, dw, db = affine_backward(da, fc_cache)
    return dx, dw, db, dgamma, dbeta
