"""MNIST and Fashion-MNIST in their official IDX files (gzipped or not).

An IDX file is 2 zero bytes, a type byte (``0x08``: unsigned bytes), the number of
dimensions, each dimension as a big-endian uint32, then the values in C order.
Images are (N, 28, 28), labels (N,).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from nndl.data.cifar10 import check_labels
from nndl.data.errors import DataError

FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array of the IDX file ``path`` (``.gz`` or not), which must have ``ndim``
    dimensions; a DataError naming the file otherwise."""
    try:
        opener = gzip.open if Path(path).suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from exc
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08 or data[3] != ndim:
        raise DataError(f"{path}: not an IDX file of unsigned bytes with {ndim} dimension(s)")
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    if len(data) != header + int(np.prod(shape)):
        raise DataError(f"{path}: {len(data) - header} bytes of values for shape {shape} "
                        "(truncated or damaged)")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def find_file(folder: Path, name: str) -> Path:
    """``folder/name.gz`` (as downloaded) or ``folder/name`` (as torchvision extracts it)."""
    for path in (folder / f"{name}.gz", folder / name):
        if path.is_file():
            return path
    raise DataError(f"{folder}: missing {name}.gz")


def read_mnist(folder: Path) -> tuple[np.ndarray, ...]:
    """``(X_train, y_train, X_test, y_test)`` of an MNIST-format folder: X uint8
    (N, 28, 28, 1), y uint8 (N,) in [0, 10)."""
    arrays = []
    for images_name, labels_name in FILES.values():
        images = read_idx(find_file(folder, images_name), 3)[..., None]
        labels_path = find_file(folder, labels_name)
        arrays += [images, check_labels(read_idx(labels_path, 1), len(images), labels_path)]
    return tuple(arrays)
