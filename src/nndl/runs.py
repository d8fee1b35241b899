"""Run folders: unique, never overwritten, marked complete only at the end.

A run folder holds ``metrics.json`` whose ``status`` is ``running`` while the
run works, ``interrupted`` after Ctrl-C (everything written so far stays
usable) and ``complete`` at the end. A file named ``INCOMPLETE`` exists until
the run completes, so a partial folder is obvious in a listing too.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import numpy as np

from nndl._atomic import atomic_path

INCOMPLETE = "INCOMPLETE"


def new_run_dir(out=None, prefix="run"):
    """A fresh folder: ``out`` itself if given (it must not exist or be empty), else
    ``runs/<prefix>-<YYYYmmdd-HHMMSS>[-N]`` in the working directory."""
    if out is not None:
        path = Path(out)
        if path.exists() and any(path.iterdir()):
            raise FileExistsError(f"--out {path} exists and is not empty; runs never overwrite "
                                  "each other: choose a new folder")
        path.mkdir(parents=True, exist_ok=True)
        return path
    base = Path("runs") / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1000):
        path = base if n == 0 else base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a new run folder next to {base}")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_json(path, data):
    """Write ``data`` as indented JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")


class RunRecorder:
    """Keeps ``metrics.json`` of a run folder up to date as results arrive."""

    def __init__(self, folder, kind, config=None):
        self.folder = Path(folder)
        self.metrics = {"kind": kind, "status": "running", "config": config or {},
                        "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        (self.folder / INCOMPLETE).write_text("This run has not completed.\n")
        self.save()

    def update(self, **entries):
        self.metrics.update(entries)
        self.save()

    def save(self):
        write_json(self.folder / "metrics.json", self.metrics)

    @contextlib.contextmanager
    def running(self):
        """Mark the run ``interrupted`` (Ctrl-C) or ``failed`` (any other error, recorded
        in ``error``) if the block raises; the exception propagates."""
        try:
            yield self
        except KeyboardInterrupt:
            self.finish("interrupted")
            raise
        except Exception as exc:
            self.update(error=str(exc))
            self.finish("failed")
            raise

    def finish(self, status="complete"):
        self.metrics["status"] = status
        self.metrics["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.save()
        if status == "complete":
            (self.folder / INCOMPLETE).unlink(missing_ok=True)
