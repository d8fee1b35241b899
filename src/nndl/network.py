"""``Network``: a fully connected ReLU network of any depth, with optional batch normalization.

Architecture: input - [affine - (batch norm) - ReLU] x (L - 1) - affine - softmax, with the
parameters in the first assignment's layout (:mod:`nndl.architecture`): ``W<l>`` (n_out,
n_in), ``b<l>``; with batch normalization ``gamma<l>``, ``beta<l>`` and the running
statistics of each hidden layer. ``Network([D, H, C], std=s)`` is the first assignment's
network, drawn exactly as ``TwoLayerNet(D, H, C, s)`` draws it. Training goes through
:func:`nndl.training.train_network` and scoring through :class:`nndl.population.Population`,
so the engine and predictions share one forward pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from nndl import _random
from nndl._layers import softmax
from nndl._typing import ArrayLike, NDArray, Params, RandomState
from nndl._validation import check_float_dtype, check_int, check_X, check_y
from nndl.architecture import Architecture, init_params, read_architecture
from nndl.config import RunConfig, TrainOptions
from nndl.neural_net import TwoLayerNet
from nndl.population import Population
from nndl.training import train_network

#: the activations one chunk of :meth:`Network.scores` may take, in bytes: rows are scored
#: this many at a time, so a large X costs no more than this beyond its scores
SCORE_CHUNK_BYTES = 32 << 20
#: keyword arguments of :meth:`Network.train` that go to the loop, not to TrainOptions
LOOP_KEYS = ("batch_transform", "soft_targets", "callback", "progress", "verbose",
             "sample_weight", "history")


class Network:
    """A fully connected ReLU network of any depth.

    Parameters
    ----------
    sizes : sequence of int
        [D, H1, ..., C]: the input width, each hidden layer's width (at least one) and the
        number of classes, each >= 1.
    batchnorm : bool, default False
        Batch normalization before each hidden layer's ReLU (minibatch statistics in
        training, running statistics in :meth:`scores`).
    std : float >= 0 or "auto", default "auto"
        Weights are ``std * standard normal``; "auto": He initialization, ``sqrt(2 /
        n_in)`` per layer (see :func:`nndl.architecture.init_params`). Biases start at zero.
    random_state : None, int, numpy.random.Generator or RandomState
        None draws from NumPy's global RNG; anything else is this network's own stream,
        used for initialization and minibatch sampling (:mod:`nndl._random`).
    dtype : float64 (default) or float32
        Parameters, activations and gradients all use it; inputs are cast once.

    Attributes
    ----------
    params : dict of ndarray
        ``W<l>`` (n_out, n_in), ``b<l>`` (n_out,) for l = 1 .. L; with batch normalization
        ``gamma<l>``, ``beta<l>``, ``running_mean<l>``, ``running_var<l>`` (H<l>,) for each
        hidden layer.

    Examples
    --------
    >>> import numpy as np
    >>> from nndl.network import Network
    >>> net = Network([4, 10, 10, 3], batchnorm=True, random_state=0)
    >>> net.predict_proba(np.zeros((2, 4))).shape
    (2, 3)
    """

    def __init__(self, sizes: Sequence[int], batchnorm: bool = False,
                 std: float | str = "auto", *, random_state: RandomState = None,
                 dtype: DTypeLike = np.float64) -> None:
        arch = Architecture(check_sizes(sizes), check_bool("batchnorm", batchnorm))
        self.dtype = check_float_dtype(dtype)
        self.rng = _random.check_random_state(random_state)
        self.params = init_params(arch, std, self.rng, self.dtype)

    @classmethod
    def from_params(cls, params: Params, random_state: RandomState = None) -> Network:
        """A network holding ``params`` (any depth, :mod:`nndl.architecture`'s layout), its
        dtype ``W1``'s (float32 or float64); nothing is drawn. ValueError naming what does
        not fit."""
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
        arch = read_architecture(params)
        net = cls.__new__(cls)
        net.dtype = check_float_dtype(np.asarray(params["W1"]).dtype)
        net.rng = _random.check_random_state(random_state)
        net.params = {k: np.asarray(params[k], dtype=net.dtype) for k in arch.param_shapes()}
        return net

    def __repr__(self) -> str:
        arch = self.architecture
        return f"Network(sizes={list(arch.sizes)}, batchnorm={arch.batchnorm}, " \
               f"dtype={self.dtype.name})"

    @property
    def architecture(self) -> Architecture:
        """The layer sizes and batch normalization, read from :attr:`params`."""
        return read_architecture(self.params)

    @property
    def sizes(self) -> tuple[int, ...]:
        """[D, H1, ..., C] as a tuple."""
        return self.architecture.sizes

    @property
    def input_size(self) -> int:
        """D, the width of each input row."""
        return int(self.params["W1"].shape[1])

    @property
    def output_size(self) -> int:
        """C, the number of classes."""
        return self.sizes[-1]

    def scores(self, X: ArrayLike) -> NDArray:
        """Class scores (N, C) of rows ``X`` (N, D) in test mode: batch normalization from
        the running statistics, no dropout. Scored by :class:`nndl.population.Population`
        (the training engine's forward pass), :data:`SCORE_CHUNK_BYTES` of activations at
        a time."""
        X = check_X(X, self.input_size)
        pop = Population([self.params], [TrainOptions()], self.dtype)
        out = np.empty((len(X), self.output_size), dtype=self.dtype)
        step = score_chunk_rows(self.sizes, self.dtype)
        for start in range(0, len(X), step):
            rows = np.ascontiguousarray(X[start:start + step], dtype=self.dtype)
            out[start:start + len(rows)] = pop.scores(rows)[0]
        return out

    def predict(self, X: ArrayLike) -> NDArray:
        """Predicted labels: int ndarray of shape (N,)."""
        return np.argmax(self.scores(X), axis=1)

    def predict_proba(self, X: ArrayLike) -> NDArray:
        """Softmax class probabilities, ndarray of shape (N, C)."""
        return softmax(self.scores(X))

    def train(self, X: ArrayLike, y: ArrayLike, X_val: ArrayLike | None = None,
              y_val: ArrayLike | None = None, **options: Any) -> dict[str, Any]:
        """Train :attr:`params` in place with :func:`nndl.training.train_network`, drawing
        minibatches from this network's RNG.

        Parameters
        ----------
        X : ndarray (N, D); y : int ndarray (N,)
        X_val : ndarray (N_val, D) or None; y_val : int ndarray (N_val,) or None
            Scored after each epoch (both None: nothing is scored, no early stopping).
        **options
            :class:`nndl.config.TrainOptions` fields (``learning_rate``, ``num_iters``,
            ``optimizer``, ``dropout``, ...; its defaults otherwise), and the loop's
            ``batch_transform`` (then ``X`` holds images), ``soft_targets``, ``callback``,
            ``progress``, ``verbose``, ``sample_weight`` and ``history``.

        Returns
        -------
        dict with ``loss_history``, ``train_acc_history``, ``val_acc_history`` and the
        extras documented in :func:`nndl.training.train_network`.
        """
        loop_kwargs = {k: options.pop(k) for k in LOOP_KEYS if k in options}
        opts = TrainOptions(**options)
        rows = np.asarray(X) if loop_kwargs.get("batch_transform") is not None else \
            self._rows(X)
        labels = check_y(y, len(rows), self.output_size)
        val_rows = None if X_val is None else self._rows(X_val, name="X_val")
        val_labels = None if y_val is None else np.asarray(y_val)
        if val_rows is not None and val_labels is not None:
            val_labels = check_y(val_labels, len(val_rows), self.output_size, name="y_val")
        return train_network(self.params, rows, labels, val_rows, val_labels, opts,
                             rng=self.rng, **loop_kwargs)

    def _rows(self, X: ArrayLike, name: str = "X") -> NDArray:
        return np.asarray(check_X(X, self.input_size, name), dtype=self.dtype)

    # -- internals: rows already checked (the workflows' and the estimator's) ---------
    def _scores(self, X: NDArray) -> NDArray:
        return self.scores(X)

    def _predict(self, X: NDArray) -> NDArray:
        return np.argmax(self.scores(X), axis=1)


def score_chunk_rows(sizes: Sequence[int], dtype: DTypeLike) -> int:
    """How many rows :meth:`Network.scores` scores at once: :data:`SCORE_CHUNK_BYTES` over
    one row's values in every layer (its input, hidden layers and scores), at least 1."""
    return max(1, SCORE_CHUNK_BYTES // (np.dtype(dtype).itemsize * sum(sizes)))


def check_sizes(sizes: object) -> tuple[int, ...]:
    """``sizes`` as a tuple of ints >= 1, at least three ([D, H, C]); else a TypeError or
    ValueError naming ``sizes``."""
    if isinstance(sizes, str | bytes) or not isinstance(sizes, Sequence | np.ndarray):
        raise TypeError(f"sizes must be a sequence of ints [D, H1, ..., C], got {sizes!r}")
    if len(sizes) < 3:
        raise ValueError(f"sizes must be [D, H1, ..., C] with at least one hidden layer, "
                         f"got {list(sizes)}")
    return tuple(check_int(f"sizes[{i}]", int(s) if isinstance(s, np.integer) else s)
                 for i, s in enumerate(sizes))


def check_bool(name: str, value: object) -> bool:
    """``value`` when it is a bool (NumPy's included); else a TypeError naming ``name``."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def network_for(cfg: RunConfig, input_size: int, num_classes: int) -> TwoLayerNet | Network:
    """The network ``cfg`` describes, initialized from ``cfg.seed``: the first assignment's
    :class:`nndl.neural_net.TwoLayerNet` for one hidden layer without batch normalization
    and a float ``std`` (seed-exact), else a :class:`Network`."""
    dtype, std = np.dtype(cfg.dtype), cfg.init_std
    if cfg.first_assignment_network and not isinstance(std, str):
        return TwoLayerNet(input_size, cfg.hidden_size, num_classes, std=std,
                           random_state=cfg.seed, dtype=dtype)
    return Network((input_size, *cfg.hidden_widths, num_classes), cfg.batchnorm, std,
                   random_state=cfg.seed, dtype=dtype)


__all__ = ["Network", "check_bool", "check_sizes", "network_for", "score_chunk_rows"]
