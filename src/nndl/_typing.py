"""Type aliases of nndl's public API (arrays are NumPy's ``NDArray``)."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

PathLike = str | os.PathLike
#: what ``random_state`` / ``rng`` arguments accept (see :mod:`nndl._random`)
RandomState = None | int | np.random.Generator | np.random.RandomState
#: a network's parameters: ``W1`` (H, D), ``b1`` (H,), ``W2`` (C, H), ``b2`` (C,)
Params = dict[str, NDArray]
#: a learning-rate schedule: iteration -> multiplier of the base rate
Schedule = Callable[[int], float]

__all__ = ["ArrayLike", "NDArray", "Params", "PathLike", "RandomState", "Schedule"]
