"""The second assignment's update rules in ``nndl/optim.py``: one part per rule.

Each rule is called on the notebook's check inputs (``w``, ``dw`` and the state as
``np.linspace`` arrays, the notebook's learning rates, the other hyperparameters left to
the rule's defaults) and then for two steps on inputs drawn from the seed, every
hyperparameter given and no state at first, the second step taking the first step's ``w``
and config. Compared: ``next_w`` and the state the config keeps, in the course's key names
(``velocity``; RMSProp's ``a``; Adam's ``v``, ``a``, ``t``), against :mod:`nndl.optim`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nndl import optim
from nndl._typing import NDArray
from nndl.grading import wire
from nndl.grading.compare import Answer, Quantity, array, entry, items, judge
from nndl.grading.optim_mistakes import HINTS, MISTAKES, STATE, step
from nndl.grading.parts import Part, Passed, Task

RULES = tuple(STATE)
MODULE = "nndl.optim"
SHAPE = (4, 5)
#: CS231n's newer state names, and the course's they stand for.
OTHER_NAMES = {"rmsprop": {"cache": "a"}, "adam": {"m": "v", "v": "a"}}
WHERE = {"course": " (the notebook's inputs)", "step1": " (seeded step 1)",
         "step2": " (seeded step 2)"}


def _linspace(low: float, high: float) -> NDArray:
    return np.linspace(low, high, num=SHAPE[0] * SHAPE[1]).reshape(SHAPE)


def course_inputs(rule: str) -> tuple[NDArray, NDArray, dict[str, Any]]:
    """The notebook's check of ``rule``: ``w``, ``dw`` and the config."""
    w, dw = _linspace(-0.4, 0.6), _linspace(-0.6, 0.4)
    configs: dict[str, dict[str, Any]] = {
        "sgd": {"learning_rate": 1e-3},
        "sgd_momentum": {"learning_rate": 1e-3, "velocity": _linspace(0.6, 0.9)},
        "sgd_nesterov_momentum": {"learning_rate": 1e-3, "velocity": _linspace(0.6, 0.9)},
        "rmsprop": {"learning_rate": 1e-2, "a": _linspace(0.6, 0.9)},
        "adam": {"learning_rate": 1e-2, "v": _linspace(0.6, 0.9), "a": _linspace(0.7, 0.5),
                 "t": 5}}
    return w, dw, configs[rule]


@dataclass(frozen=True)
class OptimCase:
    """The seeded inputs: ``w``, two gradients and each rule's hyperparameters."""

    seed: int
    w: NDArray
    dws: tuple[NDArray, NDArray]
    configs: dict[str, dict[str, float]]


def draw_optim_case(seed: int) -> OptimCase:
    rng = np.random.default_rng([seed, 3])
    u = rng.uniform
    lr = float(u(1e-2, 1e-1))
    configs = {"sgd": {"learning_rate": lr},
               "sgd_momentum": {"learning_rate": lr, "momentum": float(u(0.5, 0.95))},
               "sgd_nesterov_momentum": {"learning_rate": lr, "momentum": float(u(0.5, 0.95))},
               "rmsprop": {"learning_rate": lr, "decay_rate": float(u(0.9, 0.999)),
                           "epsilon": 1e-8},
               "adam": {"learning_rate": lr, "beta1": float(u(0.8, 0.95)),
                        "beta2": float(u(0.99, 0.9999)), "epsilon": 1e-8}}
    return OptimCase(seed, rng.standard_normal(SHAPE),
                     (rng.standard_normal(SHAPE), rng.standard_normal(SHAPE)), configs)


Rule = Callable[..., tuple[NDArray, dict[str, Any]]]


def _outputs(rule: str, case: OptimCase, update: Rule) -> dict[str, Any]:
    """``update``'s quantities, keyed ``course.next_w``, ``step2.velocity``, ..."""
    w, dw, config = course_inputs(rule)
    found: dict[str, Any] = {}
    next_w, config = update(w.copy(), dw, copy.deepcopy(config))
    found.update(_keyed("course", rule, next_w, config))
    next_w, config = update(case.w.copy(), case.dws[0], dict(case.configs[rule]))
    found["step1.next_w"] = next_w.copy()
    next_w, config = update(next_w, case.dws[1], config)
    found.update(_keyed("step2", rule, next_w, config))
    return found


