"""Running a student's code in a child process, within limits, for plain data.

One child per task: a fresh ``python -I -B`` running ``_child.py`` (which never imports nndl)
in a scratch working folder of its own, with a minimal environment, one BLAS thread, an
address-space limit, a CPU-time limit and a file-size limit (``setrlimit`` in the child,
before NumPy loads). The parent keeps the wall-clock limit: at the deadline, or when the run
is cancelled (Ctrl-C), it kills the child's whole process group; the child ends itself 5 s
past the deadline too, should the parent be gone. On Linux, where unprivileged user
namespaces are allowed, the child runs under ``unshare --user --map-root-user --net --pid
--fork --kill-child``: it has no network (a network namespace with only a loopback that is
down) and every process it starts dies with it. Elsewhere, or where ``unshare`` fails, the
network is not blocked and :func:`isolation` says so (the command prints it).

This bounds accidents (infinite loops, runaway memory, stray files in the working folder,
network calls); it is not a sandbox against a hostile program, which can still read and
write the user's files. Grade hostile code in a container.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nndl.grading.wire import WireError, decode

CHILD = Path(__file__).with_name("_child.py")
MAX_RESULT_BYTES = 64 * 2**20
FILE_SIZE_LIMIT = 64 * 2**20  # of any one file the child writes
OUTPUT_LINES = 5
CANCEL_POLL = 0.5  # seconds between looks at the cancel flag while a child runs


@dataclass(frozen=True)
class Limits:
    """A task's limits: wall-clock seconds and address space in MB."""

    seconds: float
    memory_mb: int


@dataclass(frozen=True)
class Isolation:
    """How children are isolated here: the command prefix and a sentence for the output."""

    prefix: tuple[str, ...]
    network_blocked: bool
    note: str


@dataclass
class Outcome:
    """What one child run gave: ``values`` when ``ok``; else ``kind`` (``import``,
    ``missing``, ``exception``, ``memory``, ``timeout``, ``crash``, ``no_result``), a
    one-line ``message``, the student's ``traceback`` lines and the step's ``label``."""

    ok: bool
    values: dict[str, Any] = field(default_factory=dict)
    kind: str = ""
    message: str = ""
    traceback: list[str] = field(default_factory=list)
    label: str = ""
    seconds: float = 0.0
    output: list[str] = field(default_factory=list)  # the last lines the code printed
    parts: dict[str, Outcome] = field(default_factory=dict)  # a batch's, by task id


_probe_lock = threading.Lock()
_isolation: Isolation | None = None


def isolation() -> Isolation:
    """The isolation this machine allows (probed once per process)."""
    global _isolation
    with _probe_lock:
        if _isolation is None:
            _isolation = _probe()
        return _isolation


