"""Memory: what a run will need, estimated from its sizes before anything is allocated,
and what this process may still use.

A run that does not fit is refused in one line before it makes a folder or a large array
(:func:`check_fits`), instead of being killed by the kernel's OOM killer (a folder left
``"running"``) or failing half way with a ``MemoryError``. The estimate counts what the
process allocates: weights, the optimizer's state, activations and work arrays, float
copies of the data, decoded or resized images; memory-mapped data is not counted (the
kernel pages it in and out). The limit is, in this order:

1. ``$NNDL_MAX_MEMORY`` (what ``--max-memory`` sets): a size such as ``8G``, ``512M`` or a
   number of bytes;
2. else the smaller of the memory left under this process's cgroup limit (v1 or v2, its
   own and every ancestor's: limit - usage + reclaimable page cache) and the system's
   ``MemAvailable`` (``/proc/meminfo``);
3. else (no Linux ``/proc``: macOS, Windows) nothing is checked.

The estimates are upper bounds of the peak that the tests measure with ``tracemalloc``
(which sees every NumPy allocation), within a factor of about two.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

LIMIT_ENV = "NNDL_MAX_MEMORY"
#: cgroup limits at or above this mean "no limit" (v1 writes 2**63 rounded to a page)
_UNLIMITED = 1 << 60
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class MemoryLimitError(MemoryError):
    """A run that would need more memory than this process may use, refused before any
    allocation; the message says how much, what for and what to change."""


@dataclass
class Estimate:
    """Bytes a run needs, by part (``{"weights": ..., "activations": ...}``)."""

    parts: dict[str, int] = field(default_factory=dict)

    def add(self, part: str, nbytes: float) -> Estimate:
        """Add ``nbytes`` to ``part`` (rounded up); returns self."""
        if nbytes > 0:
            self.parts[part] = self.parts.get(part, 0) + math.ceil(nbytes)
        return self

    def scaled(self, times: int) -> Estimate:
        """The estimate of ``times`` processes each needing this one."""
        return Estimate({k: v * times for k, v in self.parts.items()})

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def summary(self, shown: int = 3) -> str:
        """``"24.6 GiB (weights 18.3 GiB, activations 6.1 GiB, ...)"``: the largest parts."""
        parts = sorted(self.parts.items(), key=lambda kv: -kv[1])
        listed = ", ".join(f"{name} {format_size(n)}" for name, n in parts[:shown])
        more = ", ..." if len(parts) > shown else ""
        return f"{format_size(self.total)} ({listed}{more})"


def parse_size(text: str | int) -> int:
    """A memory size as bytes: an int, or text such as ``8G``, ``8GB``, ``8GiB``, ``512m``,
    ``1.5T``, ``1000000`` (units are powers of 1,024); a ValueError naming
    ``--max-memory`` otherwise."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = float(text)
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmgt]?)(?:i?b)?\s*",
                             str(text).lower())
        if match is None:
            raise ValueError(f"--max-memory must be a size such as 8G, 512M or a number of "
                             f"bytes, got {text!r}")
        value = float(match.group(1)) * _UNITS[match.group(2)]
    if not (math.isfinite(value) and value >= 1):
        raise ValueError(f"--max-memory must be at least 1 byte, got {text!r}")
    return int(value)


def format_size(nbytes: float) -> str:
    """``1536`` -> ``"1.5 KiB"``; ``3 * 2**30`` -> ``"3.0 GiB"``."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def memory_limit() -> tuple[int | None, str]:
    """(bytes this process may still allocate, where the number comes from), or
    (None, reason) where nothing is known (see the module docstring)."""
    given = os.environ.get(LIMIT_ENV)
    if given:
        try:
            return parse_size(given), "--max-memory"
        except ValueError:
            raise ValueError(f"${LIMIT_ENV} must be a size such as 8G, 512M or a number of "
                             f"bytes, got {given!r}") from None
    found = [(n, why) for n, why in ((cgroup_available(), "the cgroup limit"),
                                     (system_available(), "the system's available memory"))
             if n is not None]
    if not found:
        return None, "unknown on this platform"
    return min(found)


def system_available(meminfo: str | os.PathLike = "/proc/meminfo") -> int | None:
    """``MemAvailable`` of ``meminfo`` in bytes, or None."""
    try:
        text = Path(meminfo).read_text()
    except OSError:
        return None
    match = re.search(r"^MemAvailable:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def cgroup_available(proc_cgroup: str | os.PathLike = "/proc/self/cgroup",
                     sysfs: str | os.PathLike = "/sys/fs/cgroup") -> int | None:
    """What this process's cgroups (v2, or v1's memory controller) leave it: the smallest
    ``limit - usage + inactive page cache`` over its cgroup and the ancestors with a
    limit, or None where none has one (or there are no cgroups)."""
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None
    sysfs = Path(sysfs)
    for line in lines:
        number, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if number == "0" and controllers == "" and (sysfs / "cgroup.controllers").exists():
            return _smallest_headroom(sysfs, path, ("memory.max", "memory.current"),
                                      "inactive_file")
        if "memory" in controllers.split(","):
            return _smallest_headroom(sysfs / "memory", path,
                                      ("memory.limit_in_bytes", "memory.usage_in_bytes"),
                                      "total_inactive_file")
    return None


def _smallest_headroom(mount, path, files, reclaimable):
    """The smallest headroom over the cgroup folder of ``path`` under ``mount`` and its
    ancestors (a container sees its own cgroup as the mount's root: a path missing under
    the mount is read from the root)."""
    folder = mount / path.strip("/")
    if not folder.is_dir():
        folder = mount
    room = []
    while True:
        limit, usage = (_read_int(folder / name) for name in files)
        if limit is not None and usage is not None and limit < _UNLIMITED:
            room.append(max(0, limit - usage) + _stat(folder / "memory.stat", reclaimable))
        if folder == mount or mount not in folder.parents:
            break
        folder = folder.parent
    return min(room) if room else None


def _read_int(path):
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def _stat(path, key):
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0


def check_fits(estimate: Estimate, what: str, advice: str = "") -> None:
    """Raise :class:`MemoryLimitError` when ``estimate`` exceeds :func:`memory_limit`:
    one line saying ``what`` needs how much of what is available, and ``advice``."""
    limit, source = memory_limit()
    if limit is None or estimate.total <= limit:
        return
    hint = f"{advice}, or set" if advice else "set"
    raise MemoryLimitError(
        f"{what} needs about {estimate.summary()} of memory, but {format_size(limit)} is "
        f"available ({source}); {hint} --max-memory (${LIMIT_ENV}) if more is free")


__all__ = ["Estimate", "LIMIT_ENV", "MemoryLimitError", "cgroup_available", "check_fits",
           "format_size", "memory_limit", "parse_size", "system_available"]
