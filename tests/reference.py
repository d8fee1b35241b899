"""The readable reference: the training loop written plainly with ``nndl._layers`` (through
``TwoLayerNet._loss_and_grads``) and the update rules below, one network at a time.

The rules are the engine's (:data:`nndl.config.OPTIMIZERS`), written as plain classes: each
updates a dict of parameter arrays in place from a dict of gradients with the same keys,
``opt.step(params, grads, lr)``, the learning rate passed on every step so that schedules
stay separate. They are written here independently of :mod:`nndl.optim` (whose cores the
engine runs), from the formulas as published and as the course writes them.

The learning rate of every iteration comes from each schedule's closed form
(:func:`schedule_multiplier`), written here apart from :mod:`nndl.schedules`, which the
engine runs (``tests/test_schedules.py`` checks that module against the same forms).

It takes its RNGs as the fused loop does (the dropout generator derived from the stream's
state, then per iteration the minibatch, then its augmentation), so the two must agree to
rounding for every option.
"""

import math

import numpy as np

from nndl import _random
from nndl._typing import Params
from nndl.config import OPTIMIZERS
from nndl.neural_net import TwoLayerNet
from nndl.sampling import MinibatchSampler, iterations_per_epoch


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


class RMSProp:
    """RMSProp (Hinton's lecture 6e), the course's: ``cache = rho * cache + (1 - rho) * dw**2``;
    ``w -= lr * dw / (sqrt(cache) + eps)``."""

    def __init__(self, decay_rate: float = 0.99, eps: float = 1e-8) -> None:
        self.decay_rate, self.eps = decay_rate, eps
        self.cache: Params = {}

    def step(self, params: Params, grads: Params, lr: float) -> None:
        rho = self.decay_rate
        for name, w in params.items():
            g = grads[name]
            cache = rho * self.cache.get(name, np.zeros_like(w)) + (1 - rho) * g**2
            self.cache[name] = cache
            w -= lr * g / (np.sqrt(cache) + self.eps)


class Adam:
    """Adam (Kingma & Ba), the course's: bias-corrected moments, ``eps`` added after the
    correction; with decoupled weight decay when ``weight_decay`` > 0 (AdamW).

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
        b1, b2, t = self.beta1, self.beta2, self.t
        for name, w in params.items():
            g = grads[name]
            m = b1 * self.m.get(name, np.zeros_like(w)) + (1 - b1) * g
            v = b2 * self.v.get(name, np.zeros_like(w)) + (1 - b2) * g**2
            self.m[name], self.v[name] = m, v
            m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
            decay = lr * self.weight_decay * w
            w -= lr * m_hat / (np.sqrt(v_hat) + self.eps) + decay


def make_optimizer(name: str = "sgd", momentum: float = 0.9, weight_decay: float = 0.0
                   ) -> SGD | Momentum | RMSProp | Adam:
    """The reference optimizer called ``name`` (one of :data:`nndl.config.OPTIMIZERS`)."""
    if name == "sgd":
        return SGD()
    if name in ("momentum", "nesterov"):
        return Momentum(momentum, nesterov=name == "nesterov")
    if name == "rmsprop":
        return RMSProp()
    if name in ("adam", "adamw"):
        return Adam(weight_decay=weight_decay if name == "adamw" else 0.0)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def schedule_multiplier(options, ipe: int, it: int) -> float:
    """The multiplier of the base rate at iteration ``it`` (from 0) of ``options.schedule``,
    ``ipe`` iterations an epoch, times the linear warmup's ramp.

    epoch_decay is the course's loop (``learning_rate *= decay`` after the update of every
    iteration with ``it % ipe == 0``): ``decay**ceil(it / ipe)``. step: ``decay**floor(it /
    span)``, ``span`` = ``step_epochs`` epochs. cosine: ``0.5 * (1 + cos(pi * it / (T -
    1)))``. one_cycle: linear from 0.04 to 1 at ``peak = round(0.3 * T)``, then linear
    towards 1e-4 at ``T``. Warmup: times ``min(1, (it + 1) / warmup_iters)``.
    """
    o, T, decay = options, options.num_iters, options.learning_rate_decay
    if o.schedule == "epoch_decay":
        value = decay ** math.ceil(it / ipe)
    elif o.schedule == "step":
        value = decay ** (it // max(1, round(o.step_epochs * ipe)))
    elif o.schedule == "cosine":
        value = 0.5 * (1 + math.cos(math.pi * it / max(T - 1, 1)))
    elif o.schedule == "one_cycle":
        peak = max(1, round(0.3 * T))
        value = (0.04 + 0.96 * it / peak if it < peak
                 else 1 - (1 - 1e-4) * (it - peak) / max(T - peak, 1))
    elif o.schedule == "constant":
        value = 1.0
    else:
        raise ValueError(f"no reference for schedule {o.schedule!r}")
    return value * min(1.0, (it + 1) / o.warmup_iters) if o.warmup_iters > 0 else value


def reference_train(params, X, y, options, rng, batch_transform=None, soft_targets=None):
    """Train a copy of ``params``; returns (its parameters, the loss per iteration)."""
    net = TwoLayerNet.from_params({k: v.copy() for k, v in params.items()})
    o = options
    optimizer = make_optimizer(o.optimizer, o.momentum, o.weight_decay)
    ipe = iterations_per_epoch(len(X), o.batch_size)
    noise = _random.derived_generator(rng) if o.dropout > 0 else None
    sample = MinibatchSampler(o.batch_sampler, rng, len(X), o.batch_size)
    losses = []
    for it in range(o.num_iters):
        idx = sample()
        X_batch = X[idx] if batch_transform is None else batch_transform(X[idx], rng)
        targets = None if soft_targets is None else soft_targets[idx]
        loss, grads = net._loss_and_grads(X_batch, y[idx], o.reg, dropout=o.dropout, rng=noise,
                                          label_smoothing=o.label_smoothing,
                                          soft_targets=targets)
        optimizer.step(net.params, grads, o.learning_rate * schedule_multiplier(o, ipe, it))
        losses.append(loss)
    return net.params, losses
