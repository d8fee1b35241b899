"""``TwoLayerNet``: the assignment's network, its API kept exactly.

Architecture: input - affine - ReLU - affine - softmax, with
``W1`` (H, D), ``b1`` (H,), ``W2`` (C, H), ``b2`` (C,) and the loss
``mean cross-entropy + 0.5 * reg * (sum(W1**2) + sum(W2**2))``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from nndl import _random
from nndl._layers import (
    affine_backward,
    affine_forward,
    dropout_backward,
    dropout_forward,
    relu_backward,
    relu_forward,
    softmax,
    softmax_loss,
)
from nndl._typing import ArrayLike, NDArray, Params, RandomState
from nndl._validation import check_float, check_float_dtype, check_int, check_X, check_y
from nndl.config import TrainOptions
from nndl.training import train_network


class TwoLayerNet:
    """A two-layer fully connected network with a ReLU hidden layer.

    Parameters
    ----------
    input_size : int
        D, the width of each input row.
    hidden_size : int
        H, the number of hidden units.
    output_size : int
        C, the number of classes.
    std : float, default 1e-4
        Weights are ``std * standard normal``; biases start at zero.
    random_state : None, int, numpy.random.Generator or RandomState
        None draws from NumPy's global RNG (``np.random.seed(0)`` before
        construction reproduces the assignment); anything else is this
        network's own stream, used for initialization and minibatch sampling.
    dtype : float64 (default) or float32
        Parameters, activations and gradients all use it; inputs are cast once.

    Attributes
    ----------
    params : dict of ndarray
        ``W1`` (H, D), ``b1`` (H,), ``W2`` (C, H), ``b2`` (C,).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int,
                 std: float = 1e-4, *, random_state: RandomState = None,
                 dtype: DTypeLike = np.float64) -> None:
        input_size = check_int("input_size", input_size)
        hidden_size = check_int("hidden_size", hidden_size)
        output_size = check_int("output_size", output_size)
        std = check_float("std", std)
        self.dtype = check_float_dtype(dtype)
        self.rng = _random.check_random_state(random_state)
        normal = _random.standard_normal
        self.params = {
            "W1": (std * normal(self.rng, (hidden_size, input_size))).astype(self.dtype),
            "b1": np.zeros(hidden_size, dtype=self.dtype),
            "W2": (std * normal(self.rng, (output_size, hidden_size))).astype(self.dtype),
            "b2": np.zeros(output_size, dtype=self.dtype),
        }

    @classmethod
    def from_params(cls, params: Params, random_state: RandomState = None) -> TwoLayerNet:
        """A network holding ``params`` (``W1`` (H, D), ``b1``, ``W2`` (C, H), ``b2``), its
        dtype theirs; nothing is drawn."""
        net = cls.__new__(cls)
        net.dtype = check_float_dtype(params["W1"].dtype)
        net.rng = _random.check_random_state(random_state)
        net.params = {k: np.asarray(params[k], dtype=net.dtype) for k in ("W1", "b1", "W2", "b2")}
        return net

    @property
    def input_size(self) -> int:
        return self.params["W1"].shape[1]

    @property
    def hidden_size(self) -> int:
        return self.params["W1"].shape[0]

    @property
    def output_size(self) -> int:
        return self.params["W2"].shape[0]

    # -- the assignment's API ------------------------------------------------
    def loss(self, X: ArrayLike, y: ArrayLike | None = None, reg: float = 0.0
             ) -> NDArray | tuple[float, Params]:
        """Class scores, or the loss and its gradients.

        Parameters
        ----------
        X : ndarray of shape (N, D)
        y : int ndarray of shape (N,) or None
        reg : float, the L2 strength

        Returns
        -------
        scores : ndarray of shape (N, C), when ``y`` is None; else
        (loss, grads) : float and a dict keyed like ``params``.
        """
        X = self._rows(X)
        if y is None:
            return self._scores(X)
        y = check_y(y, X.shape[0], self.output_size)
        return self._loss_and_grads(X, y, check_float("reg", reg))

    def train(self, X: ArrayLike, y: ArrayLike, X_val: ArrayLike, y_val: ArrayLike,
              learning_rate: float = 1e-3, learning_rate_decay: float = 0.95,
              reg: float = 1e-5, num_iters: int = 100, batch_size: int = 200,
              verbose: bool = False, **options: Any) -> dict[str, Any]:
        """Minibatch SGD, exactly the assignment's loop by default.

        Minibatches are drawn with replacement (``choice(N, batch_size)``) from
        this network's RNG. After the update of iteration ``it``, whenever
        ``it % iterations_per_epoch == 0`` (it = 0 included), the accuracy on
        the current minibatch and on the whole validation set are recorded and
        the learning rate is multiplied by ``learning_rate_decay``.
        ``iterations_per_epoch = max(round(N / batch_size), 1)``, which equals the
        assignment's whenever ``batch_size`` divides N; the assignment's float
        modulo otherwise records (and decays) only once, at it = 0.

        Extra keyword options (``optimizer``, ``schedule``, ``batch_sampler``,
        ``dropout``, ``label_smoothing``, ``early_stopping``, ...) are those of
        :class:`nndl.config.TrainOptions`; ``progress=True`` shows a bar, and
        ``batch_transform``, ``soft_targets`` and ``callback`` are passed to
        :func:`nndl.training.train_network`, which trains every option through the
        fused core (:mod:`nndl.population`) on the chosen backend.

        Returns
        -------
        dict with ``loss_history``, ``train_acc_history``, ``val_acc_history``
        (and the extras documented in :func:`nndl.training.train_network`).
        """
        loop_keys = ("batch_transform", "soft_targets", "callback", "progress")
        loop_kwargs = {k: options.pop(k) for k in loop_keys if k in options}
        opts = TrainOptions(learning_rate=learning_rate, learning_rate_decay=learning_rate_decay,
                            reg=reg, num_iters=num_iters, batch_size=batch_size, **options)
        # with a batch transform, X holds images that the transform turns into rows
        rows = self._rows(X) if loop_kwargs.get("batch_transform") is None else np.asarray(X)
        val_rows = self._rows(X_val, name="X_val")
        labels = check_y(y, len(rows), self.output_size)
        val_labels = check_y(y_val, val_rows.shape[0], self.output_size, name="y_val")
        return train_network(self.params, rows, labels, val_rows, val_labels, opts,
                             rng=self.rng, verbose=verbose, **loop_kwargs)

    def predict(self, X: ArrayLike) -> NDArray:
        """Predicted labels: int ndarray of shape (N,)."""
        return self._predict(self._rows(X))

    # -- extras -----------------------------------------------------------
    def predict_proba(self, X: ArrayLike) -> NDArray:
        """Softmax class probabilities, ndarray of shape (N, C)."""
        return softmax(self._scores(self._rows(X)))

    # -- internals: no validation, used by the training loop ---------------
    def _rows(self, X: ArrayLike, name: str = "X") -> NDArray:
        return np.asarray(check_X(X, self.input_size, name), dtype=self.dtype)

    def _scores(self, X):
        p = self.params
        hidden, _ = relu_forward(affine_forward(X, p["W1"], p["b1"])[0])
        return affine_forward(hidden, p["W2"], p["b2"])[0]

    def _predict(self, X):
        return np.argmax(self._scores(X), axis=1)

    def _loss_and_grads(self, X, y, reg, dropout=0.0, rng=None, label_smoothing=0.0,
                        soft_targets=None):
        p = self.params
        a1, cache1 = affine_forward(X, p["W1"], p["b1"])
        h, cache_relu = relu_forward(a1)
        h, cache_drop = dropout_forward(h, dropout, rng, train=dropout > 0)
        scores, cache2 = affine_forward(h, p["W2"], p["b2"])
        data_loss, dscores = softmax_loss(scores, y, label_smoothing, soft_targets)
        w1, w2 = p["W1"], p["W2"]
        loss = data_loss + 0.5 * reg * (float(np.sum(w1 * w1)) + float(np.sum(w2 * w2)))
        dh, dW2, db2 = affine_backward(dscores, cache2)
        da1 = relu_backward(dropout_backward(dh, cache_drop), cache_relu)
        _, dW1, db1 = affine_backward(da1, cache1, need_dx=False)
        dW1 += reg * w1
        dW2 += reg * w2
        return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