def _keyed(where: str, rule: str, next_w: Any, config: dict[str, Any]) -> dict[str, Any]:
    return {f"{where}.next_w": next_w, **{f"{where}.{k}": config[k] for k in STATE[rule]}}


def optim_answer(rule: str, case: OptimCase) -> Answer:
    """The reference's quantities of ``rule`` and each of its mistakes'."""
    reference = _outputs(rule, case, getattr(optim, rule))
    quantities = {}
    for key, value in reference.items():
        where, name = key.split(".")
        shown = "next_w" if name == "next_w" else f"config[{name!r}]"
        quantities[key] = Quantity(shown, value, WHERE[where])
    answer = Answer(quantities)
    for mistake in MISTAKES[rule]:
        outputs = _outputs(rule, case, lambda w, dw, c, m=mistake: step(rule, w, dw, c, m))
        answer.mistakes[HINTS[mistake]] = {k: v for k, v in outputs.items()
                                           if not _same(v, reference[k])}
    return answer


def _same(a: Any, b: Any) -> bool:
    return bool(np.array_equal(a, b)) if isinstance(b, np.ndarray) else a == b


class OptimParts:
    """One part per update rule, for one seed."""

    def __init__(self, case: OptimCase) -> None:
        self.case = case
        self.answers = {rule: optim_answer(rule, case) for rule in RULES}

    def tasks(self) -> list[Task]:
        return [Task(rule, self._steps(rule), ["course", "step1", "s2"], module=MODULE,
                     batch=True) for rule in RULES]

    def parts(self) -> list[Part]:
        return [Part(rule, f"update rule {rule}", rule, self._judge(rule)) for rule in RULES]

    def _steps(self, rule: str) -> list[dict]:
        w, dw, config = course_inputs(rule)
        fn = wire.ref("module", "." + rule)
        seeded = self.case.configs[rule]
        return [wire.let("cfg", _plain(config)),
                wire.call("course", fn, [wire.array(w), wire.array(dw), wire.ref("cfg")],
                          label=f"{rule}(w, dw, config) on the notebook's inputs"),
                wire.let("cfg1", dict(seeded)),
                wire.call("s1", fn, [wire.array(self.case.w), wire.array(self.case.dws[0]),
                                     wire.ref("cfg1")], label=f"{rule}(w, dw, config), "
                          "seeded step 1"),
                wire.snapshot("step1", wire.ref("s1")),
                wire.call("s2", fn, [wire.ref("s1", 0), wire.array(self.case.dws[1]),
                                     wire.ref("s1", 1)], label=f"{rule}(next_w, dw, config), "
                          "seeded step 2 with step 1's next_w and config")]

    def _judge(self, rule: str) -> Callable[[dict[str, Any]], Passed]:
        answer = self.answers[rule]

        def judge_rule(values: dict[str, Any]) -> Passed:
            theirs, configs = _read(rule, values)
            return judge(theirs, answer, lambda: _other_names(rule, configs))
        return judge_rule


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    return {k: wire.array(v) if isinstance(v, np.ndarray) else v for k, v in config.items()}


def _read(rule: str, values: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """The student's quantities (keyed as :func:`_outputs`) and the configs they returned."""
    theirs: dict[str, Any] = {}
    configs = []
    for where, key in (("course", "course"), ("step1", "step1"), ("step2", "s2")):
        next_w, config = items(values[key], 2, rule)
        configs.append(config)
        theirs[f"{where}.next_w"] = array(next_w, SHAPE, "next_w")
        if where == "step1":
            continue
        for name in STATE[rule]:
            hint = (_other_names(rule, [config]) or f"config[{name!r}] is not stored back: "
                    "the rule keeps its state in config, for the next step")
            value = entry(config, name, f"config{WHERE[where]}", hint)
            theirs[f"{where}.{name}"] = value if name == "t" else array(value, SHAPE, name)
    return theirs, configs


def _other_names(rule: str, configs: list[Any]) -> str:
    """A hint when the configs keep the state under CS231n's newer names."""
    names = OTHER_NAMES.get(rule, {})
    for config in configs:
        if isinstance(config, dict) and "a" not in config and names.keys() & config.keys():
            named = ", ".join(f"{k!r} for the course's {v!r}" for k, v in names.items())
            return (f"the state is kept under CS231n's newer names ({named}); the course's "
                    "checks give and read it under the course's names")
    return ""
