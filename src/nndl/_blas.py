"""``out = alpha * a @ b + beta * out`` in one BLAS call, on the BLAS library NumPy
itself loaded.

NumPy's ``matmul`` has neither a scale nor an accumulate form, so an update
``W -= A.T @ B`` costs the product plus a second pass over ``W`` (for the first layer of
the assignment's network, a 600 KB array read twice and written once per step), and a
scaled product ``s * (X @ V)`` a second pass over its result. BLAS ``gemm`` computes
``C = alpha * op(A) @ op(B) + beta * C`` with both inside its kernel. This module calls
the ``cblas_?gemm`` of the OpenBLAS that NumPy's wheels ship (``numpy.libs`` on Linux
and Windows, ``numpy/.dylibs`` on macOS), so no second BLAS and no second thread pool is
loaded. Where that library or its symbol is not found (conda's NumPy on MKL, a source
build, another array library) or an operand's strides are not BLAS's, :func:`gemm`
falls back to NumPy: the same result to rounding.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import threading
from pathlib import Path

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_SCALARS = {"float32": ("s", ctypes.c_float), "float64": ("d", ctypes.c_double)}
# (symbol prefix, symbol suffix, integer type) of the OpenBLAS builds NumPy's wheels ship
_FLAVOURS = (("scipy_cblas_", "64_", ctypes.c_int64), ("cblas_", "64_", ctypes.c_int64),
             ("scipy_cblas_", "", ctypes.c_int), ("cblas_", "", ctypes.c_int))


def _library_paths():
    root = Path(np.__file__).parent
    for folder in (root.parent / "numpy.libs", root / ".dylibs"):
        if folder.is_dir():
            yield from sorted(p for p in folder.iterdir() if "openblas" in p.name)


@functools.cache
def _gemm(dtype):
    """The ``cblas_sgemm`` / ``cblas_dgemm`` function of NumPy's OpenBLAS for a dtype
    (name or NumPy dtype), or None (another dtype, or no such library)."""
    dtype = np.dtype(dtype).name
    if dtype not in _SCALARS:
        return None
    letter, scalar = _SCALARS[dtype]
    for path in _library_paths():
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        for prefix, suffix, integer in _FLAVOURS:
            fn = getattr(lib, f"{prefix}{letter}gemm{suffix}", None)
            if fn is not None:
                p = ctypes.c_void_p
                fn.argtypes = [ctypes.c_int] * 3 + [integer] * 3 + [scalar, p, integer, p,
                                                                   integer, scalar, p, integer]
                fn.restype = None
                return fn
    return None


@functools.cache
def _thread_functions():
    """(get, set) of the number of threads of NumPy's OpenBLAS, or None (no such library)."""
    for path in _library_paths():
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas_", "64_"), ("openblas_", "64_"),
                               ("scipy_openblas_", ""), ("openblas_", "")):
            get = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
            if get is not None and put is not None:
                get.argtypes, get.restype = [], ctypes.c_int
                put.argtypes, put.restype = [ctypes.c_int], None
                return get, put
    return None


def num_threads():
    """The threads NumPy's OpenBLAS splits a product between (None when not found)."""
    functions = _thread_functions()
    return None if functions is None else functions[0]()


def set_num_threads(n):
    """Set NumPy's OpenBLAS thread count (process-wide); returns the previous one, or None
    (and nothing changes) when the library is not found."""
    functions = _thread_functions()
    if functions is None:
        return None
    previous = functions[0]()
    functions[1](int(n))
    return previous


#: B * D * H of a step's first-layer product below which the training loop holds BLAS at one
#: thread. Measured on this project's 2-core machine (40-epoch estimator fits, medians of 5):
#: quiet, digits (B 200, D 64, H 100: 1.3e6) took 0.265 s on one thread against 0.302 s on
#: two, but 2,000 CIFAR-10 rows (D 3,072) at H 2 (1.2e6) 0.655 against 0.565 s and at H 6
#: (3.7e6) 1.09 against 0.86 s; loaded by other processes, two threads spinning on a busy core
#: took digits' fit from 0.6-1.6 s to 3-14 s. Below 2e6: tabular widths; deep inputs reach it
#: only with a handful of hidden units.
SMALL_WORK = 2_000_000

# BLAS's thread count is process-wide: holders running at once (trainings in several threads,
# the two-core split) hold it at one together, and the last to let go gives back what the
# first found
class _HeldThreads:
    lock = threading.Lock()
    holders = 0  # holders of BLAS at one thread
    found: int | None = None  # the thread count the first of them found


def hold_one_thread():
    """Hold NumPy's OpenBLAS at one thread until the matching :func:`release_threads`."""
    with _HeldThreads.lock:
        if _HeldThreads.holders == 0:
            _HeldThreads.found = set_num_threads(1)
        _HeldThreads.holders += 1


