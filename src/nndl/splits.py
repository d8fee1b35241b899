"""Training, validation and test splits of a dataset, without copying the training images.

CIFAR-10 keeps the assignment's split: training the first ``num_training`` (49,000) of the
50,000 training images, validation the next ``num_validation`` (1,000), test the first
``num_test`` (1,000) test images, so its numbers never change. Every other dataset:

* test: its official test set where it has one (the first ``num_test`` images, or all
  with ``full_test``), else a seeded stratified split of ``num_test`` images (default 20%
  of the images; ``full_test`` changes nothing);
* validation: a seeded stratified split of the remaining training images,
  ``num_validation`` images (an int) or that fraction of them (a float in (0, 1)); default
  1,000 or 10%, whichever is fewer;
* training: the rest, in their original order (the first ``num_training`` of them).

Validation and test images are gathered (they are small); the training images stay where
they are (a memory-mapped file stays on disk), seen through :class:`RowSubset`.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from nndl._typing import NDArray
from nndl._validation import check_int

DEFAULT_TEST_FRACTION = 0.2
DEFAULT_VALIDATION = (1000, 0.1)  # at most 1,000 images, at most 10% of the training ones


class RowSubset:
    """The rows ``indices`` of ``images`` (N, ...) as an array-like of ``len(indices)``
    rows: ``subset[i]`` (an int array or a slice of positions) gathers
    ``images[indices[i]]``; nothing is copied until rows are asked for.

    When ``images`` is a memory-mapped ``.npy`` file, rows are read from the file with
    ``preadv`` into the result instead of through the map: the page cache serves them
    without mapping them into this process, so a pass over a dataset larger than RAM does
    not grow it (a random row read through the map maps a whole large folio of the page
    cache, megabytes, on current Linux kernels)."""

    def __init__(self, images: Any, indices: NDArray) -> None:
        self.images, self.indices = images, np.asarray(indices, dtype=np.int64)
        self.shape = (len(self.indices), *images.shape[1:])
        self.dtype, self.ndim = images.dtype, images.ndim
        self._file = _FileRows.of(images)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, rows: Any) -> NDArray:
        positions = self.indices[rows]
        if self._file is not None:
            return self._file.read(positions)
        return np.asarray(self.images[positions])


class _FileRows:
    """Rows of a C-ordered memory-mapped array read with ``os.preadv``."""

    def __init__(self, images: Any) -> None:
        granularity = mmap.ALLOCATIONGRANULARITY  # np.memmap maps from an aligned offset
        base = np.frombuffer(images._mmap, dtype=np.uint8).ctypes.data
        self.start = images.offset - images.offset % granularity + images.ctypes.data - base
        self.row_shape, self.dtype = images.shape[1:], images.dtype
        self.row_bytes = images.dtype.itemsize * int(np.prod(self.row_shape, dtype=np.int64))
        self.filename = images.filename
        self.fd = os.open(self.filename, os.O_RDONLY)

    @classmethod
    def of(cls, images: Any) -> _FileRows | None:
        usable = (isinstance(images, np.memmap) and images.flags.c_contiguous
                  and getattr(images, "_mmap", None) is not None and images.filename
                  and hasattr(os, "preadv"))
        return cls(images) if usable else None

    def read(self, positions: NDArray) -> NDArray:
        out = np.empty((len(positions), *self.row_shape), dtype=self.dtype)
        flat = out.reshape(len(positions), -1).view(np.uint8)
        runs = np.flatnonzero(np.diff(positions) != 1) + 1  # consecutive rows: one read
        for first, last in zip(np.r_[0, runs], np.r_[runs, len(positions)]):
            offset = self.start + int(positions[first]) * self.row_bytes
            block = memoryview(flat[first:last].data)
            if os.preadv(self.fd, [block], offset) != block.nbytes:
                raise OSError(f"short read from {self.filename}: the file was truncated")
        return out

    def __del__(self) -> None:
        os.close(self.fd)


@dataclass
class Splits:
    """Images (N, H, W, C) and int64 labels of each split; ``train_images`` may be a
    memory map or a :class:`RowSubset` of one."""

    train_images: Any
    y_train: NDArray
    val_images: NDArray
    y_val: NDArray
    test_images: NDArray
    y_test: NDArray


def split_dataset(data: Any, *, num_training: int | None = None,
                  num_validation: int | float | None = None, num_test: int | None = None,
                  full_test: bool = False, seed: int = 0) -> Splits:
    """The splits of ``data`` (a :class:`nndl.data.Dataset`) described in the module
    docstring; ``seed`` draws the stratified splits."""
    if data.name == "cifar10":
        return _cifar10_split(data, num_training, num_validation, num_test, full_test)
    rng = np.random.default_rng(seed)
    X, y = data.X_train, np.asarray(data.y_train, dtype=np.int64)
    _check_enough(data.name, len(y), data.X_test is not None)
    pool: NDArray = np.arange(len(y))
    if data.X_test is not None:
        n_test = len(data.y_test) if full_test or num_test is None else num_test
        _check_count("num_test", n_test, len(data.y_test), "official test images")
        test_images, y_test = data.X_test[:n_test], data.y_test[:n_test]
    else:
        n_test = num_test or round(DEFAULT_TEST_FRACTION * len(y))  # full_test: all of it
        _check_count("num_test", n_test, len(y) - 2, "images")
        pool, test_idx = stratified_split(y, n_test, rng)
        test_images, y_test = RowSubset(X, test_idx)[:], y[test_idx]  # read, not mapped
    n_val = _validation_size(num_validation, len(pool))
    train_idx, val_idx = stratified_split(y[pool], n_val, rng)
    train_idx, val_idx = pool[train_idx], pool[val_idx]
    if num_training is not None:
        _check_count("num_training", num_training, len(train_idx), "training images left")
        train_idx = train_idx[:num_training]
    whole = len(train_idx) == len(y) and np.array_equal(train_idx, np.arange(len(y)))
    return Splits(X if whole else RowSubset(X, train_idx), y[train_idx],
                  RowSubset(X, val_idx)[:], y[val_idx], np.asarray(test_images),
                  np.asarray(y_test, dtype=np.int64))


def stratified_split(y: NDArray, size: int, rng: np.random.Generator
                     ) -> tuple[NDArray, NDArray]:
    """(kept, taken): sorted positions of ``y`` (N,), ``size`` of them taken so that each
    class keeps its share (largest remainders), drawn from ``rng``."""
    classes, counts = np.unique(y, return_counts=True)
    exact = size * counts / len(y)
    share = np.floor(exact).astype(np.int64)
    extra = np.argsort(-(exact - share), kind="stable")[: size - share.sum()]
    share[extra] += 1
    taken = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, share)]
    taken_idx = np.sort(np.concatenate(taken)) if taken else np.zeros(0, np.int64)
    mask = np.ones(len(y), dtype=bool)
    mask[taken_idx] = False
    return np.flatnonzero(mask), taken_idx


def assignment_split(data: Any, num_training: int = 49000, num_validation: int = 1000,
                     num_test: int = 1000) -> tuple[NDArray, ...]:
    """The assignment's split of CIFAR-10: validation is training images ``num_training ..
    num_training + num_validation``, test the first ``num_test`` test images. Returns six
    arrays (images keep their shape)."""
    num_training = check_int("num_training", num_training)
    num_validation = check_int("num_validation", num_validation, minimum=0)
    num_test = check_int("num_test", num_test, minimum=0)
    if num_training + num_validation > len(data.X_train):
        raise ValueError(f"num_training + num_validation must be at most {len(data.X_train)}, "
                         f"got {num_training + num_validation}")
    if num_test > len(data.X_test):
        raise ValueError(f"num_test must be at most {len(data.X_test)}, got {num_test}")
    val = slice(num_training, num_training + num_validation)
    return (data.X_train[:num_training], data.y_train[:num_training],
            data.X_train[val], data.y_train[val], data.X_test[:num_test], data.y_test[:num_test])


def _cifar10_split(data, num_training, num_validation, num_test, full_test):
    n_val = 1000 if num_validation is None else num_validation
    if not isinstance(n_val, (int, np.integer)):
        raise TypeError(f"num_validation must be an integer for cifar10 (the assignment's "
                        f"contiguous split), got {n_val!r}")
    n_train = len(data.X_train) - n_val if num_training is None else num_training
    n_test = len(data.X_test) if full_test else (1000 if num_test is None else num_test)
    Xtr, ytr, Xv, yv, Xte, yte = assignment_split(data, n_train, n_val, n_test)
    return Splits(Xtr, ytr.astype(np.int64), Xv, yv.astype(np.int64), Xte,
                  yte.astype(np.int64))


def _check_enough(name, count, has_test):
    """A ValueError naming the data set when ``count`` training images cannot be split:
    training and validation need one each, and test one more unless the data set has its
    own test images."""
    needed, parts = (2, "training and validation") if has_test else \
        (3, "training, validation and test")
    if count < needed:
        images = "1 image is" if count == 1 else f"{count} images are"
        raise ValueError(f"{name}: {images} too few to split into {parts} images; at least "
                         f"{needed} are needed")


def _validation_size(num_validation, available):
    if num_validation is None:
        size = min(DEFAULT_VALIDATION[0], round(DEFAULT_VALIDATION[1] * available))
    elif isinstance(num_validation, float):
        if not 0 < num_validation < 1:
            raise ValueError(f"num_validation as a fraction must be in (0, 1), got "
                             f"{num_validation}")
        size = round(num_validation * available)
    else:
        size = num_validation
    _check_count("num_validation", max(size, 1), available - 1, "training images")
    return max(size, 1)


def _check_count(name, value, available, what):
    if not 1 <= value <= available:
        raise ValueError(f"{name} must be in 1..{available} ({what}), got {value}")


__all__ = ["RowSubset", "Splits", "assignment_split", "split_dataset", "stratified_split"]
