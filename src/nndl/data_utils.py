"""The course's data functions, with its names and results.

``load_CIFAR10(root)`` is both assignments'. ``get_CIFAR10_data(...)`` is the second
assignment's: a dict of channel-first images (N, 3, 32, 32), mean image subtracted.
``get_CIFAR10_rows(...)`` is nndl's for the first assignment's network: the same split as
six arrays of flattened rows (N, 3072), with preprocessing options. (The first assignment's
notebook defines its own ``get_CIFAR10_data`` in a cell, returning rows.) The real work
lives in :mod:`nndl.data` and :mod:`nndl.transforms`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

from nndl._typing import NDArray, PathLike
from nndl._validation import check_float_dtype
from nndl.data import CIFAR10Arrays, load_cifar10
from nndl.splits import assignment_split
from nndl.transforms import Pipeline


def load_CIFAR10(root: PathLike  # noqa: N802 - the assignment's name
                 ) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """``(X_train, y_train, X_test, y_test)``: X float64 (50000, 32, 32, 3) and
    (10000, 32, 32, 3), y int64 labels. ``root`` may be the python- or binary-version
    folder, the tarball, or a data root holding one of them."""
    data = load_cifar10(root, download=False)
    return (data.X_train.astype(np.float64), data.y_train.astype(np.int64),
            data.X_test.astype(np.float64), data.y_test.astype(np.int64))


class CIFAR10Split(tuple):
    """``(X_train, y_train, X_val, y_val, X_test, y_test)`` — unpacks like the
    assignment's 6-tuple — with the extras as attributes:

    ``mean_image`` (32, 32, 3) float64 (None without mean subtraction),
    ``transform`` (the fitted :class:`~nndl.transforms.Pipeline`),
    ``class_names``.
    """

    def __new__(cls, arrays, transform, class_names):
        self = super().__new__(cls, arrays)
        self.transform, self.class_names = transform, class_names
        mean = next((s.mean_ for s in transform.steps if s.name == "mean"), None)
        self.mean_image = None if mean is None else mean.reshape(32, 32, 3)
        return self


def split_cifar10(data: CIFAR10Arrays, num_training: int = 49000, num_validation: int = 1000,
                  num_test: int = 1000) -> tuple[NDArray, ...]:
    """The assignment's split of uint8 :class:`~nndl.data.CIFAR10Arrays`: validation is
    training images ``num_training .. num_training + num_validation``, test the first
    ``num_test`` test images. Returns six arrays (images keep their shape)."""
    return assignment_split(data, num_training, num_validation, num_test)


def get_CIFAR10_data(num_training: int = 49000, num_validation: int = 1000,  # noqa: N802
                     num_test: int = 1000, subtract_mean: bool = True, *,
                     root: PathLike | None = None, dtype: DTypeLike = np.float64,
                     download: bool = True) -> dict[str, NDArray]:
    """The course's second-assignment data: its split, the training mean image subtracted
    from all three parts, images channel first.

    Parameters
    ----------
    num_training, num_validation, num_test : int
        49,000 / 1,000 / 1,000 by default: validation is training images ``num_training ..
        num_training + num_validation``, test the first ``num_test`` test images.
    subtract_mean : bool
    root : path or None
        Where CIFAR-10 is (see :func:`nndl.data.load_cifar10`: else ``$NNDL_DATA``, else the
        user cache).
    dtype : float64 (default) or float32
    download : bool
        Download CIFAR-10 when it is not found.

    Returns
    -------
    dict
        ``X_train`` (num_training, 3, 32, 32), ``y_train`` (num_training,), ``X_val``,
        ``y_val``, ``X_test``, ``y_test``; y int64.
    """
    parts = get_CIFAR10_rows(num_training, num_validation, num_test, subtract_mean, root=root,
                             dtype=dtype, download=download)
    names = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")
    return {name: _channels_first(part) if name[0] == "X" else part
            for name, part in zip(names, parts)}


def _channels_first(rows: NDArray) -> NDArray:
    """Rows (N, 3072) of (32, 32, 3) images as a C-ordered (N, 3, 32, 32) array."""
    return np.ascontiguousarray(rows.reshape(-1, 32, 32, 3).transpose(0, 3, 1, 2))


def get_CIFAR10_rows(num_training: int = 49000, num_validation: int = 1000,  # noqa: N802
                     num_test: int = 1000, subtract_mean: bool = True, *,
                     root: PathLike | None = None, dtype: DTypeLike = np.float64,
                     full_test: bool = False, preprocessing: Sequence[str] | None = None,
                     download: bool = True) -> CIFAR10Split:
    """The course's split for the first assignment's network: mean image subtracted, rows
    flattened to 3,072 (the same numbers as :func:`get_CIFAR10_data`, another layout).

    Parameters
    ----------
    num_training, num_validation, num_test : int
        The assignment's 49,000 / 1,000 / 1,000 by default.
    subtract_mean : bool
        Subtract the training split's mean image from all three splits.
    root : path or None
        Where CIFAR-10 is (see :func:`nndl.data.load_cifar10`).
    dtype : float64 (default) or float32
    full_test : bool
        Use all 10,000 test images (overrides ``num_test``).
    preprocessing : None, str, list of str, or Pipeline
        Transforms beyond (or instead of) mean subtraction: "mean", "standardize",
        "pca", "zca"; fit on the training split only.
    download : bool
        Download CIFAR-10 when it is not found.

    Returns
    -------
    CIFAR10Split
        Unpacks as ``X_train, y_train, X_val, y_val, X_test, y_test``; X rows of
        shape (N, D), y int64.
    """
    dtype = check_float_dtype(dtype)
    data = load_cifar10(root, download=download)
    parts = split_cifar10(data, num_training, num_validation,
                          len(data.X_test) if full_test else num_test)
    pipeline = build_pipeline(subtract_mean, preprocessing)
    rows = [x.reshape(len(x), -1).astype(dtype) for x in parts[0::2]]
    X_train = pipeline.fit_transform(rows[0], copy=False)  # fresh copies: in place
    X_val, X_test = (pipeline.transform(r, copy=False) for r in rows[1:])
    labels = [y.astype(np.int64) for y in parts[1::2]]
    return CIFAR10Split((X_train, labels[0], X_val, labels[1], X_test, labels[2]),
                        pipeline, data.class_names)


def build_pipeline(subtract_mean: bool = True, preprocessing: Sequence[str] | None = None
                   ) -> Pipeline:
    """The preprocessing pipeline that ``subtract_mean`` and ``preprocessing`` describe."""
    if isinstance(preprocessing, Pipeline):
        return preprocessing
    names = [preprocessing] if isinstance(preprocessing, str) else list(preprocessing or [])
    if subtract_mean and not names:
        names = ["mean"]
    return Pipeline(names)
