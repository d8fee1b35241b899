"""``.npz`` data sets: ``X`` (N, H, W) or (N, H, W, C) uint8 or float images and integer
``y`` (N,); optional ``X_test``, ``y_test`` (only labels ``y`` holds) and ``class_names``
(strings).

Nothing is unpickled (``allow_pickle=False``), and ``X`` is streamed from the archive
block by block into a cache writer, so an ``.npz`` larger than memory decodes. Float
images are stored as float32, integer ones as uint8 (their values must be 0..255).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from nndl.data.cache import CacheWriteError, CacheWriter, read_npy_header
from nndl.data.errors import DataError

_BLOCK_BYTES = 64 << 20


def read_npz(path: Path, writer: CacheWriter) -> dict:
    """Check ``path`` and write ``X_train``, ``y_train`` (int64) and, when present,
    ``X_test``, ``y_test`` to ``writer``; returns ``{"class_names": [...]}``. A DataError
    naming the file for anything not as described in the module docstring."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {n.removesuffix(".npy") for n in archive.namelist()}
            splits = _splits(path, members)
            labels = {s: _labels(path, archive, y) for s, (_, y) in splits.items()}
            headers = {s: _header(path, archive, X) for s, (X, _) in splits.items()}
            for split, (X, y) in splits.items():
                _check_shape(path, X, headers[split][0], y, len(labels[split]),
                             headers["train"][0])
            names = _class_names(path, archive, members, labels)
            for split, (X, _) in splits.items():
                for block in _blocks(path, archive, X, *headers[split]):
                    writer.append(f"X_{split}", block)
                writer.save(f"y_{split}", labels[split])
    except CacheWriteError:
        raise  # the cache's disk, not this file
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from exc
    return {"class_names": list(names)}


def _splits(path, members):
    if not {"X", "y"} <= members:
        raise DataError(f"{path}: missing array(s) {sorted({'X', 'y'} - members)}; "
                        "expected X and y")
    if ("X_test" in members) != ("y_test" in members):
        raise DataError(f"{path}: X_test and y_test go together; only one is present")
    return {"train": ("X", "y"), **({"test": ("X_test", "y_test")} if "X_test" in members
                                    else {})}


def _load_small(path, archive, name):
    with archive.open(f"{name}.npy") as f:
        try:
            return np.lib.format.read_array(f, allow_pickle=False)
        except ValueError as exc:
            raise DataError(f"{path}: {name} holds pickled objects or is damaged ({exc})") from exc


def _labels(path, archive, name):
    """The labels ``name`` as int64 (N,): integers >= 0 (not bool, float or NaN)."""
    y = _load_small(path, archive, name)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: {name} must be integer labels of shape (N,), got "
                        f"{y.dtype} {y.shape} (values such as {y.ravel()[:3].tolist()})")
    if len(y) and y.min() < 0:
        raise DataError(f"{path}: {name} holds the negative label {y.min()}")
    if len(y) and y.max() > np.iinfo(np.int64).max:  # uint64 beyond int64: would wrap
        raise DataError(f"{path}: {name} holds the label {y.max()}, too large for a class "
                        "index")
    return y.astype(np.int64)


def _header(path, archive, name):
    """``(shape, dtype, fortran_order)`` of the member ``name``, read without its data."""
    with archive.open(f"{name}.npy") as f:
        try:
            shape, fortran_order, dtype = read_npy_header(f)
        except ValueError as exc:
            raise DataError(f"{path}: {name} is not a readable array ({exc})") from exc
    if not (dtype.kind in "uif" and dtype != np.bool_):
        raise DataError(f"{path}: {name} must hold uint8 or float pixel values, got {dtype}")
    return shape, dtype, fortran_order


def _check_shape(path, name, shape, y_name, num_labels, train_shape):
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] not in (1, 3)):
        raise DataError(f"{path}: {name} must be images of shape (N, H, W) or (N, H, W, C) "
                        f"with C 1 or 3, got shape {shape}")
    if 0 in shape[1:3]:
        raise DataError(f"{path}: {name} images of shape {shape[1:]} have no pixels")
    if shape[0] == 0:
        raise DataError(f"{path}: {name} holds no images")
    if shape[0] != num_labels:
        raise DataError(f"{path}: {name} has {shape[0]} images but {y_name} has "
                        f"{num_labels} labels")
    if shape[1:3] != train_shape[1:3] or len(shape) != len(train_shape):
        raise DataError(f"{path}: {name} images of shape {shape[1:]} differ from X's "
                        f"{train_shape[1:]}")


