"""Run folders: unique, never overwritten, marked complete only at the end.

A run folder holds ``metrics.json`` whose ``status`` is ``running`` while the
run works, ``interrupted`` after Ctrl-C, ``terminated`` after SIGTERM or SIGHUP
(everything written so far stays usable; ``signal`` names it), ``failed`` (or
e.g. ``diverged``) after an error, and ``complete`` at the end. A file named
``INCOMPLETE`` exists until the run completes, so a partial folder is obvious
in a listing too. Only SIGKILL (or a power cut) leaves a folder ``running``.

The start of a run is all or nothing (:func:`recorded_run`): an error while the
folder is claimed and its first ``metrics.json`` written (a full disk, say)
removes the folder and the empty folders made for it, and a stop signal
meanwhile waits until the folder records the run, then stops it as usual.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from nndl._atomic import atomic_path, naming
from nndl._stops import held_stops

INCOMPLETE = "INCOMPLETE"
_INCOMPLETE_TEXT = "This run has not completed.\n"
#: bytes the ``INCOMPLETE`` marker holds: on a full disk they are given back so that the
#: run's last metrics.json (its status) can still be written
RESERVE = 64 << 10
_RESERVE_TEXT = (_INCOMPLETE_TEXT + "(The rest of this file is room kept for the run's last "
                 "metrics.json, should the disk fill up.)\n")
_MARKER = _RESERVE_TEXT + " " * (RESERVE - len(_RESERVE_TEXT) - 1) + "\n"


def new_run_dir(out=None, prefix="run"):
    """A fresh folder that this process alone owns: ``out`` itself if given (it must not
    exist or be empty; missing parent folders are made), else
    ``runs/<prefix>-<YYYYmmdd-HHMMSS>[-N]`` in the working directory. The claim is the
    ``INCOMPLETE`` marker, created exclusively: of two processes asking for the same folder
    at the same instant, one gets it and the other an error. The run removes the marker
    when it completes. On any error (a full disk, say) the folders this call made, while
    empty, are removed again."""
    return _new_run_dir(out, prefix)[0]


def _new_run_dir(out, prefix):
    """(the claimed folder, the folders made for it that did not exist, innermost first)."""
    if out is not None:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"--out {path} is a file, not a folder; runs never "
                                  "overwrite other files: choose a new folder")
        made = _missing_folders(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
            if _claim(path):
                return path, made
            raise FileExistsError(f"--out {path} exists and is not empty; runs never "
                                  "overwrite each other: choose a new folder")
        except BaseException:
            _remove_empty(made)
            raise
    base = Path("runs") / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    made = _missing_folders(base.parent)
    try:
        for n in range(1000):
            path = base if n == 0 else base.with_name(f"{base.name}-{n}")
            try:
                path.mkdir(parents=True)  # fails if another process made it first
            except FileExistsError:
                continue
            made = [path, *made]
            if _claim(path):
                return path, made
        raise FileExistsError(f"could not create a new run folder next to {base}")
    except BaseException:
        _remove_empty(made)
        raise


def _missing_folders(path):
    """The folders on ``path`` (itself, then its parents) that do not exist, innermost
    first."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists() or folder.is_symlink():
            break
        missing.append(folder)
    return missing


def _remove_empty(folders):
    """Remove ``folders`` (innermost first) while they are empty; another process's files
    are never touched."""
    for folder in folders:
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            return


def discard_run_dir(folder, made=()):
    """Remove a run folder this process claimed and wrote nothing of value to yet (a failed
    start), then the folders ``made`` for it while empty."""
    shutil.rmtree(folder, ignore_errors=True)
    _remove_empty(made)


def _claim(folder):
    """Create ``folder/INCOMPLETE`` exclusively; True if this process now owns the folder
    (the marker is its only entry). A marker this call could not write whole is removed."""
    marker = folder / INCOMPLETE
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return False
    try:
        with naming(marker), os.fdopen(fd, "w") as f:
            f.write(_MARKER)
    except BaseException:
        marker.unlink(missing_ok=True)
        raise
    if any(p.name != INCOMPLETE for p in folder.iterdir()):
        marker.unlink()
        return False
    return True


@contextlib.contextmanager
def recorded_run(out, kind, config=None):
    """A new run folder (:func:`new_run_dir`: ``out``, else ``runs/<kind>-<time>``)
    recording a run of ``kind`` (:class:`RunRecorder`), inside :meth:`RunRecorder.running`:
    yields the recorder.

    All or nothing: an error while the folder is claimed and its first ``metrics.json``
    written removes the folder (and the empty folders made for it); a stop signal (Ctrl-C,
    SIGTERM, SIGHUP) meanwhile waits until the folder records the run, then stops it like
    one that comes later (status ``interrupted`` or ``terminated``)."""
    with held_stops() as held:
        folder, made = _new_run_dir(out, kind)
        try:
            recorder = RunRecorder(folder, kind, config)
        except BaseException:
            discard_run_dir(folder, made)
            raise
        with recorder.running():
            held.release()  # from here on a stop stops the run at once
            yield recorder


