"""The course's update rules (its second assignment's ``optim.py``), as functions.

Every rule has one interface::

    next_w, config = rule(w, dw, config=None)

``w`` is a parameter array of any shape and ``dw`` its gradient (same shape); ``config``
is a dict of hyperparameters and, for the rules that keep state, that state, stored
under the course's key names (its release for C147/C247, not CS231n's newer ``m`` / ``v``
/ ``cache``): ``velocity`` for both momentum rules, ``a`` for RMSProp's running average
of squared gradients, ``v`` (first moment), ``a`` (second moment) and ``t`` (step) for
Adam. Missing hyperparameters are filled in with the defaults below (in ``config``
itself, as the course does); pass the returned ``config`` back on the next call.
:class:`nndl.solver.Solver` keeps one config per parameter.

``sgd`` updates ``w`` in place (as the course's does); the others return a new array.

These are the course's rules, for its ``Solver``. nndl's own training engine
(``TwoLayerNet.train``, ``nndl train``, the estimator) has its own option names
(``--optimizer sgd | momentum | nesterov | adam | adamw``, :data:`nndl.config.OPTIMIZERS`)
and fused versions of these rules (:mod:`nndl.population`): ``momentum`` is
:func:`sgd_momentum`, ``nesterov`` is :func:`sgd_nesterov_momentum` (the same update,
rearranged), ``adam`` differs from :func:`adam` only where ``epsilon`` enters (it adds
``epsilon`` to ``sqrt(a)`` before the bias correction instead of after).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nndl._typing import NDArray

Config = dict[str, Any]


def _with_defaults(config: Config | None, **defaults: Any) -> Config:
    """``config`` (a new dict when None) with every missing key of ``defaults`` set."""
    config = {} if config is None else config
    for key, value in defaults.items():
        config.setdefault(key, value)
    return config


def sgd(w: NDArray, dw: NDArray, config: Config | None = None) -> tuple[NDArray, Config]:
    """Vanilla stochastic gradient descent: ``w -= learning_rate * dw`` (in place).

    config: ``learning_rate`` (default 1e-2).
    """
    config = _with_defaults(config, learning_rate=1e-2)
    w -= config["learning_rate"] * dw
    return w, config


def sgd_momentum(w: NDArray, dw: NDArray, config: Config | None = None
                 ) -> tuple[NDArray, Config]:
    """SGD with momentum: ``v = momentum * v - learning_rate * dw``; ``w + v``.

    config: ``learning_rate`` (default 1e-2), ``momentum`` (default 0.9; 0 is plain SGD),
    ``velocity`` (shaped like ``w``; zeros when absent).
    """
    config = _with_defaults(config, learning_rate=1e-2, momentum=0.9)
    v = config.get("velocity", np.zeros_like(w))
    v = config["momentum"] * v - config["learning_rate"] * dw
    config["velocity"] = v
    return w + v, config


def sgd_nesterov_momentum(w: NDArray, dw: NDArray, config: Config | None = None
                          ) -> tuple[NDArray, Config]:
    """SGD with Nesterov momentum, in the course's form::

        v = momentum * v_prev - learning_rate * dw
        next_w = w - momentum * v_prev + (1 + momentum) * v

    config: as :func:`sgd_momentum`.
    """
    config = _with_defaults(config, learning_rate=1e-2, momentum=0.9)
    mu = config["momentum"]
    v_prev = config.get("velocity", np.zeros_like(w))
    v = mu * v_prev - config["learning_rate"] * dw
    config["velocity"] = v
    return w - mu * v_prev + (1 + mu) * v, config


def rmsprop(w: NDArray, dw: NDArray, config: Config | None = None) -> tuple[NDArray, Config]:
    """RMSProp: ``a = decay_rate * a + (1 - decay_rate) * dw**2``;
    ``w - learning_rate * dw / (sqrt(a) + epsilon)``.

    config: ``learning_rate`` (default 1e-2), ``decay_rate`` (0.99), ``epsilon`` (1e-8),
    ``a`` (the running average of squared gradients, shaped like ``w``; zeros at first).
    """
    config = _with_defaults(config, learning_rate=1e-2, decay_rate=0.99, epsilon=1e-8)
    config.setdefault("a", np.zeros_like(w))
    rho = config["decay_rate"]
    config["a"] = rho * config["a"] + (1 - rho) * dw * dw
    step = config["learning_rate"] * dw / (np.sqrt(config["a"]) + config["epsilon"])
    return w - step, config


def adam(w: NDArray, dw: NDArray, config: Config | None = None) -> tuple[NDArray, Config]:
    """Adam (Kingma & Ba) with bias correction::

        t += 1
        v = beta1 * v + (1 - beta1) * dw            # first moment
        a = beta2 * a + (1 - beta2) * dw**2         # second moment
        next_w = w - learning_rate * (v / (1 - beta1**t)) / (sqrt(a / (1 - beta2**t)) + epsilon)

    config: ``learning_rate`` (default 1e-3, the course's Adam default), ``beta1`` (0.9),
    ``beta2`` (0.999), ``epsilon`` (1e-8), ``v`` and ``a`` (shaped like ``w``; zeros at
    first), ``t`` (the number of steps taken; 0 at first, incremented before the
    correction).
    """
    config = _with_defaults(config, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8,
                            t=0)
    config.setdefault("v", np.zeros_like(w))
    config.setdefault("a", np.zeros_like(w))
    b1, b2 = config["beta1"], config["beta2"]
    config["t"] += 1
    config["v"] = b1 * config["v"] + (1 - b1) * dw
    config["a"] = b2 * config["a"] + (1 - b2) * dw * dw
    v_hat = config["v"] / (1 - b1 ** config["t"])
    a_hat = config["a"] / (1 - b2 ** config["t"])
    return w - config["learning_rate"] * v_hat / (np.sqrt(a_hat) + config["epsilon"]), config
