import errno
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.payload`` at any path, or ``server.files[name]`` at ``/.../name``
    when ``server.files`` is set (404 for other names), honouring ``Range: bytes=N-``.

    When ``server.cut_after`` is set, the first full response sends only that
    many bytes and then drops the connection (a cut mid-way). ``server.before_body``, when
    set, is called with the path before each response's body is sent (to hold transfers at
    a barrier).
    """

    def do_GET(self):  # noqa: N802
        payload = self.server.payload
        if self.server.files is not None:
            payload = self.server.files.get(self.path.rsplit("/", 1)[-1])
            if payload is None:
                self.send_error(404)
                return
        self.server.requests.append(self.headers.get("Range"))
        self.server.paths.append(self.path)
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            if start >= len(payload):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
        else:
            self.send_response(200)
        body = payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.before_body is not None:
            self.server.before_body(self.path)
        cut = self.server.cut_after
        if cut is not None and start == 0:
            self.server.cut_after = None
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """A real HTTP server on 127.0.0.1; set ``.payload`` (bytes) or ``.files`` ({name:
    bytes}), ``.cut_after`` and ``.before_body``; ``.base`` is its URL of a folder."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.payload, server.files, server.cut_after = b"", None, None
    server.before_body = None
    server.requests, server.paths = [], []
    server.base = f"http://127.0.0.1:{server.server_address[1]}/mirror/"
    server.url = f"http://127.0.0.1:{server.server_address[1]}/cifar-10-python.tar.gz"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Each test gets its own user cache and no $NNDL_DATA."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NNDL_DATA", raising=False)


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a 64 KiB disk: a tmpfs mounted at ``tmp_path/disk`` (Linux,
    as root); skipped where one cannot be mounted (the write-hook tests still run)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs Linux and root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                             capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


class _FullFile:
    """A file open for writing on a disk with no space left: every write fails."""

    def __init__(self, f):
        self._f = f

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def full_disk_open(path, mode="r", *args, **kwargs):
    """``open`` where the disk is full: files opened for writing fail to write."""
    f = open(path, mode, *args, **kwargs)
    return _FullFile(f) if any(c in mode for c in "wax+") else f
