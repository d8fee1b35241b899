"""A scikit-learn classifier on nndl's training engine, and model files from it.

:class:`TwoLayerNetClassifier` is the assignment's network (affine - ReLU - affine -
softmax) as a scikit-learn estimator: it works in ``Pipeline``, ``GridSearchCV``,
``cross_val_score`` and passes scikit-learn's estimator checks. It trains through
:func:`nndl.training.train_network`, the one loop behind ``TwoLayerNet.train`` and
``nndl train``, so given the assignment's parameters and seed its weights are exactly those
``TwoLayerNet.train`` reaches. :func:`save_model` writes a ``model.npz`` that ``nndl predict``
and ``nndl evaluate`` read.

This module needs scikit-learn (``pip install 'nndl[sklearn]'``, version 1.6 or later);
the rest of nndl needs only NumPy and never imports it.

Notes
-----
Design decisions, following scikit-learn's developer conventions:

* **Defaults that learn.** The estimator's defaults are chosen to learn any standardized
  data without tuning, as ``MLPClassifier``'s do, not to replay the assignment: 100 hidden
  units, ``std="auto"`` (Glorot initialization, the variance ``2 / (fan_in + fan_out)`` of
  scikit-learn's and Keras's default initializers: scale-aware, where the assignment's 1e-4
  leaves the loss at log C for hundreds of steps),
  Adam at 1e-3 with a constant rate, epochs of shuffled minibatches of ``min(200,
  n_samples)`` rows, up to ``max_iter`` = 200 epochs, stopping when the epoch's mean training
  loss has not improved by ``tol`` for ``n_iter_no_change`` epochs. :data:`DIFFERENT_DEFAULTS`
  lists each training option whose default differs from the assignment's ``train`` (the
  :class:`nndl.config.TrainOptions` defaults) and why. Given the assignment's values
  (``std=1e-4``, ``optimizer="sgd"``, ``schedule="epoch_decay"``, ``batch_sampler=
  "replacement"``, ``num_iters``, ...), the estimator trains exactly as ``TwoLayerNet.train``.
* **Budget and convergence.** ``num_iters=None`` (the default): the budget is ``max_iter``
  epochs of ``max(round(n / batch_size), 1)`` minibatches, and training stops once converged
  (scikit-learn's MLP rule: an epoch whose mean loss is not below the best by ``tol`` counts,
  more than ``n_iter_no_change`` such epochs in a row end it). ``num_iters`` an int: exactly
  that many minibatches, the assignment's fixed budget, never cut short by ``tol``. In both,
  a ``ConvergenceWarning`` says when the budget ended before convergence, and when the final
  training loss is still at chance level (within 1% of log C: the network learned nothing).
* **Early stopping.** ``early_stopping=True`` holds out a random ``validation_fraction`` of the
  rows (drawn after the weights), stops after ``n_iter_no_change`` epochs without a better
  accuracy on it and keeps the best weights (an int N > 0 is the patience itself). Off,
  nothing is scored after each epoch (``history_`` then holds the losses, its accuracy lists
  stay empty): scoring costs two forward passes an epoch, a third of a fit on data of one
  minibatch an epoch, where scikit-learn's MLP scores nothing either.
* **Weights.** ``sample_weight`` (``fit``, ``partial_fit``) and ``class_weight`` (None,
  ``"balanced"`` or a dict label -> weight; multiplied together) weigh the rows by how often
  they are drawn: minibatches come with replacement, row ``i`` with probability ``w_i /
  sum(w)``, so each step's expected gradient is the weighted mean loss's, integer weights
  draw as repeated rows would and a zero weight removes a row
  (:class:`nndl.sampling.MinibatchSampler`). Equal weights change nothing. Because training is
  stochastic, a weighted fit equals a fit on repeated rows in distribution, not draw for draw:
  scikit-learn's ``check_sample_weight_equivalence`` cannot hold and is an expected failure.
* **random_state.** None draws from NumPy's global RNG (``np.random.seed(0)`` first
  reproduces the assignment), an int gives each ``fit`` a fresh ``numpy.random.Generator``
  (so ``fit`` is repeatable), a Generator or RandomState is used as given. One stream
  initializes the weights, then draws the minibatches: with the assignment's parameters,
  exactly ``TwoLayerNet(D, hidden_size, C, std, random_state=...)`` and its ``train``.
* **Labels.** ``classes_`` holds the sorted distinct labels (any values scikit-learn
  accepts for classification: ints, strings, ...); the network trains on their indices
  and ``predict`` maps indices back. ``n_features_in_`` (and ``feature_names_in_`` for
  DataFrames) come from :func:`sklearn.utils.validation.validate_data`.
* **Fitted attributes.** ``classes_``, ``n_features_in_``, ``params_`` (``W1`` (H, D),
  ``b1``, ``W2`` (C, H), ``b2``), ``loss_curve_`` (the minibatch loss of every
  iteration: unlike ``MLPClassifier``'s, one value per minibatch, not per epoch),
  ``n_iter_`` (minibatch iterations run, ``len(loss_curve_)``), ``history_`` (the loop's
  record of the last ``fit`` or ``partial_fit``: ``epoch_iterations``, and with early
  stopping the per-epoch ``train_acc_history`` and ``val_acc_history``).
* **partial_fit.** One epoch (``max(round(N / batch_size), 1)`` minibatches) over the
  given rows, continuing from the current weights (after ``fit`` or earlier
  ``partial_fit`` calls) and the estimator's random stream. ``classes`` is required on
  the first call, as in scikit-learn. Each call starts the optimizer state and the
  learning-rate schedule afresh (as a new ``TwoLayerNet.train`` call does); early
  stopping and ``tol`` do not apply, and ``class_weight="balanced"`` is refused (one call's
  rows cannot say the classes' overall balance; give a dict).
* **Divergence.** A NaN or infinite loss raises
  :class:`nndl.training.TrainingDivergedError` (a ``FloatingPointError``); the estimator
  keeps the state it had before that call (``GridSearchCV`` scores it ``error_score``).
* **Model files.** :func:`save_model` stores the network, the class names (``str`` of
  each label unless given), the image shape (``nndl predict`` resizes images to it and
  flattens them height, width, channel), and, for a ``Pipeline`` ending in the
  classifier, its ``StandardScaler`` steps as nndl's ``standardize`` preprocessing.
  ``nndl evaluate`` compares the model's class *index* with CIFAR-10's labels 0..9, so
  evaluate a classifier fitted on those labels.
"""

