"""Argument checks that fail early with a message naming the argument."""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import os
from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike, NDArray


def check_int(name, value, minimum=1):
    """``value`` as an int >= ``minimum``; bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def env_int(name: str, default: int, minimum: int = 1, meaning: str = "") -> int:
    """The environment variable ``name`` as an int >= ``minimum``, or ``default`` when it is
    not set; a ValueError naming the variable (and ``meaning``, what it sets) otherwise."""
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        about = f" ({meaning})" if meaning else ""
        raise ValueError(f"{name} must be an integer >= {minimum}{about}, got {value!r}")
    return number


def check_float(name, value, minimum=0.0, maximum=math.inf, exclusive_max=False,
                exclusive_min=False):
    """``value`` as a finite float in [minimum, maximum] (``exclusive_min``: (minimum, ...;
    ``exclusive_max``: ..., maximum))."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    too_big = value >= maximum if exclusive_max else value > maximum
    too_small = value <= minimum if exclusive_min else value < minimum
    if not math.isfinite(value) or too_small or too_big:
        lower, upper = "(" if exclusive_min else "[", ")" if exclusive_max else "]"
        raise ValueError(f"{name} must be in {lower}{minimum}, {maximum}{upper}, got {value}")
    return value


def parse_image_size(text: str) -> tuple[int, int]:
    """``"WxH"`` (e.g. ``"32x32"``) as ``(width, height)``; ValueError otherwise."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"image size must be WIDTHxHEIGHT such as 32x32, got {text!r}")
    return int(parts[0]), int(parts[1])


_FIELD_KINDS = {  # annotation -> (accepts(value), what it expects)
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "int": (lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool), "an integer"),
    "float": (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool), "a number"),
    "str": (lambda v: isinstance(v, str), "a string"),
}


def annotation_kinds(f):
    """The kinds of dataclass field ``f``'s annotation: ``"int | None"`` -> ["int", "None"]
    (annotations are strings under ``from __future__ import annotations``; a class is
    its name)."""
    text = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return [k.strip() for k in text.split("|")]


def check_field_types(obj):
    """Every field of dataclass ``obj`` holds its annotated kind, strictly.

    Configuration arrives from TOML, JSON and flags, where ``flip = "false"`` or
    ``preprocessing = ["mean"]`` is a typo, not a value to coerce: bool fields take only
    booleans, int fields only integers (no bools, no floats), float fields numbers (no
    bools), str fields strings, and ``X | None`` also None. Fields of other annotations
    (nested dataclasses) are left to their own checks. Raises TypeError naming the field.
    (A hand check of four kinds instead of a schema library keeps the core NumPy-only.)
    """
    for f in dataclasses.fields(obj):
        check_kinds(f.name, annotation_kinds(f), getattr(obj, f.name))


def check_kinds(name, kinds, value):
    """``value`` is of one of ``kinds`` (annotation words: bool, int, float, str, None),
    strictly, as :func:`check_field_types` says; kinds it does not know are not checked."""
    if not all(k in _FIELD_KINDS or k == "None" for k in kinds) or \
            (value is None and "None" in kinds):
        return
    if not any(_FIELD_KINDS[k][0](value) for k in kinds if k != "None"):
        expected = " or ".join(_FIELD_KINDS[k][1] if k != "None" else "none" for k in kinds)
        raise TypeError(f"{name} must be {expected}, got {value!r}")


def check_X(X: ArrayLike, width: int | None = None, name: str = "X") -> NDArray:
    """A 2-D array of finite numbers, ``width`` columns when given."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {X.shape}")
    if width is not None and X.shape[1] != width:
        raise ValueError(f"{name} must have {width} columns (the input size), got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if np.issubdtype(X.dtype, np.floating) and not all_finite(X):
        raise ValueError(f"{name} contains NaN or infinite values")
    return X


def all_finite(X):
    """True when every value is finite: one sum in X's own dtype (no (N, D) boolean
    temporary, no float64 copy: a quarter of the time of a float64 sum for float32 X);
    a NaN or infinity makes the sum NaN or infinite, and only a sum that is not finite
    (NaN, inf, or an overflow of the sum) is checked value by value."""
    return bool(np.isfinite(np.sum(X))) or bool(np.isfinite(X).all())


def check_y(y: ArrayLike, n: int, num_classes: int, name: str = "y") -> NDArray:
    """A 1-D integer label array of length ``n`` with values in [0, num_classes)."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match X, got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if n and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"{name} must hold labels in [0, {num_classes}), got values in [{y.min()}, {y.max()}]"
        )
    return y


def check_sample_weight(sample_weight: ArrayLike, n: int) -> NDArray:
    """``sample_weight`` as a float64 array (n,) of finite non-negative weights with a
    positive sum; a ValueError naming ``sample_weight`` otherwise."""
    w = np.asarray(sample_weight)
    if w.dtype == bool or not (np.issubdtype(w.dtype, np.integer)
                               or np.issubdtype(w.dtype, np.floating)):
        raise ValueError(f"sample_weight must hold real numbers, got dtype {w.dtype}")
    w = w.astype(np.float64)
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},): one weight per row, "
                         f"got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("sample_weight must hold finite, non-negative weights")
    if not w.sum() > 0:
        raise ValueError("sample_weight must not be all zero: some row must have a "
                         "positive weight")
    return w


def check_float_dtype(dtype):
    """``np.float32`` or ``np.float64`` as a NumPy dtype."""
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def closest_names(word: str, names: Iterable[str], n: int = 2) -> list[str]:
    """The ``names`` closest to a mistyped ``word``, at most ``n``: by initials (``lr``:
    ``learning_rate``, ``bs``: ``batch-size``) or by spelling (difflib); ``-`` and ``_``
    alike, case ignored."""
    def norm(text):
        return str(text).lower().replace("_", "-")

    by_norm = {norm(name): name for name in names}
    typed = norm(word)
    if typed in by_norm:
        return [by_norm[typed]]
    initials = [k for k in by_norm if len(typed) > 1 and "-" in k
                and "".join(part[0] for part in k.split("-") if part) == typed]
    close = list(dict.fromkeys(initials + difflib.get_close_matches(typed, list(by_norm), n=n)))
    return [by_norm[k] for k in close[:n]]
