"""Minibatch rows gathered into reused NumPy buffers: one buffer, or a ring, by measurement.

Why two ways: a step's products run on two BLAS threads, so both cores read the minibatch,
and writing the next minibatch into that same buffer has to take its lines back from the
other core. Where the two cores share a cache that is cheap and one buffer is fastest
(CIFAR-10, batch 200, float32: 0.24 ms a gather against 0.25-0.33 ms into a ring, and the
steps after a ring gather no faster). Where they do not (the slow state of the 2-vCPU EPYC
in the README's Performance section) the same gather takes 0.84-0.97 ms into one buffer and
0.27-0.45 ms into a ring whose older buffers the other core has meanwhile let go; with one
BLAS thread, or into a buffer the products did not read, it stays fast. A machine moves
between the two states, even within one process, so :class:`RowGatherer` times its own
gathers and keeps the faster way, trying the other for a few calls every ``TRIAL_EVERY``.
The ring holds up to ``RING`` buffers of ``RING_BYTES`` in all (CIFAR-10 batches of 200:
8 in float32, 6 in float64). Only the buffer that receives the rows changes: the rows, and
every number trained from them, are the same either way.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from nndl._typing import NDArray


class RowGatherer:
    """``X[idx]`` written into a reused buffer.

    Parameters
    ----------
    X : C-contiguous ndarray (N, ...)
        The rows to gather from. ``np.take`` copies any other layout whole on every call
        (Fortran-ordered 20,000 x 3,072 float32: 0.76 s a gather, against 6 ms for
        ``X[idx]``): gather from those with ``X[idx]``.
    clock : callable () -> float, default time.perf_counter
        Seconds, for timing the gathers.

    Calling it with ``idx`` (B,) int, all in ``[0, N)``, returns the rows (B, ...). They stay
    valid until the next call: the buffer is then reused. ``mode="clip"`` skips the buffered
    bounds check of ``take(out=)``, which would copy the rows twice, so an index outside
    ``[0, N)`` (a negative one too) is clipped, not refused: the samplers draw none.
    """

    RING = 8  #: buffers of the ring (fewer when they would pass ``RING_BYTES``)
    RING_BYTES = 32 * 2**20
    TRIAL_EVERY = 250  #: calls from one trial of the way not in use to the next
    TRIAL = 8  #: calls a trial lasts
    TIMED = 6  #: the latest gathers of each way that count (the first calls of a stretch,
    #: which still pay for the way before, drop out of a TRIAL-call stretch)
    MARGIN = 0.1  #: the ring is used when its median gather is this much shorter

    def __init__(self, X: NDArray, clock: Callable[[], float] = time.perf_counter) -> None:
        if not X.flags.c_contiguous:
            raise ValueError("RowGatherer needs a C-contiguous X; index others with X[idx]")
        self.X, self.clock = X, clock
        self.calls = 0
        self.use = 0  # the faster way so far: 0 the one buffer, 1 the ring
        self.way = 0  # the way of the latest call
        self._one: NDArray | None = None
        self._ring: list[NDArray] = []
        self._times: tuple[deque[float], deque[float]] = (deque(maxlen=self.TIMED),
                                                          deque(maxlen=self.TIMED))

    def __call__(self, idx: NDArray) -> NDArray:
        if self._one is None or len(self._one) != len(idx):
            self._allocate((len(idx), *self.X.shape[1:]))
        self.way = self._way()
        buf = self._one if self.way == 0 else self._ring[self.calls % len(self._ring)]
        self.calls += 1
        start = self.clock()
        rows = np.take(self.X, idx, axis=0, out=buf, mode="clip")
        self._times[self.way].append(self.clock() - start)
        return rows

    def _allocate(self, shape: tuple[int, ...]) -> None:
        nbytes = self.X.itemsize * int(np.prod(shape))
        count = min(self.RING, self.RING_BYTES // max(nbytes, 1))
        self._one = np.empty(shape, self.X.dtype)
        self._ring = [np.empty(shape, self.X.dtype) for _ in range(count)] if count > 1 else []
        self.calls, self.use = 0, 0
        for times in self._times:
            times.clear()

    def _way(self) -> int:
        """Which buffer this call writes: 0 the one, 1 the ring.

        ``TRIAL`` calls into the one buffer, then ``TRIAL`` into the ring; then the faster
        way, with a ``TRIAL``-call trial of the other closing every ``TRIAL_EVERY`` calls,
        after which the way is chosen again. The ring counts as faster only when its median
        gather is ``MARGIN`` shorter: the steps after a ring gather are no faster, and noise
        alone should not trade the one buffer's cache for the ring's memory.
        """
        if not self._ring:
            return 0
        if self.calls < 2 * self.TRIAL:
            return self.calls // self.TRIAL
        phase = (self.calls - 2 * self.TRIAL) % self.TRIAL_EVERY
        if phase == 0:
            self.use = int(self._median(1) < (1 - self.MARGIN) * self._median(0))
        return 1 - self.use if phase >= self.TRIAL_EVERY - self.TRIAL else self.use

    def _median(self, way: int) -> float:
        return statistics.median(self._times[way]) if self._times[way] else float("inf")
