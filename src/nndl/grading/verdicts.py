"""Verdicts: what one part of a submission got, said so that the student sees where.

Every verdict is computed in nndl's own process from the plain data the child sent back.
A failing verdict carries the student's value, the expected value, the tolerance, and a
hint when the value matches a known mistake; the comparisons here say where an array is
furthest off (the entry, both values).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nndl._typing import NDArray
from nndl.grading.wire import Opaque

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass
class Verdict:
    """One part's result. ``status`` is ``pass``, ``fail`` or ``skip`` (not run: the --full
    time budget was spent); ``kind`` says why a part failed (``wrong``, ``exception``,
    ``missing``, ``import``, ``timeout``, ``memory``, ``crash``, ``no_result``, ``budget``,
    ``not_run``); ``because`` names the failed parts it builds on."""

    part: str
    title: str
    status: str
    message: str
    kind: str = ""
    hint: str = ""
    value: Any = None
    expected: Any = None
    tolerance: float | None = None
    traceback: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    because: list[str] = field(default_factory=list)
    seconds: float = 0.0
    strictly: str = ""  # a loose pass's message as a failure (see parts.Passed)

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def to_dict(self) -> dict[str, Any]:
        return {"part": self.part, "title": self.title, "status": self.status,
                "kind": self.kind, "message": self.message, "hint": self.hint,
                "value": _plain(self.value), "expected": _plain(self.expected),
                "tolerance": self.tolerance, "because": self.because,
                "traceback": self.traceback, "output": self.output,
                "seconds": round(self.seconds, 3)}


def _plain(value: Any) -> Any:
    """A JSON-ready number: NumPy scalars as Python's, NaN and infinities as text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class Wrong(Exception):
    """A judge's finding that the value is wrong: a message, the numbers, and a hint."""

    def __init__(self, message: str, value: Any = None, expected: Any = None,
                 tolerance: float | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.value, self.expected = message, value, expected
        self.tolerance, self.hint = tolerance, hint


# -- reading what the student's code returned ------------------------------------------

def describe(value: Any) -> str:
    """What a returned value is, in words (``an array of shape (5, 3)``, ``None``)."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, Opaque):
        return f"a {value}"
    if value is None:
        return "None"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"


def as_number(value: Any, what: str) -> float:
    """A float from a number or a 0-d / 1-element array; :class:`Wrong` otherwise."""
    if isinstance(value, bool) or value is None:
        raise Wrong(f"{what} is {describe(value)}, expected a number")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iuf":
        return float(value.ravel()[0])
    raise Wrong(f"{what} is {describe(value)}, expected a number")


def as_array(value: Any, shape: tuple[int, ...], what: str,
             transposed_hint: str = "") -> NDArray:
    """A float array of ``shape``; :class:`Wrong` naming the shape otherwise (with
    ``transposed_hint`` when it is the transpose)."""
    if isinstance(value, (list, tuple)):
        try:
            value = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise Wrong(f"{what} is {describe(value)}, expected an array of shape "
                        f"{shape}") from None
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
        raise Wrong(f"{what} is {describe(value)}, expected an array of shape {shape}")
    if value.shape != shape:
        hint = transposed_hint if value.shape == shape[::-1] and len(shape) == 2 else ""
        raise Wrong(f"{what} has shape {value.shape}, expected {shape}", hint=hint)
    return value.astype(np.float64)


# -- comparisons -----------------------------------------------------------------------

def worst_abs(value: NDArray, expected: NDArray) -> tuple[float, tuple[int, ...]]:
    """The largest |value - expected| and where it is."""
    diff = np.abs(value - expected)
    diff = np.where(np.isnan(diff), np.inf, diff)
    index = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.size else ()
    return (float(diff[index]) if diff.size else 0.0), tuple(int(i) for i in index)


def worst_relative(value: NDArray, expected: NDArray, floor: float = 1e-8
                   ) -> tuple[float, tuple[int, ...]]:
    """The course's relative error ``|x - y| / max(1e-8, |x| + |y|)``: its largest entry
    and where it is (the largest of ``nndl.gradient_check.rel_error``). A larger ``floor``
    compares entries below it absolutely (gradients that are 0 but for rounding)."""
    err = np.abs(value - expected) / np.maximum(floor, np.abs(value) + np.abs(expected))
    err = np.where(np.isnan(err), np.inf, err)
    index = np.unravel_index(int(np.argmax(err)), err.shape) if err.size else ()
    return (float(err[index]) if err.size else 0.0), tuple(int(i) for i in index)


def at(name: str, index: tuple[int, ...]) -> str:
    return f"{name}[{', '.join(map(str, index))}]" if index else name


def first_hint(candidates: Iterable[tuple[str, Any]], matches: Callable[[Any], bool]) -> str:
    """The hint of the first candidate (hint, value) whose value ``matches``."""
    for hint, value in candidates:
        try:
            if matches(value):
                return hint
        except (ValueError, TypeError):
            continue
    return ""


def number(value: float) -> str:
    return f"{value:.6g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
