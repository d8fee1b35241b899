"""The one training loop: K >= 1 networks in lockstep on one minibatch stream.

Sampling (:mod:`nndl.sampling`), learning-rate schedules (:mod:`nndl.schedules`), the
fused step (:class:`nndl.population.Population`), per-epoch bookkeeping, divergence,
early stopping, callbacks, progress and Ctrl-C all live here, once. ``TwoLayerNet.train``,
``nndl train``, recipes, search populations, the scikit-learn-style helpers and the
benchmarks all come through :func:`train_members` (one network: :func:`train_network`).
The defaults are the assignment's algorithm. The loop trains parameter arrays; it never
imports the network class.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nndl import _blas, _memory, _random
from nndl._gather import RowGatherer
from nndl._layers import softmax
from nndl._stops import held_stops
from nndl._typing import ArrayLike, NDArray, Params, RandomState
from nndl._validation import all_finite, check_float, check_y
from nndl.architecture import read_architecture
from nndl.backend import resolve_backend
from nndl.config import SHARED_TRAIN_FIELDS, TrainOptions
from nndl.optim import RULES
from nndl.population import Population
from nndl.sampling import MinibatchSampler, iterations_per_epoch
from nndl.schedules import make_schedule

#: ``(images (B, H, W, C), rng) -> rows (B, D)``: augmentation and preprocessing per batch
BatchTransform = Callable[[NDArray, Any], NDArray]
#: ``(member_index, epoch, record) -> reason to stop the member, or None``
OnEpoch = Callable[[int, int, dict[str, Any]], Any]


class TrainingDivergedError(FloatingPointError):
    """The training loss (or, after the last step, the weights) became NaN or infinite;
    ``history`` holds what was reached."""

    run_status = "diverged"  # what a run folder's metrics.json records (nndl.runs)

    def __init__(self, iteration: int, loss: float, learning_rate: float,
                 history: dict[str, Any] | None = None) -> None:
        self.iteration, self.loss, self.learning_rate = iteration, loss, learning_rate
        self.history = history
        super().__init__(
            f"training diverged: the loss became {loss} at iteration {iteration} "
            f"(learning rate {learning_rate:.3g}); try a smaller learning_rate"
        )


#: validation rows (the first ones) whose activations give ``layer_stats`` each epoch
LAYER_STAT_ROWS = 1000
#: the statistics of one layer in an entry of ``layer_stats`` (see :func:`new_history`)
LAYER_STAT_KEYS = ("act_mean", "act_std", "weight_norm")


def new_history() -> dict[str, Any]:
    """Per-iteration losses; per-epoch train (minibatch) and validation accuracies and
    ``layer_stats``: beside each validation accuracy, a list of L dicts (layer 1 .. L) of
    :data:`LAYER_STAT_KEYS`: ``act_mean``, ``act_std`` of the layer's outputs on the first
    :data:`LAYER_STAT_ROWS` validation rows (test mode: the hidden layers' activations
    after ReLU, the last layer's scores before the softmax) and ``weight_norm``, the
    Frobenius norm of its weight matrix (see
    :meth:`nndl.population.Population.scores_and_layer_stats`). Histories recorded before
    it (model files keep none) lack the key; a run without validation rows records none."""
    return {"loss_history": [], "train_acc_history": [], "val_acc_history": [],
            "layer_stats": [], "epoch_iterations": [], "best_val_acc": -1.0,
            "stopped_early": False}


@dataclass
class Member:
    """One network of a training run: its parameters (``W1`` (H, D), ``b1`` (H,), ``W2``
    (C, H), ``b2`` (C,), NumPy, updated in place when it stops), its options, and what the
    loop recorded. ``state``: running | complete | pruned | diverged | interrupted."""

    params: dict
    options: TrainOptions
    history: dict = field(default_factory=new_history)
    state: str = "running"
    reason: str = ""
    divergence: tuple[int, float, float] | None = None  # (iteration, loss, learning rate)


def train_members(members: list[Member], X: NDArray, y: NDArray, X_val: NDArray | None,
                  y_val: NDArray | None, *, rng: RandomState = None,
                  batch_transform: BatchTransform | None = None,
                  soft_targets: NDArray | None = None, on_epoch: OnEpoch | None = None,
                  progress: bool = False, verbose: bool = False,
                  sample_weight: ArrayLike | None = None) -> list[Member]:
    """Train ``members`` in lockstep; each ends with its parameters, history and state.

    Parameters
    ----------
    members : list of Member
        They must agree on :data:`nndl.config.SHARED_TRAIN_FIELDS` (the stream: iterations,
        batch size, sampler, backend, device); everything else is per member.
    X : ndarray (N, D) of rows, or raw images (N, H, W, C) when ``batch_transform`` turns
        each minibatch into rows.
    y : int ndarray (N,); X_val : ndarray (N_val, D); y_val : int ndarray (N_val,)
        ``X_val`` and ``y_val`` None: nothing is scored after each epoch (no accuracies in
        the histories, ``train_acc`` and ``val_acc`` None in ``on_epoch``'s record; early
        stopping needs them). Each epoch otherwise costs two forward passes: on a data set
        of one minibatch an epoch, a third of the run.
    rng : RNG of the minibatch stream and augmentation (see :mod:`nndl._random`);
        dropout draws from a generator seeded from it.
    batch_transform : callable ``(images, rng) -> (B, D)`` or None
    soft_targets : ndarray (N, C) or None
        Target distributions of the training rows (distillation) instead of ``y``.
    on_epoch : callable ``(member_index, epoch, record) -> reason or None``
        Called for every running member after each epoch's bookkeeping (``record``:
        iteration, loss, train_acc, val_acc); a reason makes that member stop as pruned.
    progress : bool
        A progress bar (tqdm, when installed) with the loss and validation accuracy, when
        stderr is a terminal.
    verbose : bool
        Print the loss every 100 iterations, as the assignment does.
    sample_weight : ndarray (N,) or None
        Non-negative weights of the training rows: minibatches are drawn with replacement,
        row ``i`` with probability ``sample_weight[i] / sum(sample_weight)``, so that each
        step's expected gradient is the weighted mean loss's (see
        :class:`nndl.sampling.MinibatchSampler`; equal weights change nothing).

    A member whose loss becomes NaN or infinite (or whose weights do in the last step)
    stops as ``diverged``; the others go on. Ctrl-C (and, in the ``nndl`` command, SIGTERM
    and SIGHUP: :mod:`nndl._stops`) takes effect once the step in progress is done (a
    second one at once): on any exit every member's ``params`` hold the weights it reached
    (its best ones with early stopping), never a half-applied step.
    """
    shared = _shared_options(members)
    dtype, (_, input_size), num_classes = _check_members(members)
    X = _as_array(X)
    if batch_transform is None:
        _check_width(X, input_size, "X")
    elif X.ndim < 1:
        raise ValueError(f"X must hold one image per row, got shape {tuple(X.shape)}")
    if len(X) == 0:
        raise ValueError("X must hold at least one row to train on, got 0")
    y = check_y(y, len(X), num_classes)  # the step picks scores by label: no label >= C
    X_val, y_val = _check_validation(X_val, y_val, input_size, num_classes, members)
    if soft_targets is not None:
        soft_targets = _check_soft_targets(soft_targets, len(X), num_classes)
    rng = _random.check_random_state(rng)
    backend = resolve_backend(shared.backend, shared.device)
    ipe = iterations_per_epoch(len(X), shared.batch_size)
    options = [m.options for m in members]
    # dropout masks come from a generator seeded from the stream's state, not drawn from
    # it: a member's minibatches are the same whether or not another member drops units
    noise_rng = _random.derived_generator(rng) if any(o.dropout > 0 for o in options) else None
    pop = Population([m.params for m in members], options, dtype, backend, noise_rng)
    run = _Run(members, pop, ipe, on_epoch, verbose, shared.num_iters)
    batches = _Batches(X, y, soft_targets, backend, dtype, batch_transform, rng, input_size)
    X_val_dev = None if X_val is None else backend.asarray(X_val, dtype)
    sample = MinibatchSampler(shared.batch_sampler, rng, len(X), shared.batch_size,
                              sample_weight)
    learning_rates = _LearningRates(options, shared.num_iters, ipe)
    reg = np.array([o.reg for o in options], dtype=np.float64)
    active = reg_active = None
    bar = _progress_bar(shared.num_iters, progress)
    halves = False
    try:
        # one plain-SGD network on two cores: each core gathers and updates half of the
        # columns (the blocks sampler gathers nothing; there the split costs more than it saves)
        halves = batch_transform is None and soft_targets is None and \
            shared.batch_sampler != "blocks" and pop.use_halves(batches.X, shared.batch_size)
        # small products run on one BLAS thread: a second one costs more than it saves
        # (measured: nndl._blas.SMALL_WORK)
        small = backend.name == "numpy" and \
            shared.batch_size * input_size * _hidden_units(members) < _blas.SMALL_WORK
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), \
                _blas.one_thread(small), held_stops() as stops:
            for it in range(shared.num_iters):
                if pop.K == 0:
                    break
                idx = sample()
                lr = learning_rates(it, pop.active)
                if pop.active is not active:  # members left: their settings leave too
                    active, reg_active = pop.active, reg[pop.active]
                if halves:  # the step gathers its own halves of the rows
                    X_batch, y_batch = None, y[idx]
                    losses = pop.step_rows(idx, y_batch, lr, reg_active)
                else:
                    X_batch, y_batch = batches(idx)
                    losses = pop.step(X_batch, y_batch, lr, reg_active)
                run.after_step(it, losses, lr)
                if it % ipe == 0 and X_val_dev is None:
                    run.after_epoch(it, losses)
                elif it % ipe == 0:
                    train_rows = X_batch if X_batch is not None else batches.X[idx]
                    val_scores, *layers = pop.scores_and_layer_stats(X_val_dev, LAYER_STAT_ROWS)
                    run.after_epoch(it, losses, (pop.scores(train_rows), y[idx]),
                                    (val_scores, y_val), layers)
                    _show(bar, members, pop)
                run.leave()
                if bar is not None:
                    bar.update()
                stops.stop_if_requested()  # Ctrl-C, SIGTERM: every member stops after a
                # whole step
        run.finish("complete")
        if any(m.state == "diverged" for m in members) and not _finite_data(X):
            raise ValueError("X contains NaN or infinite values: the training loss became NaN")
    finally:
        # the split's worker stops first (BLAS gets its threads back whatever happens next),
        # then the members still stacked take their weights (after a complete run: none)
        error = pop.close()
        run.finish("interrupted")
        if bar is not None:
            bar.close()
        if error is not None:  # the worker failed (its half of the last step may be
            raise error  # missing), or Ctrl-C came while it finished its half
    return members


def train_network(params: Params, X: NDArray, y: NDArray, X_val: NDArray | None,
                  y_val: NDArray | None,
                  options: TrainOptions | None = None, *, rng: RandomState = None,
                  verbose: bool = False, batch_transform: BatchTransform | None = None,
                  soft_targets: NDArray | None = None,
                  callback: Callable[[int, dict[str, Any]], bool] | None = None,
                  progress: bool = False, history: dict[str, Any] | None = None,
                  sample_weight: ArrayLike | None = None) -> dict[str, Any]:
    """Train one network's ``params`` as :func:`train_members` does: the dict is updated in
    place (its entries become the trained arrays; the arrays it held are not written to).

    ``callback(epoch, record) -> bool``: True stops training (``stopped_early``). Raises
    :class:`TrainingDivergedError` naming the iteration when the loss becomes NaN or
    infinite. Returns the history dict: ``loss_history`` (one float per iteration),
    ``train_acc_history`` and ``val_acc_history`` (one per epoch; the train accuracy is the
    current minibatch's, as in the assignment), ``layer_stats`` (one entry per scored
    epoch: per layer its activations' mean and standard deviation on the first
    :data:`LAYER_STAT_ROWS` validation rows and its weights' Frobenius norm, see
    :func:`new_history`), ``epoch_iterations``, ``best_val_acc`` and ``stopped_early``.
    ``sample_weight`` (N,) weighs the training rows (see :func:`train_members`). Pass
    ``history`` (from :func:`new_history`) to have it filled in place: after Ctrl-C it holds
    what was recorded, beside the weights reached in ``params``.
    """
    if options is not None and not isinstance(options, TrainOptions):
        raise TypeError(f"options must be a TrainOptions, got {type(options).__name__}")
    member = Member(params, options or TrainOptions(),
                    new_history() if history is None else history)
    on_epoch = None if callback is None else \
        (lambda _, epoch, record: "stopped by the callback" if callback(epoch, record) else None)
    train_members([member], X, y, X_val, y_val, rng=rng, batch_transform=batch_transform,
                  soft_targets=soft_targets, on_epoch=on_epoch, progress=progress,
                  verbose=verbose, sample_weight=sample_weight)
    if member.divergence is not None:
        raise TrainingDivergedError(*member.divergence, history=member.history)
    return member.history


#: work arrays of one update, in first-layer matrices (K*H*D values), by rule: SGD folds
#: its update into the gradient product; the others keep their state arrays
#: (:attr:`nndl.optim.Rule.state`: momentum a velocity, Adam two moments) beside four more
#: (measured with tracemalloc: 4.7 with one state array, 5.7 with two)
OPTIMIZER_MATRICES = {name: 0 if name == "sgd" else 4 + len(rule.state)
                      for name, rule in RULES.items()}


def training_memory(input_size: int, hidden_size: int | tuple[int, ...], num_classes: int,
                    batch_size: int,
                    dtype: Any = np.float64, members: int = 1,
                    optimizers: tuple[str, ...] = ("sgd",), val_rows: int = 0,
                    gathered_rows: bool = True) -> _memory.Estimate:
    """Bytes the loop allocates to train ``members`` networks (D ``input_size``, H
    ``hidden_size`` or the widths of several hidden layers, C ``num_classes``) together on
    minibatches of ``batch_size`` rows, scoring ``val_rows`` validation rows after each
    epoch (the rows themselves are the caller's, not counted). ``gathered_rows``:
    minibatches are gathered from rows in memory (else they come as images through a batch
    transform: one batch of rows).

    * weights: each network's own parameters, their stacked copy and the copy each member
      takes back at the end (3 copies), plus one network's float64 draw (when it is made)
      or copy (when it leaves);
    * optimizer state: :data:`OPTIMIZER_MATRICES` first layers of the costliest rule;
    * activations: the minibatch (gathered into a buffer and a ring of at most 32 MiB, or
      halved for two cores, and gathered again for the epoch's accuracy), the hidden layer
      and its gradient, the scores and their softmax, and the hidden layer and scores of
      the validation rows;
    * class matrices: the C x C identity the targets are picked from (float64, then in
      ``dtype``).
    """
    s = np.dtype(dtype).itemsize
    widths = (hidden_size,) if isinstance(hidden_size, int) else tuple(hidden_size)
    D, H, C, B, K = input_size, sum(widths), num_classes, batch_size, members
    sizes = (D, *widths, C)
    # values of one network (batch normalization's four per hidden unit are left out: at
    # most 4 H against the weights' H * D and more)
    params = sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    worst = max(OPTIMIZER_MATRICES[name] for name in optimizers)
    batch = B * D * s
    gather = 3 * batch + min(32 << 20, 8 * batch) if gathered_rows else 2 * batch
    return (_memory.Estimate()
            .add("weights", 3 * K * params * s + params * 8)
            .add("optimizer state", worst * K * params * s)
            .add("activations", gather + 6 * B * K * H * s + 6 * K * B * C * s + 32 * B
                 + 2 * val_rows * K * (H + C) * s)
            .add("class matrices", C * C * (8 + s)))


def distillation_targets(teacher_scores: ArrayLike, y: ArrayLike, temperature: float = 2.0,
                         weight: float = 0.7) -> NDArray:
    """Ba & Caruana-style soft targets: ``weight * softmax(teacher_scores / T) +
    (1 - weight) * one_hot(y)``; rows of shape (N, C) summing to 1."""
    check_float("temperature", temperature, 1e-6)
    check_float("weight", weight, 0.0, 1.0)
    probs = softmax(np.asarray(teacher_scores, dtype=np.float64) / temperature)
    onehot = np.eye(probs.shape[1])[np.asarray(y)]
    return weight * probs + (1 - weight) * onehot


# -- the pieces of the loop ---------------------------------------------------------------
def _shared_options(members):
    if not members:
        raise ValueError("train_members needs at least one member")
    first = members[0].options
    for m in members[1:]:
        for name in SHARED_TRAIN_FIELDS:
            if getattr(m.options, name) != getattr(first, name):
                raise ValueError(f"members of one population must share {name}: "
                                 f"{getattr(first, name)!r} != {getattr(m.options, name)!r}")
    return first


def _check_members(members):
    """(dtype, W1's shape (H, D), number of classes C) that every member's parameters share;
    float32 or float64 NumPy arrays of one architecture (:mod:`nndl.architecture`)."""
    first = members[0].params
    arch = read_architecture(first)
    dtype = np.asarray(first["W1"]).dtype
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"params must be float32 or float64 arrays, got {dtype}")
    shapes = arch.param_shapes()
    for m in members[1:]:
        for name, shape in shapes.items():
            a = m.params.get(name)
            if np.shape(a) != shape or np.asarray(a).dtype != dtype:
                raise ValueError(f"members of one population must share layer sizes and dtype: "
                                 f"{name} {np.shape(a)} {np.asarray(a).dtype} against "
                                 f"{shape} {dtype}")
        if set(m.params) != set(shapes):
            raise ValueError(f"members of one population must share an architecture: "
                             f"{sorted(m.params)} against {sorted(shapes)}")
    return dtype, shapes["W1"], arch.sizes[-1]


def _hidden_units(members):
    """H summed over the members: the width of the stacked first layer's product."""
    return sum(np.shape(m.params["b1"])[0] for m in members)


def _check_validation(X_val, y_val, width, num_classes, members):
    """(X_val, y_val) checked, or (None, None): no per-epoch scoring (no early stopping)."""
    if (X_val is None) != (y_val is None):
        raise ValueError("X_val and y_val must be given together (or both None: no "
                         "per-epoch scoring)")
    if X_val is None:
        if any(m.options.early_stopping for m in members):
            raise ValueError("early stopping needs validation rows: X_val and y_val")
        return None, None
    X_val = _as_array(X_val)
    _check_width(X_val, width, "X_val")
    if len(X_val) == 0:
        raise ValueError("X_val must hold at least one row to score on, got 0")
    if not _finite_data(X_val):
        raise ValueError("X_val contains NaN or infinite values")
    return X_val, check_y(y_val, len(X_val), num_classes, name="y_val")


def _as_array(a):
    """``a`` as an array: NumPy's, or another array library's as given."""
    return a if hasattr(a, "shape") and hasattr(a, "ndim") else np.asarray(a)


def _check_width(rows, width, name):
    if rows.ndim != 2 or rows.shape[1] != width:
        raise ValueError(f"{name} must be 2-D with {width} columns (the network's input size), "
                         f"got shape {tuple(rows.shape)}")


def _check_soft_targets(targets, n, num_classes):
    """Soft targets as a NumPy (n, C) array of distributions over the classes."""
    t = np.asarray(targets)
    if t.shape != (n, num_classes):
        raise ValueError(f"soft_targets must have shape ({n}, {num_classes}): a distribution "
                         f"over the classes for each row of X, got {t.shape}")
    if not np.issubdtype(t.dtype, np.number) or np.issubdtype(t.dtype, np.complexfloating):
        raise TypeError(f"soft_targets must hold real numbers, got dtype {t.dtype}")
    if not np.isfinite(t).all() or (t < 0).any() or \
            not np.allclose(t.sum(axis=1), 1.0, rtol=0, atol=1e-3):
        raise ValueError("soft_targets must hold distributions: finite, non-negative rows "
                         "that sum to 1")
    return t


def _finite_data(X):
    """Whether NumPy float data holds only finite values (anything else: assumed so)."""
    return not (isinstance(X, np.ndarray) and np.issubdtype(X.dtype, np.floating)) \
        or all_finite(X)


class _LearningRates:
    """Each member's base rate times its schedule's multiplier; members with the same
    schedule settings share one schedule."""

    def __init__(self, options, num_iters, ipe):
        keys = [(o.schedule, o.learning_rate_decay, o.step_epochs, o.warmup_iters)
                for o in options]
        unique = list(dict.fromkeys(keys))
        self.schedules = [make_schedule(s, num_iters=num_iters, iterations_per_epoch=ipe,
                                        decay=d, step_epochs=e, warmup_iters=w)
                          for s, d, e, w in unique]
        self.which = np.array([unique.index(k) for k in keys])
        self.base = np.array([o.learning_rate for o in options], dtype=np.float64)
        self._active = None  # the active list the two arrays below were indexed for

    def __call__(self, it, active):
        if active is not self._active:  # members left: index the settings once
            self._active, self._base, self._which = active, self.base[active], self.which[active]
        if len(self.schedules) == 1:
            return self._base * self.schedules[0](it)
        return self._base * np.array([s(it) for s in self.schedules])[self._which]


class _Batches:
    """Minibatch rows and targets on the backend: gathered (from C-ordered NumPy data into
    reused buffers, :class:`nndl._gather.RowGatherer`), sliced (blocks sampler) or
    transformed on the host (augmentation and preprocessing). A batch is valid until the
    next one is drawn."""

    def __init__(self, X, y, soft_targets, backend, dtype, transform, rng, width):
        self.bk, self.dtype, self.rng, self.transform = backend, dtype, rng, transform
        self.width = width  # what a transform must turn each image into: D values
        self.X = X if transform is not None else backend.asarray(X, dtype)
        self.targets = backend.asarray(y) if soft_targets is None else \
            backend.asarray(soft_targets, dtype)
        self.gather = RowGatherer(self.X) if transform is None and backend.name == "numpy" \
            and self.X.flags.c_contiguous else None

    def __call__(self, idx):
        if self.transform is not None:
            images = self.X[idx]
            rows = self.bk.asarray(self.transform(images, self.rng), self.dtype)
            if tuple(rows.shape) != (len(images), self.width):
                raise ValueError(f"batch_transform must turn {len(images)} images into rows of "
                                 f"shape ({len(images)}, {self.width}) (the network's input "
                                 f"size), got {tuple(rows.shape)}")
            return rows, self._take(self.targets, idx)
        if self.gather is not None and not isinstance(idx, slice):
            return self.gather(idx), self._take(self.targets, idx)
        return self._take(self.X, idx), self._take(self.targets, idx)

    def _take(self, a, idx):
        if isinstance(idx, slice) or self.bk.name == "numpy":
            return a[idx]  # a view for slices; NumPy's fancy indexing beats take(out=)
        return self.bk.xp.take(a, self.bk.asarray(idx), axis=0)


class _Run:
    """Histories, divergence, early stopping and leaving of the members of one run."""

    def __init__(self, members, pop, ipe, on_epoch, verbose, num_iters):
        self.members, self.pop, self.ipe = members, pop, ipe
        self.on_epoch, self.verbose, self.num_iters = on_epoch, verbose, num_iters
        self.best = {}  # member index -> its best parameters so far (early stopping)
        self.stale = [0] * len(members)
        self.leaving = {}  # slot -> (state, reason)
        self.last_step = (-1, np.zeros(0), [])  # iteration, learning rates, active members

    def after_step(self, it, losses, lr):
        self.last_step = (it, lr, self.pop.active)
        for slot, loss in enumerate(losses):
            i = self.pop.active[slot]
            self.members[i].history["loss_history"].append(float(loss))
            if not math.isfinite(loss):
                self.members[i].divergence = (it, float(loss), float(lr[slot]))
                self.leaving[slot] = ("diverged", f"loss became {loss} at iteration {it} "
                                      f"(learning rate {lr[slot]:.3g}); try a smaller "
                                      "learning_rate")
        if self.verbose and it % 100 == 0:
            shown = ", ".join(f"{loss:f}" for loss in losses)
            print(f"iteration {it} / {self.num_iters}: loss {shown}")

    def after_epoch(self, it, losses, train=None, val=None, layers=None):
        """Record an epoch: ``train`` and ``val`` are (scores (K, N, C), labels (N,)) of the
        minibatch and the validation rows, or None (nothing scored); ``layers``: arrays
        (K, L) of :data:`LAYER_STAT_KEYS` (recorded with the validation accuracy), or None."""
        accuracies = [self._accuracies(pair) for pair in (train, val)]
        # in the members' own order (the stack keeps them by update rule): a pruner that
        # ranks each against those that reported before sees them as it would one by one
        for slot, i in sorted(enumerate(self.pop.active), key=lambda pair: pair[1]):
            if slot in self.leaving:
                continue
            member, h = self.members[i], self.members[i].history
            record = {"iteration": it, "loss": float(losses[slot]),
                      "train_acc": None if train is None else float(accuracies[0][slot]),
                      "val_acc": None if val is None else float(accuracies[1][slot])}
            h["epoch_iterations"].append(it)
            epoch = len(h["epoch_iterations"]) - 1
            if val is not None:
                h["train_acc_history"].append(record["train_acc"])
                h["val_acc_history"].append(record["val_acc"])
                if layers is not None:
                    h.setdefault("layer_stats", []).append(_layer_entry(layers, slot))
                self._track_best(slot, i, record["val_acc"])
            reason = self.on_epoch(i, epoch, record) if self.on_epoch else None
            if reason:
                h["stopped_early"] = True
                self.leaving[slot] = ("pruned", str(reason))
            elif member.options.early_stopping and self.stale[i] >= member.options.early_stopping:
                h["stopped_early"] = True
                self.leaving[slot] = ("complete", f"early stopping at epoch {epoch}")

    def _accuracies(self, pair):
        """Per-member accuracy (K,) of (scores (K, N, C), labels (N,)), or None."""
        if pair is None:
            return None
        scores, labels = pair
        predicted = self.pop.bk.to_numpy(self.pop.xp.argmax(scores, axis=2))
        return (predicted == np.asarray(labels)).mean(axis=1)

    def _track_best(self, slot, i, val_acc):
        """Early stopping's bookkeeping: member ``i``'s best validation accuracy (and, with
        early stopping, its weights then) and the epochs since."""
        h = self.members[i].history
        if val_acc > h["best_val_acc"]:
            h["best_val_acc"], self.stale[i] = val_acc, 0
            if self.members[i].options.early_stopping:
                self.best[i] = self.pop.member_params(slot)
        else:
            self.stale[i] += 1

    def leave(self):
        """Members marked as leaving take their weights and go; the rest stay stacked."""
        if not self.leaving:
            return
        for slot, (state, reason) in self.leaving.items():
            self._settle(slot, state, reason)
        self.pop.keep([s for s in range(self.pop.K) if s not in self.leaving])
        self.leaving = {}

    def finish(self, state):
        """Every member still stacked takes its weights and ends as ``state``."""
        self.leaving.update({slot: (state, "") for slot in range(self.pop.K)
                             if slot not in self.leaving})
        self.leave()

    def _settle(self, slot, state, reason):
        i = self.pop.active[slot]
        member = self.members[i]
        params = self.best.pop(i, None) if state != "diverged" else None
        if params is None:
            params = self.pop.member_params(slot)
            if state != "diverged" and self.last_step[0] >= 0 and \
                    not all(all_finite(a) for a in params.values()):
                state, reason = self._diverged_in_last_step(i)
        member.params.update(params)
        member.state, member.reason = state, reason

    def _diverged_in_last_step(self, i):
        """Member ``i``'s weights came out of the last step non-finite (its loss, computed
        before the step, was not): diverged, as of the next iteration's loss."""
        it, lr, active = self.last_step
        rate = float(lr[active.index(i)])
        self.members[i].divergence = (it + 1, math.nan, rate)
        return "diverged", (f"weights became NaN or infinite in the step of iteration {it} "
                            f"(learning rate {rate:.3g}); try a smaller learning_rate")


def _layer_entry(layers, slot):
    """Member ``slot``'s statistics, one dict of :data:`LAYER_STAT_KEYS` per layer, from
    arrays (K, L) in that order."""
    return [dict(zip(LAYER_STAT_KEYS, map(float, values)))
            for values in zip(*(a[slot] for a in layers))]


def _progress_bar(num_iters, progress):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # progress bars are an optional extra
        return None
    # disable=None: no bar when stderr is not a terminal (a log file gets no redraws)
    return tqdm(total=num_iters, desc="training", unit="it", leave=False, disable=None)


def _show(bar, members, pop):
    """Loss and validation accuracy of the best running member on the bar."""
    if bar is None or not pop.K:
        return
    best = max((members[i] for i in pop.active), key=lambda m: m.history["val_acc_history"][-1]
               if m.history["val_acc_history"] else -1)
    h = best.history
    if h["val_acc_history"]:
        bar.set_postfix(loss=f"{h['loss_history'][-1]:.3f}",
                        val_acc=f"{100 * h['val_acc_history'][-1]:.1f}%", refresh=False)


__all__ = ["LAYER_STAT_KEYS", "LAYER_STAT_ROWS", "Member", "TrainingDivergedError",
           "distillation_targets", "new_history", "train_members", "train_network",
           "training_memory"]