from __future__ import annotations

import json
import math
import textwrap
import warnings
from collections.abc import Sequence
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import numpy as np

from nndl import _memory, _random
from nndl._layers import softmax
from nndl._typing import ArrayLike, NDArray, PathLike, RandomState
from nndl._validation import check_float, check_float_dtype, check_int, check_sample_weight
from nndl.architecture import Architecture, init_params
from nndl.config import PARAMS, TrainOptions
from nndl.network import Network, check_bool
from nndl.neural_net import TwoLayerNet
from nndl.sampling import iterations_per_epoch
from nndl.training import new_history, train_network, training_memory
from nndl.transforms import Pipeline, make_transform

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.pipeline import Pipeline as SklearnPipeline
    from sklearn.utils.class_weight import compute_sample_weight
    from sklearn.utils.multiclass import check_classification_targets, unique_labels
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("nndl.sklearn needs scikit-learn 1.6 or later: "
                      "pip install 'nndl[sklearn]'") from exc

CHANCE_MARGIN = 0.01  # a final loss within 1% of log C is "still at chance level"

#: The training options whose estimator default differs from the assignment's ``train``
#: (:class:`nndl.config.TrainOptions`): name -> (default, why).
DIFFERENT_DEFAULTS: dict[str, tuple[Any, str]] = {
    "num_iters": (None, "None: the budget is max_iter epochs, whatever the number of rows "
                  "(100 minibatches is a fraction of an epoch on large data and hundreds "
                  "of epochs on small); an int: exactly that many minibatches"),
    "batch_size": ("auto", '"auto": min(200, n_samples), as MLPClassifier'),
    "optimizer": ("adam", "adam: one learning rate works across data sets and "
                  "initializations, where SGD's must be tuned to each"),
    "schedule": ("constant", "constant: the per-epoch decay of 0.95 stops small data sets "
                 "within a few hundred iterations"),
    "batch_sampler": ("shuffle", "shuffle: every row once per epoch, the usual epoch"),
    "early_stopping": (False, "False: stop on the training loss (tol, n_iter_no_change); "
                       "True holds out validation_fraction and stops on its accuracy"),
}

