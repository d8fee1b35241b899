"""Data: named image-classification data sets, image folders and ``.npz`` files, read
safely, downloaded with checks, decoded once into a memory-mapped cache.

``load_dataset(name_or_path)`` returns a :class:`Dataset` (uint8 (N, H, W, C) images,
int64 labels, class names) of ``cifar10``, ``cifar100``, ``mnist``, ``fashion-mnist``,
``digits`` (see :data:`DATASETS`), an image folder or an ``.npz``; the arrays are
memory maps of the decoded copy in the user cache, so any size loads.
``download_dataset(name)`` fetches a named one (md5-checked, resumable, mirrors).
``load_cifar10(root=None)`` is CIFAR-10 in memory as :class:`CIFAR10Arrays`. Named data
sets are found at ``root``, else ``$NNDL_DATA``, else the user cache, and downloaded into
the first of those when absent.
"""

from __future__ import annotations

from nndl.data.cifar10 import CLASS_NAMES, CIFAR10Arrays, Source
from nndl.data.datasets import (
    DATASETS,
    Dataset,
    DatasetSpec,
    download_dataset,
    find_cifar10,
    load_cifar10,
    load_dataset,
)
from nndl.data.errors import (
    ChecksumError,
    DataError,
    DataNotFoundError,
    UnsafePickleError,
)

__all__ = [
    "CLASS_NAMES", "CIFAR10Arrays", "ChecksumError", "DATASETS", "DataError",
    "DataNotFoundError", "Dataset", "DatasetSpec", "Source", "UnsafePickleError",
    "download_dataset", "find_cifar10", "load_cifar10", "load_dataset",
]
