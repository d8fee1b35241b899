"""``C += alpha * A.T @ B`` in one BLAS call, on the BLAS library NumPy itself loaded.

NumPy's ``matmul`` has no accumulate form, so an update ``W -= A.T @ B`` costs the
product plus a second pass over ``W`` (for the first layer of the assignment's network,
a 600 KB array read twice and written once per step). BLAS ``gemm`` computes
``C = alpha * op(A) @ B + beta * C`` with the accumulation inside its kernel. This
module calls the ``cblas_?gemm`` of the OpenBLAS that NumPy's wheels ship
(``numpy.libs`` on Linux and Windows, ``numpy/.dylibs`` on macOS), so no second BLAS
and no second thread pool is loaded. Where that library or its symbol is not found
(conda's NumPy on MKL, a source build, another array library) :func:`add_product`
falls back to ``C -= ...`` with NumPy: same result to rounding.
"""

from __future__ import annotations

import ctypes
import functools
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
    """The ``cblas_sgemm`` / ``cblas_dgemm`` function of NumPy's OpenBLAS for a dtype name,
    or None (another dtype, or no such library)."""
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


def available(dtype):
    """Whether :func:`add_product` runs as one BLAS call for ``dtype`` arrays."""
    return _gemm(np.dtype(dtype).name) is not None


def add_product(C, A, B, alpha):
    """``C += alpha * A.T @ B`` in place.

    Parameters
    ----------
    C : ndarray (M, N), rows contiguous (columns may be a slice of a wider array), or
        columns contiguous (``C.T`` rows contiguous: C is the transpose of such an array)
    A : ndarray (K, M); B : ndarray (K, N), rows contiguous
    alpha : float

    The three arrays share one float dtype. Uses one ``gemm`` call with ``beta = 1`` when
    NumPy's OpenBLAS is reachable and the layouts allow it (for a column-contiguous C it
    computes ``C.T += alpha * B.T @ A``), else NumPy.
    """
    fn = _gemm(C.dtype.name)
    if fn is None or not all(_rows_contiguous(a, C.dtype) for a in (A, B)):
        return _numpy_add_product(C, A, B, alpha)
    if _rows_contiguous(C, C.dtype):
        _call(fn, C, A, B, alpha)
    elif _rows_contiguous(C.T, C.dtype):
        _call(fn, C.T, B, A, alpha)
    else:
        return _numpy_add_product(C, A, B, alpha)
    return C


def _call(fn, C, A, B, alpha):
    """``C += alpha * A.T @ B`` for row-contiguous C, A, B: one ``gemm``."""
    (K, M), N = A.shape, B.shape[1]
    fn(_ROW_MAJOR, _TRANS, _NO_TRANS, M, N, K, alpha, A.ctypes.data, A.strides[0] // A.itemsize,
       B.ctypes.data, B.strides[0] // B.itemsize, 1.0, C.ctypes.data, C.strides[0] // C.itemsize)


def _numpy_add_product(C, A, B, alpha):
    C += alpha * (A.T @ B)
    return C


def _rows_contiguous(a, dtype):
    """A 2-D array BLAS can read as row-major with a leading dimension: unit column
    stride, a row stride of at least its width, the given dtype, aligned."""
    return (a.ndim == 2 and a.dtype == dtype and a.strides[1] == a.itemsize
            and a.strides[0] >= a.shape[1] * a.itemsize and a.strides[0] % a.itemsize == 0
            and a.shape[0] > 0 and a.shape[1] > 0)


__all__ = ["add_product", "available"]
