"""CIFAR-100 in its official python version (``cifar-100-python/``), read safely.

``train`` and ``test`` are pickled dicts with ``b'data'`` (N, 3072) uint8 rows and the
label lists ``b'fine_labels'`` (100 classes) and ``b'coarse_labels'`` (20
superclasses); ``meta`` holds ``b'fine_label_names'`` and ``b'coarse_label_names'``.
They are read with CIFAR-10's restricted unpickler: nothing in a file runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nndl.data.cifar10 import check_labels, decode_names, images_from_rows, restricted_load
from nndl.data.errors import DataError

FOLDER = "cifar-100-python"
LABELS = {"fine": 100, "coarse": 20}
OFFICIAL_MD5 = {"train": "16019d7e3df5f24257cddd939b257f8d",  # inside the official tarball
                "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
                "meta": "7973b15100ade9c7d40fb424638fde48"}


def read_cifar100(folder: Path, labels: str = "fine") -> tuple[np.ndarray, ...]:
    """``(X_train, y_train, X_test, y_test, class_names)`` of the folder ``folder``:
    X uint8 (N, 32, 32, 3), y uint8 (N,); ``labels`` is 'fine' or 'coarse'."""
    if labels not in LABELS:
        raise ValueError(f"labels must be 'fine' or 'coarse', got {labels!r}")
    key = f"{labels}_labels".encode()
    parts = [_read_split(folder / name, key, LABELS[labels]) for name in ("train", "test")]
    meta = _unpickle(folder / "meta")
    names = meta.get(f"{labels}_label_names".encode()) if isinstance(meta, dict) else None
    if not names or len(names) != LABELS[labels]:
        raise DataError(f"{folder / 'meta'}: no list of {LABELS[labels]} "
                        f"{labels}_label_names")
    return (*parts[0], *parts[1], decode_names(names))


def _read_split(path, key, num_classes):
    batch = _unpickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or key not in batch:
        raise DataError(f"{path}: not a CIFAR-100 file (no b'data' and {key!r} entries)")
    images = images_from_rows(batch[b"data"], path)
    return images, check_labels(batch[key], len(images), path, num_classes)


def _unpickle(path):
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: missing CIFAR-100 file") from None
    return restricted_load(data, path)
