"""``nndl data info``: what a path holds — format, splits, shapes, class counts, checksums."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nndl.data.cache import load_cached
from nndl.data.cifar10 import OFFICIAL_MD5, TARBALL_MD5, locate
from nndl.data.download import md5sum
from nndl.data.errors import DataError
from nndl.data.formats import load_image_folder, load_npz


def describe(path):
    """A list of ``(label, value)`` lines describing the data at ``path``."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    source = locate(path)
    if source is not None:
        data = load_cached(source)
        lines = [("format", f"CIFAR-10, {source.kind} version" if source.kind != "tarball"
                  else "CIFAR-10 tarball"), ("location", str(source.path))]
        lines += _splits({"train": (data.X_train, data.y_train),
                          "test": (data.X_test, data.y_test)}, data.class_names)
        return lines + [("checksums", _checksum_status(source))]
    if path.suffix == ".npz":
        X, y, names = load_npz(path)
        return [("format", "npz arrays X, y")] + _splits({"all": (X, y)}, names)
    if path.is_dir():
        X, y, names = load_image_folder(path)
        return [("format", "image folder (resized to 32x32)")] + _splits({"all": (X, y)}, names)
    raise DataError(f"{path}: not CIFAR-10, an .npz file or an image folder")


def _splits(splits, names):
    lines = []
    for split, (X, y) in splits.items():
        counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=len(names))
        lines.append((f"{split} images", f"{X.shape} {X.dtype}"))
        lines.append((f"{split} classes", ", ".join(f"{n} {c}" for n, c in zip(names, counts))))
    return lines


def _checksum_status(source):
    if source.kind == "tarball":
        ok = md5sum(source.path) == TARBALL_MD5
        return "official tarball md5" if ok else "md5 differs from the official tarball"
    if source.kind == "binary":
        return "not checked (no official per-file sums for the binary version)"
    files = [p for p in source.files() if p.name in OFFICIAL_MD5]
    same = [p.name for p in files if md5sum(p) == OFFICIAL_MD5[p.name]]
    if len(same) == len(files):
        return f"all {len(files)} files match the official md5 sums"
    return (f"{len(files) - len(same)} of {len(files)} files differ from the official md5 sums "
            "(a re-packed copy; the arrays decoded fine)")


def format_lines(lines):
    width = max(len(label) for label, _ in lines)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in lines)
