"""The ask-and-tell loop of one worker.

A worker asks the study for up to ``population`` trials at a time, groups
those that can share a minibatch stream (:func:`nndl.config.population_key`:
the same hidden size, data and augmentation settings, batch size, iterations
and sampler; optimizers, schedules, dropout and the rest may differ) and trains
each group as one population through the one training loop. Per-epoch
validation accuracy goes to the pruner as intermediate values; a pruned or
diverging trial ends PRUNED with its reason in the ``reason`` user attribute
and never stops the study.
Several workers may share a study: each counts finished and running trials
before asking, so together they run exactly ``trials`` trials. A worker with
nothing left to ask waits while another may still die: with heartbeats, any
RUNNING trial; with a journal, a RUNNING trial of a live worker process of this
machine. A dead worker's trials are failed and run again: with heartbeats once
their heartbeat is stale, with a journal once its process is gone
(:func:`nndl.search.processes.dead_workers`).
A worker told to stop (Ctrl-C, SIGTERM, SIGHUP: :mod:`nndl._stops`) marks the
trials it asked and has not finished FAIL, tagged ``stopped`` with the signal's
name, so that the next worker or ``--resume`` runs them again (as new trials,
not counted as failed attempts), and stops.
"""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path

import numpy as np
import optuna

from nndl._atomic import naming
from nndl._stops import held_stops
from nndl.config import data_key, population_key
from nndl.metrics import accuracy
from nndl.model_io import SavedModel, save_model
from nndl.network import network_for
from nndl.search.processes import dead_workers, live_workers
from nndl.search.settings import HALVING_REDUCTION, resolve_pruner
from nndl.search.space import grid_of, suggest_config
from nndl.search.storage import (
    WORKER_ATTR,
    ask_lock,
    backend,
    fail_stale_running_trials,
    fail_trials_of,
    has_heartbeat,
    mark_stopped,
    requeue_failed_trials,
    worker_id,
)
from nndl.training import Member, train_members
from nndl.workflow import prepare_data, training_inputs

TrialState = optuna.trial.TrialState


class GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its ``study.stop()`` once the grid is done, which
    ask-and-tell does not allow; :func:`nndl.search.run_search` caps the trials at the
    grid's size instead."""

    def after_trial(self, study, trial, state, values):
        return None


def make_sampler(settings, space, worker_index=0, trials_so_far=0):
    """The study's sampler in one process. The grid sampler shuffles the grid by the
    study's seed everywhere (all processes must agree on its order); the random and TPE
    samplers of another worker, or of a run that resumes a study of ``trials_so_far``
    trials, draw from a seed of their own, so they never replay earlier proposals."""
    if settings.sampler == "grid":
        return GridSampler(grid_of(space), seed=settings.seed)
    seed = sampler_seed(settings.seed, worker_index, trials_so_far)
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def sampler_seed(seed, worker_index=0, trials_so_far=0):
    """``seed`` itself for the first worker of a new study, else a seed mixed from all
    three (NumPy's SeedSequence), different for each worker and each resume."""
    if worker_index == 0 and trials_so_far == 0:
        return seed
    state = np.random.SeedSequence([seed, worker_index, trials_so_far]).generate_state(1)
    return int(state[0])


def make_pruner(settings):
    """The study's pruner (``"auto"`` resolved by :func:`resolve_pruner`).

    Halving's first rung is epoch 1, given up front (``min_resource=1``): Optuna's
    ``"auto"`` would estimate the same for any run under 200 epochs (a completed trial's
    last epoch // 100, at least 1), but only once a trial has completed, so the trials of
    a first population, all asked before any completes, were never pruned and kept the
    population at its full size to the end. Its rungs are epochs 1, 4, 16, ...
    (reduction factor :data:`HALVING_REDUCTION`)."""
    name = resolve_pruner(settings)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1,
                                                      reduction_factor=HALVING_REDUCTION)
    return {"none": optuna.pruners.NopPruner, "median": optuna.pruners.MedianPruner,
            "hyperband": optuna.pruners.HyperbandPruner}[name]()


