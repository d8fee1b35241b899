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
from nndl.backend import BACKENDS, NUMPY, get_backend
from nndl.optim import make_optimizer
from nndl.schedules import make_schedule

SAMPLERS = ("replacement", "shuffle", "blocks")


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
    shuffle (each epoch a fresh permutation, cut into consecutive batches) |
    blocks (each epoch the aligned blocks of ``batch_size`` consecutive rows in a
    random order: no gathering, each batch a view; assumes the rows' order carries no
    structure, true of CIFAR-10's official order).
    ``backend`` / ``device``: where plain SGD runs: numpy (default), torch (cpu or
    cuda), cupy (cuda), or auto with device cuda (see :mod:`nndl.backend`).
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
    backend: str = "numpy"
    device: str = "cpu"

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
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be cpu or cuda[:N], got {self.device!r}")
        if (self.backend, self.device) != ("numpy", "cpu"):
            resolve_backend(self)  # fail now, before any data is loaded
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
        if self.kind == "blocks":
            blocks = max(self.n // self.batch_size, 1)
            if self._perm is None or self._pos >= blocks:
                self._perm, self._pos = _random.permutation(self.rng, blocks), 0
            start = int(self._perm[self._pos]) * self.batch_size
            self._pos += 1
            return slice(start, min(start + self.batch_size, self.n))
        if self._pos + self.batch_size > self.n:
            self._perm, self._pos = _random.permutation(self.rng, self.n), 0
        idx = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx


class _GeneralStep:
    """Any update rule, dropout, label smoothing, distillation: layer-by-layer gradients,
    then the optimizer (NumPy)."""

    def __init__(self, net, X, y, opts, rng, soft_targets):
        self.net, self.X, self.y, self.opts, self.rng = net, X, y, opts, rng
        self.soft_targets = soft_targets
        self.optimizer = make_optimizer(opts.optimizer, opts.momentum, opts.weight_decay)

    def batch(self, idx, transform):
        X_batch = self.X[idx]
        self.targets = None if self.soft_targets is None else self.soft_targets[idx]
        return (X_batch if transform is None else transform(X_batch)), self.y[idx]

    def step(self, X_batch, y_batch, lr):
        targets = self.targets
        loss, grads = self.net._loss_and_grads(
            X_batch, y_batch, self.opts.reg, dropout=self.opts.dropout, rng=self.rng,
            label_smoothing=self.opts.label_smoothing, soft_targets=targets)
        if math.isfinite(loss):
            self.optimizer.step(self.net.params, grads, lr)
        return loss

    def host(self, X_batch):
        return X_batch

    def sync(self):
        pass


class _FusedSGD:
    """Plain SGD through the array-API core (:class:`nndl.population.Population` with one
    member): fused update, reused buffers, any backend. ``sync`` writes the weights back
    to ``net.params`` (NumPy, the assignment's layout)."""

    def __init__(self, net, X, y, opts, backend, transform=False, soft_targets=None):
        from nndl.population import Population

        self.net, self.opts, self.bk = net, opts, backend
        self.pop = Population([net.params], net.dtype, backend)
        self.on_host = backend.name == "numpy"
        self.X_raw = X  # images for a batch transform; else rows, put on the backend below
        if not transform:
            self.X = np.asarray(X, dtype=net.dtype) if self.on_host else \
                backend.asarray(X, net.dtype)
        self.reg = np.array([opts.reg])
        # labels (N,), or distillation targets (N, C), put on the backend once
        self.targets = backend.asarray(y) if soft_targets is None else \
            backend.asarray(soft_targets, net.dtype)

    def batch(self, idx, transform):
        if isinstance(idx, slice):  # blocks: nothing gathered
            targets = self.targets[idx]
            if transform is None:
                return self.X[idx], targets
        else:
            targets = self.pop.gather_labels(self.targets, idx)
            if transform is None:
                return self.pop.gather(self.X, idx), targets
        # augmentation and preprocessing run on the host
        return self.bk.asarray(transform(self.X_raw[idx]), self.net.dtype), targets

    def step(self, X_batch, y_batch, lr):
        return float(self.pop.step(X_batch, y_batch, np.array([lr]), self.reg)[0])

    def host(self, X_batch):
        return X_batch if self.on_host else self.bk.to_numpy(X_batch)

    def sync(self):
        self.net.params.update(self.pop.member_params(0))


def resolve_backend(opts):
    """The :class:`~nndl.backend.Backend` of ``opts`` (device cuda with the numpy backend
    means: whichever GPU backend is installed)."""
    name = "auto" if opts.backend == "numpy" and opts.device != "cpu" else opts.backend
    return NUMPY if name == "numpy" else get_backend(name, opts.device)


def _make_stepper(net, X, y, opts, rng, soft_targets, batch_transform):
    plain = opts.optimizer == "sgd" and opts.dropout == 0 and opts.label_smoothing == 0
    backend = resolve_backend(opts)
    if plain:
        return _FusedSGD(net, X, y, opts, backend, transform=batch_transform is not None,
                         soft_targets=soft_targets)
    if backend is not NUMPY:
        raise ValueError("only plain SGD (no momentum/Adam, dropout or label smoothing) runs "
                         "on the torch and cupy backends")
    return _GeneralStep(net, X, y, opts, rng, soft_targets)


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
    soft_targets : ndarray (N, C) of target probabilities, or None
        Distillation targets for the training rows (e.g. a teacher's softened
        probabilities mixed with the labels, see :func:`distillation_targets`);
        each minibatch uses the rows of its indices.
    callback : callable ``(epoch, record) -> bool`` or None
        Called after each epoch's bookkeeping; returning True stops training.
    progress : bool
        Show a progress bar (tqdm) when it is installed.

    Plain SGD (the default) runs through the fused array-API core on the chosen
    backend; other options use layer-by-layer gradients and :mod:`nndl.optim`.

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
    schedule = make_schedule(
        opts.schedule, num_iters=opts.num_iters, iterations_per_epoch=ipe,
        decay=opts.learning_rate_decay, step_epochs=opts.step_epochs,
        warmup_iters=opts.warmup_iters,
    )
    sample = _MinibatchSampler(opts.batch_sampler, rng, num_train, opts.batch_size)
    stepper = _make_stepper(net, X, y, opts, rng, soft_targets, batch_transform)
    transform = None if batch_transform is None else (lambda rows: batch_transform(rows, rng))
    history = {"loss_history": [], "train_acc_history": [], "val_acc_history": [],
               "epoch_iterations": []}
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is checked below
        try:
            _loop(net, y, X_val, y_val, opts, history, ipe=ipe, sample=sample,
                  stepper=stepper, schedule=schedule, verbose=verbose, transform=transform,
                  callback=callback, progress=progress)
        except BaseException:
            stepper.sync()  # leave net.params at the last step (e.g. after Ctrl-C)
            raise
    return history


def _loop(net, y, X_val, y_val, opts, history, *, ipe, sample, stepper, schedule, verbose,
          transform, callback, progress):
    best_acc, best_params, stale, stopped = -1.0, None, 0, False
    for it in _iterations(opts.num_iters, progress):
        idx = sample()
        X_batch, y_batch = stepper.batch(idx, transform)
        lr = opts.learning_rate * schedule(it)
        loss = stepper.step(X_batch, y_batch, lr)
        if not math.isfinite(loss):
            raise TrainingDivergedError(it, loss, lr)
        history["loss_history"].append(loss)
        if verbose and it % 100 == 0:
            print(f"iteration {it} / {opts.num_iters}: loss {loss:f}")
        if it % ipe == 0:
            stepper.sync()
            train_acc = float((net._predict(stepper.host(X_batch)) == y[idx]).mean())
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
    stepper.sync()
    if best_params is not None:
        net.params.update(best_params)
    history["best_val_acc"] = best_acc
    history["stopped_early"] = stopped


def distillation_targets(teacher_scores, y, temperature=2.0, weight=0.7):
    """Ba & Caruana-style soft targets: ``weight * softmax(teacher_scores / T) +
    (1 - weight) * one_hot(y)``; rows of shape (N, C) summing to 1."""
    from nndl.layers import softmax

    check_float("temperature", temperature, 1e-6)
    check_float("weight", weight, 0.0, 1.0)
    probs = softmax(np.asarray(teacher_scores, dtype=np.float64) / temperature)
    onehot = np.eye(probs.shape[1])[np.asarray(y)]
    return weight * probs + (1 - weight) * onehot


def _iterations(num_iters, progress):
    if progress:
        try:
            from tqdm.auto import trange
        except ImportError:  # progress bars are an optional extra
            return range(num_iters)
        return trange(num_iters, desc="training", unit="it", leave=False)
    return range(num_iters)

