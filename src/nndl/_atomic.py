"""Files that appear whole or not at all: write to a temporary name, then rename."""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
from pathlib import Path


@contextlib.contextmanager
def atomic_path(final):
    """Yield a temporary path beside ``final``; on success rename it to ``final``.

    On any exception the temporary file is removed and ``final`` is untouched. The
    temporary file is created like any other file (mode 0666 less the umask, unlike
    ``mkstemp``'s 0600), so the renamed file is as readable as its neighbours.

    A writer killed mid-write (SIGKILL, the OOM killer) leaves its temporary file
    ``.<name>.<pid>-<random>.tmp``: the next write of ``final`` removes those whose
    process no longer runs (:func:`remove_stale`).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(final)
    tmp = _create_exclusive(final)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale(final):
    """Remove the temporary files of ``final`` whose writer is gone: named
    ``.<name>.<pid>-<random>.tmp`` with ``pid`` no live process of this machine. Not on
    Windows (no harmless way to ask whether a process runs), and a writer in another
    machine's or container's process-id space cannot be told from a dead one, so a
    folder written from several machines at once should not rely on it."""
    if os.name == "nt":
        return
    final = Path(final)
    prefix = f".{final.name}."
    for tmp in final.parent.glob(glob.escape(prefix) + "*-*.tmp"):
        pid = tmp.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def _create_exclusive(final):
    """A new empty file ``.<name>.<pid>-<random>.tmp`` beside ``final`` (never an existing
    one)."""
    for _ in range(100):
        tmp = final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {final}")