def _class_names(path, archive, members, labels):
    num_classes = max((int(y.max()) + 1 for y in labels.values() if len(y)), default=0)
    names = (_named_classes(path, archive, num_classes) if "class_names" in members
             else tuple(str(i) for i in range(num_classes)))
    y = labels["train"]
    if y.min() == y.max():
        raise DataError(f"{path}: y holds one class only ({y[0]}, {names[y[0]]!r}); a "
                        "classifier needs at least 2")
    if "test" in labels:
        _check_test_labels_trained(path, y, labels["test"])
    return names


def _check_test_labels_trained(path, y, y_test):
    """A DataError naming the labels of ``y_test`` that ``y`` never holds (no network
    trained on ``y`` predicts them: its test accuracy would mean nothing)."""
    unseen = np.setdiff1d(y_test, y)
    if len(unseen):
        shown = ", ".join(map(str, unseen[:10])) + (", ..." if len(unseen) > 10 else "")
        raise DataError(f"{path}: y_test holds label(s) {shown} that y never holds; a "
                        "network trained on y cannot predict them (are y and y_test "
                        "numbered alike?)")


def _named_classes(path, archive, num_classes):
    """The member ``class_names`` as a tuple of str, one for each of ``num_classes``."""
    names = _load_small(path, archive, "class_names")
    if names.ndim != 1 or names.dtype.kind not in "US":
        raise DataError(f"{path}: class_names must be a 1-D array of strings, got "
                        f"{names.dtype} {names.shape}")
    if len(names) < num_classes:
        raise DataError(f"{path}: label {num_classes - 1} out of range for "
                        f"{len(names)} class names")
    return tuple(_text(path, n) for n in names.tolist())


def _text(path, name):
    if not isinstance(name, bytes):
        return str(name)
    try:
        return name.decode()
    except UnicodeDecodeError:
        raise DataError(f"{path}: class_names holds {name!r}, which is not UTF-8 text") \
            from None


def _blocks(path, archive, name, shape, dtype, fortran_order):
    """The images of member ``name`` as (n, H, W, C) blocks of uint8 or float32."""
    out = np.float32 if dtype.kind == "f" else np.uint8
    row_shape = (*shape[1:3], shape[3] if len(shape) == 4 else 1)
    row_bytes = dtype.itemsize * int(np.prod(shape[1:]))
    per_block = max(1, _BLOCK_BYTES // max(row_bytes, 1))
    if fortran_order:  # rows are not contiguous: read it whole (rare: np.savez of a view)
        whole = _load_small(path, archive, name)
        chunks = (whole[i:i + per_block] for i in range(0, len(whole), per_block))
    else:
        chunks = _read_rows(archive, name, shape, dtype, per_block, row_bytes)
    start = 0
    for chunk in chunks:
        if dtype.kind in "ui" and dtype != np.uint8 and len(chunk) and (
                chunk.min() < 0 or chunk.max() > 255):
            raise DataError(f"{path}: {name} holds integer pixel values outside 0..255 "
                            f"({chunk.min()}..{chunk.max()})")
        with np.errstate(over="ignore"):  # beyond float32's range: inf, refused below
            block = chunk.astype(out, copy=False).reshape(-1, *row_shape)
        if out is np.float32:
            _check_finite(path, name, block, start)
        start += len(block)
        yield block


def _check_finite(path, name, block, start):
    """A DataError naming the first image of ``block`` (its first is image ``start``) with
    a NaN or infinite value."""
    finite = np.isfinite(block.reshape(len(block), -1)).all(axis=1)
    if not finite.all():
        raise DataError(f"{path}: {name} holds pixel values that are not finite float32 "
                        f"numbers (NaN, infinity or beyond 3.4e+38), e.g. in image "
                        f"{start + int(np.argmin(finite))}")


def _read_rows(archive, name, shape, dtype, per_block, row_bytes):
    with archive.open(f"{name}.npy") as f:
        read_npy_header(f)
        for start in range(0, shape[0], per_block):
            count = min(per_block, shape[0] - start)
            data = f.read(count * row_bytes)
            if len(data) != count * row_bytes:
                raise EOFError(f"{name} ends after {start} images")
            yield np.frombuffer(data, dtype=dtype).reshape(count, *shape[1:])