#: The training options that take more here than in :class:`nndl.config.TrainOptions`:
#: name -> their kind in words, ``{}`` standing for the option's own (its Param's).
_ESTIMATOR_KINDS = {"num_iters": "{} or None", "batch_size": '{} or "auto"',
                    "early_stopping": "bool or {}"}


class TwoLayerNetClassifier(ClassifierMixin, BaseEstimator):
    """A two-layer network (affine - ReLU - affine - softmax) trained by nndl's loop.

    See the module docstring for the design: defaults, convergence, weights, labels,
    ``partial_fit``, ``random_state`` and how it matches ``TwoLayerNet.train``.

    Parameters
    ----------
    hidden_size : int, default=100
        H, the number of hidden units of a network with one hidden layer (an alias of
        ``hidden_layer_sizes=(H,)``, kept for the first assignment's name).
    hidden_layer_sizes : int or sequence of int, default=None
        The width of each hidden layer, as scikit-learn's ``MLPClassifier`` names it, e.g.
        ``(500, 500, 500)``; None: one layer of ``hidden_size`` (given, it replaces
        ``hidden_size``).
    batchnorm : bool, default=False
        Batch normalization before each hidden layer's ReLU.
    std : float or "auto", default="auto"
        Initial weight scale: ``W = std * N(0, 1)``; "auto": Glorot's
        ``sqrt(2 / (fan_in + fan_out))`` for each layer (``W1``: ``sqrt(2 / (D + H))``).
        Biases start at zero.
    dtype : {"float64", "float32"}, default="float64"
        Parameters, activations and gradients use it; inputs are cast once.
    random_state : None, int, numpy.random.Generator or RandomState, default=None
        The stream that initializes the weights and draws the minibatches (and the
        early-stopping split). None: NumPy's global RNG, as in the assignment.
    max_iter : int, default=200
        The most epochs to train when ``num_iters`` is None. (``n_iter_`` counts
        minibatches, not epochs: test ``converged_`` to know whether training converged.)
    tol : float, default=1e-4
        The improvement of the epoch's mean training loss that counts as progress. (With
        early stopping, any better validation accuracy counts: one more row right is at
        least ``1 / n_val``, far above any useful tol.)
    n_iter_no_change : int, default=10
        Epochs without progress after which training has converged (and, with
        ``early_stopping=True``, the patience).
    validation_fraction : float in (0, 1), default=0.1
        Share of the rows held out to score when ``early_stopping`` is on.
    class_weight : None, "balanced" or dict, default=None
        Weights of the classes (label -> weight), multiplied into ``sample_weight``;
        "balanced": ``n_samples / (n_classes * count of the class)``.
    verbose : bool, default=False
        Print the loss every 100 iterations, as the assignment does.

    The training options below are the fields of :class:`nndl.config.TrainOptions`, with
    the assignment's ``train`` defaults except where said:

{train_options}
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    n_features_in_ : int
        Columns seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when ``X`` had string column names.
    params_ : dict of ndarray
        ``W1`` (H, D), ``b1`` (H,), ``W2`` (C, H), ``b2`` (C,); for more hidden layers
        ``W<l>`` (n_out, n_in) and ``b<l>`` of each, and with batch normalization
        ``gamma<l>``, ``beta<l>``, ``running_mean<l>``, ``running_var<l>`` of each hidden
        layer (:mod:`nndl.architecture`).
    loss_curve_ : list of float
        The minibatch loss of every iteration (accumulated over ``partial_fit`` calls).
    n_iter_ : int
        Minibatch iterations run, ``len(loss_curve_)``.
    converged_ : bool
        Whether the last ``fit`` stopped on its convergence rule before its budget ended.
    history_ : dict
        The training loop's record of the last ``fit``/``partial_fit``
        (see :func:`nndl.training.train_network`; per-epoch accuracies only with early
        stopping).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from nndl.sklearn import TwoLayerNetClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), TwoLayerNetClassifier(random_state=0))
    >>> pipe.fit(X, y).score(X, y) > 0.95
    True
    """

    def __init__(self, hidden_size: int = 100, *, hidden_layer_sizes: Any = None,
                 batchnorm: bool = False, std: float | str = "auto",
                 dtype: str = "float64", random_state: RandomState = None,
                 max_iter: int = 200, tol: float = 1e-4, n_iter_no_change: int = 10,
                 validation_fraction: float = 0.1, class_weight: Any = None,
                 verbose: bool = False, learning_rate: float = 1e-3,
                 learning_rate_decay: float = 0.95, reg: float = 1e-5,
                 num_iters: int | None = None, batch_size: int | str = "auto",
                 optimizer: str = "adam", momentum: float = 0.9, weight_decay: float = 0.0,
                 schedule: str = "constant", step_epochs: float = 10.0,
                 warmup_iters: int = 0, batch_sampler: str = "shuffle",
                 dropout: float = 0.0, label_smoothing: float = 0.0,
                 early_stopping: bool | int = False, backend: str = "numpy",
                 device: str = "cpu") -> None:
        self.hidden_size = hidden_size
        self.hidden_layer_sizes = hidden_layer_sizes
        self.batchnorm = batchnorm
        self.std = std
        self.dtype = dtype
        self.random_state = random_state
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.validation_fraction = validation_fraction
        self.class_weight = class_weight
        self.verbose = verbose
        self.learning_rate = learning_rate
        self.learning_rate_decay = learning_rate_decay
        self.reg = reg
        self.num_iters = num_iters
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.step_epochs = step_epochs
        self.warmup_iters = warmup_iters
        self.batch_sampler = batch_sampler
        self.dropout = dropout
        self.label_smoothing = label_smoothing
        self.early_stopping = early_stopping
        self.backend = backend
        self.device = device

    # -- scikit-learn API -----------------------------------------------------------
    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
            ) -> TwoLayerNetClassifier:
        """Train a new network on ``X`` (n_samples, n_features) and labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights of the rows (see the module docstring).

        Returns
        -------
        self
        """
        dtype = self._check_params()
        rows, labels = validate_data(self, X, y, dtype=dtype)
        check_classification_targets(labels)
        classes = unique_labels(labels)
        weights = self._row_weights(labels, sample_weight, partial=False)
        rng = _random.check_random_state(self.random_state)
        self._check_memory(rows, len(classes), dtype, split=True)
        params = self._new_params(rows.shape[1], len(classes), dtype, rng)
        train, val = self._split(rows, _encode(classes, labels), weights, rng)
        options = self._options(len(train[0]))
        history = new_history()
        rule = _Convergence(history, self.tol, self.n_iter_no_change,
                            stop=self.num_iters is None and not options.early_stopping)
        train_network(params, train[0], train[1], val[0], val[1], options, rng=rng,
                      verbose=bool(self.verbose), history=history, callback=rule,
                      sample_weight=train[2])
        self.classes_, self.params_, self.history_ = classes, params, history
        self.loss_curve_ = list(history["loss_history"])
        self.n_iter_ = len(self.loss_curve_)
        self.converged_ = rule.converged or bool(history["stopped_early"])
        self._rng = None if rng is np.random else rng  # a module cannot be pickled
        self._warn_if_not_learned(options, len(classes), rule)
        return self

    def partial_fit(self, X: ArrayLike, y: ArrayLike, classes: ArrayLike | None = None,
                    sample_weight: ArrayLike | None = None) -> TwoLayerNetClassifier:
        """One epoch over ``X``, ``y`` from the current weights (see the module docstring).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), required on the first call
            Every label ``y`` may hold in any call.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights of the rows.

        Returns
        -------
        self
        """
        dtype = self._check_params()
        first = not hasattr(self, "classes_")
        if first and classes is None:
            raise ValueError("classes must be given on the first call to partial_fit")
        if not first and classes is not None and not np.array_equal(
                unique_labels(classes), self.classes_):
            raise ValueError(f"classes={classes!r} differs from the classes of the first "
                             f"call, {self.classes_!r}")
        rows, labels = validate_data(self, X, y, dtype=dtype, reset=first)
        check_classification_targets(labels)
        all_classes = unique_labels(classes) if first else self.classes_
        y_idx = _encode(all_classes, labels)
        weights = self._row_weights(labels, sample_weight, partial=True)
        self._check_memory(rows, len(all_classes), dtype, split=False)
        if first:
            rng = _random.check_random_state(self.random_state)
            params = self._new_params(rows.shape[1], len(all_classes), dtype, rng)
        else:
            rng = _random.check_random_state(self._rng)
            params = {k: v.astype(dtype, copy=True) for k, v in self.params_.items()}
        options = self._options(len(rows))
        options = options.replace(num_iters=iterations_per_epoch(len(rows), options.batch_size),
                                  early_stopping=0)
        history = train_network(params, rows, y_idx, None, None, options, rng=rng,
                                verbose=bool(self.verbose), sample_weight=weights)
        self.classes_, self.params_, self.history_ = all_classes, params, history
        self.loss_curve_ = ([] if first else self.loss_curve_) + history["loss_history"]
        self.n_iter_ = len(self.loss_curve_)
        self._rng = None if rng is np.random else rng
        return self

    def predict_proba(self, X: ArrayLike) -> NDArray:
        """Softmax class probabilities, shape (n_samples, n_classes), columns in the
        order of ``classes_``."""
        return softmax(self._scores(X))

    def predict(self, X: ArrayLike) -> NDArray:
        """The most probable label of each row, shape (n_samples,)."""
        scores = self._scores(X)  # checks that the estimator is fitted
        return self.classes_[np.argmax(scores, axis=1)]

    def to_net(self) -> TwoLayerNet | Network:
        """The fitted network (sharing ``params_``): a :class:`nndl.neural_net.TwoLayerNet`
        for one hidden layer without batch normalization, else a
        :class:`nndl.network.Network`; its output ``i`` is ``classes_[i]``."""
        check_is_fitted(self)
        kind = TwoLayerNet if set(self.params_) == {"W1", "b1", "W2", "b2"} else Network
        return kind.from_params(self.params_, random_state=self._rng)

    # -- internals --------------------------------------------------------------------
    def _check_params(self):
        """Check every parameter (TrainOptions checks its own) before any work; returns the
        float dtype."""
        self._options(1)
        PARAMS["hidden_size"].validate(self.hidden_size)
        self._widths()
        check_bool("batchnorm", self.batchnorm)
        if not (isinstance(self.std, str) and self.std == "auto"):
            PARAMS["std"].validate(self.std)
        check_int("max_iter", self.max_iter)
        check_float("tol", self.tol)
        check_int("n_iter_no_change", self.n_iter_no_change)
        frac = check_float("validation_fraction", self.validation_fraction, 0.0, 1.0)
        if self._patience() and not 0 < frac < 1:
            raise ValueError(f"validation_fraction must be in (0, 1) with early stopping, "
                             f"got {frac}")
        if not (self.class_weight is None or self.class_weight == "balanced"
                or isinstance(self.class_weight, dict)):
            raise ValueError(f'class_weight must be None, "balanced" or a dict label -> '
                             f"weight, got {self.class_weight!r}")
        _random.check_random_state(self.random_state)  # fail before any work
        return check_float_dtype(self.dtype)

    def _check_memory(self, rows, n_classes, dtype, split):
        """A :class:`nndl._memory.MemoryLimitError` (a MemoryError) with the numbers, before
        anything is allocated, when training on ``rows`` (n_samples, n_features) would not
        fit (:func:`nndl.training.training_memory`, plus the copies of the rows that the
        early-stopping ``split`` makes)."""
        options = self._options(len(rows))
        n_val = math.ceil(self.validation_fraction * len(rows)) if split and \
            self._patience() else 0
        estimate = training_memory(rows.shape[1], self._widths(), n_classes,
                                   options.batch_size, dtype, optimizers=(options.optimizer,),
                                   val_rows=n_val)
        estimate.add("data", rows.nbytes if n_val else 0)
        _memory.check_fits(estimate, f"{type(self).__name__} on {len(rows):,} rows of "
                           f"{rows.shape[1]:,} features",
                           "lower hidden_size or batch_size")

    def _widths(self):
        """The hidden layers' widths (a tuple of ints), checked."""
        sizes = self.hidden_layer_sizes
        if sizes is None:
            return (self.hidden_size,)
        if isinstance(sizes, int | np.integer) and not isinstance(sizes, bool):
            sizes = (sizes,)
        if isinstance(sizes, str) or not hasattr(sizes, "__len__") or len(sizes) == 0:
            raise ValueError(f"hidden_layer_sizes must be a non-empty sequence of ints >= 1, "
                             f"got {self.hidden_layer_sizes!r}")
        return tuple(check_int(f"hidden_layer_sizes[{i}]", h) for i, h in enumerate(sizes))

    def _patience(self):
        """Early stopping's patience in epochs (0: off)."""
        stop = self.early_stopping
        if isinstance(stop, (bool, np.bool_)):
            return self.n_iter_no_change if stop else 0
        return check_int("early_stopping", stop, minimum=0)

    def _options(self, n_rows):
        """The TrainOptions of a fit on ``n_rows`` training rows (TrainOptions validates
        them): the batch size and the budget resolved."""
        batch_size = self.batch_size
        if isinstance(batch_size, str):
            if batch_size != "auto":
                raise ValueError(f'batch_size must be a positive int or "auto", got '
                                 f"{batch_size!r}")
            batch_size = min(200, n_rows)
        names = [f.name for f in fields(TrainOptions)]
        values = {name: getattr(self, name) for name in names}
        values.update(batch_size=batch_size, num_iters=1, early_stopping=self._patience())
        options = TrainOptions(**values)
        if self.num_iters is not None:
            return options.replace(num_iters=self.num_iters)
        epochs = check_int("max_iter", self.max_iter)
        return options.replace(num_iters=epochs * iterations_per_epoch(n_rows, batch_size))

    def _row_weights(self, labels, sample_weight, partial):
        """The rows' weights, ``sample_weight`` times ``class_weight``'s (n_samples,), or
        None when neither is given."""
        weights = None
        if sample_weight is not None:
            weights = check_sample_weight(sample_weight, len(labels))
        if self.class_weight is not None:
            if partial and self.class_weight == "balanced":
                raise ValueError('class_weight="balanced" is not supported by partial_fit: '
                                 "give a dict label -> weight")
            by_class = compute_sample_weight(self.class_weight, labels)
            weights = by_class if weights is None else weights * by_class
            check_sample_weight(weights, len(labels))
        return weights

    def _new_params(self, n_features, n_classes, dtype, rng):
        """New parameters, drawn as ``TwoLayerNet`` draws them (layer by layer)."""
        auto = isinstance(self.std, str)
        arch = Architecture((n_features, *self._widths(), n_classes), bool(self.batchnorm))
        params = init_params(arch, 1.0 if auto else self.std, rng, dtype)
        if auto:  # Glorot: variance 2 / (fan_in + fan_out) in each layer
            for name, shape in arch.param_shapes().items():
                if name.startswith("W"):
                    params[name] *= dtype.type(math.sqrt(2.0 / sum(shape)))
        return params

    def _split(self, X, y, weights, rng):
        """((X_train, y_train, w_train), (X_val, y_val)) for the loop (module docstring)."""
        if not self._patience():
            return (X, y, weights), (None, None)
        n_val = math.ceil(self.validation_fraction * len(X))
        if len(X) - n_val < 1:
            raise ValueError(f"early stopping holds out {n_val} of n_samples={len(X)} rows "
                             "for validation, leaving none to train on")
        order = _random.permutation(rng, len(X))
        train, val = order[n_val:], order[:n_val]
        w = None if weights is None else weights[train]
        if w is not None and not w.sum() > 0:
            raise ValueError("sample_weight leaves no weight on the rows kept for training "
                             "after the early-stopping split")
        return (X[train], y[train], w), (X[val], y[val])

    def _warn_if_not_learned(self, options, n_classes, rule):
        """ConvergenceWarning when the budget ended before convergence, or when the final
        training loss is still at chance level."""
        h = self.history_
        if not h["stopped_early"] and not rule.converged:
            budget = (f"num_iters={options.num_iters}" if self.num_iters is not None
                      else f"max_iter={self.max_iter} epochs")
            what = "validation accuracy" if options.early_stopping else "training loss"
            warnings.warn(f"the budget ({budget}) ended before the {what} stopped improving; "
                          "raise it to train to convergence", ConvergenceWarning, stacklevel=3)
        chance, loss = math.log(n_classes), rule.last_loss
        if n_classes < 2 or not math.isfinite(loss):
            return
        if abs(loss - chance) <= CHANCE_MARGIN * chance:
            scale = "" if isinstance(self.std, str) else "std='auto', "
            warnings.warn(f"the network has not learned: its final training loss {loss:.4g} "
                          f"is at chance level (log {n_classes} = {chance:.4g}); try "
                          f"{scale}a larger learning_rate or more iterations",
                          ConvergenceWarning, stacklevel=3)
        elif loss > 2 * chance:
            warnings.warn(f"the final training loss {loss:.4g} is far above chance level "
                          f"(log {n_classes} = {chance:.4g}): the learning_rate "
                          f"({self.learning_rate:g}) is likely too large",
                          ConvergenceWarning, stacklevel=3)

    def _scores(self, X):
        check_is_fitted(self)
        dtype = self.params_["W1"].dtype
        X = validate_data(self, X, dtype=dtype, reset=False)
        return self.to_net()._scores(X)


