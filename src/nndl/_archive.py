"""nndl's file format for arrays with metadata: one ``.npz`` archive of numeric arrays plus
``metadata.json`` (UTF-8 JSON stored as a uint8 array). Written atomically (a crash never
leaves half a file) and read header first, never unpickling anything: a member larger than
its shape needs, or compressed far more than nndl ever does (a decompression bomb), is
refused before it is decompressed, and so is an archive whose arrays would not fit in
memory. Model files (:mod:`nndl.model_io`) and the Solver's checkpoints
(:mod:`nndl.solver`) use it; every error is the caller's ``error`` class naming the file
and its ``kind`` ("model", "checkpoint").
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from nndl import _memory
from nndl._atomic import atomic_path
from nndl._typing import NDArray, PathLike

METADATA = "metadata.json"
#: the most a member may be compressed (uncompressed size to stored size): nndl stores
#: members as they are (``np.savez``), and a far higher ratio is a decompression bomb
MAX_COMPRESSION = 16
METADATA_BYTES = 64 << 20  # metadata.json at most (a 100,000-iteration history is ~2 MB)
MAX_JSON_DEPTH = 32  # nndl's metadata nests 3 deep
_HEADER_BYTES = 10_000  # NumPy's own cap on a .npy header
#: The ``format`` each kind of archive records in its metadata (each reader names the other).
MODEL_FORMAT = "nndl-model"
CHECKPOINT_FORMAT = "nndl-solver-checkpoint"


def write_archive(path: PathLike, arrays: dict[str, NDArray], metadata: dict[str, Any]
                  ) -> Path:
    """Write ``arrays`` and ``metadata`` (JSON-serializable) to ``path`` atomically."""
    path = Path(path)
    contents: dict[str, Any] = dict(arrays)
    contents[METADATA] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **contents)
    return path


def read_arrays(path: PathLike, error: type[Exception], kind: str) -> dict[str, NDArray]:
    """Every array of the archive at ``path`` (``metadata.json`` raw among them), each read
    header first (see :class:`Archive`); a missing, damaged or foreign file raises
    ``error`` naming the path and ``kind``."""
    with Archive.open(path, error, kind) as archive:
        archive.check_memory()
        return {name: archive.array(name, name) for name in archive.members}


class Archive:
    """The ``.npy`` members of an archive (a zip file), read header first."""

    def __init__(self, path, zf, error, kind):
        self.path, self.zf, self.error, self.kind = path, zf, error, kind
        self.members = {info.filename[:-4]: info for info in zf.infolist()
                        if info.filename.endswith(".npy")}

    @classmethod
    def open(cls, path: PathLike, error: type[Exception], kind: str) -> Archive:
        try:
            return cls(path, zipfile.ZipFile(path), error, kind)
        except FileNotFoundError:
            raise error(f"{path}: no such {kind} file") from None
        except zipfile.BadZipFile as exc:  # never NumPy's advice to unpickle it
            raise error(f"{path}: damaged or not an nndl {kind} file (not a NumPy "
                        f".npz archive: {exc})") from exc
        except OSError as exc:
            raise error(f"{path}: damaged or not an nndl {kind} file ({exc})") from exc

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.zf.close()

    def names(self, prefix):
        return [name for name in self.members if name.startswith(prefix)]

    def metadata(self):
        """The raw metadata (uint8 (n,)), or None where there is no readable one."""
        if METADATA not in self.members:
            return None
        raw = self.array(METADATA, METADATA, max_values=METADATA_BYTES, value_bytes=1)
        return raw if raw.dtype == np.uint8 and raw.ndim == 1 else None

    def check_memory(self):
        """Refuse an archive whose arrays (and the copies loading makes) would not fit."""
        stored = sum(info.file_size for info in self.members.values())
        _memory.check_fits(_memory.Estimate().add(f"{self.kind} arrays", 3 * stored),
                           f"loading {self.path}")

    def array(self, name, what, shape=None, max_values=None, value_bytes=8):
        """Member ``name`` as an array, its header checked before its data is read: real
        numbers, ``shape`` when given, else at most ``max_values`` values (any number
        when None); a member that would decompress to more than those values of
        ``value_bytes`` bytes, or one compressed beyond :data:`MAX_COMPRESSION`, is
        refused unread."""
        info = self.members.get(name)
        if info is None:
            raise self.error(f"{self.path}: {what} is missing (no member {name}.npy)")
        values = int(np.prod(shape, dtype=np.int64)) if shape is not None else max_values
        if (values is not None and info.file_size > _HEADER_BYTES + value_bytes * values) or (
                info.file_size > (1 << 20) and
                info.file_size > MAX_COMPRESSION * max(info.compress_size, 1)):
            raise self.error(
                f"{self.path}: {what} would take {info.file_size:,} bytes uncompressed "
                f"(stored in {info.compress_size:,}), more than a {self.kind} of this "
                "architecture needs: refused unread")
        try:
            with self.zf.open(info) as f:
                return self._read(f, info, what, shape, max_values)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            if isinstance(exc, self.error):
                raise
            raise self.error(f"{self.path}: damaged or not an nndl {self.kind} file ({what}: "
                             f"{exc})") from exc

    def _read(self, f, info, what, shape, max_values):
        version = np.lib.format.read_magic(f)
        readers = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise ValueError(f".npy format version {version} is not one nndl writes")
        got, fortran, dtype = readers[version](f, max_header_size=_HEADER_BYTES)
        if dtype.kind not in "fiu" or dtype.hasobject:
            raise self.error(f"{self.path}: {what} must hold real numbers, got dtype {dtype}")
        if shape is not None and tuple(got) != tuple(shape):
            raise self.error(f"{self.path}: {what} must have shape {tuple(shape)}, got "
                             f"{tuple(got)}")
        count = int(np.prod(got, dtype=np.int64)) if all(d >= 0 for d in got) else -1
        if count < 0 or (shape is None and max_values is not None and count > max_values):
            raise self.error(f"{self.path}: {what} must hold at most {max_values:,} values, "
                             f"its header says shape {tuple(got)}")
        nbytes = count * dtype.itemsize
        if info.file_size - f.tell() != nbytes:
            raise self.error(f"{self.path}: damaged or not an nndl {self.kind} file ({what}: "
                             f"{info.file_size - f.tell():,} bytes of data where its header "
                             f"says {nbytes:,})")
        data = np.empty(count, dtype=dtype)
        view, done = memoryview(data).cast("B"), 0
        while done < nbytes:
            read = f.readinto(view[done:])
            if not read:
                raise EOFError(f"{what} ends after {done:,} of {nbytes:,} bytes")
            done += read
        return data.reshape(got[::-1]).T if fortran else data.reshape(got)


def decode_metadata(path: PathLike, raw: NDArray | None, error: type[Exception], kind: str
                    ) -> dict[str, Any]:
    """The JSON object stored as ``raw`` (the ``metadata.json`` array), nested at most
    :data:`MAX_JSON_DEPTH` deep; else ``error``."""
    try:
        text = raw.tobytes().decode()  # type: ignore[union-attr]
    except (AttributeError, ValueError) as exc:
        raise error(f"{path}: not an nndl {kind} file (no readable metadata)") from exc
    try:
        metadata = json.loads(text)
    except RecursionError:
        metadata = None  # nested deeper than Python recurses: deeper than MAX_JSON_DEPTH
        depth = MAX_JSON_DEPTH + 1
    except ValueError as exc:
        raise error(f"{path}: not an nndl {kind} file (no readable metadata)") from exc
    else:
        depth = json_depth(metadata)
    if depth > MAX_JSON_DEPTH:
        raise error(f"{path}: metadata nests deeper than {MAX_JSON_DEPTH} levels: not an "
                    f"nndl {kind} file")
    if not isinstance(metadata, dict):
        raise error(f"{path}: metadata must be a JSON object, got {type(metadata).__name__}")
    return metadata


def check_format(path: PathLike, metadata: dict[str, Any], error: type[Exception], kind: str,
                 fmt: str, newest: int) -> None:
    """``error`` unless ``metadata`` records ``format`` ``fmt`` and an int ``format_version``
    no newer than ``newest``."""
    if metadata.get("format") != fmt:
        raise error(f"{path}: not an nndl {kind} file")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > newest:
        raise error(f"{path}: {kind} format version {version} is newer than this nndl reads "
                    f"({newest}); upgrade nndl")


def json_depth(value: object) -> int:
    """How deep the lists and dicts of parsed JSON ``value`` nest (0 for a scalar), counted
    without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in
                         (item.values() if isinstance(item, dict) else item))
    return deepest
