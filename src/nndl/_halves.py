"""Two cores, two halves of the input: the lone SGD step's gather and its two large products
split by columns of the data between the calling thread and one worker thread.

On a two-core machine BLAS splits each of the step's products between the cores by itself,
but along other lines than the data arrive: one core gathers the whole minibatch, the
forward product hands half of its rows to the other core, the weight-gradient product half
of its columns, and each core updates half of the first layer that the other then reads.
Cache lines cross between the cores several times a step, which is cheap while the two
vCPUs share a cache and costs up to twice the step when they do not (this machine's "slow
state": README, Performance). Here each core owns half of the D input columns for good: it
gathers its half of every minibatch row (the data read as (2N, D/2) rows, so each half-row
is one contiguous block), computes its part of the forward product and updates its half of
the first layer, each product single-threaded; only the (B, H) partial sums, the (B, H)
hidden gradient and a norm cross, and the results are the same to rounding (the forward
product's sum over D is added in two parts).

Used only where it replaces what BLAS would do (it runs on two threads: with more, BLAS
keeps them all busy) and where a step's products are large enough to pay for handing work
to the worker twice a step (tens of microseconds). Measured on the assignment's run here
(alternating fresh processes): as fast as the whole step where the machine runs fast, and
2.32-2.80 s in nine runs where the whole step spread over 2.47-3.72 s. Steps should follow
steps: right after a pause (0.2 s) or BLAS's own two-threaded products, a few dozen steps
ran at 1.9 ms instead of 1.1 (the two threads briefly on one core).
"""

from __future__ import annotations

import queue
import threading

import numpy as np

from nndl import _blas

#: B * D * H of a step below which the handoffs cost more than the split saves
MIN_WORK = 4_000_000

def worth_splitting(X, V, batch_size):
    """Whether minibatches of rows of ``X`` (N, D) against the first layer ``V`` (D, H)
    should be split between two cores: BLAS runs on exactly two threads here, ``X`` is a
    C-ordered NumPy array of ``V``'s dtype with an even D, ``V`` C-ordered or the transpose
    of a C-ordered (H, D) array (the float64 layout), and the step is large enough."""
    D, H = V.shape
    return (isinstance(X, np.ndarray) and X.ndim == 2 and X.flags.c_contiguous
            and X.dtype == V.dtype and (V.flags.c_contiguous or V.T.flags.c_contiguous)
            and X.shape[1] == D
            and D % 2 == 0 and batch_size * D * H >= MIN_WORK and _blas.available(V.dtype)
            and _two_blas_threads())


def _two_blas_threads():
    """Whether BLAS splits a product between exactly two threads now (while a split holds
    it at one, a second training in another thread keeps the whole step)."""
    return _blas.num_threads() == 2