class _Convergence:
    """scikit-learn's MLP rule on the mean training loss of each epoch: an epoch whose mean
    is not below the best one by ``tol`` counts, and more than ``patience`` such epochs in a
    row mean convergence. Called by the loop after each epoch (``callback``); returns True to
    stop there when ``stop``, else only watches."""

    def __init__(self, history, tol, patience, stop):
        self.history, self.tol, self.patience, self.stop = history, tol, patience, stop
        self.best, self.stale, self.seen = math.inf, 0, 0
        self.last_loss = math.nan

    def __call__(self, epoch, record):
        # the loop calls after the first step of each epoch (iteration 0, ipe, 2 ipe, ...):
        # the epoch just ended is the steps since the last call, less the newest one
        end = len(self.history["loss_history"]) - 1
        losses, self.seen = self.history["loss_history"][self.seen:end], end
        if not losses:  # the call after the very first step: no epoch has ended yet
            return False
        self.last_loss = float(np.mean(losses))
        self.stale = self.stale + 1 if self.last_loss > self.best - self.tol else 0
        self.best = min(self.best, self.last_loss)
        return self.stop and self.converged

    @property
    def converged(self):
        return self.stale > self.patience


def _encode(classes, y):
    """Indices of ``y``'s labels in the sorted ``classes``; unknown labels are an error."""
    idx = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
    unknown = classes[idx] != y
    if np.any(unknown):
        raise ValueError(f"y holds labels not in classes: {np.unique(y[unknown])!r}; "
                         f"classes are {classes!r}")
    return idx


