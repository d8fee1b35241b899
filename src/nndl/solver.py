"""The course's ``Solver`` (its second assignment's ``utils/solver.py``): minibatch training
of any model that has ``params`` and ``loss(X, y=None)``, with the update rules of
:mod:`nndl.optim`.

Checkpoints are written in nndl's own format (:mod:`nndl._archive`: one ``.npz`` of arrays
plus JSON metadata, never a pickle) and read back with :func:`load_checkpoint`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np

from nndl import optim
from nndl._archive import (
    CHECKPOINT_FORMAT,
    METADATA,
    MODEL_FORMAT,
    check_format,
    decode_metadata,
    read_arrays,
    write_archive,
)
from nndl._typing import NDArray, PathLike
from nndl._validation import check_float, check_int, closest_names

#: the update rules a Solver takes by name (functions of :mod:`nndl.optim`)
UPDATE_RULES = ("sgd", "sgd_momentum", "sgd_nesterov_momentum", "rmsprop", "adam")
CHECKPOINT_VERSION = 1
DATA_KEYS = ("X_train", "y_train", "X_val", "y_val")
#: nndl's own ``--optimizer`` names and the course's rule of the same update
NNDL_NAMES = {name: rule.course for name, rule in optim.RULES.items()
              if rule.course not in (None, name)}

UpdateRule = Callable[[NDArray, NDArray, dict], tuple[NDArray, dict]]


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged, not a checkpoint, or from a newer nndl."""


