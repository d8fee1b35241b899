"""How a process is told to stop, handled one way: as Ctrl-C.

* Ctrl-C (SIGINT) raises ``KeyboardInterrupt``: Python's own handler.
* Within :func:`stop_signals_like_ctrl_c` (the ``nndl`` command line), SIGTERM (what
  ``kill``, ``timeout``, systemd and Slurm send) and SIGHUP (a closed terminal or SSH
  session) raise :class:`Terminated`, a ``KeyboardInterrupt``: every ``except
  KeyboardInterrupt`` that keeps a run's work keeps it for them too. Platforms without
  SIGHUP (Windows) handle SIGTERM alone; SIGKILL cannot be handled anywhere.
* Within :func:`held_stops` each of them only raises a flag, which the code checks where
  stopping keeps a consistent state (the training loop: after each whole step; the start of
  a run: once its folder records it). A second signal stops at once.

Handlers are Python's: they run in the main thread, and only there do these helpers change
anything (elsewhere they are no-ops).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

#: the signals besides SIGINT that stop a command like Ctrl-C, where the platform has them
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """A stop by SIGTERM or SIGHUP; handled wherever Ctrl-C is (it is a
    ``KeyboardInterrupt``). ``signal_name`` e.g. ``"SIGTERM"``; ``exit_status`` the
    shell's convention, 128 + the signal's number (143 for SIGTERM, 129 for SIGHUP)."""

    run_status = "terminated"

    def __init__(self, signum: int):
        self.signal_name = signal.Signals(signum).name
        self.exit_status = 128 + int(signum)
        super().__init__(f"terminated by {self.signal_name}")


def stop_exception(signum: int) -> KeyboardInterrupt:
    """The exception that the stop signal ``signum`` raises."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


_pending: list[int] = []  # signals that came while held, not yet raised
_holds = [0]  # nesting depth of held_stops in the main thread


def _stop(signum, frame):
    """The handler of every stop signal that nndl handles: raise its exception, or, while
    held, note it (a second one while held raises at once)."""
    if _holds[0] and not _pending:
        _pending.append(signum)
        return
    _pending.clear()
    raise stop_exception(signum)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def stop_signals_like_ctrl_c() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` instead of ending the
    process at once (only those whose handler is the default; restored on exit)."""
    replaced = {}
    if _main_thread():
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) is signal.SIG_DFL:
                replaced[signum] = signal.signal(signum, _stop)
    try:
        yield
    finally:
        for signum, handler in replaced.items():
            signal.signal(signum, handler)


class HeldStops:
    """What :func:`held_stops` yields: whether a stop came, and the means to act on it."""

    def __init__(self):
        self.active = False
        self._sigint = None  # the SIGINT handler replaced, to restore

    def requested(self) -> bool:
        """Whether a stop signal came while held (and has not been raised yet)."""
        return self.active and bool(_pending)

    def stop_if_requested(self) -> None:
        """Raise the exception of the stop signal that came while held, if one did."""
        if self.requested():
            raise stop_exception(_pending.pop())

    def _hold(self):
        if not _main_thread():
            return
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._sigint = signal.signal(signal.SIGINT, _stop)
        _holds[0] += 1
        self.active = True

    def release(self, raise_pending: bool = True) -> None:
        """Stop holding: from now on a stop signal raises at once, and one that came
        meanwhile is raised now (dropped with ``raise_pending=False``)."""
        if not self.active:
            return
        self.active = False
        _holds[0] -= 1
        if self._sigint is not None:
            signal.signal(signal.SIGINT, self._sigint)
            self._sigint = None
        if _holds[0] == 0 and _pending:
            signum = _pending.pop()
            _pending.clear()
            if raise_pending:
                raise stop_exception(signum)


@contextlib.contextmanager
def held_stops() -> Iterator[HeldStops]:
    """Within the block Ctrl-C (where Python's own handler is installed) and the signals of
    :func:`stop_signals_like_ctrl_c` only raise a flag; the block checks it with
    ``held.stop_if_requested()`` where stopping is safe, and one that came after the last
    check is raised on leaving the block (or at ``held.release()``). When an error leaves
    the block, a flag still up is dropped: the error says what happened."""
    held = HeldStops()
    held._hold()
    try:
        yield held
    except BaseException:
        held.release(raise_pending=False)
        raise
    held.release()


__all__ = ["STOP_SIGNALS", "HeldStops", "Terminated", "held_stops", "stop_exception",
           "stop_signals_like_ctrl_c"]