def _train_option_docs():
    """The numpydoc entries of the TrainOptions parameters from their table
    (:data:`nndl.config.PARAMS`: kind, range, choices, help), with the estimator's default
    and its reason where it differs from the assignment's."""
    lines = []
    for f in fields(TrainOptions):
        p = PARAMS[f.name]
        kind = _ESTIMATOR_KINDS.get(f.name, "{}").format(p.describe())
        default, why = DIFFERENT_DEFAULTS.get(f.name, (f.default, ""))
        if default is MISSING:
            default = None
        shown = f'"{default}"' if isinstance(default, str) else repr(default)
        lines.append(f"    {f.name} : {kind}, default={shown}")
        text = p.help + "." + (f" Default {why}." if why else "")
        lines.extend(textwrap.wrap(text, 80, initial_indent=" " * 8,
                                   subsequent_indent=" " * 8))
    return "\n".join(lines) + "\n"


TwoLayerNetClassifier.__doc__ = (TwoLayerNetClassifier.__doc__ or "").replace(
    "{train_options}\n", _train_option_docs())


def save_model(estimator_or_net: Any, path: PathLike, *,
               class_names: Sequence[str] | None = None,
               image_shape: Sequence[int] | None = None,
               input_range: Sequence[float] | None = None) -> Path:
    """Write a model file (``model.npz``) that ``nndl predict`` and ``nndl evaluate`` read.

    Parameters
    ----------
    estimator_or_net : TwoLayerNetClassifier, TwoLayerNet or sklearn Pipeline
        A fitted classifier, a network, or a fitted ``Pipeline`` whose last step is a
        fitted classifier and whose other steps are ``StandardScaler`` (stored as nndl's
        ``standardize`` preprocessing) or ``"passthrough"``.
    path : str or Path
        Where to write (atomically, through :func:`nndl.model_io.save_model`).
    class_names : sequence of str, optional
        One name per output, in the order of ``classes_``. Default: ``str`` of each of
        the classifier's labels; ``"0"``, ``"1"``, ... for a network.
    image_shape : (height, width, channels), optional
        The images that rows were flattened from (height, width, channel order). Default:
        (32, 32, 3) when there are 3,072 input columns; required otherwise.
    input_range : (low, high), optional
        The scale of the values the estimator was fitted on. ``nndl predict`` and
        ``nndl evaluate`` read images as pixels 0-255 and map them linearly onto
        [low, high] before the saved preprocessing, so that an image file predicts what
        the estimator predicts for its row: e.g. ``(0, 16)`` for scikit-learn's
        ``load_digits``, ``(0, 1)`` for pixels divided by 255, ``(0, 255)`` for pixels
        as they are. Default None: pixels 0-255 as they are (what every nndl dataset
        gives), with a ``UserWarning`` saying so, since the fitted estimator cannot tell
        which scale it saw. A first ``StandardScaler`` step whose fitted means fall
        outside the range is an error: those rows cannot have come from it.

    The file records no training run (no dataset, no split): ``nndl evaluate`` needs
    ``--dataset`` for it.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from nndl.model_io import SavedModel
    from nndl.model_io import save_model as write_model

    model, transform, scalers = estimator_or_net, Pipeline(), []
    if isinstance(model, SklearnPipeline):
        scalers = [step for _, step in model.steps[:-1] if step not in (None, "passthrough")]
        transform = Pipeline([_standardize_step(step) for step in scalers])
        model = model.steps[-1][1]
    if isinstance(model, TwoLayerNetClassifier):
        net = model.to_net()
        labels = list(model.classes_)
        hyperparameters = {k: _json_safe(v) for k, v in model.get_params().items()}
        history = _json_safe(model.history_)
    elif isinstance(model, TwoLayerNet | Network):
        net, hyperparameters, history = model, {}, {}
        labels = list(range(model.output_size))
    else:
        kind = f"{type(model).__module__}.{type(model).__qualname__}"  # two TwoLayerNets
        raise TypeError("save_model takes a fitted TwoLayerNetClassifier, an "
                        "nndl.neural_net.TwoLayerNet or a Pipeline ending in a "
                        f"TwoLayerNetClassifier, got {kind}")
    names = tuple(str(c) for c in (labels if class_names is None else class_names))
    if len(names) != net.output_size:
        raise ValueError(f"class_names must hold {net.output_size} names (one per class), "
                         f"got {len(names)}")
    if image_shape is None:
        if net.input_size != 32 * 32 * 3:
            raise ValueError(f"image_shape (height, width, channels) is needed for "
                             f"{net.input_size} input columns (the default (32, 32, 3) "
                             "has 3072)")
        image_shape = (32, 32, 3)
    image_shape = tuple(int(v) for v in image_shape)
    if len(image_shape) != 3 or math.prod(image_shape) != net.input_size:
        raise ValueError(f"image_shape must be (height, width, channels) with "
                         f"{net.input_size} values in all, got {image_shape}")
    fitted_range = _input_range(input_range, scalers[0] if scalers else None)
    saved = SavedModel(net, transform, names, hyperparameters, history, image_shape,
                       input_range=fitted_range)
    return write_model(path, saved)


def _input_range(input_range, first_scaler):
    """``input_range`` checked, or None (pixels 0-255 as they are) with a UserWarning; an
    error when ``first_scaler`` (the StandardScaler that saw the raw rows, or None) has
    fitted means outside the range."""
    import warnings

    from nndl.model_io import PIXEL_RANGE, check_input_range

    if input_range is None:
        warnings.warn("save_model: no input_range given, so nndl predict and evaluate feed "
                      "the estimator pixel values 0-255 as they are; pass input_range="
                      "(low, high), the scale it was fitted on (e.g. (0, 16) for "
                      "scikit-learn's digits, (0, 255) for pixels)", UserWarning, stacklevel=3)
    low, high = PIXEL_RANGE if input_range is None else check_input_range(input_range)
    if first_scaler is not None and first_scaler.with_mean:
        means = np.asarray(first_scaler.mean_)
        if means.min() < low or means.max() > high:
            raise ValueError(f"input_range ({low:g}, {high:g}) cannot hold the rows the "
                             f"StandardScaler was fitted on (their means span "
                             f"{means.min():.3g}..{means.max():.3g}); pass the range they "
                             "came from")
    return None if input_range is None else (low, high)


def _standardize_step(step):
    """A fitted StandardScaler as nndl's ``standardize`` transform."""
    from sklearn.preprocessing import StandardScaler

    if not isinstance(step, StandardScaler):
        raise TypeError("save_model stores a Pipeline's StandardScaler steps only, got "
                        f"{type(step).__name__}")
    check_is_fitted(step)
    n = step.n_features_in_
    mean = step.mean_ if step.with_mean else np.zeros(n)
    scale = step.scale_ if step.with_std else np.ones(n)
    return make_transform("standardize", mean_=np.asarray(mean, np.float64),
                          scale_=np.asarray(scale, np.float64))


def _json_safe(value):
    """``value`` with anything JSON cannot hold (a Generator, a dtype) as its repr."""
    return json.loads(json.dumps(value, default=repr))


__all__ = ["TwoLayerNetClassifier", "save_model"]
