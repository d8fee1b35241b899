"""A network's shape read from its parameters: layer sizes and batch normalization.

The engine trains networks of any depth given as parameter dicts in the first assignment's
layout (a layer mapping ``n_in`` features to ``n_out`` units holds ``W<l>`` (n_out, n_in) and
``b<l>`` (n_out,)), numbered from 1: ``W1`` (H1, D), ..., ``W<L>`` (C, H<L-1>). With batch
normalization each hidden layer ``l`` < L also holds ``gamma<l>``, ``beta<l>`` (H<l>,) and
the running statistics ``running_mean<l>``, ``running_var<l>`` (H<l>,) that predictions use.
The first assignment's network is ``[D, H, C]`` without batch normalization.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nndl import _random

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


def init_params(arch: Architecture, std: float | str, rng: Any,
                dtype: Any = np.float64) -> dict:
    """New parameters of ``arch`` drawn from ``rng`` (see :mod:`nndl._random`).

    Weights ``std * N(0, 1)``, drawn layer by layer (W1, W2, ...), so that ``[D, H, C]``
    gives :class:`nndl.neural_net.TwoLayerNet`'s weights for the same ``rng`` and ``std``;
    ``std="auto"``: He's ``sqrt(2 / n_in)`` for each layer, the last one included (it keeps
    the scores' scale near the inputs' whatever the depth). Biases zero; with batch
    normalization ``gamma`` ones, ``beta`` zeros and the running statistics those of a
    standard normal (mean 0, variance 1, as PyTorch starts them; the course starts the
    variance at 0).
    """
    params = {}
    for name, shape in arch.param_shapes().items():
        if name.startswith("W"):
            scale = np.sqrt(2.0 / shape[1]) if std == "auto" else float(std)
            params[name] = scale * _random.standard_normal(rng, shape)
        elif name.startswith(("gamma", "running_var")):
            params[name] = np.ones(shape)
        else:
            params[name] = np.zeros(shape)
    return {name: a.astype(dtype) for name, a in params.items()}


__all__ = ["Architecture", "BN_EPS", "BN_MOMENTUM", "init_params", "read_architecture"]
