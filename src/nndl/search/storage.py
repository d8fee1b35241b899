"""Where a study lives.

* default: an Optuna journal file in the run folder (``study.journal``), safe
  for several processes on one machine;
* ``postgresql://...`` (or any SQLAlchemy URL): Optuna's RDBStorage with
  heartbeats, so a killed worker's trial is marked FAIL instead of hanging, which
  waits out a database outage (:mod:`nndl.search.database`).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import re
import socket
import warnings
from pathlib import Path

# Seconds between heartbeats of a running trial, and without one before it counts as dead.
# $NNDL_HEARTBEAT_INTERVAL / $NNDL_GRACE_PERIOD override them (the tests use short ones).
HEARTBEAT_INTERVAL = int(os.environ.get("NNDL_HEARTBEAT_INTERVAL", 5))
GRACE_PERIOD = int(os.environ.get("NNDL_GRACE_PERIOD", 20))
# libpq's limits on a server that does not answer: seconds to connect, and keepalives that
# find a connection dead after about 10 + 3 x 5 s of silence.
POSTGRES_TIMEOUTS = {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 10,
                     "keepalives_interval": 5, "keepalives_count": 3}
# A worker tags each trial with this user attribute right after its first heartbeat.
WORKER_ATTR = "worker"
# A failed trial's parameters are run again, as a new trial, up to this many attempts in all.
MAX_ATTEMPTS = 3


def worker_id():
    return f"{socket.gethostname()}:{os.getpid()}"


class StorageError(RuntimeError):
    """A study storage that cannot be opened; the message names it, password hidden."""


def redact(url):
    """``url`` with its password (``user:password@``) shown as ``***``."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", str(url))


def open_storage(url=None, run_dir=None, create=True, wait=None):
    """An Optuna storage for ``url``, or the journal file of ``run_dir``. With ``create``
    False a journal file must already exist: opening a study creates no file. A database
    that stops answering is waited out for ``wait`` seconds (default
    :data:`nndl.search.database.STORAGE_WAIT`)."""
    if url is None:
        if run_dir is None:
            raise ValueError("a study needs --storage, or --out with the run folder of a "
                             "search (its study.journal)")
        return _journal(Path(run_dir) / "study.journal", create)
    if url.endswith(".journal"):
        return _journal(Path(url), create)
    return _rdb(url, create, wait)


def _sqlite_file_exists(url):
    """An SQLite database file must exist to hold a study (SQLite would create it)."""
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if database and database != ":memory:" and not Path(database).is_file():
        raise ValueError(f"no study there: the database file {database} does not exist")


def _journal(path, create):
    from optuna.storages import JournalStorage

    from nndl.search.journal import JournalFile

    if not create and not path.is_file():
        raise ValueError(f"no study there: {path} does not exist (give --out the run folder "
                         "of a search, or --storage)")
    return JournalStorage(JournalFile(path))


def _rdb(url, create=True, wait=None):
    """Optuna's RDBStorage with heartbeats, waiting out outages for ``wait`` seconds
    (:class:`nndl.search.database.PatientRDBStorage`); it connects (and creates its
    tables) at once, so an unreachable database fails here, as a StorageError naming the
    URL. Without ``create`` an SQLite file must exist already."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    from nndl.search.database import STORAGE_WAIT, PatientRDBStorage

    given = url  # named in messages as the user wrote it
    if url.startswith("postgresql://"):  # psycopg 3 (nndl[postgres]), on any SQLAlchemy 2
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    engine = {"pool_pre_ping": True}
    if not url.startswith("sqlite"):
        engine.update(pool_size=1, max_overflow=1, pool_recycle=1800)
    if url.startswith("postgresql"):  # a server that stops answering is an error, not a hang
        engine["connect_args"] = POSTGRES_TIMEOUTS
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        if not create and url.startswith("sqlite"):
            _sqlite_file_exists(url)
        with warnings.catch_warnings():  # heartbeats are "experimental": no warning per run
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return PatientRDBStorage(url, engine_kwargs=engine,
                                     heartbeat_interval=HEARTBEAT_INTERVAL,
                                     grace_period=GRACE_PERIOD, given_url=given,
                                     wait=STORAGE_WAIT if wait is None else wait)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
        if isinstance(exc, ImportError):
            reason += " (PostgreSQL needs its driver: pip install 'nndl[postgres]')"
        reason = reason.replace(url, redact(given)).replace(given, redact(given))
        raise StorageError(f"cannot open the study storage {redact(given)}: {reason}") from None


def backend(storage):
    """The storage behind Optuna's in-process cache wrapper (``study._storage``)."""
    return getattr(storage, "_backend", storage)


