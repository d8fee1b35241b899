"""The study journal file (``study.journal``): Optuna's journal, made to survive a torn write.

Optuna appends one JSON record per line. A write cut short (a full disk, a process killed
mid-write, a file truncated by hand) leaves a last line without its newline; Optuna's reader
skips it, but its next append lands on the same line, and from then on every read fails
(``Expecting ':' delimiter``): the study is lost. :class:`JournalFile` instead

* reads up to the last complete record (a torn last line is not a record yet);
* takes the writers' lock as an advisory lock (``flock``) on ``study.journal.lock``
  (:func:`nndl._atomic.file_lock`), removed after each append: a writer killed while it
  holds the lock (SIGKILL) loses it with its process. Optuna's own lock (a lock file
  that only its holder removes) would stay behind, and every other writer would stall
  until Optuna, 30 s later, forcibly released it;
* appends whole records: a stop signal (Ctrl-C, SIGTERM, SIGHUP) waits until the write is
  done (:func:`nndl._stops.held_stops`);
* before each append, under the writers' lock, moves a torn tail aside
  into ``study.journal.torn-<offset>`` and cuts the file back to its last complete record,
  with a one-line warning naming both files;
* takes back a write that fails (a full disk) by cutting the file to its size before it, so
  that a failed write leaves no torn record either; the error names the file;
* reads a journal that an older nndl damaged: a line holding a torn record with a complete
  one appended after it gives the complete one (with a one-line warning);
* reports any other damaged line as an error naming the file and the line.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from optuna.storages.journal import JournalFileBackend

from nndl._atomic import file_lock, named
from nndl._stops import held_stops

# Every record Optuna writes starts so (``{"op_code": ..., "worker_id": ..., ...}``).
RECORD_START = b'{"op_code":'


class JournalError(RuntimeError):
    """A study journal that cannot be read or written; the message names the file."""


#: the fields each kind of record (its ``op_code``: Optuna's ``JournalOperation``) has,
#: besides ``op_code`` and ``worker_id``: what Optuna reads from it unconditionally
_RECORD_FIELDS = {
    0: ("study_name", "directions"),  # CREATE_STUDY
    1: ("study_id",),  # DELETE_STUDY
    2: ("study_id", "user_attr"),  # SET_STUDY_USER_ATTR
    3: ("study_id", "system_attr"),  # SET_STUDY_SYSTEM_ATTR
    4: ("study_id", "datetime_start"),  # CREATE_TRIAL
    5: ("trial_id", "param_name", "param_value_internal", "distribution"),  # SET_TRIAL_PARAM
    6: ("trial_id", "state", "values"),  # SET_TRIAL_STATE_VALUES
    7: ("trial_id", "step", "intermediate_value"),  # SET_TRIAL_INTERMEDIATE_VALUE
    8: ("trial_id", "user_attr"),  # SET_TRIAL_USER_ATTR
    9: ("trial_id", "system_attr"),  # SET_TRIAL_SYSTEM_ATTR
    10: (),  # DISCARD_TRIALS (written by Rustuna; Optuna skips it)
}


def record_problem(record):
    """Why ``record`` (a parsed journal line) is no record Optuna writes (its
    ``op_code`` unknown, a field it needs missing), or "" when it looks like one."""
    if not isinstance(record, dict) or "op_code" not in record:
        return "no op_code"
    op = record["op_code"]
    if isinstance(op, bool) or not isinstance(op, int) or op not in _RECORD_FIELDS:
        return f"unknown op_code {op!r}"
    missing = [f for f in ("worker_id", *_RECORD_FIELDS[op]) if f not in record]
    return f"op_code {op} without {', '.join(missing)}" if missing else ""


class JournalFile(JournalFileBackend):
    """Optuna's :class:`~optuna.storages.journal.JournalFileBackend` with the guarantees
    of this module's docstring; its records are Optuna's, its writers' lock is nndl's."""

    def __init__(self, file_path):
        try:
            super().__init__(str(file_path))
        except OSError as exc:
            raise named(exc, file_path) from None
        self.path = Path(file_path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._glued_noted = set()

    # -- reading -------------------------------------------------------------
    def read_logs(self, log_number_from):
        """The records from number ``log_number_from`` on, up to the last complete one (a
        last line without its newline is being written, or torn: not a record yet). Line
        offsets are kept as Optuna's reader keeps them, so later reads start where the
        last one ended."""
        offsets = self._log_number_offset
        number = log_number_from if log_number_from in offsets else 0
        try:
            f = open(self.path, "rb")
        except OSError as exc:
            raise named(exc, self.path) from None
        with f:
            size = os.fstat(f.fileno()).st_size  # what another writer adds later waits
            offset = offsets[number]
            f.seek(offset)
            for line in f:
                if offset + len(line) > size or not line.endswith(b"\n"):
                    break
                offset += len(line)
                number += 1
                offsets.setdefault(number, offset)
                if number > log_number_from:
                    yield self._record(line, number)

    def _record(self, line, number):
        """The record on line ``number`` (1-based), or an error naming the file and line."""
        try:
            record = json.loads(line)
        except ValueError as exc:
            record = self._glued_record(line, number)
            if record is None:
                raise JournalError(f"the study journal {self.path} is damaged at line "
                                   f"{number}: {exc}; it is no record Optuna wrote (keep a "
                                   "copy, then cut the file before that line to read the "
                                   "records before it)") from None
        problem = record_problem(record)
        if problem:
            raise JournalError(f"the study journal {self.path} is damaged at line {number}: "
                               f"it is no record Optuna wrote ({problem})")
        return record

    def _glued_record(self, line, number):
        """The complete record at the end of a line that starts with torn ones (what an
        older nndl appended after a torn write), else None."""
        start = line.rfind(RECORD_START)
        torn = line[:start]
        if start <= 0 or not (torn.startswith(RECORD_START) or RECORD_START.startswith(torn)):
            return None
        try:
            record = json.loads(line[start:])
        except ValueError:
            return None
        if number not in self._glued_noted:
            self._glued_noted.add(number)
            warnings.warn(f"line {number} of the study journal {self.path} holds an "
                          f"incomplete record ({start} bytes, a write cut short) with a "
                          "complete one appended after it: read the complete one",
                          stacklevel=2)
        return record

    # -- appending -----------------------------------------------------------
    def append_logs(self, logs):
        """Append ``logs`` under the writers' lock, after setting a torn tail aside; a failed
        write is cut back off and raised as an OSError naming the file."""
        data = ("\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n")
        with held_stops(), file_lock(self.lock_path, remove=True):  # a stop waits for it
            self._set_torn_tail_aside()
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            except OSError as exc:
                raise named(exc, self.path) from None
            try:
                size = os.fstat(fd).st_size
                try:
                    _write_all(fd, data.encode("utf-8"))
                    os.fsync(fd)
                except OSError as exc:
                    os.ftruncate(fd, size)  # frees what it took: no torn record stays
                    raise named(exc, self.path) from None
            finally:
                os.close(fd)

    def _set_torn_tail_aside(self):
        """Move the bytes after the last newline (a torn record) into a file of their own
        and cut the journal back to its last complete record. Call it under the lock."""
        with open(self.path, "r+b") as f:
            end = f.seek(0, os.SEEK_END)
            if end == 0:
                return
            f.seek(end - 1)
            if f.read(1) == b"\n":
                return
            start = _after_last_newline(f, end)
            f.seek(start)
            torn = f.read()
            aside = _new_file(self.path, f".torn-{start}", torn)
            f.truncate(start)
            f.flush()
            os.fsync(f.fileno())
        warnings.warn(f"the study journal {self.path} ended in an incomplete record "
                      f"({len(torn)} bytes, a write cut short: a full disk or a killed "
                      f"process); set it aside in {aside.name} and continued from the last "
                      "complete record", stacklevel=3)


def _after_last_newline(f, end, chunk=1 << 16):
    """The offset just after the last newline of file ``f`` (``end`` bytes long); 0 if none."""
    position = end
    while position > 0:
        step = min(chunk, position)
        position -= step
        f.seek(position)
        found = f.read(step).rfind(b"\n")
        if found >= 0:
            return position + found + 1
    return 0


def _new_file(path, suffix, data):
    """Write ``data`` to a new file ``<path><suffix>`` (``-2``, ``-3``, ... when taken)."""
    for n in range(1, 1000):
        aside = path.with_name(path.name + suffix + ("" if n == 1 else f"-{n}"))
        try:
            fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise named(exc, aside) from None
        try:
            _write_all(fd, data)
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            os.unlink(aside)
            raise named(exc, aside) from None
        os.close(fd)
        return aside
    raise FileExistsError(f"could not create a new file beside {path}")


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
