"""Minibatch index streams and the epoch length.

A sampler is called once per iteration and returns the rows of the next minibatch: an
int index array (gathered) or a ``slice`` (a view, nothing gathered).
"""

from __future__ import annotations

import numpy as np

from nndl import _random
from nndl._typing import ArrayLike, NDArray, RandomState
from nndl._validation import check_sample_weight

SAMPLERS = ("replacement", "shuffle", "blocks")


def iterations_per_epoch(num_train: int, batch_size: int) -> int:
    """``max(round(N / batch_size), 1)``: the assignment's epoch length whenever
    ``batch_size`` divides N (the assignment's float modulo otherwise records
    only once, at it = 0)."""
    return max(round(num_train / batch_size), 1)


class MinibatchSampler:
    """Index batches of ``batch_size`` rows out of ``n``.

    ``replacement``: the assignment's ``choice(n, batch_size)``; ``shuffle``: each epoch of
    the loop (:func:`iterations_per_epoch` batches, starting with the first) a fresh
    permutation cut into consecutive batches, so that an epoch sees every row once, but for
    fewer than half a batch left out or drawn twice when ``batch_size`` does not divide
    ``n`` (an epoch's mean loss is then that of a whole pass: with each permutation's tail
    dropped and permutations out of step with the epochs, it jumped by 10% from epoch to
    epoch where a whole pass's falls smoothly); ``blocks``: each epoch the aligned blocks
    of ``batch_size`` consecutive rows in a random order, returned as slices (no gathering;
    assumes the rows' order carries no structure, true of CIFAR-10's official order).

    ``weights`` (n,), non-negative with a positive sum, makes every sampler draw with
    replacement, row ``i`` with probability ``weights[i] / weights.sum()``: the expected
    minibatch gradient is then that of the weighted mean loss, and integer weights draw
    like rows repeated that many times (a zero weight: a row never drawn). Equal weights
    are no weights (the sampler and its draws stay as without them).
    """

    def __init__(self, kind: str, rng: RandomState, n: int, batch_size: int,
                 weights: ArrayLike | None = None) -> None:
        if kind not in SAMPLERS:
            raise ValueError(f"batch_sampler must be one of {SAMPLERS}, got {kind!r}")
        self.kind, self.rng, self.n, self.batch_size = kind, rng, n, batch_size
        self._perm: NDArray = np.zeros(0, dtype=np.int64)  # this epoch's order
        self._pos = n
        self._cdf = _cumulative(weights, n)
        if self._cdf is not None:  # the last row that can be drawn (u * total may round up)
            self._last = int(np.searchsorted(self._cdf, self._cdf[-1]))

    def __call__(self) -> NDArray | slice:
        if self._cdf is not None:
            draws = _random.uniform(self.rng, self.batch_size) * self._cdf[-1]
            return np.minimum(np.searchsorted(self._cdf, draws, side="right"), self._last)
        if self.kind == "replacement":
            return _random.sample_indices(self.rng, self.n, self.batch_size)
        if self.kind == "blocks":
            blocks = max(self.n // self.batch_size, 1)
            if self._pos >= blocks:
                self._perm, self._pos = _random.permutation(self.rng, blocks), 0
            start = int(self._perm[self._pos]) * self.batch_size
            self._pos += 1
            return slice(start, min(start + self.batch_size, self.n))
        if self._pos + self.batch_size > len(self._perm):
            self._perm, self._pos = self._epoch_order(), 0
        idx = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx

    def _epoch_order(self):
        """The shuffle sampler's rows for one epoch of the loop (``iterations_per_epoch``
        batches): a fresh permutation, cut or topped up at random to a whole number of
        batches."""
        order = _random.permutation(self.rng, self.n)
        size = iterations_per_epoch(self.n, self.batch_size) * self.batch_size
        if size > self.n:  # every row, and a few drawn twice
            extra = _random.sample_indices(self.rng, self.n, size - self.n)
            return np.concatenate([order, order[extra]])
        return order[:size]  # a few rows left out this epoch (fewer than half a batch)


def _cumulative(weights, n):
    """The running sum of ``weights`` (checked), or None when there are none or all are
    equal (uniform draws need no table)."""
    if weights is None:
        return None
    w = check_sample_weight(weights, n)
    if np.all(w == w[0]):
        return None
    return np.cumsum(w)


__all__ = ["SAMPLERS", "MinibatchSampler", "iterations_per_epoch"]
