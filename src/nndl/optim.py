"""Update rules, kept apart from the model (cf. CS231n's ``optim.py`` and
scikit-learn's ``_stochastic_optimizers.py``).

Each optimizer updates a dict of parameter arrays in place from a dict of
gradients with the same keys and shapes: ``opt.step(params, grads, lr)``.
The learning rate is passed on every step so that schedules stay separate.
"""

from __future__ import annotations

import numpy as np

from nndl._typing import Params

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")


class SGD:
    """Vanilla SGD, the assignment's rule: ``w -= lr * dw``."""

    def step(self, params: Params, grads: Params, lr: float) -> None:
        for name, w in params.items():
            w -= lr * grads[name]


class Momentum:
    """SGD with (optionally Nesterov) momentum, velocity form.

    ``v = mu * v - lr * dw``; then ``w += v`` (classical) or
    ``w += mu * v - lr * dw`` (Nesterov, as in CS231n's ``optim.py``).
    """

    def __init__(self, momentum: float = 0.9, nesterov: bool = False) -> None:
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum, self.nesterov = momentum, nesterov
        self.velocity: Params = {}

    def step(self, params: Params, grads: Params, lr: float) -> None:
        mu = self.momentum
        for name, w in params.items():
            v = self.velocity.setdefault(name, np.zeros_like(w))
            v *= mu
            v -= lr * grads[name]
            if self.nesterov:
                w += mu * v - lr * grads[name]
            else:
                w += v


class Adam:
    """Adam (Kingma & Ba), with decoupled weight decay when ``weight_decay`` > 0 (AdamW).

    With AdamW, ``w -= lr * weight_decay * w`` is applied besides the Adam step;
    the loss's own L2 term (``reg``) still enters through the gradient.
    """

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        for name, value in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay
        self.m: Params = {}
        self.v: Params = {}
        self.t = 0

    def step(self, params: Params, grads: Params, lr: float) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        scale = lr * np.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        for name, w in params.items():
            g = grads[name]
            m = self.m.setdefault(name, np.zeros_like(w))
            v = self.v.setdefault(name, np.zeros_like(w))
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            if self.weight_decay:
                w -= (lr * self.weight_decay) * w
            w -= scale * m / (np.sqrt(v) + self.eps)


def make_optimizer(name: str = "sgd", momentum: float = 0.9, weight_decay: float = 0.0
                   ) -> SGD | Momentum | Adam:
    """The optimizer called ``name`` (one of :data:`OPTIMIZERS`)."""
    if name == "sgd":
        return SGD()
    if name in ("momentum", "nesterov"):
        return Momentum(momentum, nesterov=name == "nesterov")
    if name in ("adam", "adamw"):
        return Adam(weight_decay=weight_decay if name == "adamw" else 0.0)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
