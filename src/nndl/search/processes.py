"""Local worker processes: they stop with the search that started them, and a resume
refuses to run beside one that is still alive.

``run_search`` starts its workers with ``$NNDL_SEARCH_PARENT`` set to its own pid. A
worker then asks Linux to send it SIGTERM when that parent dies (``prctl``
``PR_SET_PDEATHSIG``), and checks before every population that its parent is still
there: the portable fallback, which also covers a parent that died before ``prctl``.
SIGTERM makes a worker mark its unfinished trials for retry and exit
(:class:`nndl.search.engine.Worker`); a search told to stop sends it to its workers and
waits for them (:func:`stop_workers`).

A search's run folder records the process that runs it (``process`` in
``metrics.json``), so that :func:`run_state` tells a search that runs from one that was
killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from nndl._stops import held_stops

#: Seconds a stopping search waits for its workers to mark their trials and exit, before
#: it kills them.
STOP_WAIT = 60

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
    return {pid for pid in _local_holders(trials, worker_attr) if _runs_nndl(pid)}


def dead_workers(trials, worker_attr):
    """Process ids on this machine that hold ``trials`` but have exited (or are zombies,
    or their pid now runs something other than nndl): a worker killed by SIGKILL, the
    out-of-memory killer or a crash. Never this process. A trial held by a process of
    another machine, or untagged, is not counted (nothing here can tell whether it runs)."""
    return {pid for pid in _local_holders(trials, worker_attr)
            if pid != os.getpid() and not _runs_nndl(pid)}


def _local_holders(trials, worker_attr):
    host, pids = socket.gethostname(), set()
    for trial in trials:
        name, _, pid = str(trial.user_attrs.get(worker_attr, "")).rpartition(":")
        if name == host and pid.isdigit():
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


def run_local_workers(storage_url, study_name, folder, workers, storage_wait=None):
    """Start ``workers`` processes of ``nndl search worker`` and wait for them all; returns
    each one's exit status by pid. Told to stop (Ctrl-C, SIGTERM, SIGHUP), it stops them
    (:func:`stop_workers`) and raises on.

    BLAS threads are shared out so that the workers do not oversubscribe the cores; the
    workers die with this process (see the module's docstring).
    """
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
           "MKL_NUM_THREADS": threads, PARENT_ENV: str(os.getpid())}
    storage = storage_url or str(Path(folder) / "study.journal")
    procs = []
    try:
        for i in range(workers):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "nndl", "search", "worker", "--storage", storage,
                 "--study", study_name, "--out", str(folder), "--worker-index", str(i),
                 *([] if storage_wait is None else ["--storage-wait", str(storage_wait)])],
                env=env))
        return {p.pid: p.wait() for p in procs}
    except KeyboardInterrupt:
        stop_workers(procs)
        raise


def stop_workers(procs, wait=STOP_WAIT):
    """Send SIGTERM to each of ``procs`` still running, so that it marks its unfinished
    trials for retry and exits, and wait up to ``wait`` seconds for them all; kill those
    still running then. A stop signal meanwhile is dropped (a second one stops at once)."""
    with held_stops() as held:
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + wait
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        held.release(raise_pending=False)


def describe_exit(code):
    """A worker process's exit status in words: "was killed by SIGKILL" (-9), "was stopped
    by SIGTERM" (143, the shell's 128 + 15), "exited with status 1"."""
    for number, verb in ((-code, "was killed by"), (code - 128, "was stopped by")):
        with contextlib.suppress(ValueError):
            if number > 0:
                return f"{verb} {signal.Signals(number).name}"
    return f"exited with status {code}"


def run_state(folder):
    """(state, words): how the search of run folder ``folder`` stands, from its
    metrics.json. ``state`` is None (no metrics.json), ``"complete"``, ``"running"`` (its
    process runs on this machine), ``"killed"`` (it says "running" but its process is gone:
    SIGKILL, a crash, a power cut), ``"unknown"`` (it says "running" on another machine),
    ``"stopped"`` (Ctrl-C, SIGTERM, SIGHUP) or ``"failed"``; ``words`` completes "the
    search in FOLDER ..." ("" when complete)."""
    try:
        metrics = json.loads((Path(folder) / "metrics.json").read_text())
        status = metrics["status"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, ""
    when = metrics.get("finished", "?")
    if status == "complete":
        return "complete", ""
    if status == "running":
        return _running_state(str(metrics.get("process", "")))
    if status == "terminated":
        return "stopped", f"was stopped by {metrics.get('signal', 'a signal')} at {when}"
    if status == "interrupted":
        return "stopped", f"was interrupted (Ctrl-C) at {when}"
    return "failed", f"{status} at {when}: {metrics.get('error', 'no reason recorded')}"


def _running_state(process):
    host, _, pid = process.rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and _runs_nndl(int(pid)):
        return "running", f"is still running (process {pid})"
    if host and host != socket.gethostname():
        return "unknown", (f"says it runs on {host} (process {pid}): it still runs there, "
                           "or it was killed")
    return "killed", ("was killed (SIGKILL, a crash or a power cut): its metrics.json still "
                      "says running")
