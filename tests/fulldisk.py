"""Full disks for tests: a real small tmpfs where the test may mount one (as root), and a
write hook everywhere (a file opened for writing fails as on a full disk)."""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import os
import subprocess
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_tmpfs(path, size, inodes=None):
    """A tmpfs of ``size`` bytes (and at most ``inodes`` files and folders, itself
    included) mounted at ``path`` (skips the test where it cannot be mounted: not root,
    or no mount command)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}"
                              + (f",nr_inodes={inodes}" if inodes else ""), "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(disk, leave):
    """Fill the file system of ``disk`` but ``leave`` bytes (a file ``disk/filler``)."""
    filler = Path(disk) / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(filler, "ab") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


class FailingWrite:
    """Opening files under ``root`` for writing: the ``fail_at``-th (counting from 1)
    raises ``OSError(ENOSPC)`` as a full disk does; ``count`` says how many were opened."""

    def __init__(self, root, fail_at=None):
        self.root, self.fail_at, self.count = os.path.realpath(root), fail_at, 0
        self._open = io.open

    def __call__(self, file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and self._under_root(file):
            self.count += 1
            if self.count == self.fail_at:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
        return self._open(file, mode, *args, **kwargs)

    def _under_root(self, file):
        if isinstance(file, int):  # os.fdopen: the path behind the descriptor
            file = os.readlink(f"/proc/self/fd/{file}") if os.path.isdir("/proc/self/fd") \
                else ""
        if not isinstance(file, (str, os.PathLike)):
            return False
        path = os.path.realpath(os.fspath(file))
        return path == self.root or path.startswith(self.root + os.sep)

    def install(self, monkeypatch):
        monkeypatch.setattr(io, "open", self)
        monkeypatch.setattr(builtins, "open", self)
        return self
