"""Data: CIFAR-10 (official formats, safe, cached, downloadable), image folders, npz.

``load_cifar10(root=None)`` finds CIFAR-10 at ``root``, else ``$NNDL_DATA``,
else the user cache, and downloads it into the first of those when absent.
"""

from __future__ import annotations

from nndl._typing import PathLike
from nndl.data.cache import load_cached
from nndl.data.cifar10 import CLASS_NAMES, CIFAR10Arrays, Source, locate
from nndl.data.download import download_cifar10
from nndl.data.errors import (
    ChecksumError,
    DataError,
    DataNotFoundError,
    UnsafePickleError,
)
from nndl.data.location import candidate_roots, data_root

__all__ = [
    "CLASS_NAMES", "CIFAR10Arrays", "ChecksumError", "DataError", "DataNotFoundError",
    "Source", "UnsafePickleError", "find_cifar10", "load_cifar10",
]


def find_cifar10(root: PathLike | None = None) -> Source | None:
    """The first CIFAR-10 copy found where nndl looks (see module docstring), or None."""
    for path, _ in candidate_roots(root):
        source = locate(path)
        if source is not None:
            return source
    return None


def load_cifar10(root: PathLike | None = None, *, download: bool = True,
                 progress: bool = True) -> CIFAR10Arrays:
    """The whole of CIFAR-10 as :class:`CIFAR10Arrays` (uint8 images), cached after the
    first decode; downloaded when missing and ``download`` is true."""
    source = find_cifar10(root)
    if source is None:
        target = data_root(root)
        reason = "downloading is off"
        if download:
            try:
                download_cifar10(target, progress=progress)
                source = locate(target)
            except (DataError, OSError) as exc:  # OSError: e.g. the root cannot be created
                reason = f"the download failed: {exc}"
        if source is None:
            looked = "; ".join(f"{path} ({why})" for path, why in candidate_roots(root))
            raise DataNotFoundError(
                f"CIFAR-10 not found. Looked in: {looked}. {reason[0].upper()}{reason[1:]}. "
                "Provide it by setting NNDL_DATA to a folder that contains cifar-10-batches-py/ "
                "(or the tarball), passing that folder explicitly (--data), or running "
                "'nndl data download cifar10' with internet access."
            )
    return load_cached(source)
