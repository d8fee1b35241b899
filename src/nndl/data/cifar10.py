"""CIFAR-10 in its official formats, read safely.

* python version (``cifar-10-batches-py``): pickles, read by an unpickler that
  resolves only the NumPy names the official files use; nothing in a file runs.
* binary version (``cifar-10-batches-bin``): records of 1 label byte and 3,072
  pixel bytes, parsed with NumPy.
* the downloaded tarball of either, read member by member without extracting.

Images come out as uint8 arrays of shape (N, 32, 32, 3) (height, width, RGB).
"""

from __future__ import annotations

import io
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nndl.data.errors import DataError, UnsafePickleError

PY_FOLDER, BIN_FOLDER = "cifar-10-batches-py", "cifar-10-batches-bin"
TARBALL_NAME = "cifar-10-python.tar.gz"
TARBALL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
TARBALL_MD5 = "c58f30108f718f92721af3b95e74349a"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
OFFICIAL_MD5 = {  # of the files inside the official python-version tarball
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE = (32, 32, 3)
_PIXELS = 3072


def _numpy_reconstruct():
    core = getattr(np, "_core", None) or np.core
    return core.multiarray._reconstruct


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only ``numpy.ndarray``, ``numpy.dtype`` and NumPy's
    ``multiarray._reconstruct``; any other global is refused before it exists."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
    }

    def __init__(self, file, source):
        super().__init__(file, encoding="bytes")
        self.source = source

    def find_class(self, module, name):
        resolve = self._ALLOWED.get((module, name))
        if resolve is None:
            raise UnsafePickleError(
                f"{self.source}: refusing to unpickle '{module}.{name}': a CIFAR file holds "
                "only NumPy arrays, so this file is not an official batch and may be hostile"
            )
        return resolve()


def restricted_load(data, source):
    """Unpickle ``data`` (bytes) with :class:`RestrictedUnpickler`; errors name ``source``."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), source).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # truncated or garbled pickles raise many types
        raise DataError(f"{source}: truncated or corrupt batch file ({exc!r})") from exc


def images_from_rows(rows, source):
    rows = np.asarray(rows)
    if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != _PIXELS:
        raise DataError(f"{source}: expected uint8 pixel rows of shape (N, {_PIXELS}), got "
                        f"{rows.dtype} {rows.shape}")
    return np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def check_labels(labels, n, source, num_classes=10):
    """``labels`` as uint8 (n,): integers in [0, num_classes), else a DataError naming
    ``source``.

    Floats (even NaN), booleans and strings are refused rather than truncated.
    """
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise DataError(f"{source}: {labels.shape[0] if labels.ndim else 0} labels for {n} images")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{source}: labels must be integers in [0, {num_classes}), "
                        f"got {labels.dtype} values such as {labels[:1].tolist()}")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{source}: labels must be integers in [0, {num_classes}), "
                        f"found {labels.min()}..{labels.max()}")
    return labels.astype(np.uint8)


def parse_python_batch(data, source):
    """Images (N, 32, 32, 3) uint8 and labels (N,) uint8 from a python-version batch."""
    batch = restricted_load(data, source)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{source}: not a CIFAR-10 batch (no b'data' and b'labels' entries)")
    images = images_from_rows(batch[b"data"], source)
    return images, check_labels(batch[b"labels"], len(images), source)


def parse_python_meta(data, source):
    """Class names from ``batches.meta``."""
    meta = restricted_load(data, source)
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if not names or len(names) != 10:
        raise DataError(f"{source}: no list of 10 label_names")
    return decode_names(names)


def decode_names(names):
    """Class names from a pickle's list of bytes (or str) as a tuple of str."""
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def parse_binary_batch(data, source):
    """Images and labels from a binary-version batch: records of 1 + 3,072 bytes."""
    if len(data) == 0 or len(data) % (_PIXELS + 1):
        raise DataError(f"{source}: {len(data)} bytes is not a whole number of "
                        f"{_PIXELS + 1}-byte records (truncated or not a CIFAR-10 binary batch)")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, _PIXELS + 1)
    images = images_from_rows(records[:, 1:], source)
    return images, check_labels(records[:, 0], len(images), source)


@dataclass(frozen=True)
class Source:
    """Where a CIFAR-10 copy is: ``kind`` is 'python', 'binary' or 'tarball'."""

    kind: str
    path: Path

    def files(self):
        """The paths whose size and time identify this copy (for cache invalidation)."""
        if self.kind == "tarball":
            return [self.path]
        return sorted(p for p in self.path.iterdir() if p.is_file())


def locate(root):
    """The CIFAR-10 copy at ``root`` — the folder itself, the tarball, or a data root
    holding either — or None."""
    root = Path(root)
    if root.is_file() and root.name.endswith((".tar.gz", ".tgz", ".tar")):
        return Source("tarball", root)
    for path in (root, root / PY_FOLDER, root / BIN_FOLDER):
        if (path / TEST_BATCH).is_file() or (path / "data_batch_1").is_file():
            return Source("python", path)
        if (path / "test_batch.bin").is_file():
            return Source("binary", path)
    if (root / TARBALL_NAME).is_file():
        return Source("tarball", root / TARBALL_NAME)
    return None


@dataclass
class CIFAR10Arrays:
    """The whole data set: X_* uint8 (N, 32, 32, 3), y_* uint8 (N,), class names."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple = CLASS_NAMES


def read_source(source):
    """Decode every batch of ``source`` into :class:`CIFAR10Arrays`."""
    if source.kind == "tarball":
        return _read_tarball(source.path)
    if source.kind == "binary":
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
        parse = parse_binary_batch
    else:
        names, parse = TRAIN_BATCHES + [TEST_BATCH], parse_python_batch
    parts = [parse(_read_file(source.path / n), source.path / n) for n in names]
    return _assemble(parts, _class_names(source.path))


def _read_file(path):
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: missing CIFAR-10 batch file") from None


def _class_names(folder):
    meta, meta_txt = folder / "batches.meta", folder / "batches.meta.txt"
    if meta.is_file():
        return parse_python_meta(meta.read_bytes(), meta)
    if meta_txt.is_file():
        names = tuple(line.strip() for line in meta_txt.read_text().splitlines() if line.strip())
        if len(names) == 10:
            return names
    return CLASS_NAMES


def _assemble(parts, class_names):
    train, test = parts[:5], parts[5]
    return CIFAR10Arrays(np.concatenate([p[0] for p in train]),
                         np.concatenate([p[1] for p in train]), test[0], test[1], class_names)


def _read_tarball(path):
    try:
        with tarfile.open(path) as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            binary = "test_batch.bin" in members
            names = ([f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
                     if binary else TRAIN_BATCHES + [TEST_BATCH])
            parse = parse_binary_batch if binary else parse_python_batch
            parts = []
            for name in names:
                if name not in members:
                    raise DataError(f"{path}: the archive has no member {name}")
                parts.append(parse(tar.extractfile(members[name]).read(), f"{path}:{name}"))
            meta = members.get("batches.meta")
            names = (parse_python_meta(tar.extractfile(meta).read(), f"{path}:batches.meta")
                     if meta is not None else CLASS_NAMES)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{path}: unreadable archive ({exc})") from exc
    return _assemble(parts, names)
