"""The one training loop: minibatch sampling, update rule, learning-rate
schedule, per-epoch bookkeeping, NaN guard, early stopping.

``TwoLayerNet.train``, ``nndl train``, search trials and recipes all come
through :func:`train_network`; its defaults are the assignment's algorithm.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from nndl import _random
from nndl._validation import check_float, check_int
from nndl.optim import make_optimizer
from nndl.schedules import make_schedule

SAMPLERS = ("replacement", "shuffle")


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite."""

    def __init__(self, iteration, loss, learning_rate):
        self.iteration, self.loss, self.learning_rate = iteration, loss, learning_rate
        super().__init__(
            f"training diverged: the loss became {loss} at iteration {iteration} "
            f"(learning rate {learning_rate:.3g}); try a smaller learning_rate"
        )


@dataclass
class TrainOptions:
    """Every knob of the loop. The defaults are the assignment's ``train``.

    ``optimizer``: sgd | momentum | nesterov | adam | adamw.
    ``schedule``: epoch_decay (the assignment's, using ``learning_rate_decay``) |
    step | cosine | one_cycle | constant; ``warmup_iters`` adds a linear warmup.
    ``batch_sampler``: replacement (the assignment's ``choice(N, batch_size)``) |
    shuffle (each epoch a fresh permutation, cut into consecutive batches).
    ``early_stopping``: patience in epochs without a better validation
    accuracy (0 = off); the best weights are restored at the end.
    """

    learning_rate: float = 1e-3
    learning_rate_decay: float = 0.95
    reg: float = 1e-5
    num_iters: int = 100
    batch_size: int = 200
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "epoch_decay"
    step_epochs: float = 10.0
    warmup_iters: int = 0
    batch_sampler: str = "replacement"
    dropout: float = 0.0
    label_smoothing: float = 0.0
    early_stopping: int = 0

    def __post_init__(self):
        check_float("learning_rate", self.learning_rate)
        check_float("learning_rate_decay", self.learning_rate_decay, 0.0, 1.0)
        check_float("reg", self.reg)
        check_int("num_iters", self.num_iters)
        check_int("batch_size", self.batch_size)
        check_float("momentum", self.momentum, 0.0, 1.0, exclusive_max=True)
        check_float("weight_decay", self.weight_decay)
        check_int("warmup_iters", self.warmup_iters, minimum=0)
        check_float("dropout", self.dropout, 0.0, 1.0, exclusive_max=True)
        check_float("label_smoothing", self.label_smoothing, 0.0, 1.0, exclusive_max=True)
        check_int("early_stopping", self.early_stopping, minimum=0)
        if self.batch_sampler not in SAMPLERS:
            raise ValueError(f"batch_sampler must be one of {SAMPLERS}, got {self.batch_sampler!r}")
        make_optimizer(self.optimizer)  # validates the name
        make_schedule(self.schedule, num_iters=1, iterations_per_epoch=1)

    def to_dict(self):
        return asdict(self)


def iterations_per_epoch(num_train, batch_size):
    """``max(round(N / batch_size), 1)``: the assignment's epoch length whenever
    ``batch_size`` divides N (the assignment's float modulo otherwise records
    only once, at it = 0)."""
    return max(round(num_train / batch_size), 1)


class _MinibatchSampler:
    """Index batches: with replacement (the assignment's) or epoch-shuffled."""

    def __init__(self, kind, rng, n, batch_size):
        self.kind, self.rng, self.n, self.batch_size = kind, rng, n, batch_size
        self._perm, self._pos = None, n

    def __call__(self):
        if self.kind == "replacement":
            return _random.sample_indices(self.rng, self.n, self.batch_size)
        if self._pos + self.batch_size > self.n:
            self._perm, self._pos = _random.permutation(self.rng, self.n), 0
        idx = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx


