"""``Network``: a fully connected network of any depth on nndl's engine.

Affine layers with ReLU between them, optionally batch normalization before each ReLU
(and dropout after it while training), softmax cross-entropy on top; its parameters are a
dict in the first assignment's layout (:mod:`nndl.architecture`). It trains through the
engine's one loop (:func:`nndl.training.train_network`) and predicts through the engine's
forward pass (:meth:`nndl.population.Population.scores`), so what it predicts is what the
loop scored. The first assignment's own class stays :class:`nndl.neural_net.TwoLayerNet`
(seed-exact, the course's API); :func:`network_for` picks between the two for a
:class:`nndl.config.RunConfig`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from nndl import _random
from nndl._layers import softmax
from nndl._typing import ArrayLike, NDArray, Params, RandomState
from nndl._validation import check_float, check_float_dtype, check_int, check_X, check_y
from nndl.architecture import Architecture, init_params, read_architecture
from nndl.config import RunConfig, TrainOptions
from nndl.neural_net import TwoLayerNet
from nndl.population import Population
from nndl.training import train_network

#: rows scored at once by :meth:`Network.scores` (bounds the activations' memory)
CHUNK_ROWS = 4096


class Network:
    """A fully connected network of any depth.

    Parameters
    ----------
    sizes : sequence of int
        Layer sizes [D, H1, ..., C]: the input width, each hidden layer's width (at least
        one) and the number of classes.
    batchnorm : bool, default False
        Batch normalization before each hidden layer's ReLU.
    std : float or "auto", default "auto"
        Initial weight scale: ``W = std * N(0, 1)``; "auto": He's ``sqrt(2 / fan-in)``.
    random_state : None, int, numpy.random.Generator or RandomState
        The network's stream, for initialization and minibatches (None: NumPy's global RNG).
    dtype : float64 (default) or float32

    Attributes
    ----------
    params : dict of ndarray
        ``W<l>`` (n_out, n_in), ``b<l>`` (n_out,) for l = 1..L, and with batch
        normalization ``gamma<l>``, ``beta<l>``, ``running_mean<l>``, ``running_var<l>``
        (H<l>,) for each hidden layer.
    """

    def __init__(self, sizes: Sequence[int], batchnorm: bool = False,
                 std: float | str = "auto", *, random_state: RandomState = None,
                 dtype: DTypeLike = np.float64) -> None:
        if isinstance(sizes, int | str) or not isinstance(sizes, Sequence) or len(sizes) < 3:
            raise ValueError(f"sizes must list the input width, at least one hidden width "
                             f"and the number of classes, e.g. [3072, 500, 10], got {sizes!r}")
        sizes = tuple(check_int(f"sizes[{i}]", s) for i, s in enumerate(sizes))
        if std != "auto":
            std = check_float("std", std)
        self.dtype = check_float_dtype(dtype)
        self.rng = _random.check_random_state(random_state)
        self.params = init_params(Architecture(sizes, bool(batchnorm)), std, self.rng,
                                  self.dtype)

    @classmethod
    def from_params(cls, params: Params, random_state: RandomState = None) -> Network:
        """A network holding ``params`` (see the class docstring), its dtype theirs."""
        read_architecture(params)  # ValueError naming what does not fit
        net = cls.__new__(cls)
        net.dtype = check_float_dtype(np.asarray(params["W1"]).dtype)
        net.rng = _random.check_random_state(random_state)
        net.params = {k: np.asarray(v, dtype=net.dtype) for k, v in params.items()}
        return net

    @property
    def architecture(self) -> Architecture:
        return read_architecture(self.params)

    @property
    def sizes(self) -> tuple[int, ...]:
        return self.architecture.sizes

    @property
    def input_size(self) -> int:
        return self.sizes[0]

    @property
    def output_size(self) -> int:
        return self.sizes[-1]

    def train(self, X: ArrayLike, y: ArrayLike, X_val: ArrayLike, y_val: ArrayLike,
              **options: Any) -> dict[str, Any]:
        """Train in place with the options of :class:`nndl.config.TrainOptions` (and
        ``batch_transform``, ``soft_targets``, ``callback``, ``progress``, ``verbose``:
        :func:`nndl.training.train_network`); returns the history."""
        loop_keys = ("batch_transform", "soft_targets", "callback", "progress", "verbose")
        loop_kwargs = {k: options.pop(k) for k in loop_keys if k in options}
        rows = self._rows(X) if loop_kwargs.get("batch_transform") is None else np.asarray(X)
        val_rows = self._rows(X_val, name="X_val")
        labels = check_y(y, len(rows), self.output_size)
        val_labels = check_y(y_val, len(val_rows), self.output_size, name="y_val")
        return train_network(self.params, rows, labels, val_rows, val_labels,
                             TrainOptions(**options), rng=self.rng, **loop_kwargs)

    def scores(self, X: ArrayLike) -> NDArray:
        """Class scores (N, C) in test mode: batch normalization from the running
        statistics, no dropout."""
        return self._scores(self._rows(X))

    def predict(self, X: ArrayLike) -> NDArray:
        """Predicted labels: int ndarray (N,)."""
        return np.argmax(self.scores(X), axis=1)

    def predict_proba(self, X: ArrayLike) -> NDArray:
        """Softmax class probabilities (N, C)."""
        return softmax(self.scores(X))

    # -- internals: no validation ------------------------------------------------
    def _rows(self, X: ArrayLike, name: str = "X") -> NDArray:
        return np.asarray(check_X(X, self.input_size, name), dtype=self.dtype)

    def _scores(self, X: NDArray) -> NDArray:
        stack = Population([self.params], [TrainOptions()], self.dtype)
        chunks = [stack.scores(X[i:i + CHUNK_ROWS])[0] for i in range(0, len(X), CHUNK_ROWS)]
        return np.concatenate(chunks) if chunks else np.zeros((0, self.output_size),
                                                                  self.dtype)

    def _predict(self, X: NDArray) -> NDArray:
        return np.argmax(self._scores(X), axis=1)


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


__all__ = ["Network", "network_for"]