class Solver:
    """Trains ``model`` on ``data`` by minibatch gradient descent, as the course's Solver.

    Each iteration draws ``batch_size`` training rows **with replacement**
    (``np.random.choice``, NumPy's global generator), calls ``model.loss(X_batch, y_batch)``
    and updates each parameter with ``update_rule`` and its own config. Training runs
    ``num_epochs * max(N // batch_size, 1)`` iterations. At each epoch's end every config's
    ``learning_rate`` is multiplied by ``lr_decay``. At the first and last iteration and at
    each epoch's end, accuracy is measured on ``num_train_samples`` training rows (drawn with
    replacement) and on the validation set (``num_val_samples`` rows, or all); the parameters
    of the best validation accuracy so far are kept, and :meth:`train` restores them at the
    end.

    Parameters
    ----------
    model : object with ``params`` (dict of ndarray) and ``loss(X, y=None)``, which returns
        scores (N, C) without ``y`` and ``(loss, grads)`` with it
    data : dict
        ``X_train`` (N, ...), ``y_train`` (N,), ``X_val`` (N_val, ...), ``y_val`` (N_val,).
    update_rule : str or function, default 'sgd'
        A name among :data:`UPDATE_RULES` or a function with :mod:`nndl.optim`'s interface.
    optim_config : dict or None
        Hyperparameters given to the update rule (e.g. ``learning_rate``); each parameter
        gets its own copy, which the rule then keeps its state in.
    lr_decay : float, default 1.0
    batch_size : int, default 100
    num_epochs : int, default 10
    num_train_samples : int or None, default 1000
        Training rows sampled for the training accuracy (None: all of them).
    num_val_samples : int or None, default None
        Validation rows sampled for the validation accuracy (None: all of them).
    checkpoint_name : str or path, optional
        Where to write a checkpoint at every accuracy check: ``<checkpoint_name>_epoch_<e>.npz``
        (see :func:`load_checkpoint`).
    print_every : int, default 10
        Print the loss every this many iterations (when ``verbose``).
    verbose : bool, default True

    Attributes
    ----------
    loss_history : list of float, one per iteration
    train_acc_history, val_acc_history : list of float, one per accuracy check
    best_val_acc : float
    best_params : dict of ndarray
    epoch : int
    optim_configs : dict, one update-rule config per parameter
    """

    def __init__(self, model: Any, data: Mapping[str, Any], *,
                 update_rule: str | UpdateRule = "sgd", optim_config: dict | None = None,
                 lr_decay: float = 1.0, batch_size: int = 100, num_epochs: int = 10,
                 num_train_samples: int | None = 1000, num_val_samples: int | None = None,
                 checkpoint_name: PathLike | None = None, print_every: int = 10,
                 verbose: bool = True) -> None:
        _check_model(model)
        self.model = model
        self.X_train, self.y_train, self.X_val, self.y_val = _check_data(data)
        self.update_rule = _rule(update_rule)
        self.optim_config = dict(optim_config or {})
        self.lr_decay = check_float("lr_decay", lr_decay)
        self.batch_size = check_int("batch_size", batch_size)
        self.num_epochs = check_int("num_epochs", num_epochs)
        self.num_train_samples = _optional_count("num_train_samples", num_train_samples)
        self.num_val_samples = _optional_count("num_val_samples", num_val_samples)
        self.checkpoint_name = checkpoint_name
        self.print_every = check_int("print_every", print_every)
        self.verbose = verbose
        self._reset()

    def _reset(self) -> None:
        self.epoch = 0
        self.best_val_acc = 0.0
        self.best_params: dict[str, NDArray] = {}
        self.loss_history: list[float] = []
        self.train_acc_history: list[float] = []
        self.val_acc_history: list[float] = []
        self.optim_configs = {p: dict(self.optim_config) for p in self.model.params}

    def _step(self) -> None:
        """One minibatch (drawn with replacement) and one update of every parameter."""
        batch = np.random.choice(self.X_train.shape[0], self.batch_size)
        loss, grads = self.model.loss(self.X_train[batch], self.y_train[batch])
        self.loss_history.append(float(loss))
        for name, w in self.model.params.items():
            next_w, self.optim_configs[name] = self.update_rule(w, grads[name],
                                                                self.optim_configs[name])
            self.model.params[name] = next_w

    def check_accuracy(self, X: NDArray, y: NDArray, num_samples: int | None = None,
                       batch_size: int = 100) -> float:
        """The model's accuracy on ``X`` (N, ...), ``y`` (N,): on ``num_samples`` rows drawn
        with replacement when N is larger, scored ``batch_size`` rows at a time."""
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            rows = np.random.choice(N, num_samples)
            N, X, y = num_samples, X[rows], y[rows]
        predictions = [np.argmax(self.model.loss(X[start:start + batch_size]), axis=1)
                       for start in range(0, N, batch_size)]
        return float(np.mean(np.hstack(predictions) == y))

    def train(self) -> None:
        """Run the optimization; the model ends with the best validation parameters."""
        iterations_per_epoch = max(self.X_train.shape[0] // self.batch_size, 1)
        num_iterations = self.num_epochs * iterations_per_epoch
        for t in range(num_iterations):
            self._step()
            if self.verbose and t % self.print_every == 0:
                print(f"(Iteration {t + 1} / {num_iterations}) loss: {self.loss_history[-1]:f}")
            epoch_end = (t + 1) % iterations_per_epoch == 0
            if epoch_end:
                self.epoch += 1
                for config in self.optim_configs.values():
                    if "learning_rate" in config:
                        config["learning_rate"] *= self.lr_decay
            if t == 0 or t == num_iterations - 1 or epoch_end:
                self._check_and_keep_best()
        self.model.params = self.best_params

    def _check_and_keep_best(self) -> None:
        train_acc = self.check_accuracy(self.X_train, self.y_train, self.num_train_samples)
        val_acc = self.check_accuracy(self.X_val, self.y_val, self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        self._save_checkpoint()
        if self.verbose:
            print(f"(Epoch {self.epoch} / {self.num_epochs}) train acc: {train_acc:f}; "
                  f"val_acc: {val_acc:f}")
        # the first check always keeps its parameters (the course's keeps none while the
        # validation accuracy stays 0, and then leaves the model without parameters)
        if val_acc > self.best_val_acc or not self.best_params:
            self.best_val_acc = val_acc
            self.best_params = {k: v.copy() for k, v in self.model.params.items()}

    def _save_checkpoint(self) -> None:
        if self.checkpoint_name is None:
            return
        save_checkpoint(f"{self.checkpoint_name}_epoch_{self.epoch}.npz", self)


# -- checkpoints ----------------------------------------------------------------------

def save_checkpoint(path: PathLike, solver: Solver) -> Path:
    """Write ``solver``'s state to ``path`` (nndl's .npz + JSON format, atomically).

    Arrays: the model's parameters (``param.<name>``), each parameter's update-rule state
    (``optim.<name>.<key>``: velocity, moments) and, for models that have them, the batch
    normalization running averages (``bn.<i>.<key>``). Metadata: the model's class name, the
    Solver's settings, the epoch, the three histories, and the scalar entries of every
    config (the decayed learning rates, Adam's ``t``).
    """
    model, arrays = solver.model, {}
    arrays.update({f"param.{k}": np.asarray(v) for k, v in model.params.items()})
    configs = {name: _split(f"optim.{name}", config, arrays)
               for name, config in solver.optim_configs.items()}
    metadata = {
        "format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION,
        "model": f"{type(model).__module__}.{type(model).__qualname__}",
        "update_rule": getattr(solver.update_rule, "__name__", repr(solver.update_rule)),
        "optim_config": _split("optim_config", solver.optim_config, arrays),
        "optim_configs": configs,
        "lr_decay": solver.lr_decay, "batch_size": solver.batch_size,
        "num_train_samples": solver.num_train_samples,
        "num_val_samples": solver.num_val_samples,
        "epoch": solver.epoch, "loss_history": solver.loss_history,
        "train_acc_history": solver.train_acc_history,
        "val_acc_history": solver.val_acc_history,
    }
    bn_params = getattr(model, "bn_params", None)
    if isinstance(bn_params, list):
        metadata["bn_params"] = [_split(f"bn.{i}", p, arrays) for i, p in enumerate(bn_params)]
    dropout_param = getattr(model, "dropout_param", None)
    if isinstance(dropout_param, dict):
        metadata["dropout_param"] = _split("dropout_param", dropout_param, arrays)
    return write_archive(path, arrays, metadata)


def load_checkpoint(path: PathLike) -> dict[str, Any]:
    """Read a checkpoint written by a :class:`Solver` (nothing is unpickled).

    Returns its metadata (see :func:`save_checkpoint`) with the arrays put back:
    ``params`` (dict of ndarray), ``optim_configs`` (per parameter, state arrays included),
    ``bn_params`` (when the model had them, running averages included).
    """
    arrays = read_arrays(path, CheckpointError, "checkpoint")
    meta = decode_metadata(path, arrays.pop(METADATA, None), CheckpointError, "checkpoint")
    if meta.get("format") == MODEL_FORMAT:
        raise CheckpointError(f"{path}: not a Solver checkpoint but an nndl model file (network "
                              "nndl.neural_net.TwoLayerNet): read it with "
                              "nndl.model_io.load_model")
    check_format(path, meta, CheckpointError, "checkpoint", CHECKPOINT_FORMAT, CHECKPOINT_VERSION)
    meta["params"] = _join("param", {}, arrays)
    meta["optim_config"] = _join("optim_config", meta["optim_config"], arrays)
    meta["optim_configs"] = {name: _join(f"optim.{name}", config, arrays)
                             for name, config in meta["optim_configs"].items()}
    if "bn_params" in meta:
        meta["bn_params"] = [_join(f"bn.{i}", p, arrays) for i, p in enumerate(meta["bn_params"])]
    return meta


def _split(prefix: str, mapping: Mapping[str, Any], arrays: dict[str, NDArray]
           ) -> dict[str, Any]:
    """The JSON-able entries of ``mapping``; its arrays go to ``arrays[prefix.key]``."""
    scalars: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, np.ndarray):
            arrays[f"{prefix}.{key}"] = value
        elif isinstance(value, np.generic):
            scalars[key] = value.item()
        elif value is None or isinstance(value, str | bool | Real):
            scalars[key] = value
        else:
            raise TypeError(f"a checkpoint holds arrays and numbers only: {prefix} entry "
                            f"{key!r} is a {type(value).__name__}")
    return scalars


def _join(prefix: str, scalars: dict[str, Any], arrays: dict[str, NDArray]) -> dict[str, Any]:
    """``scalars`` with the arrays stored under ``prefix.<key>`` put back."""
    joined = dict(scalars)
    for name, value in arrays.items():
        head, _, key = name.rpartition(".")
        if head == prefix:
            joined[key] = value
    return joined


# -- argument checks ------------------------------------------------------------------

def _check_model(model):
    if not isinstance(getattr(model, "params", None), dict) or not callable(
            getattr(model, "loss", None)):
        raise TypeError("model must have a params dict and a loss(X, y=None) method, got "
                        f"{type(model).__name__}")


def _check_data(data):
    """The four arrays of ``data``, with matching lengths."""
    if not isinstance(data, Mapping):
        raise TypeError(f"data must be a dict with keys {', '.join(DATA_KEYS)}, got "
                        f"{type(data).__name__}")
    missing = [k for k in DATA_KEYS if k not in data]
    if missing:
        raise ValueError(f"data must have the keys {', '.join(DATA_KEYS)}; missing "
                         f"{', '.join(missing)}")
    X_train, y_train, X_val, y_val = (np.asarray(data[k]) for k in DATA_KEYS)
    for X, y, part in ((X_train, y_train, "train"), (X_val, y_val, "val")):
        if len(X) == 0 or len(X) != len(y):
            raise ValueError(f"data['X_{part}'] and data['y_{part}'] must have the same "
                             f"number of rows (at least 1), got {len(X)} and {len(y)}")
    return X_train, y_train, X_val, y_val


def _rule(update_rule):
    """The update function ``update_rule`` names (or is)."""
    if callable(update_rule):
        return update_rule
    if update_rule not in UPDATE_RULES:
        hint = ([NNDL_NAMES[update_rule]] if update_rule in NNDL_NAMES
                else closest_names(str(update_rule), UPDATE_RULES))
        also = f" (did you mean {' or '.join(hint)}?)" if hint else ""
        raise ValueError(f"update_rule must be one of {', '.join(UPDATE_RULES)} or a function, "
                         f"got {update_rule!r}{also}")
    return getattr(optim, update_rule)


def _optional_count(name, value):
    return None if value is None else check_int(name, value)
