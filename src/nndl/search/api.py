"""``run_search`` and ``run_worker``: studies, resuming, local worker processes.

The study keeps its own definition (space, base configuration, settings) in
its user attributes, so any worker that can reach its storage — a local
process or ``nndl search worker`` on another machine — runs the same search.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from nndl._stops import held_stops
from nndl.config import RunConfig
from nndl.search.engine import Worker, make_pruner, make_sampler
from nndl.search.processes import (
    describe_exit,
    live_workers,
    run_local_workers,
    run_state,
    watch_parent,
)
from nndl.search.resume import Requested, resume_settings
from nndl.search.settings import SearchSettings, resolve_pruner
from nndl.search.space import (
    Dimension,
    base_point,
    default_space,
    grid_size,
    load_space,
    space_to_json,
)
from nndl.search.storage import (
    WORKER_ATTR,
    fail_stale_running_trials,
    fail_trials_of,
    has_heartbeat,
    open_storage,
    redact,
    worker_id,
)

__all__ = ["Dimension", "SearchSettings", "default_space", "load_space", "open_study",
           "run_search", "run_worker"]


def open_study(storage, settings, space=None, base=None, create=True, worker_index=0):
    """Create (``create``) or load the study; its definition lives in user attributes."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if create:
        names = optuna.get_all_study_names(storage)
        if settings.study in names:
            raise ValueError(f"study {settings.study!r} already exists in this storage; use "
                             "--resume to continue it or --study to name a new one")
        study = optuna.create_study(storage=storage, study_name=settings.study,
                                    direction="maximize", sampler=make_sampler(settings, space),
                                    pruner=make_pruner(settings))
        point = base_point(space, base) if settings.sampler != "grid" else None
        if point is not None:  # the first trial: what training without a search would run
            study.enqueue_trial(point)
        study.set_user_attr("nndl_space", space_to_json(space))
        study.set_user_attr("nndl_base", base.to_dict())
        study.set_user_attr("nndl_settings", vars(settings))
        return study, space, base, settings
    try:
        loaded = optuna.load_study(study_name=settings.study, storage=storage)
    except KeyError:
        raise ValueError(f"no study {settings.study!r} in this storage") from None
    attrs = loaded.user_attrs
    if "nndl_space" not in attrs:
        raise ValueError(f"study {settings.study!r} was not created by nndl search")
    space = {n: Dimension(**d) for n, d in attrs["nndl_space"].items()}
    base = RunConfig.from_dict(attrs["nndl_base"])
    stored = SearchSettings(**attrs["nndl_settings"])
    so_far = len(loaded.get_trials(deepcopy=False))
    study = optuna.load_study(study_name=settings.study, storage=storage,
                              sampler=make_sampler(stored, space, worker_index, so_far),
                              pruner=make_pruner(stored))
    return study, space, base, stored


def run_worker(storage_url, study_name, out_dir, worker_index=0, log=print, storage_wait=None):
    """Join an existing study as one more worker (``nndl search worker``); a worker that
    ``run_search`` started dies with it (:mod:`nndl.search.processes`). ``storage_wait``:
    seconds to wait out a database that stops answering (see :func:`run_search`)."""
    check = watch_parent()
    storage = open_storage(storage_url, out_dir, create=False, wait=storage_wait)
    study, space, base, settings = open_study(storage, SearchSettings(study=study_name),
                                              create=False, worker_index=worker_index)
    Worker(study, space, base, settings, out_dir, log, check=check).run()


def run_search(space, base, settings, out=None, storage_url=None, workers=1, resume=False,
               log=print, progress=False, prepared=None, given=(), storage_wait=None):
    """Run (or resume) a search; returns the run folder (see :mod:`nndl.search.results`).
    ``progress`` shows a bar per population or trial and ``prepared`` (data already
    prepared for ``base``) is reused, both for in-process workers only. Nothing is
    created until the storage is reached and the study is found or created.

    ``resume`` continues the stored study with its stored space, base and settings; of
    the names in ``given`` (what the caller chose: ``"space"``, a field of ``settings`` or
    of ``base``), ``trials`` (the new total) and ``population`` apply, and every other one
    must equal the study's value, else a ValueError naming its flag and the stored value
    (:func:`resume_settings`).

    ``storage_wait``: seconds to wait out a database that stops answering, retrying with
    backoff (default :data:`nndl.search.database.STORAGE_WAIT`, 60; see
    :mod:`nndl.search.database`)."""
    from nndl.runs import RunRecorder
    from nndl.search.results import finish_search

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    if settings.sampler == "grid" and not resume:
        settings.trials = min(settings.trials, grid_size(space))
    if resume:
        folder, study, space, base, settings = _resume_study(
            out, storage_url, settings, Requested(space, base, settings, given), log,
            storage_wait)
    else:  # the study and the run folder record the pruner that runs, never "auto"
        settings.pruner = resolve_pruner(settings)
        folder, study = _new_study(out, storage_url, settings, space, base, storage_wait)
    recorder = RunRecorder(folder, "search", {"settings": vars(settings), "base": base.to_dict(),
                                              "space": space_to_json(space),
                                              "storage": redact(storage_url or "journal file"),
                                              "workers": workers})
    recorder.update(process=worker_id())  # for status and resume: alive, or killed?
    with recorder.running():
        worker, exits = None, {}
        if workers <= 1:
            worker = Worker(study, space, base, settings, folder, log, progress, prepared)
        prepare = worker.prepared if worker else None  # the final evaluation reuses its data
        try:
            if worker:
                worker.run()
            else:
                exits = run_local_workers(storage_url, settings.study, folder, workers,
                                          storage_wait)
        except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: keep what finished
            _keep_results(study, folder, recorder, log, prepare,
                          f"was stopped by {getattr(exc, 'signal_name', 'Ctrl-C')}")
            raise
        ended_early = _workers_ended_early(study, settings, exits)
        if ended_early:
            _keep_results(study, folder, recorder, log, prepare, ended_early)
            raise RuntimeError(f"the search {ended_early}; the results so far are written, "
                               f"and nndl search --resume --out {folder} runs the rest")
        finish_search(study, folder, recorder, log, prepare=prepare)
    return folder