def mark_incomplete(folder):
    """(Re)write the ``INCOMPLETE`` marker of ``folder`` with its reserve, whole or not at
    all (an existing marker is kept on a full disk; the error names it): a resumed run
    calls it before it changes anything else."""
    with atomic_path(Path(folder) / INCOMPLETE) as tmp:
        tmp.write_text(_MARKER)


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
        mark_incomplete(self.folder)  # again for a resumed run
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
        """Record ``status`` (and the time). On a full disk (no space, no inodes, over
        quota) the ``INCOMPLETE`` marker's reserve is given back for it first; where even
        then metrics.json cannot be written anew, a run that did not complete still
        records its status: metrics.json is overwritten in place (its own blocks, no new
        file) with as much as fits of the status, ``error``, ``signal`` and times
        (:func:`_status_in_place`). A complete run's metrics are never cut: its error
        propagates (and :meth:`running` records the run ``failed``)."""
        self.metrics["status"] = status
        self.metrics["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        try:
            self.save()
        except OSError as exc:
            if exc.errno not in _DISK_FULL:
                raise
            try:
                if not _give_back_reserve(self.folder):
                    raise
                self.save()
            except OSError as again:
                if again.errno not in _DISK_FULL or status == "complete" or \
                        not _status_in_place(self.folder / "metrics.json", self.metrics):
                    raise
        if status == "complete":
            finish_run_dir(self.folder)


#: the errors of a full disk: no space, no inodes (ENOSPC too), over quota
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
#: what a status written in place keeps, as far as it fits
_STATUS_KEYS = ("kind", "status", "error", "signal", "started", "finished")


def _status_in_place(path, metrics):
    """Overwrite the existing ``path`` in place with ``metrics`` as JSON, padded with
    spaces to the file's size (so it needs neither a new file nor a new block); where the
    whole does not fit (in the file's size or :data:`_STATUS_ROOM`, whichever is larger,
    else in the file's size), only :data:`_STATUS_KEYS` (the ``error`` shortened as needed) and
    a ``note`` saying so. False where there is no such file."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return False
    try:
        size = os.fstat(fd).st_size
        try:  # the reserve given back may let it grow a little
            _pwrite_padded(fd, _fitting_json(metrics, max(size, _STATUS_ROOM)), size)
        except OSError as exc:
            if exc.errno not in _DISK_FULL:
                raise
            _pwrite_padded(fd, _fitting_json(metrics, size), size)
            os.ftruncate(fd, size)
        os.fsync(fd)
        return True
    finally:
        os.close(fd)


#: the bytes a status written in place may take beyond the file's own
_STATUS_ROOM = 4096


def _pwrite_padded(fd, text, size):
    """Write ``text`` at the start of ``fd``, padded with spaces to ``size`` bytes."""
    data = text.encode()
    view = memoryview(data + b" " * (size - len(data)))
    offset = 0
    while offset < len(view):
        offset += os.pwrite(fd, view[offset:], offset)


def _fitting_json(metrics, size):
    """``metrics`` as JSON of at most ``size`` bytes (see :func:`_status_in_place`)."""
    text = json.dumps(metrics, default=_json_default) + "\n"
    if len(text.encode()) <= size:
        return text
    short = {k: metrics[k] for k in _STATUS_KEYS if k in metrics}
    short["note"] = "the disk was full: metrics.json keeps only the run's status"
    error = str(short.get("error", ""))
    while True:
        text = json.dumps(short, default=_json_default) + "\n"
        if len(text.encode()) <= size:
            return text
        if not error:  # not even the status fits: the least that says it
            return json.dumps({"status": metrics["status"]})[:size]
        error = error[:len(error) // 2]
        short["error"] = error + "..."


def _give_back_reserve(folder):
    """Cut the ``INCOMPLETE`` marker of ``folder`` to its first line, its space given back
    to the file system (synced, so that a journaling file system can reuse it at once);
    False when it holds no reserve."""
    try:
        fd = os.open(Path(folder) / INCOMPLETE, os.O_WRONLY)
    except OSError:
        return False
    try:
        if os.fstat(fd).st_size <= len(_INCOMPLETE_TEXT):
            return False
        os.ftruncate(fd, len(_INCOMPLETE_TEXT))
        os.fsync(fd)
        return True
    finally:
        os.close(fd)
