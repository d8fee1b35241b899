"""Decoded copies of data sets as ``.npy`` files in the user cache, opened memory-mapped.

One folder per source (sources may be read-only) holds one ``.npy`` per array and
``manifest.json``: a fingerprint of the source (size and modification time of its
files, the decoding options) and what the decoder returned (class names). When the
fingerprint changes, the copy is rebuilt. A build writes into a staging folder that
replaces the old copy only once complete; large arrays are written block by block
(:meth:`CacheWriter.append`), so decoding never holds a whole data set in memory.
Arrays are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from nndl.data.cifar10 import CIFAR10Arrays, read_source
from nndl.data.errors import DataError
from nndl.data.location import user_cache_dir

_ARRAYS = ("X_train", "y_train", "X_test", "y_test")
CACHE_VERSION = 1
_HEADER_BYTES = 256  # room to rewrite a .npy header in place once the row count is known


def files_fingerprint(paths: Iterable[Path]) -> str:
    """A digest of the paths, sizes and modification times of ``paths``."""
    digest = hashlib.sha1()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_folder(kind: str, source: Path, options: dict | None = None) -> Path:
    """The cache folder of ``source`` decoded with ``options``:
    ``<user cache>/decoded/<kind>/<key>``."""
    text = json.dumps([str(Path(source).resolve()), options or {}], sort_keys=True)
    return user_cache_dir() / "decoded" / kind / hashlib.sha1(text.encode()).hexdigest()[:16]


class CacheWriter:
    """Writes the arrays of one cache build into ``folder``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._open: dict[str, tuple[Any, np.dtype, tuple[int, ...], list[int]]] = {}

    def save(self, name: str, array: np.ndarray) -> None:
        """Write ``array`` whole as ``name.npy``."""
        np.save(self.folder / f"{name}.npy", np.asarray(array), allow_pickle=False)

    def append(self, name: str, block: np.ndarray) -> None:
        """Add ``block``'s rows to ``name.npy``; the first block fixes dtype and row shape."""
        if name not in self._open:
            f = open(self.folder / f"{name}.npy", "wb")
            f.write(bytes(_HEADER_BYTES))
            self._open[name] = (f, block.dtype, block.shape[1:], [0])
        f, dtype, row_shape, count = self._open[name]
        if block.dtype != dtype or block.shape[1:] != row_shape:
            raise ValueError(f"{name}: block of {block.dtype} {block.shape[1:]} after "
                             f"{dtype} {row_shape}")
        f.write(np.ascontiguousarray(block).data)
        count[0] += len(block)

    def close(self) -> None:
        """Write the final headers of the appended arrays and close them."""
        for f, dtype, row_shape, count in self._open.values():
            f.seek(0)
            f.write(_npy_header(dtype, (count[0], *row_shape)))
            f.close()
        self._open.clear()


def _npy_header(dtype, shape):
    """A version 1.0 ``.npy`` header of exactly ``_HEADER_BYTES`` bytes."""
    text = repr({"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                 "fortran_order": False, "shape": tuple(shape)})
    length = _HEADER_BYTES - 10
    return b"\x93NUMPY\x01\x00" + length.to_bytes(2, "little") + (
        text.ljust(length - 1) + "\n").encode("latin1")


def cached(folder: Path, fingerprint: dict, build: Callable[[CacheWriter], dict], *,
           mmap: bool = True) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays of ``folder`` and the dict ``build`` returned, rebuilding when the stored
    fingerprint differs from ``fingerprint``.

    ``build(writer)`` decodes the source through ``writer`` and returns JSON-able
    information (e.g. ``{"class_names": [...]}``). Arrays are opened memory-mapped
    (read-only) when ``mmap`` is true, else read into memory. OSError when the cache
    cannot be written.
    """
    current = _read(folder, fingerprint, mmap)
    if current is not None:
        return current
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        writer = CacheWriter(staging)
        try:
            info = build(writer)
        finally:
            writer.close()
        (staging / "manifest.json").write_text(json.dumps({"fingerprint": fingerprint,
                                                           "info": info}))
        shutil.rmtree(folder, ignore_errors=True)  # open memmaps of the old copy stay valid
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    current = _read(folder, fingerprint, mmap)
    if current is None:
        raise DataError(f"{folder}: the decoded copy just written cannot be read back")
    return current


def _read(folder, fingerprint, mmap):
    try:
        stored = json.loads((folder / "manifest.json").read_text())
        if stored.get("fingerprint") != fingerprint:
            return None
        arrays = {p.stem: _load(p, mmap) for p in sorted(folder.glob("*.npy"))}
        return arrays, stored["info"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or damaged: rebuilt


def _load(path, mmap):
    if mmap:
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError:  # older NumPy cannot map an empty array
            pass
    return np.load(path, allow_pickle=False)


def _fingerprint(source):
    return {
        "version": CACHE_VERSION,
        "kind": source.kind,
        "files": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in source.files()],
    }


def cache_dir_for(source):
    key = hashlib.sha1(str(source.path.resolve()).encode()).hexdigest()[:16]
    return user_cache_dir() / "cifar10" / key


def load_cached(source, cache_dir=None, *, mmap=False):
    """CIFAR-10's arrays (:class:`CIFAR10Arrays`), from the cache when it is current,
    else decoded and cached; memory-mapped when ``mmap`` is true. An unwritable cache
    only costs speed."""
    def build(writer):
        data = read_source(source)
        for name in _ARRAYS:
            writer.save(name, getattr(data, name))
        return {"class_names": list(data.class_names)}

    try:
        arrays, info = cached(cache_dir or cache_dir_for(source), _fingerprint(source), build,
                              mmap=mmap)
    except OSError:
        return read_source(source)
    return CIFAR10Arrays(**{k: arrays[k] for k in _ARRAYS},
                         class_names=tuple(info["class_names"]))
