"""The ask-and-tell loop of one worker.

A worker asks the study for up to ``population`` trials at a time, groups
those that can share a minibatch stream (plain SGD with the assignment's
per-epoch decay, no augmentation or dropout, same batch size, iterations and
data settings) and trains each group as one population; the rest train one by
one through the ordinary loop. Per-epoch validation accuracy goes to the
pruner as intermediate values; a pruned or diverging trial ends PRUNED with
its reason in the ``reason`` user attribute and never stops the study.
Several workers may share a study: each counts finished and running trials
before asking, so together they run exactly ``trials`` trials.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import optuna

from nndl.metrics import accuracy
from nndl.model_io import SavedModel, save_model
from nndl.population import Member, train_population
from nndl.search.space import grid_of, suggest_config
from nndl.search.storage import (
    WORKER_ATTR,
    backend,
    fail_stale_running_trials,
    has_heartbeat,
    worker_id,
)
from nndl.training import TrainingDivergedError
from nndl.workflow import fit, prepare_data

_POPULATION_COMPATIBLE = {"optimizer": "sgd", "schedule": "epoch_decay",
                          "batch_sampler": "replacement", "dropout": 0.0, "label_smoothing": 0.0,
                          "early_stopping": 0, "warmup_iters": 0, "flip": False, "translate": 0}
_DATA_KEYS = ("data", "num_training", "num_validation", "num_test", "full_test",
              "preprocessing", "dtype", "flip", "translate")


def _data_key(cfg):
    return tuple(getattr(cfg, k) for k in _DATA_KEYS)


class GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its ``study.stop()`` once the grid is done, which
    ask-and-tell does not allow; :func:`nndl.search.run_search` caps the trials at the
    grid's size instead."""

    def after_trial(self, study, trial, state, values):
        return None


def make_sampler(settings, space):
    if settings.sampler == "grid":
        return GridSampler(grid_of(space), seed=settings.seed)
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=settings.seed)
    return optuna.samplers.TPESampler(seed=settings.seed)


def make_pruner(name):
    return {"none": optuna.pruners.NopPruner, "median": optuna.pruners.MedianPruner,
            "halving": optuna.pruners.SuccessiveHalvingPruner,
            "hyperband": optuna.pruners.HyperbandPruner}[name]()


