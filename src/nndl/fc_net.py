"""The course's modular networks (its second assignment's ``nndl/fc_net.py``).

``FullyConnectedNet`` is ``{affine - [batchnorm] - relu - [dropout]} x (L - 1) - affine -
softmax`` of any depth; ``TwoLayerNet`` is its one-hidden-layer case with the course's
defaults. Both are trained by :class:`nndl.solver.Solver`: they keep ``params`` and compute
``loss(X, y=None)``, nothing more.

Two names mean something else elsewhere in nndl, said once here:

- ``dropout`` here (the course's) is the probability of **keeping** a unit (0: no dropout
  layer). nndl's own ``--dropout``, ``TrainOptions.dropout`` and the estimator's
  ``dropout`` are the probability of dropping one.
- This ``TwoLayerNet`` stores ``W1`` as (D, H) and ``W2`` as (H, C) and takes any input
  shape (each input flattened). The first assignment's :class:`nndl.neural_net.TwoLayerNet`
  (``W1`` (H, D), ``W2`` (C, H), its own ``train``) is another class; nndl's command line,
  model files and estimator use that one.

As in the course, ``from nndl.fc_net import *`` also brings every function of
:mod:`nndl.layers` and :mod:`nndl.layer_utils`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from nndl import layer_utils, layers
from nndl._typing import ArrayLike, NDArray, Params
from nndl._validation import check_float, check_float_dtype, check_int, check_y

# `from nndl.fc_net import *` brings every layer function too, as the course's does
from nndl.layer_utils import *  # noqa: F403
from nndl.layers import *  # noqa: F403

__all__ = ["TwoLayerNet", "FullyConnectedNet", *layers.__all__, *layer_utils.__all__]


class FullyConnectedNet:
    """A fully connected network of L layers with ReLUs and a softmax loss:
    ``{affine - [batchnorm] - relu - [dropout]} x (L - 1) - affine - softmax``.

    Parameters
    ----------
    hidden_dims : list of int
        The width of each of the L - 1 hidden layers.
    input_dim : int, default 3 * 32 * 32
        D, the number of values in one input (inputs of any shape are flattened).
    num_classes : int, default 10
    dropout : float in [0, 1], default 0
        The probability of **keeping** a unit in the dropout layer after each ReLU; 0 means
        no dropout layers.
    use_batchnorm : bool, default False
        Batch normalization between each hidden affine layer and its ReLU.
    reg : float, default 0
        L2 strength: the loss adds ``0.5 * reg * sum(W**2)`` over every weight matrix.
    weight_scale : float, default 1e-2
        Weights are drawn as ``weight_scale * np.random.randn`` (NumPy's global generator,
        layer by layer: ``np.random.seed`` before construction reproduces them); biases and
        ``beta`` start at 0, ``gamma`` at 1.
    dtype : float32 (default) or float64
        Parameters and inputs are cast to it; use float64 for gradient checks.
    seed : int or None
        Passed to the dropout layers, which then draw the same masks every time
        (deterministic, for gradient checks).

    Attributes
    ----------
    params : dict of ndarray
        ``W1`` (D, H_1), ``b1`` (H_1,), ..., ``WL`` (H_{L-1}, C), ``bL`` (C,), and with batch
        normalization ``gamma1``, ``beta1`` (H_1,) ... ``gamma{L-1}``, ``beta{L-1}``.
    num_layers : int, L
    dropout_param : dict
        ``{'mode', 'p'[, 'seed']}`` shared by every dropout layer (empty without dropout).
    bn_params : list of dict
        One per batch normalization layer: its mode and running averages.
    """

    def __init__(self, hidden_dims: Sequence[int], input_dim: int = 3 * 32 * 32,
                 num_classes: int = 10, dropout: float = 0, use_batchnorm: bool = False,
                 reg: float = 0.0, weight_scale: float = 1e-2, dtype: DTypeLike = np.float32,
                 seed: int | None = None) -> None:
        if isinstance(hidden_dims, int | str) or not isinstance(hidden_dims, Sequence):
            raise TypeError(f"hidden_dims must be a list of ints, got {hidden_dims!r}")
        widths = [check_int("input_dim", input_dim)]
        widths += [check_int(f"hidden_dims[{i}]", h) for i, h in enumerate(hidden_dims)]
        widths.append(check_int("num_classes", num_classes))
        check_float("dropout", dropout, maximum=1.0)
        self.use_batchnorm = bool(use_batchnorm)
        self.use_dropout = dropout > 0
        self.reg = check_float("reg", reg)
        self.num_layers = len(widths) - 1
        self.dtype = check_float_dtype(dtype)
        scale = check_float("weight_scale", weight_scale)
        self.params: Params = {}
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:]), start=1):
            self.params[f"W{i}"] = scale * np.random.randn(fan_in, fan_out)
            self.params[f"b{i}"] = np.zeros(fan_out)
            if self.use_batchnorm and i < self.num_layers:
                self.params[f"gamma{i}"] = np.ones(fan_out)
                self.params[f"beta{i}"] = np.zeros(fan_out)
        self.params = {k: v.astype(self.dtype) for k, v in self.params.items()}
        self.dropout_param: dict[str, Any] = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout}
            if seed is not None:
                self.dropout_param["seed"] = check_int("seed", seed, minimum=0)
        self.bn_params: list[dict[str, Any]] = (
            [{"mode": "train"} for _ in range(self.num_layers - 1)] if self.use_batchnorm else [])

    def loss(self, X: ArrayLike, y: ArrayLike | None = None
             ) -> NDArray | tuple[float, dict[str, NDArray]]:
        """Class scores, or the loss and its gradients.

        Parameters
        ----------
        X : ndarray of shape (N, d_1, ..., d_k) with d_1 * ... * d_k = D
        y : int ndarray of shape (N,), or None

        Returns
        -------
        scores : ndarray of shape (N, C), when ``y`` is None (test mode: no dropout, batch
            normalization by its running averages); else
        (loss, grads) : float and a dict keyed like ``params`` (train mode).
        """
        inputs = self._inputs(X)
        mode = "test" if y is None else "train"
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        for bn_param in self.bn_params:
            bn_param["mode"] = mode
        hidden, caches = inputs, []
        for i in range(1, self.num_layers):
            hidden, cache = self._hidden_forward(i, hidden)
            caches.append(cache)
        L = self.num_layers
        W, b = self.params[f"W{L}"], self.params[f"b{L}"]
        scores, out_cache = layers.affine_forward(hidden, W, b)
        if y is None:
            return scores
        loss, dscores = layers.softmax_loss(scores, check_y(y, inputs.shape[0], scores.shape[1]))
        weights = [self.params[f"W{i}"] for i in range(1, L + 1)]
        loss += 0.5 * self.reg * sum(float(np.sum(w * w)) for w in weights)
        grads: dict[str, NDArray] = {}
        dhidden, grads[f"W{L}"], grads[f"b{L}"] = layers.affine_backward(dscores, out_cache)
        for i in range(L - 1, 0, -1):
            dhidden = self._hidden_backward(i, dhidden, caches[i - 1], grads)
        for i, w in enumerate(weights, start=1):
            grads[f"W{i}"] += self.reg * w
        return loss, grads

    # -- internals ---------------------------------------------------------------------
    def _inputs(self, X):
        """``X`` as an array of ``self.dtype`` whose rows hold D values each."""
        X = np.asarray(X)
        D = self.params["W1"].shape[0]
        if X.ndim < 2 or int(np.prod(X.shape[1:])) != D:
            raise ValueError(f"X must have shape (N, d_1, ..., d_k) with d_1 * ... * d_k = "
                             f"input_dim = {D}, got shape {X.shape}")
        return X.astype(self.dtype)

    def _hidden_forward(self, i, x):
        """Hidden block i (1-based): affine - [batchnorm] - relu - [dropout]."""
        w, b = self.params[f"W{i}"], self.params[f"b{i}"]
        if self.use_batchnorm:
            out, cache = layer_utils.affine_batchnorm_relu_forward(
                x, w, b, self.params[f"gamma{i}"], self.params[f"beta{i}"], self.bn_params[i - 1])
        else:
            out, cache = layer_utils.affine_relu_forward(x, w, b)
        drop_cache = None
        if self.use_dropout:
            out, drop_cache = layers.dropout_forward(out, self.dropout_param)
        return out, (cache, drop_cache)

    def _hidden_backward(self, i, dout, caches, grads):
        """Backward pass of hidden block i; stores its gradients in ``grads``, returns
        the gradient of its input."""
        cache, drop_cache = caches
        if drop_cache is not None:
            dout = layers.dropout_backward(dout, drop_cache)
        if self.use_batchnorm:
            dx, grads[f"W{i}"], grads[f"b{i}"], grads[f"gamma{i}"], grads[f"beta{i}"] = (
                layer_utils.affine_batchnorm_relu_backward(dout, cache))
        else:
            dx, grads[f"W{i}"], grads[f"b{i}"] = layer_utils.affine_relu_backward(dout, cache)
        return dx


class TwoLayerNet(FullyConnectedNet):
    """The course's modular two-layer network: ``affine - relu - affine - softmax``, the
    one-hidden-layer :class:`FullyConnectedNet` in float64 with the course's defaults.

    Parameters
    ----------
    input_dim : int, default 3 * 32 * 32
    hidden_dims : int, default 100
        H, the width of the one hidden layer.
    num_classes : int, default 10
    dropout : float in [0, 1], default 0
        The probability of keeping a hidden unit (0: no dropout layer).
    weight_scale : float, default 1e-3
        Weights ``weight_scale * np.random.randn`` (``W1`` first), biases 0.
    reg : float, default 0
        L2 strength, ``0.5 * reg * (sum(W1**2) + sum(W2**2))``.

    Attributes
    ----------
    params : dict of ndarray
        ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,). (The first assignment's
        :class:`nndl.neural_net.TwoLayerNet` stores them transposed.)
    """

    def __init__(self, input_dim: int = 3 * 32 * 32, hidden_dims: int = 100,
                 num_classes: int = 10, dropout: float = 0, weight_scale: float = 1e-3,
                 reg: float = 0.0) -> None:
        super().__init__([check_int("hidden_dims", hidden_dims)], input_dim, num_classes,
                         dropout=dropout, reg=reg, weight_scale=weight_scale, dtype=np.float64)