class Halves:
    """The lone step's products for minibatches of rows of ``X`` (N, D), C-ordered, against
    ``V`` (D, H) (updated in place, half by each thread), for batches of up to
    ``batch_size`` rows. Holds NumPy's BLAS at one thread until :meth:`close`.

    Per step: :meth:`select` the rows (an index array), :meth:`forward`,
    :meth:`v_norm`, :meth:`backward`. Anything else that reads or writes ``V`` calls
    :meth:`wait` first (the worker may still be updating its half), and
    :meth:`refresh_norms` after writing it.
    """

    def __init__(self, X, V, batch_size):
        N, D = X.shape
        self.half = half = D // 2
        self.rows = X.reshape(2 * N, half)  # row 2i: the first half of X[i], 2i+1 the second
        self.V = V
        self.parts = [np.empty((batch_size, V.shape[1]), V.dtype) for _ in range(2)]
        self.buffers = [np.empty((batch_size, half), V.dtype) for _ in range(2)]
        self.batches = [None, None]  # each thread's (B, D/2) rows of the current minibatch
        # C-ordered V: each thread sums the squares of its half after updating it; stored
        # row by row (V = W.T), a half is not contiguous and the main thread sums all of W
        self.halves_norms = V.flags.c_contiguous
        self.norms = [0.0, 0.0]
        self.refresh_norms()
        self.jobs, self.done = queue.SimpleQueue(), queue.SimpleQueue()
        self.pending = 0  # jobs posted whose "done" has not been taken yet
        self.idx = None
        self.worker = threading.Thread(target=self._work, name="nndl-halves", daemon=True)
        self.worker.start()
        _blas.hold_one_thread()  # each product on its own core (splits in several threads
        # at once hold it at one together: nndl._blas)

    # -- the step -------------------------------------------------------------------
    def select(self, idx):
        """The rows of the next minibatch: an int index array (B,)."""
        self.idx = idx

    def batch_rows(self):
        """B: the rows of the next minibatch."""
        return len(self.idx)

    def forward(self, hidden, alpha):
        """``hidden`` (B, H) = ``alpha * X[idx] @ V``, each thread its half of D."""
        self._post(("forward", self.idx, alpha))
        self._forward(0, self.idx, alpha)
        self.wait()
        return np.add(self.parts[0][:len(hidden)], self.parts[1][:len(hidden)], out=hidden)

    def v_norm(self):
        """|V|^2 (a float) after both halves' latest updates (call after forward)."""
        if self.halves_norms:
            return self.norms[0] + self.norms[1]
        return _blas.sq_norm(self.V.T)

    def refresh_norms(self):
        """Recompute |V|^2 of both halves after ``V`` was written outside a step (after
        :meth:`wait`)."""
        if self.halves_norms:
            self.norms = [_blas.sq_norm(self._v(0)), _blas.sq_norm(self._v(1))]

    def backward(self, dhidden, alpha):
        """``V += alpha * X[idx].T @ dhidden``, each thread its half (the worker's may still
        run when this returns)."""
        self._post(("backward", dhidden, alpha))
        self._backward(0, dhidden, alpha)

    def wait(self):
        """Until the worker has done every job posted; raises what it raised."""
        while self.pending:
            result = self.done.get()
            self.pending -= 1
            if isinstance(result, BaseException):
                raise result

    def close(self):
        """Stop the worker after the jobs it was given and give BLAS its threads back.

        Returns what the caller should raise once it has settled the weights, or None: the
        first error the worker raised that :meth:`wait` has not raised yet, else a
        KeyboardInterrupt pressed while waiting for the worker (which is let finish its
        jobs, a millisecond or two, so that ``V`` is whole when this returns).
        """
        if self.worker is None:
            return None
        worker, self.worker = self.worker, None
        self.jobs.put(None)  # after the jobs posted: the worker ends once they are done
        _blas.release_threads()
        interrupt, errors = None, []
        while True:  # the worker's last words (not Thread.join: an interrupted join may
            try:     # leave is_alive() False while the thread still runs, CPython 3.11)
                result = self.done.get()
            except KeyboardInterrupt as pressed:
                interrupt = pressed
                continue
            if result is _STOPPED:
                break
            errors.extend([result] if isinstance(result, BaseException) else [])
        worker.join(timeout=10)  # it has left its loop: a moment
        self.pending = 0
        return errors[0] if errors else interrupt

    # -- each thread's half ------------------------------------------------------------
    def _forward(self, side, idx, alpha):
        rows = self.buffers[side][:len(idx)]
        np.take(self.rows, 2 * idx + side, axis=0, out=rows, mode="clip")
        self.batches[side] = rows
        _blas.gemm(self.parts[side][:len(rows)], rows, self._v(side), alpha)

    def _backward(self, side, dhidden, alpha):
        V = self._v(side)
        _blas.add_product(V, self.batches[side], dhidden, alpha)
        if self.halves_norms:
            self.norms[side] = _blas.sq_norm(V)

    def _v(self, side):
        return self.V[side * self.half:(side + 1) * self.half]

    def _post(self, job):
        self.jobs.put(job)
        self.pending += 1  # after the put: an interrupt between the two never over-counts

    def _work(self):
        while (job := self.jobs.get()) is not None:
            kind, arg, alpha = job
            try:
                (self._forward if kind == "forward" else self._backward)(1, arg, alpha)
                self.done.put(None)
            except BaseException as error:  # handed to the main thread by wait()
                self.done.put(error)
        self.done.put(_STOPPED)


_STOPPED = object()  # the worker's last message


__all__ = ["MIN_WORK", "Halves", "worth_splitting"]
