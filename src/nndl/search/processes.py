"""Local worker processes: they die with the search that started them, and a resume
refuses to run beside one that is still alive.

``run_search`` starts its workers with ``$NNDL_SEARCH_PARENT`` set to its own pid. A
worker then asks Linux to send it SIGTERM when that parent dies (``prctl``
``PR_SET_PDEATHSIG``), and checks before every population that its parent is still
there: the portable fallback, which also covers a parent that died before ``prctl``.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
from pathlib import Path

PARENT_ENV = "NNDL_SEARCH_PARENT"
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def watch_parent():
    """For a worker started by ``run_search``: arrange to die with it and return a check
    that raises RuntimeError once it has exited; None for a worker started by hand."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return None
    parent = int(parent)
    _die_with_parent()

    def check():
        if os.getppid() != parent:
            raise RuntimeError(f"the search that started this worker (process {parent}) "
                               "has exited; stopping")

    check()
    return check


def _die_with_parent():
    """SIGTERM this process when its parent dies (Linux only; elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # no prctl: the check between populations remains


def live_workers(trials, worker_attr):
    """Process ids on this machine, alive and running nndl, that hold RUNNING ``trials``
    (tagged ``worker_attr`` = ``host:pid``)."""
    host, pids = socket.gethostname(), set()
    for trial in trials:
        name, _, pid = str(trial.user_attrs.get(worker_attr, "")).rpartition(":")
        if name == host and pid.isdigit() and _runs_nndl(int(pid)):
            pids.add(int(pid))
    return pids


def _runs_nndl(pid):
    """True while ``pid`` runs, and runs nndl where /proc tells (a zombie or a reused pid
    does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if not proc.is_dir():
        return True
    try:
        return b"nndl" in (proc / "cmdline").read_bytes()
    except OSError:
        return False