def _keep_results(study, folder, recorder, log, prepare, stopped):
    """Write the results of the trials finished so far (:func:`finish_search` with
    ``stopped``) for a search that ends early; a stop signal meanwhile is dropped (the
    search is ending already), and a failure to write is a warning, not a second error."""
    import warnings

    from nndl.search.results import finish_search

    with held_stops() as held:
        try:
            finish_search(study, folder, recorder, log, prepare=prepare, stopped=stopped)
        except Exception as exc:  # noqa: BLE001 - the search's own ending is the error
            warnings.warn(f"the results so far could not be written: {exc}", stacklevel=2)
        held.release(raise_pending=False)


def _workers_ended_early(study, settings, exits):
    """None when every local worker exited well or the study has all its trials anyway
    (a warning then names the workers that did not); else what went wrong, in words. The
    trials that a failed worker left RUNNING are failed, to run again on --resume."""
    import warnings

    import optuna

    failed = {pid: code for pid, code in exits.items() if code}
    if not failed:
        return None
    what = "; ".join(f"worker process {pid} {describe_exit(code)}"
                     for pid, code in failed.items())
    fail_trials_of(study, {pid: f"its worker process {pid} {describe_exit(code)} before it "
                           "finished" for pid, code in failed.items()})
    TrialState = optuna.trial.TrialState  # noqa: N806
    finished = len(study.get_trials(deepcopy=False,
                                    states=(TrialState.COMPLETE, TrialState.PRUNED)))
    if finished >= settings.trials:
        warnings.warn(f"{what}; the other workers finished the study", stacklevel=2)
        return None
    return f"ended early ({what}) with {finished} of its {settings.trials} trials finished"


def _resume_study(out, storage_url, settings, requested, log=print, wait=None):
    """The run folder and the study (with its stored definition) that ``--resume`` continues,
    with the ``requested`` changes that apply (:func:`resume_settings`); its trials left
    RUNNING by a dead run are failed. The folder is marked ``INCOMPLETE`` (its reserve
    written) before the study is changed, so a full disk changes nothing."""
    from nndl.runs import mark_incomplete

    if out is None:
        raise ValueError("--resume needs --out: the run folder of the study to continue")
    folder = Path(out)
    if not folder.is_dir():
        raise ValueError(f"--resume: no run folder {folder}")
    state, how = run_state(folder)
    if state == "running":
        raise RuntimeError(f"--resume: the search in {folder} {how}; stop it (or wait for "
                           "it) first")
    storage = open_storage(storage_url, folder, create=False, wait=wait)
    study, space, base, settings = open_study(storage, settings, create=False)
    settings = resume_settings(requested, space, base, settings)
    if not has_heartbeat(study._storage):  # without heartbeats, RUNNING means "maybe alive"
        _refuse_live_workers(study)
    mark_incomplete(folder)  # before the study changes: a full disk fails here, whole
    if vars(settings) != study.user_attrs["nndl_settings"]:  # workers read it from there
        study.set_user_attr("nndl_settings", vars(settings))
    fail_stale_running_trials(study)
    if how:
        log(f"resuming the search in {folder}, which {how}")
    return folder, study, space, base, settings


def _refuse_live_workers(study):
    """A resume must not fail trials under a worker of this machine that still runs them."""
    import optuna

    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    pids = live_workers(running, WORKER_ATTR)
    if pids:
        raise RuntimeError(f"--resume: worker process {', '.join(map(str, sorted(pids)))} "
                           "of this study is still running; stop it (or wait for it) first")


def _new_study(out, storage_url, settings, space, base, wait=None):
    """A new run folder and a new study, or neither: a database storage is reached before
    the folder is made, and the folder is removed again if the study cannot be created."""
    from nndl.runs import new_run_dir

    storage = open_storage(storage_url, wait=wait) if storage_url else None
    missing = _outermost_missing(Path("runs") if out is None else Path(out))
    folder = new_run_dir(out, "search")
    try:
        study, *_ = open_study(storage or open_storage(None, folder), settings, space, base)
    except BaseException:
        _undo_folder(folder, missing, fresh=out is None)
        raise
    return folder, study


def _outermost_missing(path):
    """The outermost folder on ``path`` that does not exist yet, or None."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def _undo_folder(folder, missing, fresh):
    """Remove what a failed start made: the outermost folder it created, else the new
    folder (``fresh``), else the contents of the empty ``--out`` folder it was given."""
    if missing is not None or fresh:
        shutil.rmtree(missing or folder, ignore_errors=True)
        return
    for path in Path(folder).iterdir():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