def population_key(cfg):
    """Trials with equal keys can train in one population; None: train alone."""
    values = cfg.to_dict()
    if any(values[k] != v for k, v in _POPULATION_COMPATIBLE.items()):
        return None
    return (cfg.train.batch_size, cfg.train.num_iters, cfg.hidden_size,
            *(values[k] for k in _DATA_KEYS))


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
                 prepared=None):
        """``prepared``: data the caller already prepared for ``base``'s data settings."""
        self.study, self.space, self.base, self.settings = study, space, base, settings
        self.out_dir, self.log, self.progress = Path(out_dir), log, progress
        self._data = {} if prepared is None else {_data_key(base): prepared}
        self.heartbeat = None
        if has_heartbeat(study._storage):
            storage = backend(study._storage)
            self.heartbeat = _Heartbeat(storage, storage.heartbeat_interval)

    def run(self):
        try:
            while self._run_batch():
                pass
        finally:
            if self.heartbeat:
                self.heartbeat.stop()

    # -- one batch of asked trials ------------------------------------------
    def _run_batch(self):
        TrialState = optuna.trial.TrialState  # noqa: N806

        if self.heartbeat:
            fail_stale_running_trials(self.study)
        trials = self.study.get_trials(deepcopy=False)
        done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        running = sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
        want = self.settings.trials - done - running
        if want <= 0:
            if running and self.heartbeat:  # another worker may die: wait and see
                time.sleep(1)
                return True
            return False
        asked = [self.study.ask() for _ in range(min(self.settings.group_size, want))]
        if self.heartbeat:
            self.heartbeat.add([t._trial_id for t in asked])
        for trial in asked:  # after the first beat: see fail_stale_running_trials
            trial.set_user_attr(WORKER_ATTR, worker_id())
        try:
            configs = [self._config(t) for t in asked]
            groups = {}
            for trial, cfg in zip(asked, configs):
                key = population_key(cfg)
                groups.setdefault(key if key is not None else ("alone", trial.number),
                                  []).append((trial, cfg))
            for key, members in groups.items():
                if key[0] == "alone":
                    self._train_alone(*members[0])
                else:
                    self._train_group(members)
        finally:
            if self.heartbeat:
                self.heartbeat.ids.difference_update(t._trial_id for t in asked)
        return True

    def _config(self, trial):
        fixed = {"num_iters": self.settings.num_iters} if self.settings.num_iters else {}
        cfg = suggest_config(trial, self.space, self.base, fixed)
        seed = self.settings.seed * 1_000_003 + trial.number
        trial.set_user_attr("init_seed", seed)
        return cfg.replace(seed=seed)

    def prepared(self, cfg):
        """The preprocessed data for ``cfg``'s data settings, prepared once per worker."""
        key = _data_key(cfg)
        if key not in self._data:
            self._data[key] = prepare_data(cfg)
        return self._data[key]

    def _train_group(self, members):
        cfg0 = members[0][1]
        prepared = self.prepared(cfg0)
        stream_seed = self.settings.seed * 1_000_003 + 500_000 + members[0][0].number
        for trial, _ in members:
            trial.set_user_attr("stream_seed", stream_seed)
            trial.set_user_attr("population_size", len(members))

        def on_epoch(i, epoch, val_acc):
            if self._report(members[i][0], val_acc, epoch):
                return f"pruned at epoch {epoch} by the pruner"
            return None

        start = time.perf_counter()
        results = train_population(
            [Member(c.train.learning_rate, c.train.reg, c.train.learning_rate_decay, c.std,
                    c.seed) for _, c in members],
            prepared.X_train, prepared.y_train, prepared.X_val, prepared.y_val,
            hidden_size=cfg0.hidden_size, num_iters=cfg0.train.num_iters,
            batch_size=cfg0.train.batch_size, stream_seed=stream_seed,
            dtype=prepared.X_train.dtype, on_epoch=on_epoch, progress=self.progress)
        seconds = (time.perf_counter() - start) / len(members)
        for (trial, cfg), result in zip(members, results):
            if result.state == "complete":
                self._tell_complete(trial, cfg, result.net, result.history, prepared, seconds)
            else:
                self._tell_pruned(trial, f"{result.state}: {result.reason}", seconds)

    def _train_alone(self, trial, cfg):
        prepared = self.prepared(cfg)
        trial.set_user_attr("population_size", 1)

        def callback(epoch, record):
            return self._report(trial, record["val_acc"], epoch)

        start = time.perf_counter()
        try:
            model, history, _ = fit(cfg, prepared, progress=self.progress, callback=callback)
        except TrainingDivergedError as exc:
            self._tell_pruned(trial, f"diverged: {exc}", time.perf_counter() - start)
            return
        seconds = time.perf_counter() - start
        if history["stopped_early"] and not cfg.train.early_stopping:
            epoch = len(history["val_acc_history"]) - 1
            self._tell_pruned(trial, f"pruned at epoch {epoch} by the pruner", seconds)
        else:
            self._tell_complete(trial, cfg, model.net, history, prepared, seconds)

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
        self.log(f"trial {trial.number}: {message}")

    def _tell_complete(self, trial, cfg, net, history, prepared, seconds):
        value = accuracy(prepared.y_val, net._predict(prepared.X_val))
        if value > self._best_value():
            model = SavedModel(net, prepared.transform, prepared.class_names, cfg.to_dict(),
                               {k: history[k] for k in ("loss_history", "train_acc_history",
                                                        "val_acc_history")})
            save_model(self.out_dir / "trials" / f"trial-{trial.number}.npz", model)
        self._tell(trial, f"validation accuracy {100 * value:.1f}%", seconds, value=value)

    def _tell_pruned(self, trial, reason, seconds):
        self._tell(trial, reason, seconds, reason=reason)

    def _best_value(self):
        try:
            return self.study.best_value
        except ValueError:  # no completed trial yet
            return -1.0