def train_network(net, X, y, X_val, y_val, options=None, *, rng=None, verbose=False,
                  batch_transform=None, soft_targets=None, callback=None, progress=False):
    """Train ``net`` in place by minibatch gradient descent.

    Parameters
    ----------
    net : TwoLayerNet (anything with ``params``, ``_loss_and_grads``, ``_predict``)
    X : ndarray of shape (N, ...)
        Training inputs: (N, D) rows, or raw images when ``batch_transform``
        turns each minibatch into rows.
    y : int ndarray of shape (N,)
    X_val : ndarray of shape (N_val, D); y_val : int ndarray of shape (N_val,)
    options : TrainOptions, optional
    rng : RNG for sampling, dropout and augmentation (see ``nndl._random``).
    verbose : bool
        Print the loss every 100 iterations, as the assignment does.
    batch_transform : callable ``(X_batch, rng) -> (B, D)`` or None
        Augmentation and preprocessing applied to each minibatch.
    soft_targets : callable ``(X_rows) -> (B, C)`` probabilities, or None
        A teacher for distillation, applied to each transformed minibatch.
    callback : callable ``(epoch, record) -> bool`` or None
        Called after each epoch's bookkeeping; returning True stops training.
    progress : bool
        Show a progress bar (tqdm) when it is installed.

    Returns
    -------
    dict with ``loss_history`` (one float per iteration), ``train_acc_history``
    and ``val_acc_history`` (one per epoch; the train accuracy is the current
    minibatch's, as in the assignment), ``epoch_iterations`` (the iteration of
    each record), ``best_val_acc`` and ``stopped_early``.
    """
    opts = options or TrainOptions()
    rng = _random.check_random_state(None) if rng is None else rng
    num_train = X.shape[0]
    ipe = iterations_per_epoch(num_train, opts.batch_size)
    optimizer = make_optimizer(opts.optimizer, opts.momentum, opts.weight_decay)
    schedule = make_schedule(
        opts.schedule, num_iters=opts.num_iters, iterations_per_epoch=ipe,
        decay=opts.learning_rate_decay, step_epochs=opts.step_epochs,
        warmup_iters=opts.warmup_iters,
    )
    sample = _MinibatchSampler(opts.batch_sampler, rng, num_train, opts.batch_size)
    history = {"loss_history": [], "train_acc_history": [], "val_acc_history": [],
               "epoch_iterations": []}

    with np.errstate(over="ignore", invalid="ignore"):  # divergence is checked below
        _loop(net, X, y, X_val, y_val, opts, history, rng=rng, ipe=ipe, sample=sample,
              optimizer=optimizer, schedule=schedule, verbose=verbose,
              batch_transform=batch_transform, soft_targets=soft_targets, callback=callback,
              progress=progress)
    return history


def _loop(net, X, y, X_val, y_val, opts, history, *, rng, ipe, sample, optimizer, schedule,
          verbose, batch_transform, soft_targets, callback, progress):
    best_acc, best_params, stale, stopped = -1.0, None, 0, False
    for it in _iterations(opts.num_iters, progress):
        idx = sample()
        X_batch, y_batch = X[idx], y[idx]
        if batch_transform is not None:
            X_batch = batch_transform(X_batch, rng)
        targets = soft_targets(X_batch) if soft_targets is not None else None
        lr = opts.learning_rate * schedule(it)
        loss, grads = net._loss_and_grads(
            X_batch, y_batch, opts.reg, dropout=opts.dropout, rng=rng,
            label_smoothing=opts.label_smoothing, soft_targets=targets,
        )
        if not math.isfinite(loss):
            raise TrainingDivergedError(it, loss, lr)
        history["loss_history"].append(loss)
        optimizer.step(net.params, grads, lr)
        if verbose and it % 100 == 0:
            print(f"iteration {it} / {opts.num_iters}: loss {loss:f}")
        if it % ipe == 0:
            train_acc = float((net._predict(X_batch) == y_batch).mean())
            val_acc = float((net._predict(X_val) == y_val).mean())
            history["train_acc_history"].append(train_acc)
            history["val_acc_history"].append(val_acc)
            history["epoch_iterations"].append(it)
            if val_acc > best_acc:
                best_acc, stale = val_acc, 0
                if opts.early_stopping:
                    best_params = {k: v.copy() for k, v in net.params.items()}
            else:
                stale += 1
            epoch = len(history["val_acc_history"]) - 1
            if callback is not None and callback(epoch, {"iteration": it, "loss": loss,
                                                        "train_acc": train_acc,
                                                        "val_acc": val_acc}):
                stopped = True
                break
            if opts.early_stopping and stale >= opts.early_stopping:
                stopped = True
                break
    if best_params is not None:
        for k, v in best_params.items():
            net.params[k][...] = v
    history["best_val_acc"] = best_acc
    history["stopped_early"] = stopped


def _iterations(num_iters, progress):
    if progress:
        try:
            from tqdm.auto import trange
        except ImportError:  # progress bars are an optional extra
            return range(num_iters)
        return trange(num_iters, desc="training", unit="it", leave=False)
    return range(num_iters)


def as_rows(X, dtype):
    """``X`` cast once to ``dtype`` (no copy when it already is)."""
    return np.asarray(X, dtype=dtype)
