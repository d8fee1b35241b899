"""Where a study lives.

* default: an Optuna journal file in the run folder (``study.journal``), safe
  for several processes on one machine;
* ``postgresql://...`` (or any SQLAlchemy URL): Optuna's RDBStorage with
  heartbeats, so a killed worker's trial is marked FAIL instead of hanging.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import os
import socket
from pathlib import Path

# Seconds between heartbeats of a running trial, and without one before it counts as dead.
# $NNDL_HEARTBEAT_INTERVAL / $NNDL_GRACE_PERIOD override them (the tests use short ones).
HEARTBEAT_INTERVAL = int(os.environ.get("NNDL_HEARTBEAT_INTERVAL", 5))
GRACE_PERIOD = int(os.environ.get("NNDL_GRACE_PERIOD", 20))
# A worker tags each trial with this user attribute right after its first heartbeat.
WORKER_ATTR = "worker"


def worker_id():
    return f"{socket.gethostname()}:{os.getpid()}"


def open_storage(url=None, run_dir=None):
    """An Optuna storage for ``url``, or the journal file of ``run_dir``."""
    import optuna
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    if url is None:
        if run_dir is None:
            raise ValueError("a study needs --storage or a run folder for its journal file")
        path = str(Path(run_dir) / "study.journal")
        return JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    if url.endswith(".journal"):
        return JournalStorage(JournalFileBackend(url, lock_obj=JournalFileOpenLock(url)))
    engine = {"pool_pre_ping": True}
    if not url.startswith("sqlite"):
        engine.update(pool_size=1, max_overflow=1, pool_recycle=1800)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_INTERVAL,
                      grace_period=GRACE_PERIOD)


def backend(storage):
    """The storage behind Optuna's in-process cache wrapper (``study._storage``)."""
    return getattr(storage, "_backend", storage)


@contextlib.contextmanager
def ask_lock(storage, study_name, lock_dir):
    """Held while a worker counts a study's trials and asks for new ones, so that workers
    together never ask for more trials than the study wants: a PostgreSQL advisory lock
    (on a connection of its own) for a shared database, and a file lock in the run folder,
    which local workers share, in every case."""
    Path(lock_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(lock_dir) / ".ask.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            with _advisory_lock(backend(storage), study_name):
                yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _advisory_lock(storage, study_name):
    url = getattr(storage, "url", "")
    if not str(url).startswith("postgresql"):
        yield
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    finally:
        engine.dispose()


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


def _fail(storage, trial, reason):
    import optuna

    try:
        storage.set_trial_user_attr(trial._trial_id, "reason", reason)
        storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass  # another worker finished or failed it meanwhile
