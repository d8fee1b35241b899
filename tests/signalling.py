"""A real ``python -m nndl`` process to send real signals to, and the markers that say how far
it got, read from its output (no sleeping as synchronization).

Its stderr is a pseudo-terminal, so that the training loop draws its progress bar there: a
bar that has counted a step is the marker that training runs. stdout is a pipe, unbuffered
(``PYTHONUNBUFFERED``), so that a line printed by a step is the marker that the step began.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time

import pytest

#: a progress bar that has counted at least one iteration ("  3/10000000 [")
TRAINING_STEPS = re.compile(r"\|\s*[1-9]\d*/\d+ \[")


def default_stop_handlers():
    """In a child about to run nndl (``preexec_fn``): SIGINT, SIGTERM and SIGHUP back to
    their defaults. A test runner started under ``nohup`` (or in the background of a shell
    without job control) ignores SIGHUP (or SIGINT), its children inherit that, and nndl
    rightly leaves an ignored signal ignored: the test meant a terminal's signals."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)


needs_posix_signals = pytest.mark.skipif(
    sys.platform == "win32" or not hasattr(os, "openpty"),
    reason="POSIX signals and pseudo-terminals")


class NndlProcess:
    """``python -m nndl ARGS`` with stderr on a pseudo-terminal and stdout on a pipe."""

    def __init__(self, *args, env=None, cwd=None):
        import fcntl
        import pty
        import struct
        import termios

        master, slave = pty.openpty()
        # 24 rows x 120 columns: a terminal of no size gets no bar
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
        self._master, self.stderr, self.stdout = master, "", ""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nndl", *args], stdout=subprocess.PIPE, stderr=slave,
            stdin=subprocess.DEVNULL, env={**(env or os.environ), "PYTHONUNBUFFERED": "1"},
            cwd=cwd, start_new_session=True,  # a signal of the test's own never reaches it
            preexec_fn=default_stop_handlers)
        os.close(slave)
        self._out = self.proc.stdout.fileno()

    def wait_for(self, pattern, where="stderr", timeout=180):
        """Read its output until ``pattern`` (a regex) appears in ``where``; fail if the
        process exits or ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        while not regex.search(getattr(self, where)):
            if time.monotonic() > deadline or not self._read(deadline - time.monotonic()):
                self.proc.kill()
                pytest.fail(f"no {regex.pattern!r} in its {where} (rc {self.proc.poll()}):\n"
                            f"{self.stdout}\n{self.stderr}")

    def send(self, signum):
        self.proc.send_signal(signum)

    def finish(self, timeout=180):
        """Read everything until it exits; returns its exit status."""
        deadline = time.monotonic() + timeout
        while self._read(deadline - time.monotonic()):
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail("it did not exit")
        return self.proc.wait(timeout=max(1, deadline - time.monotonic()))

    def _read(self, timeout):
        """Read what is there (waiting up to ``timeout`` s); False once both outputs closed."""
        fds = [fd for fd in (self._master, self._out) if fd is not None]
        if not fds:
            return False
        ready, _, _ = select.select(fds, [], [], max(0.0, min(timeout, 1.0)))
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the pseudo-terminal of an exited process: EIO
                data = b""
            if fd == self._master:
                self.stderr += data.decode(errors="replace")
                if not data:
                    os.close(self._master)
                    self._master = None
            else:
                self.stdout += data.decode(errors="replace")
                if not data:
                    self.proc.stdout.close()
                    self._out = None
        return True

    def last_line(self):
        """The last line of stderr, without the progress bar's redraws."""
        lines = [line.split("\r")[-1].strip() for line in self.stderr.splitlines()]
        return [line for line in lines if line][-1]


STOPS = {  # signal: (exit status, metrics.json status, words of the message)
    "SIGINT": (130, "interrupted", "interrupted"),
    "SIGTERM": (143, "terminated", "terminated by SIGTERM"),
    "SIGHUP": (129, "terminated", "terminated by SIGHUP"),
}


def stop_signals():
    """The names of STOPS this platform has."""
    return [name for name in STOPS if hasattr(signal, name)]
