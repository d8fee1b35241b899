"""Run folders: unique, never overwritten, marked complete only at the end.

A run folder holds ``metrics.json`` whose ``status`` is ``running`` while the
run works, ``interrupted`` after Ctrl-C (everything written so far stays
usable) and ``complete`` at the end. A file named ``INCOMPLETE`` exists until
the run completes, so a partial folder is obvious in a listing too.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import numpy as np

from nndl._atomic import atomic_path

INCOMPLETE = "INCOMPLETE"
_INCOMPLETE_TEXT = "This run has not completed.\n"


def new_run_dir(out=None, prefix="run"):
    """A fresh folder that this process alone owns: ``out`` itself if given (it must not
    exist or be empty), else ``runs/<prefix>-<YYYYmmdd-HHMMSS>[-N]`` in the working
    directory. The claim is the ``INCOMPLETE`` marker, created exclusively: of two
    processes asking for the same folder at the same instant, one gets it and the other
    an error. The run removes the marker when it completes."""
    if out is not None:
        path = Path(out)
        path.mkdir(parents=True, exist_ok=True)
        if not _claim(path):
            raise FileExistsError(f"--out {path} exists and is not empty; runs never overwrite "
                                  "each other: choose a new folder")
        return path
    base = Path("runs") / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1000):
        path = base if n == 0 else base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir(parents=True)  # fails if another process made it first
        except FileExistsError:
            continue
        if _claim(path):
            return path
    raise FileExistsError(f"could not create a new run folder next to {base}")


def _claim(folder):
    """Create ``folder/INCOMPLETE`` exclusively; True if this process now owns the folder
    (the marker is its only entry)."""
    marker = folder / INCOMPLETE
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(_INCOMPLETE_TEXT)
    if any(p.name != INCOMPLETE for p in folder.iterdir()):
        marker.unlink()
        return False
    return True


def finish_run_dir(folder):
    """Mark a folder from :func:`new_run_dir` complete (its ``INCOMPLETE`` marker goes)."""
    (Path(folder) / INCOMPLETE).unlink(missing_ok=True)


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
        (self.folder / INCOMPLETE).write_text(_INCOMPLETE_TEXT)  # again for a resumed run
        self.save()

    def update(self, **entries):
        self.metrics.update(entries)
        self.save()

    def save(self):
        write_json(self.folder / "metrics.json", self.metrics)

    @contextlib.contextmanager
    def running(self):
        """Mark the run ``interrupted`` (Ctrl-C), ``terminated`` (SIGTERM, SIGHUP: see
        :mod:`nndl._stops`, with ``signal`` naming it) or, when the block raises any other
        error, the error's ``run_status`` (e.g. ``diverged``) else ``failed``, with the
        message in ``error``; the exception propagates, carrying ``run_folder``. When even
        that status cannot be written (a full disk), the exception carries
        ``status_error`` too, saying so."""
        try:
            yield self
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                entries = {"signal": exc.signal_name} if hasattr(exc, "signal_name") else {}
                status = getattr(exc, "run_status", "interrupted")
            else:
                entries, status = {"error": str(exc)}, getattr(exc, "run_status", "failed")
            exc.run_folder = self.folder  # for the one-line message: where the work is
            try:
                self.metrics.update(entries)
                self.finish(status)
            except OSError as error:
                exc.status_error = f"its metrics.json could not say so ({error})"
            raise

    def finish(self, status="complete"):
        self.metrics["status"] = status
        self.metrics["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.save()
        if status == "complete":
            finish_run_dir(self.folder)
