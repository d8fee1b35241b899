"""A study in a database (``postgresql://...``, any SQLAlchemy URL): Optuna's RDBStorage
that waits out an outage.

A database that stops answering (restarted, failed over, the network down for a while)
is waited out: every storage call, and the PostgreSQL advisory lock of
:func:`nndl.search.storage.ask_lock`, is retried with backoff (0.5 s, doubling to at most
8 s) for up to :data:`STORAGE_WAIT` seconds (``--storage-wait``), with a one-line warning
when the wait begins; past that, one :class:`~nndl.search.storage.StorageError` naming
the database (password hidden). Only errors of a database that does not answer are
retried (a refused or lost connection, a server shutting down); an error it answered
(bad data, a constraint) is raised at once. Opening the storage does not wait: a wrong
URL fails at once.

A call retried after its commit reached the database but its answer was lost may apply
twice; Optuna's calls are single updates, so the second either changes nothing or fails
as an update of a finished trial, which a worker drops (never a wrong result).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import time
import warnings

from optuna.storages import RDBStorage
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from nndl.search.storage import POSTGRES_TIMEOUTS, StorageError, redact

#: Seconds a search waits out a database that does not answer (``--storage-wait``).
STORAGE_WAIT = 60.0
FIRST_PAUSE, LONGEST_PAUSE = 0.5, 8.0


def is_outage(exc):
    """True for the error of a database that does not answer (Optuna wraps it in a
    StorageInternalError "... invalid data in the commit ..."), not of one that did."""
    for error in (exc, exc.__cause__):
        if isinstance(error, (OperationalError, InterfaceError)) or \
                (isinstance(error, DBAPIError) and error.connection_invalidated):
            return True
    return False


def reason(exc):
    """The first line of the database's own message for ``exc``."""
    error = exc.__cause__ if isinstance(exc.__cause__, DBAPIError) else exc
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return text[0] if text else type(error).__name__


def patiently(call, wait, name):
    """``call()``, retried with backoff while the database does not answer, for up to
    ``wait`` seconds; then a StorageError naming the database ``name``."""
    deadline, pause = None, FIRST_PAUSE
    while True:
        try:
            return call()
        except Exception as exc:
            if not is_outage(exc):
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + wait
                if wait > 0:
                    warnings.warn(f"the study storage {name} does not answer "
                                  f"({reason(exc)}); waiting up to {wait:g} s for it",
                                  stacklevel=3)
            if now >= deadline:
                raise StorageError(f"the study storage {name} did not answer for {wait:g} s "
                                   f"({reason(exc)}); the trials it ran run again on "
                                   "--resume (--storage-wait sets how long to wait)") from None
            time.sleep(min(pause, deadline - now))
            pause = min(2 * pause, LONGEST_PAUSE)


class PatientRDBStorage(RDBStorage):
    """Optuna's RDBStorage whose calls wait out an outage (:func:`patiently`) for up to
    ``wait`` seconds; ``url`` as the user gave it names the database in messages."""

    def __init__(self, url, *args, wait=STORAGE_WAIT, given_url=None, **kwargs):
        super().__init__(url, *args, **kwargs)  # connects now, without waiting
        self.name, self.wait = redact(given_url or url), wait


def _waits(method):
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        wait = getattr(self, "wait", None)  # None while RDBStorage.__init__ runs
        if wait is None:
            return method(self, *args, **kwargs)
        return patiently(lambda: method(self, *args, **kwargs), wait, self.name)
    return call


# Every call that reaches the database: the storage interface, and the private calls that
# Optuna's cache in front of an RDBStorage (``_CachedStorage``) makes.
_RETRIED = ("check_trial_is_updatable", "create_new_study", "create_new_trial",
            "delete_study", "get_all_studies", "get_all_trials", "get_best_trial",
            "get_n_trials", "get_study_directions", "get_study_id_from_name",
            "get_study_name_from_id", "get_study_system_attrs", "get_study_user_attrs",
            "get_trial", "get_trial_id_from_study_id_trial_number", "get_trial_number_from_id",
            "get_trial_param", "get_trial_params", "get_trial_system_attrs",
            "get_trial_user_attrs", "record_heartbeat", "set_study_system_attr",
            "set_study_user_attr", "set_trial_intermediate_value", "set_trial_param",
            "set_trial_state_values", "set_trial_system_attr", "set_trial_user_attr",
            "_create_new_trial", "_set_trial_param", "_get_best_trial_id", "_get_trials",
            "_get_stale_trial_ids")
for _name in _RETRIED:
    setattr(PatientRDBStorage, _name, _waits(getattr(RDBStorage, _name)))


@contextlib.contextmanager
def advisory_lock(storage, study_name):
    """A PostgreSQL advisory lock for ``study_name`` on a connection of its own, taken
    patiently (a lost connection has released it anyway: its release is not retried)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)
    engine = create_engine(storage.url, poolclass=NullPool, connect_args=POSTGRES_TIMEOUTS)
    wait, name = getattr(storage, "wait", STORAGE_WAIT), getattr(storage, "name", "")

    def lock():
        conn = engine.connect()
        try:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        except BaseException:
            conn.close()
            raise
        return conn

    try:
        conn = patiently(lock, wait, name or redact(storage.url))
        try:
            yield
        finally:
            with contextlib.suppress(OperationalError, InterfaceError):
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            with contextlib.suppress(OperationalError, InterfaceError):
                conn.close()
    finally:
        engine.dispose()