class _Heartbeat:
    """Records heartbeats of this worker's running trials (RDB storage only)."""

    def __init__(self, storage, interval):
        self.storage, self.interval, self.ids = storage, interval, set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(self.interval):
            for trial_id in list(self.ids):
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:  # noqa: BLE001 - a missed beat is retried next interval
                    pass

    def add(self, trial_ids):
        """Beat once now (a trial without any beat is never found stale), then regularly."""
        for trial_id in trial_ids:
            self.storage.record_heartbeat(trial_id)
        self.ids.update(trial_ids)

    def stop(self):
        self._stop.set()


class Worker:
    """Runs trials of ``study`` until the study has ``settings.trials`` finished ones."""

    def __init__(self, study, space, base, settings, out_dir, log=print, progress=False,
                 prepared=None, check=None):
        """``prepared``: data the caller already prepared for ``base``'s data settings;
        ``check()``, called before each population, raises to stop the worker."""
        self.study, self.space, self.base, self.settings = study, space, base, settings
        self.check = check
        self.out_dir, self.log, self.progress = Path(out_dir), log, progress
        self._data = {} if prepared is None else {data_key(base): prepared}
        self.heartbeat = None
        self._unfinished = {}  # trial number -> trial: asked by this worker, not yet told
        if has_heartbeat(study._storage):
            storage = backend(study._storage)
            self.heartbeat = _Heartbeat(storage, storage.heartbeat_interval)

    def run(self):
        try:
            while True:
                if self.check:
                    self.check()
                if not self._run_batch():
                    break
        except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP
            self._leave_for_retry(getattr(exc, "signal_name", "Ctrl-C"))
            raise
        finally:
            if self.heartbeat:
                self.heartbeat.stop()

    def _leave_for_retry(self, stopped_by):
        """Mark the trials asked and not finished FAIL, ``stopped`` by ``stopped_by``: they
        run again (:func:`nndl.search.storage.requeue_failed_trials`). A signal meanwhile
        is dropped (the worker is stopping already); a second one stops at once."""
        with held_stops() as held:
            for trial in list(self._unfinished.values()):
                mark_stopped(self.study._storage, trial, stopped_by)
            self._unfinished.clear()
            held.release(raise_pending=False)

    # -- one batch of asked trials ------------------------------------------
    def _run_batch(self):
        with ask_lock(self.study._storage, self.study.study_name, self.out_dir):
            if self.heartbeat:
                fail_stale_running_trials(self.study)
            else:
                self._fail_trials_of_dead_workers()
            asked, running = self._ask()
            if self.heartbeat and asked:
                self.heartbeat.add([t._trial_id for t in asked])
            for trial in asked:  # after the first beat: see fail_stale_running_trials
                trial.set_user_attr(WORKER_ATTR, worker_id())
        if not asked:
            if running and (self.heartbeat or self._others_run()):  # one may die: wait
                time.sleep(1)
                return True
            return False
        try:
            configs = [self._config(t) for t in asked]
            groups = {}
            for trial, cfg in zip(asked, configs):
                groups.setdefault(population_key(cfg), []).append((trial, cfg))
            for members in groups.values():
                self._train_group(members)
        finally:
            if self.heartbeat:
                self.heartbeat.ids.difference_update(t._trial_id for t in asked)
        return True

    def _fail_trials_of_dead_workers(self):
        """Without heartbeats (a journal): mark FAIL the RUNNING trials of worker processes
        of this machine that have exited (SIGKILL, the out-of-memory killer, a crash), so
        that they run again here (:func:`nndl.search.storage.requeue_failed_trials`)."""
        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        fail_trials_of(self.study, {pid: f"its worker process {pid} exited before it "
                                    "finished" for pid in dead_workers(running, WORKER_ATTR)})

    def _others_run(self):
        """Without heartbeats: True while a live worker process of this machine holds a
        RUNNING trial; it may yet die, and its trials then run here. Trials of another
        machine's workers are not waited for (nothing here would see such a worker die)."""
        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return bool(live_workers(running, WORKER_ATTR))

    def _ask(self):
        """Ask up to a population of the trials the study still wants, failed trials'
        parameters first (they wait in the queue); returns them and the running count."""
        trials = self.study.get_trials(deepcopy=False)
        done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        want = min(self.settings.group_size, self.settings.trials - done - running)
        if want > 0:
            requeue_failed_trials(self.study, want)
        asked = []
        with warnings.catch_warnings():  # heartbeats are recorded by _Heartbeat, not optimize
            warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used")
            for _ in range(want):
                asked.append(self.study.ask())
                self._unfinished[asked[-1].number] = asked[-1]
        return asked, running

    def _config(self, trial):
        fixed = {"num_iters": self.settings.num_iters} if self.settings.num_iters else {}
        cfg = suggest_config(trial, self.space, self.base, fixed)
        # a trial run again (storage.requeue_failed_trials) keeps the failed one's seed
        seed = trial.user_attrs.get("init_seed", self.settings.seed * 1_000_003 + trial.number)
        trial.set_user_attr("init_seed", seed)
        return cfg.replace(seed=seed)

    def prepared(self, cfg):
        """The preprocessed data for ``cfg``'s data settings, prepared once per worker."""
        key = data_key(cfg)
        if key not in self._data:
            self._data[key] = prepare_data(cfg)
        return self._data[key]

    def _train_group(self, members):
        """Train ``members`` (trial, config) pairs as one population."""
        cfg0 = members[0][1]
        prepared = self.prepared(cfg0)
        X, transform = training_inputs(cfg0, prepared)
        # one minibatch stream for the whole study (common random numbers): a trial's
        # result does not depend on the population it trained in or on the trials
        # before it, so one population and one-by-one prune the same trials
        stream_seed = self.settings.seed * 1_000_003 + 500_000
        nets = []
        for trial, cfg in members:
            trial.set_user_attr("stream_seed", stream_seed)
            trial.set_user_attr("population_size", len(members))
            nets.append(network_for(cfg, prepared.input_size, len(prepared.class_names)))
        group = [Member(net.params, cfg.train) for net, (_, cfg) in zip(nets, members)]

        def on_epoch(i, epoch, record):
            if self._report(members[i][0], record["val_acc"], epoch):
                return f"pruned at epoch {epoch} by the pruner"
            return None

        start = time.perf_counter()
        train_members(group, X, prepared.y_train, prepared.X_val, prepared.y_val,
                      rng=np.random.default_rng(stream_seed), batch_transform=transform,
                      on_epoch=on_epoch, progress=self.progress)
        seconds = (time.perf_counter() - start) / len(members)
        for (trial, cfg), net, member in zip(members, nets, group):
            if member.state == "complete":
                self._tell_complete(trial, cfg, net, member.history, prepared, seconds)
            else:
                reason = member.reason if member.state == "pruned" else \
                    f"{member.state}: {member.reason}"  # "pruned at epoch 1 by the pruner"
                self._tell_pruned(trial, reason, seconds)

    # -- reporting and telling ---------------------------------------------
    # With heartbeats, another worker marks a trial FAIL once its heartbeat is older
    # than the grace period (a killed worker, or this one stalled): updating it then
    # raises UpdateFinishedTrialError. The result is dropped, the worker carries on.
    def _report(self, trial, value, epoch):
        """Report an intermediate value; True when the trial should stop."""
        try:
            trial.report(value, epoch)
            return trial.should_prune()
        except optuna.exceptions.UpdateFinishedTrialError:
            return True

    def _tell(self, trial, message, seconds, value=None, **attrs):
        try:
            for key, attr in {**attrs, "seconds": round(seconds, 3)}.items():
                trial.set_user_attr(key, attr)
            if value is None:
                self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                self.study.tell(trial, value)
        except optuna.exceptions.UpdateFinishedTrialError:
            message = "was already failed by another worker (no heartbeat in time); dropped"
        self._unfinished.pop(trial.number, None)
        self.log(f"trial {trial.number}: {message}")

    def _tell_complete(self, trial, cfg, net, history, prepared, seconds):
        value = accuracy(prepared.y_val, net._predict(prepared.X_val))
        if value > self._best_value():
            model = SavedModel(net, prepared.transform, prepared.class_names, cfg.to_dict(),
                               {k: history[k] for k in ("loss_history", "train_acc_history",
                                                        "val_acc_history")},
                               prepared.image_shape)
            path = self.out_dir / "trials" / f"trial-{trial.number}.npz"
            with naming(path):
                save_model(path, model)
        self._tell(trial, f"validation accuracy {100 * value:.1f}%", seconds, value=value)

    def _tell_pruned(self, trial, reason, seconds):
        self._tell(trial, reason, seconds, reason=reason)

    def _best_value(self):
        try:
            return self.study.best_value
        except ValueError:  # no completed trial yet
            return -1.0
