"""Numerical gradients by centred differences, and the relative error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nndl import _random
from nndl._typing import ArrayLike, NDArray, RandomState


def eval_numerical_gradient(f: Callable[[NDArray], float], x: NDArray, verbose: bool = True,
                            h: float = 1e-5) -> NDArray:
    """Gradient of the scalar function ``f`` at ``x`` (modified in place, then restored).

    Parameters
    ----------
    f : callable taking ``x`` and returning a float
    x : float ndarray of any shape
    verbose : bool, print each coordinate's gradient
    h : float, the step

    Returns
    -------
    grad : ndarray shaped like ``x``
    """
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):  # every coordinate, in C order (as the assignment's nditer)
        old = x[ix]
        x[ix] = old + h
        fxph = f(x)
        x[ix] = old - h
        fxmh = f(x)
        x[ix] = old
        grad[ix] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, grad[ix])
    return grad


def eval_numerical_gradient_array(f: Callable[[NDArray], NDArray], x: NDArray, df: NDArray,
                                  h: float = 1e-5) -> NDArray:
    """Numerical ``sum(df * f(x))`` gradient for an array-valued ``f``; ``x`` restored."""
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        pos = f(x).copy()
        x[ix] = old - h
        neg = f(x).copy()
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
    return grad


def grad_check_sparse(f: Callable[[NDArray], float], x: NDArray, analytic_grad: NDArray,
                      num_checks: int = 10, h: float = 1e-5, rng: RandomState = None
                      ) -> list[float]:
    """Compare ``analytic_grad`` with centred differences at ``num_checks`` random
    coordinates, printing each; returns the list of relative errors."""
    source: Any = _random.check_random_state(rng)  # None: NumPy's global RNG
    randint = source.integers if isinstance(source, np.random.Generator) else source.randint
    errors = []
    for _ in range(num_checks):
        ix = tuple(int(randint(m)) for m in x.shape)
        old = x[ix]
        x[ix] = old + h
        fxph = f(x)
        x[ix] = old - h
        fxmh = f(x)
        x[ix] = old
        numeric = (fxph - fxmh) / (2 * h)
        analytic = analytic_grad[ix]
        err = abs(numeric - analytic) / (abs(numeric) + abs(analytic) + 1e-300)
        errors.append(err)
        print(f"numerical: {numeric:f} analytic: {analytic:f}, relative error: {err:e}")
    return errors


def rel_error(x: ArrayLike, y: ArrayLike) -> float:
    """Maximum relative error ``|x - y| / max(1e-8, |x| + |y|)``."""
    x, y = np.asarray(x), np.asarray(y)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def norm_rel_error(x: ArrayLike, y: ArrayLike) -> float:
    """Relative error of two whole arrays, ``||x - y|| / (||x|| + ||y||)`` (Frobenius norms;
    0 when both are 0).

    Unlike :func:`rel_error`'s entry-by-entry maximum, it does not blow up at entries near 0,
    where a centred difference is precise only in absolute terms (about 1e-10 at h = 1e-5 in
    float64): a right gradient gives about 1e-8 or less whatever its smallest entries.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    scale = float(np.linalg.norm(x) + np.linalg.norm(y))
    return float(np.linalg.norm(x - y)) / scale if scale > 0 else 0.0