def release_threads():
    """Let go of one :func:`hold_one_thread`; the last gives BLAS its threads back."""
    with _HeldThreads.lock:
        _HeldThreads.holders -= 1
        if _HeldThreads.holders == 0 and _HeldThreads.found is not None:
            set_num_threads(_HeldThreads.found)


@contextlib.contextmanager
def one_thread(enabled=True):
    """Within the block, NumPy's OpenBLAS runs on one thread (when ``enabled``)."""
    if not enabled:
        yield
        return
    hold_one_thread()
    try:
        yield
    finally:
        release_threads()


def sq_norm(a):
    """Sum of squares (a float) of a C-ordered array: one BLAS dot over its flat view."""
    v = a.reshape(-1)
    return float(v @ v)


def available(dtype):
    """Whether :func:`gemm` runs as one BLAS call for ``dtype`` arrays."""
    return _gemm(np.dtype(dtype)) is not None


def gemm(out, a, b, alpha=1.0, beta=0.0):
    """``out = alpha * a @ b + beta * out`` in place; returns ``out``.

    Parameters
    ----------
    out : ndarray (M, N)
    a : ndarray (M, K); b : ndarray (K, N)
    alpha, beta : float
        With ``beta = 0`` the values in ``out`` are never read (it may hold garbage).

    Each array may be row-contiguous (unit column stride; a row stride of at least its
    width, so a column block of a wider array qualifies) or the transpose of such an
    array. The three share one float dtype, and ``out`` overlaps neither input.
    """
    # (~7 us of Python per call: called twice per training step, so kept lean: a dtype
    # lookup (cached per dtype object, not per name), shape and stride checks, one foreign
    # call). The shapes are checked before anything reaches BLAS, which trusts them: a
    # mismatch there reads and writes outside the arrays.
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0] \
            or out.shape != (a.shape[0], b.shape[1]):
        raise ValueError(f"gemm: shapes {a.shape} @ {b.shape} -> {out.shape} do not agree")
    dtype = out.dtype
    fn = _gemm(dtype) if dtype.isnative and a.dtype == dtype and b.dtype == dtype else None
    layout = _layout(out) if fn is not None else None
    if layout == _NO_TRANS:
        done = _call(fn, out, a, b, alpha, beta)
    elif layout == _TRANS:  # out.T = b.T @ a.T
        done = _call(fn, out.T, b.T, a.T, alpha, beta)
    else:
        done = False
    return out if done else _numpy_gemm(out, a, b, alpha, beta)


def add_product(C, A, B, alpha):
    """``C += alpha * A.T @ B`` in place (:func:`gemm` with ``beta = 1``).

    C (M, N), A (K, M), B (K, N): the first layer's gradient step ``V -= X.T @ dh``.
    """
    return gemm(C, A.T, B, alpha, 1.0)


def _call(fn, out, a, b, alpha, beta):
    """One row-major ``gemm`` into row-contiguous ``out``; False when ``a`` or ``b`` is
    neither row-contiguous nor the transpose of a row-contiguous array."""
    op_a, op_b = _layout(a), _layout(b)
    if op_a is None or op_b is None:
        return False
    (M, K), N = a.shape, b.shape[1]
    n = out.itemsize
    fn(_ROW_MAJOR, op_a, op_b, M, N, K, alpha, a.ctypes.data, _leading(a, op_a), b.ctypes.data,
       _leading(b, op_b), beta, out.ctypes.data, out.strides[0] // n)
    return True


def _layout(a):
    """``_NO_TRANS`` when BLAS can read ``a`` row by row, ``_TRANS`` when column by column
    (``a.T`` row by row), else None."""
    if a.ndim != 2 or a.size == 0:
        return None
    (s0, s1), (m, k), n = a.strides, a.shape, a.itemsize
    if s1 == n and s0 >= k * n and s0 % n == 0:
        return _NO_TRANS
    if s0 == n and s1 >= m * n and s1 % n == 0:
        return _TRANS
    return None


def _leading(a, layout):
    """BLAS's leading dimension of ``a`` read with ``layout``."""
    return a.strides[0 if layout == _NO_TRANS else 1] // a.itemsize


def _numpy_gemm(out, a, b, alpha, beta):
    if beta == 0:
        np.matmul(a, b, out=out)
        if alpha != 1:
            out *= alpha
        return out
    if beta != 1:
        out *= beta
    out += alpha * (a @ b)
    return out


__all__ = ["add_product", "available", "gemm", "hold_one_thread", "num_threads", "one_thread",
           "release_threads", "set_num_threads", "sq_norm"]
