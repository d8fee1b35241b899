"""Judging a part of the second assignment: the student's quantities against the reference's,
with a hint when they are what a modelled mistake gives.

A part's answer is a :class:`Answer`: its quantities (arrays, numbers), each with where it
comes from in words (``dx``, ``running_mean after the second call``), and the same
quantities as each modelled mistake computes them. :func:`judge` compares quantity by
quantity: arrays by the course's relative error (entries below 1e-5 absolutely), numbers
relative above 1 and absolute below, integers exactly. The first quantity off its tolerance
fails the part, with the entry where it is furthest off, both values and the tolerance; the
hint is that of the first mistake that gives every one of the student's quantities (within
the tolerances).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nndl._typing import NDArray
from nndl.grading.parts import Passed
from nndl.grading.verdicts import Wrong, as_array, as_number, at, describe, number, worst_relative

ARRAY_TOL = 1e-7  # the course's relative error...
#: ...with |yours| + |expected| counted as at least this: an entry that is 0 but for rounding
#: (the gradient of a bias followed by batch normalization) is compared absolutely, at 1e-12
FLOOR = 1e-5
NUMBER_TOL = 1e-10  # of a loss: relative above 1, absolute below
#: How far a mistake must move a quantity for its hint to be certain (the draws keep it so).
CLEAR = 1e-4


@dataclass(frozen=True)
class Quantity:
    """One value a part compares: ``name`` (for the entry: ``dx[1, 2]``), ``where`` (words
    after it, e.g. ``" after the second call"``) and the reference's ``value``."""

    name: str
    value: Any
    where: str = ""

    @property
    def label(self) -> str:
        return self.name + self.where


@dataclass
class Answer:
    """The reference's quantities of one part (by key) and each mistake's (``hint ->
    {key: value}``; a mistake gives only the keys it changes, the rest are the
    reference's)."""

    quantities: dict[str, Quantity]
    mistakes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def mistaken(self, hint: str) -> dict[str, Any]:
        changed = self.mistakes[hint]
        return {k: changed.get(k, q.value) for k, q in self.quantities.items()}

    def clear(self) -> bool:
        """Whether every mistake moves some quantity by far more than its tolerance."""
        return all(max(_distance(v, self.quantities[k].value)
                       for k, v in changed.items()) >= CLEAR
                   for changed in self.mistakes.values())


def tolerance(expected: Any) -> float:
    if isinstance(expected, np.ndarray):
        return ARRAY_TOL
    return NUMBER_TOL * max(1.0, abs(float(expected)))


def _distance(value: Any, expected: Any) -> float:
    """How far ``value`` is from ``expected``: the relative error of arrays; of numbers,
    |difference| / max(1, |expected|); inf when it is not comparable. Equal entries (NaN
    where NaN is expected, as a mistake may give) are no distance."""
    try:
        if isinstance(expected, np.ndarray):
            value = np.asarray(value, dtype=np.float64)
            if value.shape != expected.shape:
                return float("inf")
            differ = ~((value == expected) | (np.isnan(value) & np.isnan(expected)))
            if not differ.any():
                return 0.0
            return worst_relative(value[differ], expected[differ], FLOOR)[0]
        value, expected = float(value), float(expected)
        if value == expected or (value != value and expected != expected):
            return 0.0
        diff = abs(value - expected) / max(1.0, abs(expected))
        return diff if diff == diff else float("inf")
    except (TypeError, ValueError):
        return float("inf")


def matches(value: Any, expected: Any) -> bool:
    """Whether ``value`` is ``expected`` within the tolerance of its kind."""
    if isinstance(expected, np.ndarray):
        return _distance(value, expected) <= ARRAY_TOL
    if isinstance(expected, (int, np.integer)) and not isinstance(expected, bool):
        return isinstance(value, (int, float)) and value == expected
    return _distance(value, expected) <= NUMBER_TOL


def judge(theirs: dict[str, Any], answer: Answer, extra_hint: Callable[[], str] | None = None
          ) -> Passed:
    """:class:`Passed` when every quantity of ``theirs`` (keyed as ``answer``'s) matches;
    else :class:`Wrong` naming the first that does not, with the first matching mistake's
    hint (or ``extra_hint()``'s)."""
    worst = 0.0
    for key, q in answer.quantities.items():
        value = theirs[key]
        if matches(value, q.value):
            if isinstance(q.value, np.ndarray):
                worst = max(worst, _distance(value, q.value))
            continue
        hint = next((h for h in answer.mistakes
                     if all(matches(theirs[k], v) for k, v in answer.mistaken(h).items())), "")
        if not hint and extra_hint is not None:
            hint = extra_hint()
        raise _wrong(q, value, hint)
    return Passed(f"largest relative error {worst:.1e} (tolerance {ARRAY_TOL:.0e})", worst,
                  0.0, ARRAY_TOL)


def _wrong(q: Quantity, value: Any, hint: str) -> Wrong:
    expected = q.value
    if isinstance(expected, np.ndarray):
        err, ix = worst_relative(np.asarray(value, dtype=np.float64), expected, FLOOR)
        return Wrong(f"largest relative error {err:.1e} at {at(q.name, ix)}{q.where}: yours "
                     f"{number(value[ix])}, expected {number(expected[ix])} (tolerance "
                     f"{ARRAY_TOL:.0e})", float(value[ix]), float(expected[ix]), ARRAY_TOL,
                     hint)
    if isinstance(expected, (int, np.integer)):
        return Wrong(f"{q.label} is {value:g}, expected {expected}", value, int(expected),
                     None, hint)
    tol = tolerance(expected)
    return Wrong(f"{q.label} is {number(value)}, expected {number(expected)} (|difference| "
                 f"{abs(value - expected):.1e} > tolerance {tol:.0e})", value, float(expected),
                 tol, hint)


# -- reading what the student's functions returned ---------------------------------------

def items(value: Any, count: int, what: str) -> tuple:
    """The first ``count`` items of a returned tuple; :class:`Wrong` naming what came."""
    if not isinstance(value, (tuple, list)) or len(value) < count:
        raise Wrong(f"{what} returned {describe(value)}, expected a tuple of {count}")
    return tuple(value[:count])


def array(value: Any, shape: tuple[int, ...], what: str,
          shape_hints: dict[tuple[int, ...], str] | None = None) -> NDArray:
    """``value`` as a float array of ``shape`` (a transposed 2-D one is named); a shape in
    ``shape_hints`` gets that hint."""
    hints = shape_hints or {}
    got = getattr(value, "shape", None)
    if got is not None and got != shape and got in hints:
        raise Wrong(f"{what} has shape {got}, expected {shape}", hint=hints[got])
    return as_array(value, shape, what, transposed_hint=f"{what} is transposed: it has the "
                    "shape of its transpose")


def scalar(value: Any, what: str) -> float:
    return as_number(value, what)


def entry(mapping: Any, key: str, what: str, hint: str = "") -> Any:
    """``mapping[key]``; :class:`Wrong` when ``mapping`` is no dict or lacks the key."""
    if not isinstance(mapping, dict):
        raise Wrong(f"{what} is {describe(mapping)}, expected a dict")
    if key not in mapping:
        raise Wrong(f"{what} has no {key!r}", hint=hint)
    return mapping[key]