def _probe() -> Isolation:
    if not sys.platform.startswith("linux"):
        return Isolation((), False, f"network not blocked: namespaces are Linux's, this is "
                         f"{sys.platform}; submissions run with time and memory limits only")
    unshare = shutil.which("unshare")
    if unshare is None:
        return Isolation((), False, "network not blocked: util-linux's unshare is not "
                         "installed; submissions run with time and memory limits only")
    prefix = (unshare, "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child")
    try:
        probe = subprocess.run([*prefix, sys.executable, "-I", "-c", ""], capture_output=True,
                               text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = str(exc)
    else:
        if probe.returncode == 0:
            return Isolation(prefix, True, "network blocked (each submission runs in network "
                             "and process namespaces of its own)")
        reason = " ".join(probe.stderr.split())[-200:] or f"status {probe.returncode}"
    return Isolation((), False, f"network not blocked: unshare cannot create namespaces here "
                     f"({reason}); submissions run with time and memory limits only")


def run_job(job: dict, limits: Limits, cancel: threading.Event | None = None) -> Outcome:
    """Run ``job`` (see ``_child.py``) in a fresh child within ``limits``; setting ``cancel``
    ends it early (``kind`` ``not_run``)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nndl-check-", ignore_cleanup_errors=True) as tmp:
        own = Path(tmp)
        scratch = own / "work"
        scratch.mkdir()
        result = own / "result.json"
        output = own / "output.txt"
        job = {**job, "result": str(result), "output": str(output)}
        child_limits = {"memory": limits.memory_mb * 2**20, "fsize": FILE_SIZE_LIMIT,
                        "cpu": int(limits.seconds) + 2, "wall": int(limits.seconds) + 5}
        command = [*isolation().prefix, sys.executable, "-I", "-B", str(CHILD),
                   json.dumps(child_limits)]
        with open(output, "wb") as log:
            proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=log, stderr=log,
                                    cwd=scratch, env=child_env(scratch),
                                    start_new_session=os.name == "posix")
            ended = _wait(proc, json.dumps(job).encode(), limits.seconds, cancel)
        if ended == "cancelled":
            return Outcome(False, kind="not_run", message="not run: interrupted",
                           seconds=time.monotonic() - started)
        outcome = _read(result, proc.returncode, ended == "timeout", limits)
        outcome.output = _tail(output)
    outcome.seconds = time.monotonic() - started
    return outcome


def child_env(scratch: Path) -> dict[str, str]:
    """A small environment: nothing of the user's but the basics; one BLAS thread."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT",
            "XDG_CACHE_HOME", "MPLCONFIGDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(TMPDIR=str(scratch), TEMP=str(scratch), TMP=str(scratch), MPLBACKEND="Agg",
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _wait(proc: subprocess.Popen, job: bytes, seconds: float,
          cancel: threading.Event | None) -> str:
    """Send the job and wait: ``"done"``, or ``"timeout"`` / ``"cancelled"`` after killing
    the child with every process of its group."""
    deadline = time.monotonic() + seconds
    sent: bytes | None = job
    while True:
        left = deadline - time.monotonic()
        try:
            proc.communicate(sent, timeout=max(0.0, min(left, CANCEL_POLL)))
            return "done"
        except subprocess.TimeoutExpired:
            sent = None  # sent once: communicate keeps writing it
            if cancel is not None and cancel.is_set():
                ended = "cancelled"
            elif time.monotonic() >= deadline:
                ended = "timeout"
            else:
                continue
        except BrokenPipeError:  # the child died before reading its job
            proc.wait()
            return "done"
        _kill(proc)
        proc.communicate()
        return ended


def _kill(proc: subprocess.Popen) -> None:
    """Kill a child that has not been waited for (so its process group is still its own)."""
    if os.name == "posix":
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    else:  # pragma: no cover - Windows
        proc.kill()


def _read(result: Path, returncode: int, timed_out: bool, limits: Limits) -> Outcome:
    if timed_out:
        return Outcome(False, kind="timeout", message=f"timed out after {limits.seconds:g} s")
    if returncode < 0 and -returncode == getattr(signal, "SIGXCPU", None):
        return Outcome(False, kind="timeout", message=f"used more than {limits.seconds:g} s "
                       "of CPU time")
    try:
        size = result.stat().st_size
    except FileNotFoundError:
        return Outcome(False, kind="crash" if returncode else "no_result",
                       message=_ended(returncode))
    if size > MAX_RESULT_BYTES:
        return Outcome(False, kind="no_result", message="sent back more than "
                       f"{MAX_RESULT_BYTES // 2**20} MB")
    try:
        raw = json.loads(result.read_text(encoding="utf-8"))
        return _outcome(raw, limits)
    except (ValueError, UnicodeDecodeError) as exc:  # WireError is a ValueError
        return Outcome(False, kind="no_result", message=f"sent back no readable result "
                       f"({exc}); {_ended(returncode)}")


def _outcome(raw: Any, limits: Limits, batch: bool = True) -> Outcome:
    """The child's result; a batch's holds one result per part (``parts``), read alike."""
    if not isinstance(raw, dict) or not isinstance(raw.get("ok"), bool):
        raise WireError("not a result")
    if raw["ok"]:
        values = raw.get("values")
        if not isinstance(values, dict):
            raise WireError("no values")
        parts = raw.get("parts", {}) if batch else {}
        if not isinstance(parts, dict):
            raise WireError("bad parts")
        outcome = Outcome(True, values={str(k): decode(v) for k, v in values.items()},
                          parts={str(k): _outcome(v, limits, False) for k, v in parts.items()})
        outcome.seconds = _seconds(raw)
        return outcome
    kind = raw.get("kind")
    if kind not in ("import", "missing", "exception", "memory"):
        raise WireError("an unknown kind of failure")
    trace = raw.get("traceback", [])
    if not (isinstance(trace, list) and all(isinstance(line, str) for line in trace)):
        raise WireError("a bad traceback")
    message = str(raw.get("message", ""))[:500]
    if kind == "memory":
        message = f"ran out of memory (limit {limits.memory_mb} MB): {message}"
    output = raw.get("output", [])
    if not (isinstance(output, list) and all(isinstance(line, str) for line in output)):
        raise WireError("a bad output")
    return Outcome(False, kind=kind, message=message, traceback=[t[:300] for t in trace[-40:]],
                   label=str(raw.get("label", ""))[:200], seconds=_seconds(raw),
                   output=[line[:200] for line in output[-OUTPUT_LINES:]])


def _seconds(raw: dict) -> float:
    """A part's time as its child measured it (0 when absent or not a plain number)."""
    seconds = raw.get("seconds", 0.0)
    ok = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
    return float(seconds) if ok and 0 <= seconds < 1e6 else 0.0


def _ended(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if name == "SIGKILL":
            return "the process was killed (SIGKILL: out of memory?)"
        if name == "SIGXFSZ":
            return (f"the process was killed for writing a file over "
                    f"{FILE_SIZE_LIMIT // 2**20} MB")
        return f"the process was killed by {name}"
    return f"the process ended with status {returncode} without a result"


def _tail(output: Path) -> list[str]:
    """The last lines the child printed (at most ~4 kB read)."""
    try:
        with open(output, "rb") as f:
            f.seek(max(f.seek(0, os.SEEK_END) - 4096, 0))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line[:200] for line in text.splitlines()[-OUTPUT_LINES:]]
