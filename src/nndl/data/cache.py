"""Decoded copies of data sets as ``.npy`` files in the user cache, opened memory-mapped.

One folder per source (sources may be read-only) holds one ``.npy`` per array and
``manifest.json``: a fingerprint of the source (size and modification time of its
files, the decoding options), what the decoder returned (class names) and each
array's name, shape, dtype, file size and SHA-256 of its data. When the fingerprint
changes, the copy is rebuilt.

What is served is verified: on every open each array's file must be there with the
manifest's size, shape and dtype, and the labels (``y_*``, small) their checksum; a
copy that fails is decoded again from the source, with a warning. A build checks what
it wrote: every file is read back and its checksum compared with that of the bytes it
was given. A build writes into a staging folder that replaces the old copy only once
complete; large arrays are written block by block (:meth:`CacheWriter.append`), so
decoding never holds a whole data set in memory. Arrays are read with
``allow_pickle=False``.

Processes sharing a cache take turns through a lock file beside each copy
(``<key>.lock``): a build holds it exclusively, an open shares it, so one process
decodes while the others wait and then read its copy, and no reader sees a copy being
replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nndl._atomic import file_lock
from nndl.data.cifar10 import CIFAR10Arrays, read_source
from nndl.data.errors import DataError
from nndl.data.location import user_cache_dir

_ARRAYS = ("X_train", "y_train", "X_test", "y_test")
CACHE_VERSION = 2  # 2: the manifest lists and checksums the arrays
_HEADER_BYTES = 256  # room to write a .npy header once the row count is known
_READ_BYTES = 16 << 20


class CacheWriteError(OSError):
    """Writing the decoded copy failed (a full disk, a read-only folder): the fault of the
    cache's disk, never of the source being decoded."""


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


class _Array:
    """One array being written: its open file, dtype, row shape, rows and checksum."""

    def __init__(self, f: BinaryIO, dtype: np.dtype, row_shape: tuple[int, ...]) -> None:
        self.f, self.dtype, self.row_shape = f, dtype, row_shape
        self.rows = 0
        self.sha256 = hashlib.sha256()


