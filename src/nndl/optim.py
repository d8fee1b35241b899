"""The update rules, each written once: the course's functions and the engine's rules.

Each rule is one **in-place core**, ``<rule>_update(w, dw, *state, learning_rate, **hyper)``,
which changes the parameter ``w`` and its state arrays (shaped like ``w``) in place and
returns nothing. ``w`` may be a view (a block of a larger array), and every hyperparameter
is a Python float or an array that broadcasts against ``w``: the training engine
(:mod:`nndl.population`) stacks K networks' parameters side by side and passes each
member's learning rate, momentum, ... repeated over that member's columns (e.g. (K*H,)
against a (D, K*H) block). The cores use in-place operators only, plus a square root and a
division that NumPy writes into the core's one temporary, so they run on NumPy arrays and
on the array-API backends' arrays (PyTorch, CuPy; :mod:`nndl.backend`) alike.

**The course's functions** (its second assignment's ``optim.py``) wrap the cores::

    next_w, config = rule(w, dw, config=None)

``w`` is a parameter array of any shape and ``dw`` its gradient (same shape); ``config``
is a dict of hyperparameters and, for the rules that keep state, that state, stored
under the course's key names (its release for C147/C247, not CS231n's newer ``m`` / ``v``
/ ``cache``): ``velocity`` for both momentum rules, ``a`` for RMSProp's running average
of squared gradients, ``v`` (first moment), ``a`` (second moment) and ``t`` (step) for
Adam. Missing hyperparameters are filled in with the defaults below (in ``config``
itself, as the course does); pass the returned ``config`` back on the next call.
:class:`nndl.solver.Solver` keeps one config per parameter. ``sgd`` updates ``w`` in place
(as the course's does); the others return a new array and new state arrays (the arrays
passed in are left as they were).

**The engine's rules**: :data:`RULES` maps nndl's own option names (``--optimizer``,
:data:`nndl.config.OPTIMIZERS`, which is ``tuple(RULES)``) to a :class:`Rule`: the core,
the names of its state arrays and the per-member options it takes. ``momentum`` is
:func:`sgd_momentum`'s update, ``nesterov`` :func:`sgd_nesterov_momentum`'s, ``rmsprop``
and ``adam`` the course's, ``adamw`` Adam with decoupled weight decay. The engine runs plain
``sgd`` its own way (the learning rate folded into the gradient products, the weight decay
into a scale of the first layer), which is :func:`sgd_update` rearranged.

Adding an optimizer is one core function here and its entry in :data:`RULES`; the CLI's
``--optimizer`` choices, search spaces, the estimator, the engine and its memory estimate
read them from there (its test: a plain reference class in ``tests/reference.py``, which
the engine tests then compare against, and a test of the core against a closed form).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nndl._typing import NDArray

Config = dict[str, Any]
#: a hyperparameter: a float, or an array that broadcasts against the parameter
Hyper = Any


# -- the cores: in place, any array library, per-member hyperparameters ------------------
def sgd_update(w: Any, dw: Any, learning_rate: Hyper) -> None:
    """``w -= learning_rate * dw``, in place."""
    w -= learning_rate * dw


def momentum_update(w: Any, dw: Any, velocity: Any, learning_rate: Hyper,
                    momentum: Hyper = 0.9) -> None:
    """SGD with momentum, in place: ``velocity = momentum * velocity - learning_rate * dw``;
    ``w += velocity``."""
    velocity *= momentum
    velocity -= learning_rate * dw
    w += velocity


def nesterov_update(w: Any, dw: Any, velocity: Any, learning_rate: Hyper,
                    momentum: Hyper = 0.9) -> None:
    """SGD with Nesterov momentum, in place::

        velocity = momentum * velocity - learning_rate * dw
        w += momentum * velocity - learning_rate * dw

    The course's form, ``w += -momentum * v_prev + (1 + momentum) * velocity``, is the same
    update: ``(1 + mu) * v - mu * v_prev = mu * v + (v - mu * v_prev) = mu * v - lr * dw``.
    This one needs no copy of the previous velocity (the two differ by rounding only).
    """
    step = learning_rate * dw  # the one temporary
    velocity *= momentum
    velocity -= step
    w -= step
    w += _mul_into(velocity, momentum, out=step)


def rmsprop_update(w: Any, dw: Any, a: Any, learning_rate: Hyper, decay_rate: Hyper = 0.99,
                   epsilon: Hyper = 1e-8) -> None:
    """RMSProp, in place: ``a = decay_rate * a + (1 - decay_rate) * dw**2``;
    ``w -= learning_rate * dw / (sqrt(a) + epsilon)``."""
    tmp = (1 - decay_rate) * dw  # the one temporary
    tmp *= dw
    a *= decay_rate
    a += tmp
    tmp = _sqrt_into(a, out=tmp)
    tmp += epsilon
    tmp = _div_into(dw, tmp, out=tmp)
    tmp *= learning_rate
    w -= tmp


def adam_update(w: Any, dw: Any, v: Any, a: Any, t: int, learning_rate: Hyper,
                beta1: Hyper = 0.9, beta2: Hyper = 0.999, epsilon: Hyper = 1e-8,
                weight_decay: Hyper = 0.0) -> None:
    """Adam (Kingma & Ba), the course's, in place; ``t`` is this step's number (from 1)::

        v = beta1 * v + (1 - beta1) * dw            # first moment
        a = beta2 * a + (1 - beta2) * dw**2         # second moment
        w -= learning_rate * (v / (1 - beta1**t)) / (sqrt(a / (1 - beta2**t)) + epsilon)

    ``epsilon`` enters after the bias correction. Computed as Kingma & Ba's Algorithm 1
    rearranged (their section 2): with ``c = sqrt(1 - beta2**t)``, the step is
    ``learning_rate * c / (1 - beta1**t) * v / (sqrt(a) + epsilon * c)`` (the same number,
    one pass fewer). ``weight_decay`` > 0 also takes ``learning_rate * weight_decay * w``
    off ``w`` (AdamW: decay decoupled from the moments).
    """
    v *= beta1
    tmp = (1 - beta1) * dw  # the one temporary
    v += tmp
    if not _is_zero(weight_decay):
        w -= _mul_into(w, learning_rate * weight_decay, out=tmp)
    tmp = _mul_into(dw, 1 - beta2, out=tmp)
    tmp *= dw
    a *= beta2
    a += tmp
    c = (1 - beta2**t) ** 0.5
    tmp = _sqrt_into(a, out=tmp)
    tmp += epsilon * c
    tmp = _div_into(v, tmp, out=tmp)
    tmp *= learning_rate * c / (1 - beta1**t)
    w -= tmp


def _is_zero(x: Hyper) -> bool:
    return isinstance(x, (int, float)) and x == 0


def _mul_into(a: Any, b: Any, out: Any) -> Any:
    """``a * b``, written into ``out`` on NumPy (other array libraries allocate)."""
    return np.multiply(a, b, out=out) if isinstance(out, np.ndarray) else a * b


def _div_into(a: Any, b: Any, out: Any) -> Any:
    """``a / b``, written into ``out`` on NumPy (other array libraries allocate)."""
    return np.divide(a, b, out=out) if isinstance(out, np.ndarray) else a / b


def _sqrt_into(a: Any, out: Any) -> Any:
    """``sqrt(a)``, written into ``out`` on NumPy (other array libraries allocate)."""
    if isinstance(out, np.ndarray):
        return np.sqrt(a, out=out)
    from array_api_compat import array_namespace  # installed with every other backend

    return array_namespace(a).sqrt(a)


# -- the engine's rules, by nndl's option names ----------------------------------------
@dataclass(frozen=True)
class Rule:
    """How the training engine calls a core: ``update(w, dw, *state, learning_rate=...,
    t=step (when counts_steps), **{option: per-member values})``.

    state : names of its state arrays (zeros shaped like the parameter at first; rules
        that name the same array share its storage, never its members' blocks)
    options : fields of :class:`nndl.config.TrainOptions` passed per member under the same
        keyword (the others keep the core's defaults)
    counts_steps : the core takes ``t``, the number of the step (from 1)
    course : the course's function of the same update (``nndl.solver``'s hints), if any
    """

    update: Callable[..., None]
    state: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    counts_steps: bool = False
    course: str | None = None


#: nndl's update rules (``--optimizer``), in the order the engine stacks their members
RULES: dict[str, Rule] = {
    "sgd": Rule(sgd_update, course="sgd"),
    "momentum": Rule(momentum_update, ("velocity",), ("momentum",), course="sgd_momentum"),
    "nesterov": Rule(nesterov_update, ("velocity",), ("momentum",),
                     course="sgd_nesterov_momentum"),
    "rmsprop": Rule(rmsprop_update, ("a",), course="rmsprop"),
    "adam": Rule(adam_update, ("v", "a"), counts_steps=True, course="adam"),
    "adamw": Rule(adam_update, ("v", "a"), ("weight_decay",), counts_steps=True),
}


# -- the course's functions ---------------------------------------------------------------
def _with_defaults(config: Config | None, **defaults: Any) -> Config:
    """``config`` (a new dict when None) with every missing key of ``defaults`` set."""
    config = {} if config is None else config
    for key, value in defaults.items():
        config.setdefault(key, value)
    return config


def _new_w(w: NDArray, dw: NDArray) -> NDArray:
    """A copy of ``w`` to update (the course's rules return a new array)."""
    return np.array(w, dtype=np.result_type(w, dw))


def _state(config: Config, key: str, w: NDArray) -> NDArray:
    """A copy of state ``key`` of ``config`` to update in place (zeros like ``w`` at first)."""
    if key not in config:
        return np.zeros_like(w)
    return np.array(config[key], dtype=np.result_type(config[key], w))


def sgd(w: NDArray, dw: NDArray, config: Config | None = None) -> tuple[NDArray, Config]:
    """Vanilla stochastic gradient descent: ``w -= learning_rate * dw`` (in place).

    config: ``learning_rate`` (default 1e-2).
    """
    config = _with_defaults(config, learning_rate=1e-2)
    sgd_update(w, dw, config["learning_rate"])
    return w, config


def sgd_momentum(w: NDArray, dw: NDArray, config: Config | None = None
                 ) -> tuple[NDArray, Config]:
    """SGD with momentum: ``v = momentum * v - learning_rate * dw``; ``w + v``
    (:func:`momentum_update`).

    config: ``learning_rate`` (default 1e-2), ``momentum`` (default 0.9; 0 is plain SGD),
    ``velocity`` (shaped like ``w``; zeros when absent).
    """
    config = _with_defaults(config, learning_rate=1e-2, momentum=0.9)
    next_w, velocity = _new_w(w, dw), _state(config, "velocity", w)
    momentum_update(next_w, dw, velocity, config["learning_rate"], config["momentum"])
    config["velocity"] = velocity
    return next_w, config


def sgd_nesterov_momentum(w: NDArray, dw: NDArray, config: Config | None = None
                          ) -> tuple[NDArray, Config]:
    """SGD with Nesterov momentum, the course's update (:func:`nesterov_update`)::

        v = momentum * v_prev - learning_rate * dw
        next_w = w - momentum * v_prev + (1 + momentum) * v

    config: as :func:`sgd_momentum`.
    """
    config = _with_defaults(config, learning_rate=1e-2, momentum=0.9)
    next_w, velocity = _new_w(w, dw), _state(config, "velocity", w)
    nesterov_update(next_w, dw, velocity, config["learning_rate"], config["momentum"])
    config["velocity"] = velocity
    return next_w, config


def rmsprop(w: NDArray, dw: NDArray, config: Config | None = None) -> tuple[NDArray, Config]:
    """RMSProp: ``a = decay_rate * a + (1 - decay_rate) * dw**2``;
    ``w - learning_rate * dw / (sqrt(a) + epsilon)`` (:func:`rmsprop_update`).

    config: ``learning_rate`` (default 1e-2), ``decay_rate`` (0.99), ``epsilon`` (1e-8),
    ``a`` (the running average of squared gradients, shaped like ``w``; zeros at first).
    """
    config = _with_defaults(config, learning_rate=1e-2, decay_rate=0.99, epsilon=1e-8)
    next_w, a = _new_w(w, dw), _state(config, "a", w)
    rmsprop_update(next_w, dw, a, config["learning_rate"], config["decay_rate"],
                   config["epsilon"])
    config["a"] = a
    return next_w, config


def adam(w: NDArray, dw: NDArray, config: Config | None = None) -> tuple[NDArray, Config]:
    """Adam (Kingma & Ba) with bias correction (:func:`adam_update`)::

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
    next_w, v, a = _new_w(w, dw), _state(config, "v", w), _state(config, "a", w)
    config["t"] += 1
    adam_update(next_w, dw, v, a, config["t"], config["learning_rate"], config["beta1"],
                config["beta2"], config["epsilon"])
    config["v"], config["a"] = v, a
    return next_w, config
