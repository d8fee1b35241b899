"""The common mistakes in the second assignment's update rules, as the rules with one step
changed.

:func:`step` is each rule of :mod:`nndl.optim` written out with ``mistake`` made; without a
mistake it equals :mod:`nndl.optim` (tests/grading checks it), which stays the reference.
The state keys are the course's (C147's release): ``velocity``; RMSProp's ``a``; Adam's
``v``, ``a`` and ``t``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nndl._typing import NDArray

Config = dict[str, Any]

#: The state each rule keeps in its config, in the course's names.
STATE = {"sgd": (), "sgd_momentum": ("velocity",), "sgd_nesterov_momentum": ("velocity",),
         "rmsprop": ("a",), "adam": ("v", "a", "t")}
DEFAULTS: dict[str, Config] = {
    "sgd": {"learning_rate": 1e-2},
    "sgd_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
    "sgd_nesterov_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
    "rmsprop": {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
    "adam": {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "t": 0}}

HINTS = {
    "sgd_ascent": "the update moves w along the gradient; it moves against it",
    "velocity_sign": "the velocity has the opposite sign of the course's: the course's "
                     "velocity is the step that is added to w (and it is what config keeps)",
    "velocity_without_rate": "the velocity accumulates gradients without the learning rate "
                             "(which then scales the step); the course's velocity includes "
                             "the learning rate",
    "velocity_not_kept": "config['velocity'] is not updated: the next step starts from the "
                         "old velocity",
    "nesterov_plain": "the step is plain momentum's; Nesterov's step also looks ahead along "
                      "the change in velocity",
    "nesterov_swapped": "the previous and the new velocity are swapped in the Nesterov step",
    "rmsprop_decay_swapped": "decay_rate weighs the new squared gradient; it weighs the old "
                             "running average",
    "rmsprop_gradient_not_squared": "the running average averages the gradient itself; it "
                                    "averages the squared gradient (dw**2)",
    "rmsprop_no_sqrt": "the step divides by the running average of squared gradients itself, "
                       "not by its square root",
    "rmsprop_not_kept": "config['a'] is not updated: the next step starts from the old "
                        "running average",
    "adam_no_correction": "the moments are used without bias correction",
    "adam_t_after": "t is incremented after the update: the bias correction uses the step "
                    "count of the step before; the course increments t first",
    "adam_not_kept": "config's moments (v, a) are not updated: the next step starts from the "
                     "old ones",
}

#: Each rule's mistakes, in the order hints are looked for.
MISTAKES = {
    "sgd": ("sgd_ascent",),
    "sgd_momentum": ("velocity_sign", "velocity_without_rate", "velocity_not_kept"),
    "sgd_nesterov_momentum": ("nesterov_plain", "nesterov_swapped", "velocity_sign",
                              "velocity_not_kept"),
    "rmsprop": ("rmsprop_decay_swapped", "rmsprop_gradient_not_squared", "rmsprop_no_sqrt",
                "rmsprop_not_kept"),
    "adam": ("adam_no_correction", "adam_t_after", "adam_not_kept"),
}


def step(rule: str, w: NDArray, dw: NDArray, config: Config, mistake: str = ""
         ) -> tuple[NDArray, Config]:
    """``rule``'s next ``w`` and config (a new dict; ``w`` and ``config`` are not changed)."""
    config = {**DEFAULTS[rule], **config}
    with np.errstate(divide="ignore", invalid="ignore"):
        return _STEPS[rule](w, dw, config, mistake)


def _sgd(w: NDArray, dw: NDArray, c: Config, mistake: str) -> tuple[NDArray, Config]:
    sign = 1.0 if mistake == "sgd_ascent" else -1.0
    return w + sign * c["learning_rate"] * dw, c


def _velocity(w: NDArray, dw: NDArray, c: Config, mistake: str
              ) -> tuple[NDArray, NDArray, NDArray]:
    """The velocity config holds, and the previous and the new velocity in the course's
    terms (the step added to w): a student's other convention reads the stored velocity
    otherwise (negated; without the learning rate) and follows the same recurrence."""
    lr, mu = c["learning_rate"], c["momentum"]
    stored = c.get("velocity", np.zeros_like(w))
    v_prev = {"velocity_sign": -stored,
              "velocity_without_rate": -lr * stored}.get(mistake, stored)
    return stored, v_prev, mu * v_prev - lr * dw


def _kept(c: Config, stored: NDArray, v: NDArray, mistake: str) -> NDArray:
    """The velocity config keeps, in the student's own convention."""
    if mistake == "velocity_not_kept":
        return stored
    if mistake == "velocity_sign":
        return -v
    if mistake == "velocity_without_rate":
        return -v / c["learning_rate"]
    return v


def _momentum(w: NDArray, dw: NDArray, c: Config, mistake: str) -> tuple[NDArray, Config]:
    stored, _, v = _velocity(w, dw, c, mistake)
    return w + v, {**c, "velocity": _kept(c, stored, v, mistake)}


def _nesterov(w: NDArray, dw: NDArray, c: Config, mistake: str) -> tuple[NDArray, Config]:
    mu = c["momentum"]
    stored, v_prev, v = _velocity(w, dw, c, mistake)
    if mistake == "nesterov_plain":
        next_w = w + v
    elif mistake == "nesterov_swapped":
        next_w = w - mu * v + (1 + mu) * v_prev
    else:
        next_w = w - mu * v_prev + (1 + mu) * v
    return next_w, {**c, "velocity": _kept(c, stored, v, mistake)}


def _rmsprop(w: NDArray, dw: NDArray, c: Config, mistake: str) -> tuple[NDArray, Config]:
    rho = c["decay_rate"]
    a_prev = c.get("a", np.zeros_like(w))
    if mistake == "rmsprop_decay_swapped":
        a = (1 - rho) * a_prev + rho * dw * dw
    elif mistake == "rmsprop_gradient_not_squared":
        a = rho * a_prev + (1 - rho) * dw
    else:
        a = rho * a_prev + (1 - rho) * dw * dw
    with np.errstate(invalid="ignore"):  # that mistake's average may be negative: NaN
        scale = a if mistake == "rmsprop_no_sqrt" else np.sqrt(a)
    next_w = w - c["learning_rate"] * dw / (scale + c["epsilon"])
    return next_w, {**c, "a": a_prev if mistake == "rmsprop_not_kept" else a}


def _adam(w: NDArray, dw: NDArray, c: Config, mistake: str) -> tuple[NDArray, Config]:
    b1, b2 = c["beta1"], c["beta2"]
    v_prev, a_prev = c.get("v", np.zeros_like(w)), c.get("a", np.zeros_like(w))
    t = c["t"] + 1
    v = b1 * v_prev + (1 - b1) * dw
    a = b2 * a_prev + (1 - b2) * dw * dw
    corrected_t = t - 1 if mistake == "adam_t_after" else t
    v_hat, a_hat = v / (1 - b1 ** corrected_t), a / (1 - b2 ** corrected_t)
    if mistake == "adam_no_correction":
        v_hat, a_hat = v, a
    next_w = w - c["learning_rate"] * v_hat / (np.sqrt(a_hat) + c["epsilon"])
    if mistake == "adam_not_kept":
        v, a = v_prev, a_prev
    return next_w, {**c, "v": v, "a": a, "t": t}


_STEPS = {"sgd": _sgd, "sgd_momentum": _momentum, "sgd_nesterov_momentum": _nesterov,
          "rmsprop": _rmsprop, "adam": _adam}