class CacheWriter:
    """Writes the arrays of one cache build into ``folder``, each as a ``.npy`` whose
    header takes :data:`_HEADER_BYTES`; :meth:`close` returns the manifest's entries.

    A failure to write is a :class:`CacheWriteError`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._arrays: dict[str, _Array] = {}

    def save(self, name: str, array: np.ndarray) -> None:
        """Write ``array`` (at least 1-D) whole as ``name.npy``."""
        self.append(name, np.asarray(array))

    def append(self, name: str, block: np.ndarray) -> None:
        """Add ``block``'s rows to ``name.npy``; the first block fixes dtype and row shape."""
        if name not in self._arrays:
            f = self._guarded(open, self.folder / f"{name}.npy", "wb")
            self._arrays[name] = _Array(f, block.dtype, block.shape[1:])
            self._write(f, bytes(_HEADER_BYTES))
        array = self._arrays[name]
        if block.dtype != array.dtype or block.shape[1:] != array.row_shape:
            raise ValueError(f"{name}: block of {block.dtype} {block.shape[1:]} after "
                             f"{array.dtype} {array.row_shape}")
        data = np.ascontiguousarray(block).data.cast("B")
        array.sha256.update(data)
        self._write(array.f, data)
        array.rows += len(block)

    def close(self) -> dict[str, dict]:
        """Write the headers, close the files; returns ``{name: {"shape", "dtype", "bytes",
        "sha256"}}`` of what was given to be written."""
        entries = {}
        for name, array in list(self._arrays.items()):
            shape = (array.rows, *array.row_shape)
            array.f.seek(0)
            self._write(array.f, _npy_header(array.dtype, shape))
            self._guarded(array.f.close)
            del self._arrays[name]
            entries[name] = {
                "shape": list(shape), "dtype": np.lib.format.dtype_to_descr(array.dtype),
                "bytes": _HEADER_BYTES + array.dtype.itemsize * int(np.prod(shape)),
                "sha256": array.sha256.hexdigest()}
        return entries

    def abandon(self) -> None:
        """Close the files still open (after a failed build), writing nothing more."""
        for array in self._arrays.values():
            try:
                array.f.close()
            except OSError:
                pass  # a full disk cannot flush: the staging folder is deleted anyway
        self._arrays.clear()

    def _write(self, f: BinaryIO, data: bytes | memoryview) -> None:
        self._guarded(f.write, data)

    def _guarded(self, action, *args):
        try:
            return action(*args)
        except OSError as exc:
            raise CacheWriteError(exc.errno, exc.strerror, str(self.folder)) from exc


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
    fingerprint differs from ``fingerprint`` or the copy does not verify (see the module
    docstring).

    ``build(writer)`` decodes the source through ``writer`` and returns JSON-able
    information (e.g. ``{"class_names": [...]}``). Arrays are opened memory-mapped
    (read-only) when ``mmap`` is true, else read into memory. Concurrent calls for one
    folder build it once; the others wait for that build. OSError when the cache cannot
    be written (:class:`CacheWriteError` when writing an array failed); a DataError when
    a copy just built does not verify.
    """
    lock = folder.with_name(folder.name + ".lock")
    if folder.parent.is_dir():
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(file_lock(lock, shared=True))
            except OSError:  # no lock file in a folder this process cannot write: as it is
                pass
            arrays, info, _ = _open(folder, fingerprint, mmap)
        if arrays is not None:
            return arrays, info
    folder.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(lock):  # one build at a time; the others wait here, then read it
        arrays, info, damage = _open(folder, fingerprint, mmap)
        if arrays is not None:
            return arrays, info
        if damage:
            warnings.warn(f"{folder}: the decoded copy is damaged ({damage}); decoding the "
                          "source again", stacklevel=3)
        _build(folder, fingerprint, build)
        arrays, info, damage = _open(folder, fingerprint, mmap)
    if arrays is None:
        raise DataError(f"{folder}: the decoded copy just written cannot be read back "
                        f"({damage})")
    return arrays, info


def _build(folder, fingerprint, build):
    """Decode into a staging folder, check what was written, then put it in place of
    ``folder`` (under the lock: no reader is opening it)."""
    for stale in folder.parent.glob(f".{folder.name}.*"):  # left by a killed build
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        writer = CacheWriter(staging)
        try:
            info = build(writer)
            entries = writer.close()
        finally:
            writer.abandon()
        for name, entry in entries.items():
            problem = _check_file(staging / f"{name}.npy", entry, checksum=True)
            if problem:
                raise DataError(f"{folder}: the decoded copy just written does not verify "
                                f"({problem}); is the disk of {folder.parent} failing?")
        manifest = {"version": CACHE_VERSION, "fingerprint": fingerprint, "info": info,
                    "arrays": entries}
        (staging / "manifest.json").write_text(json.dumps(manifest))
        shutil.rmtree(folder, ignore_errors=True)  # open memmaps of the old copy stay valid
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _open(folder, fingerprint, mmap):
    """``(arrays, info, None)`` of a current, verified copy; else ``(None, None, why)``:
    ``why`` is empty when there is no copy or it is of another source, else what is
    damaged."""
    try:
        stored = json.loads((folder / "manifest.json").read_text())
    except FileNotFoundError:
        return None, None, ""
    except (OSError, ValueError) as exc:
        return None, None, f"manifest.json: {exc}"
    if not isinstance(stored, dict) or not isinstance(stored.get("arrays"), dict) or \
            not isinstance(stored.get("info"), dict):
        return None, None, "manifest.json lists no arrays"
    if stored.get("version") != CACHE_VERSION or stored.get("fingerprint") != fingerprint:
        return None, None, ""  # another source, or options, or an older nndl: rebuilt
    arrays = {}
    for name, entry in stored["arrays"].items():
        path = folder / f"{name}.npy"
        problem = _check_file(path, entry, checksum=name.startswith("y_"))
        if problem:
            return None, None, problem
        arrays[name] = _load(path, mmap)
    return arrays, stored["info"], None


def _check_file(path, entry, checksum):
    """What is wrong with the array file ``path`` against its manifest ``entry`` (its
    header and size; its data's checksum too when ``checksum``), or None."""
    try:
        if path.stat().st_size != entry["bytes"]:
            return f"{path.name}: {path.stat().st_size} bytes, expected {entry['bytes']}"
        with open(path, "rb") as f:
            shape, fortran_order, dtype = read_npy_header(f)
            if list(shape) != entry["shape"] or fortran_order or \
                    np.lib.format.dtype_to_descr(dtype) != entry["dtype"]:
                return (f"{path.name}: {dtype} {shape}, expected {entry['dtype']} "
                        f"{tuple(entry['shape'])}")
            if checksum and _sha256(f) != entry["sha256"]:
                return f"{path.name}: checksum of its data differs from the manifest's"
    except FileNotFoundError:
        return f"{path.name} is missing"
    except (OSError, ValueError, KeyError, TypeError, SyntaxError, EOFError) as exc:
        return f"{path.name}: {exc}"
    return None


def read_npy_header(f: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` from an open ``.npy`` stream, left at its data;
    ValueError when it is not a ``.npy`` header."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)


def _sha256(f):
    """The SHA-256 of the rest of the open file ``f``."""
    digest = hashlib.sha256()
    for block in iter(lambda: f.read(_READ_BYTES), b""):
        digest.update(block)
    return digest.hexdigest()


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
