"""A network's shape read from its parameters: layer sizes and batch normalization.

The engine trains networks of any depth given as parameter dicts in the first assignment's
layout (a layer mapping ``n_in`` features to ``n_out`` units holds ``W<l>`` (n_out, n_in) and
``b<l>`` (n_out,)), numbered from 1: ``W1`` (H1, D), ..., ``W<L>`` (C, H<L-1>). With batch
normalization each hidden layer ``l`` < L also holds ``gamma<l>``, ``beta<l>`` (H<l>,) and
the running statistics ``running_mean<l>``, ``running_var<l>`` (H<l>,) that predictions use.
The first assignment's network is ``[D, H, C]`` without batch normalization.

:func:`init_params` draws a fresh network: ``std * standard normal`` weights, layer by
layer as :class:`nndl.neural_net.TwoLayerNet` draws them, or He initialization
(``std="auto"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import DTypeLike

from nndl import _random
from nndl._validation import check_float, check_float_dtype

#: batch normalization's constants (the course's: ``eps`` 1e-5, ``momentum`` 0.9)
BN_EPS, BN_MOMENTUM = 1e-5, 0.9
#: per hidden layer with batch normalization: trained, then kept statistics
BN_PARAMS, BN_STATS = ("gamma", "beta"), ("running_mean", "running_var")


@dataclass(frozen=True)
class Architecture:
    """``sizes``: [D, H1, ..., C], at least one hidden layer; ``batchnorm``: whether each
    hidden layer normalizes its minibatch before its ReLU."""

    sizes: tuple[int, ...]
    batchnorm: bool = False

    @property
    def num_layers(self) -> int:
        """L: the number of affine layers (2 for the first assignment's network)."""
        return len(self.sizes) - 1

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter's name and shape, in order."""
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in range(1, self.num_layers + 1):
            n_in, n_out = self.sizes[layer - 1], self.sizes[layer]
            shapes[f"W{layer}"], shapes[f"b{layer}"] = (n_out, n_in), (n_out,)
            if self.batchnorm and layer < self.num_layers:
                for name in BN_PARAMS + BN_STATS:
                    shapes[f"{name}{layer}"] = (n_out,)
        return shapes


def read_architecture(params: dict) -> Architecture:
    """The architecture of ``params`` (see the module docstring); ValueError naming what
    does not fit."""
    layers = 0
    while f"W{layers + 1}" in params:
        layers += 1
    if layers < 2:
        raise ValueError(f"params must hold W1, b1, W2, b2 (and W3, ... for deeper networks), "
                         f"got keys {sorted(params)}")
    w1 = np.shape(params["W1"])
    if len(w1) != 2:
        raise ValueError(f"params['W1'] must be 2-D (H, D), got shape {w1}")
    sizes = [w1[1]] + [np.shape(params[f"W{layer}"])[0] for layer in range(1, layers + 1)]
    arch = Architecture(tuple(int(s) for s in sizes), batchnorm="gamma1" in params)
    expected = arch.param_shapes()
    shapes = {name: np.shape(a) for name, a in params.items()}
    if shapes != expected:
        raise ValueError(f"params must hold W1 (H, D), b1 (H,), W2 (C, H), b2 (C,) (and so on "
                         f"for each layer, with gamma, beta and running statistics for batch "
                         f"normalization): expected shapes {expected}, got {shapes}")
    return arch


def init_params(architecture: Architecture, std: float | str, rng: object,
                dtype: DTypeLike = np.float64) -> dict[str, np.ndarray]:
    """A fresh network's parameters, in :meth:`Architecture.param_shapes`' order.

    Parameters
    ----------
    architecture : Architecture
        Layer sizes [D, H1, ..., C] and whether hidden layers normalize.
    std : float >= 0 or "auto"
        Each ``W<l>`` (n_out, n_in) is ``std * standard normal``, drawn from ``rng`` with
        :func:`nndl._random.standard_normal` in the order W1, W2, ..., W<L> (nothing else is
        drawn), so ``[D, H, C]`` gives exactly ``TwoLayerNet(D, H, C, std)``'s weights for
        the same ``rng``. ``"auto"``: He initialization, layer l's std ``sqrt(2 / n_in)``
        for every layer, the last (linear, no ReLU after it) included: one rule for every
        layer, as the course's ``weight_scale`` is one number for all (the scores then
        start with a variance of about 2 rather than 1, which changes little).
    rng : RNG (:func:`nndl._random.check_random_state`'s result)
    dtype : float32 or float64
        Weights are drawn in float64 and cast once.

    Returns
    -------
    dict of ndarray
        ``W<l>`` (n_out, n_in) drawn, ``b<l>`` (n_out,) zeros; with batch normalization,
        per hidden layer ``gamma<l>`` ones, ``beta<l>`` zeros, ``running_mean<l>`` zeros and
        ``running_var<l>`` ones (PyTorch's start: the unit variance a fresh layer's
        normalized output has; the course starts ``running_var`` at zeros, which scales
        the first predictions by ``1 / sqrt(eps)`` until the running average catches up).
    """
    auto = isinstance(std, str)
    if auto and std != "auto":
        raise ValueError(f"std must be a number >= 0 or 'auto', got {std!r}")
    scale = None if auto else check_float("std", std)
    dtype = check_float_dtype(dtype)
    starts = {"b": 0.0, "gamma": 1.0, "beta": 0.0, "running_mean": 0.0, "running_var": 1.0}
    params = {}
    for name, shape in architecture.param_shapes().items():
        if name.startswith("W"):
            layer_std = math.sqrt(2 / shape[1]) if scale is None else scale
            params[name] = (layer_std * _random.standard_normal(rng, shape)).astype(dtype)
        else:
            params[name] = np.full(shape, starts[name.rstrip("0123456789")], dtype=dtype)
    return params


__all__ = ["Architecture", "BN_EPS", "BN_MOMENTUM", "init_params", "read_architecture"]
