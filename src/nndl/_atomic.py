"""Files that appear whole or not at all (write to a temporary name, then rename), and
locks that make processes sharing a file take turns."""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import sys
import time
from pathlib import Path


@contextlib.contextmanager
def atomic_path(final, overwrite=True):
    """Yield a temporary path beside ``final``; on success rename it to ``final``.

    On any exception the temporary file is removed and ``final`` is untouched. The
    temporary file is created like any other file (mode 0666 less the umask, unlike
    ``mkstemp``'s 0600), so the renamed file is as readable as its neighbours. With
    ``overwrite=False`` a ``final`` that exists by then (another process wrote it
    meanwhile) is kept and ``FileExistsError`` raised: the file is published by a hard
    link, which never replaces (where the file system has no hard links: checked, then
    renamed).

    A writer killed mid-write (SIGKILL, the OOM killer) leaves its temporary file
    ``.<name>.<pid>-<random>.tmp``: the next write of ``final`` removes those whose
    process no longer runs (:func:`remove_stale`).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(final)
    with naming(final):
        tmp = _create_exclusive(final)
    try:
        with naming(final, tmp):
            yield tmp
            if overwrite:
                os.replace(tmp, final)
            else:
                _publish_new(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_path`); returns the
    path."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return Path(path)


@contextlib.contextmanager
def naming(path, *aliases):
    """An OSError raised in the block names ``path`` (see :func:`named`); one naming
    one of ``aliases`` (e.g. the temporary file written for ``path``) names ``path``
    instead."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None and any(
                os.fspath(exc.filename) == os.fspath(a) for a in aliases):
            exc = type(exc)(exc.errno, exc.strerror)
        raise named(exc, path) from None


def named(exc, path):
    """``exc`` (an OSError) naming ``path`` in Python's form (``[Errno 28] No space left
    on device: 'runs/search-.../study.journal'``); as it is if it names a file already."""
    if exc.filename is not None or exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror, str(path))


def _publish_new(tmp, final):
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise FileExistsError(f"{final} appeared meanwhile; it is kept") from None
    except OSError:  # no hard links here
        if os.path.lexists(final):
            raise FileExistsError(f"{final} appeared meanwhile; it is kept") from None
        os.replace(tmp, final)


def check_output_file(path, suffix, inputs=None, force=False, flag="--out"):
    """``path`` as a new output file named by ``flag``, or a one-line ``ValueError``:

    it must end in ``suffix`` (e.g. ``".png"``: the format written), its folder must exist
    (no folder is made for it), and it must not be an existing file unless ``force``; it is
    never one of ``inputs`` (a mapping of path -> what it is, e.g. "the model file
    visualize reads"), whatever its spelling (a link to it counts), not even with
    ``force``. Publish it with ``atomic_path(path, overwrite=force)``."""
    shown, path = os.fspath(path), Path(path)  # the messages say it as it was given
    for source, what in (inputs or {}).items():
        if os.path.exists(path) and os.path.exists(source) and os.path.samefile(path, source):
            raise ValueError(f"{flag} {shown} is {what}; choose another file")
    if path.suffix.lower() != suffix:
        raise ValueError(f"{flag} {shown} must name a {suffix} file (the format written)")
    if not path.parent.is_dir():
        raise ValueError(f"{flag} {shown} is in a folder that does not exist: {path.parent} "
                         "(create it first)")
    if path.is_dir():
        raise ValueError(f"{flag} {shown} is a folder; name a file in it")
    if os.path.lexists(path) and not force:
        raise ValueError(f"{flag} {shown} exists; pass --force to replace it")
    return path


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


@contextlib.contextmanager
def file_lock(path, *, shared=False, remove=False):
    """Hold an advisory lock on the file ``path`` (created when missing) for the block:
    exclusive, or ``shared`` with other shared holders. Waits as long as another process
    (or another open of the file in this one) holds a conflicting lock; a killed holder's
    lock goes with it.

    With ``remove`` (exclusive locks only) the file is deleted before the lock is
    released, so nothing is left behind; a waiter that then gets the lock of the deleted
    file notices and locks the new one. Where the file cannot be created (a read-only
    folder) an existing one is still locked; an OSError otherwise. On Windows every
    lock is exclusive.
    """
    path = Path(path)
    while True:
        fd = _open_lock_file(path)
        try:
            _lock(fd, shared, path)
            if _still_at(fd, path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # deleted by its last holder: lock the new one
    try:
        yield
    finally:
        if remove:
            with contextlib.suppress(OSError):
                path.unlink()
        os.close(fd)  # releases the lock


def _open_lock_file(path):
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:  # a read-only folder or disk: an existing lock file can still be locked
        return os.open(path, os.O_RDONLY)


def _still_at(fd, path):
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (here.st_dev, here.st_ino)


def _waiting(path):
    """Called when the lock on ``path`` is held elsewhere, before waiting for it (tests
    replace it to force an interleaving)."""


if sys.platform == "win32":
    import msvcrt

    def _lock(fd, shared, path):
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                return
            except OSError:
                _waiting(path)
                time.sleep(0.05)
else:
    import fcntl

    def _lock(fd, shared, path):
        kind = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
        except BlockingIOError:
            _waiting(path)
            fcntl.flock(fd, kind)
