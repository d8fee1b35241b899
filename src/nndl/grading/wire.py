"""Plain data between nndl and the child that runs a student's code.

Towards the child: arrays as ``{"$array": {"shape", "dtype", "data"}}`` (:func:`array`),
references to the child's earlier results (:func:`ref`), and the steps of a job
(:func:`call`, :func:`seed`, ...; the child's side is ``_child.py``).

From the child: JSON only, read by :func:`decode`, which accepts exactly the shapes the child
writes (numbers, strings, None, ``$array``, ``$tuple``, ``$list``, ``$dict``, ``$type``) and
rejects anything else with :class:`WireError`. Nothing is unpickled or evaluated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nndl._typing import NDArray

MAX_ELEMENTS = 2_000_000


class WireError(ValueError):
    """The child's answer is not what a child of ``nndl check`` writes."""


@dataclass(frozen=True)
class Opaque:
    """A value the child could not send as plain data: its type's name (and shape)."""

    type_name: str
    shape: tuple[int, ...] | None = None

    def __str__(self) -> str:
        return self.type_name + ("" if self.shape is None else f" of shape {self.shape}")


# -- towards the child ------------------------------------------------------------------

def array(values: Any) -> dict:
    """A float64 (or int64, for integer input) array as plain data."""
    a = np.asarray(values)
    dtype = "int64" if a.dtype.kind in "iub" else "float64"
    return {"$array": {"shape": list(a.shape), "dtype": dtype,
                       "data": a.astype(dtype).ravel().tolist()}}


def ref(name: str, *path: str | int) -> dict:
    """The child's object ``name``, then attributes (``".params"``) and keys (``"W1"``)."""
    return {"$ref": name, "path": list(path)}


def call(name: str, fn: dict, args: list | None = None, kwargs: dict | None = None,
         label: str = "") -> dict:
    """A step: call ``fn`` and keep its result as ``name``."""
    return {"do": "call", "name": name, "fn": fn, "args": args or [], "kwargs": kwargs or {},
            "label": label}


def seed(value: int) -> dict:
    """A step: ``np.random.seed(value)`` in the child."""
    return {"do": "seed", "seed": int(value)}


def let(name: str, value: Any) -> dict:
    """A step: keep ``value`` (plain data, arrays, references) as ``name``; the child's
    functions then receive that very object (a dict they update stays updated)."""
    return {"do": "let", "name": name, "value": value}


def load(name: str, module: str = "", file: str = "", label: str = "") -> dict:
    """A step: import the submission's ``module`` (``nndl.optim``), or a helper ``file`` of
    the checker's, as ``name``; a failure is an import failure."""
    return {"do": "import", "name": name, "module": module, "file": file, "label": label}


def part(name: str, module: str, steps: list[dict], returns: list[str]) -> dict:
    """A step: a whole task, with the submission's ``module`` as its ``module`` (``""``: the
    job's); the child sends back its own result, and its failure is its own."""
    return {"do": "part", "name": name, "module": module, "steps": steps, "returns": returns}


def put(target: dict, key: str, value: dict, label: str = "") -> dict:
    """A step: ``target[key] = value``."""
    return {"do": "set", "target": target, "key": key, "value": value, "label": label}


def snapshot(name: str, of: dict) -> dict:
    """A step: send back ``of`` as it is now."""
    return {"do": "snapshot", "name": name, "of": of}


def numeric(name: str, target: dict, f: dict, pick: list, h: float, label: str = "") -> dict:
    """A step: ``f``'s result (picked by ``pick``) with each entry of the array ``target``
    moved by +h and by -h in turn; the parent makes the numerical gradient of it."""
    return {"do": "numeric", "name": name, "array": target, "call": f, "pick": pick,
            "h": h, "label": label}


# -- from the child ---------------------------------------------------------------------

def decode(value: Any, depth: int = 0) -> Any:
    """The Python value of the child's plain data; :class:`WireError` for anything else."""
    if depth > 8:
        raise WireError("nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict) and len(value) in (1, 2):
        if "$array" in value:
            return _array(value["$array"])
        if "$tuple" in value or "$list" in value:
            items = value.get("$tuple", value.get("$list"))
            if not isinstance(items, list):
                raise WireError("a sequence that is not a list")
            decoded = [decode(v, depth + 1) for v in items]
            return tuple(decoded) if "$tuple" in value else decoded
        if "$dict" in value and isinstance(value["$dict"], dict):
            return {str(k): decode(v, depth + 1) for k, v in value["$dict"].items()}
        if "$type" in value and isinstance(value["$type"], str):
            shape = value.get("shape")
            return Opaque(value["$type"][:100], _shape(shape) if shape is not None else None)
    raise WireError(f"unexpected {type(value).__name__}")


def _shape(shape: Any) -> tuple[int, ...]:
    if not (isinstance(shape, list) and len(shape) <= 8
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
        raise WireError("a bad array shape")
    return tuple(shape)


def _array(spec: Any) -> NDArray:
    if not isinstance(spec, dict) or not isinstance(spec.get("data"), list):
        raise WireError("a bad array")
    shape = _shape(spec.get("shape"))
    size = math.prod(shape)
    data = spec["data"]
    if size > MAX_ELEMENTS or len(data) != size:
        raise WireError("an array whose data does not fit its shape")
    if not all(isinstance(v, (int, float)) for v in data):
        raise WireError("an array holding something other than numbers")
    kinds: dict[Any, type] = {"f": np.float64, "i": np.int64, "u": np.int64, "b": np.bool_}
    dtype = kinds.get(spec.get("dtype"))
    if dtype is None:
        raise WireError("an array of an unknown kind")
    try:
        return np.array(data, dtype=dtype).reshape(shape)
    except (OverflowError, ValueError):
        raise WireError("an array of numbers out of range") from None