@contextlib.contextmanager
def ask_lock(storage, study_name, lock_dir):
    """Held while a worker counts a study's trials and asks for new ones, so that workers
    together never ask for more trials than the study wants: a PostgreSQL advisory lock
    (on a connection of its own) for a shared database, and a lock on the run folder
    itself (``flock`` of the folder: no lock file is left), which local workers share, in
    every case."""
    Path(lock_dir).mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with _advisory_lock(backend(storage), study_name):
            yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def _advisory_lock(storage, study_name):
    if not str(getattr(storage, "url", "")).startswith("postgresql"):
        yield
        return
    from nndl.search.database import advisory_lock

    with advisory_lock(storage, study_name):
        yield


def has_heartbeat(storage):
    from optuna.storages import RDBStorage

    inner = backend(storage)
    return isinstance(inner, RDBStorage) and inner.heartbeat_interval is not None


def fail_stale_running_trials(study):
    """Mark RUNNING trials FAIL: with heartbeats, only those whose worker stopped beating;
    without (journal), all of them — call this only when no worker of the study runs
    (``--resume``)."""
    import optuna
    from optuna.trial import TrialState

    storage = study._storage
    if has_heartbeat(storage):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        # Optuna never finds a trial stale that has no heartbeat at all: one whose worker
        # died between ask() and its first beat. Untagged and older than the grace period
        # means exactly that (a live worker tags its trials within milliseconds).
        now = datetime.datetime.now()
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            age = (now - trial.datetime_start).total_seconds() if trial.datetime_start else 0
            if WORKER_ATTR not in trial.user_attrs and age > GRACE_PERIOD:
                _fail(storage, trial, "its worker stopped before its first heartbeat")
        return None
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        _fail(storage, trial, "its worker stopped before it finished (resumed study)")
    return None


def fail_trials_of(study, reasons):
    """Mark FAIL the RUNNING trials of ``study`` held by worker processes of this machine
    that have exited: ``reasons`` maps each one's pid to the reason given. They run again
    (:func:`requeue_failed_trials`)."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        name, _, pid = str(trial.user_attrs.get(WORKER_ATTR, "")).rpartition(":")
        if name == host and pid.isdigit() and int(pid) in reasons:
            _fail(study._storage, trial, reasons[int(pid)])


def mark_stopped(storage, trial, stopped_by):
    """Mark ``trial`` FAIL because its worker was told to stop (``stopped_by``: a signal's
    name or "Ctrl-C"): tagged ``stopped``, it runs again without counting as a failed
    attempt. Where the storage cannot be written now, the trial stays RUNNING, and the next
    ``--resume`` (or, with heartbeats, another worker) fails it as stale."""
    try:
        storage.set_trial_user_attr(trial._trial_id, "stopped", stopped_by)
        _fail(storage, trial, f"stopped by {stopped_by} before it finished; it runs again "
              "when the search goes on (--resume)")
    except Exception:  # noqa: BLE001 - stopping goes on; the trial is failed later
        pass


def _fail(storage, trial, reason):
    import optuna

    try:
        storage.set_trial_user_attr(trial._trial_id, "reason", reason)
        storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass  # another worker finished or failed it meanwhile


def requeue_failed_trials(study, limit):
    """Enqueue the parameters (and initialization seed) of FAIL trials not yet run again,
    as new trials tagged ``retry_of`` (Optuna's ``enqueue_trial``), so that a trial killed
    with its worker runs again, up to ``MAX_ATTEMPTS`` attempts (a trial ``stopped`` by a
    signal does not count as one); at most ``limit`` trials wait in the queue. Call it
    under :func:`ask_lock`, so that two workers never enqueue the same trial. A trial
    failed before its configuration was drawn (no ``init_seed``) has nothing to run
    again."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    room = limit - sum(t.state == TrialState.WAITING for t in trials)
    for trial in trials:
        attempt = trial.user_attrs.get("attempt", 1)
        stopped = "stopped" in trial.user_attrs
        if room <= 0:
            return
        if trial.state != TrialState.FAIL or trial.number in retried \
                or "init_seed" not in trial.user_attrs \
                or (attempt >= MAX_ATTEMPTS and not stopped):
            continue
        study.enqueue_trial(trial.params, user_attrs={
            "retry_of": trial.number, "attempt": attempt if stopped else attempt + 1,
            "init_seed": trial.user_attrs["init_seed"]})
        room -= 1
