"""A decoded copy of each CIFAR-10 source as uint8 ``.npy`` files.

The cache lives in the user cache folder (sources may be read-only), one
subfolder per source path, and records the size and modification time of
every source file: when any changes, the cache is rebuilt. Arrays are read
with ``allow_pickle=False``; files appear atomically.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from nndl._atomic import atomic_path
from nndl.data.cifar10 import CIFAR10Arrays, read_source
from nndl.data.location import user_cache_dir

_ARRAYS = ("X_train", "y_train", "X_test", "y_test")
CACHE_VERSION = 1


def _fingerprint(source):
    return {
        "version": CACHE_VERSION,
        "kind": source.kind,
        "files": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in source.files()],
    }


def cache_dir_for(source):
    key = hashlib.sha1(str(source.path.resolve()).encode()).hexdigest()[:16]
    return user_cache_dir() / "cifar10" / key


def load_cached(source, cache_dir=None):
    """The source's arrays, from the cache when it is current, else decoded and cached."""
    folder = cache_dir or cache_dir_for(source)
    fingerprint = _fingerprint(source)
    manifest = folder / "manifest.json"
    if manifest.is_file():
        try:
            stored = json.loads(manifest.read_text())
            if stored.get("fingerprint") == fingerprint:
                arrays = {k: np.load(folder / f"{k}.npy", allow_pickle=False) for k in _ARRAYS}
                return CIFAR10Arrays(**arrays, class_names=tuple(stored["class_names"]))
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt below
    data = read_source(source)
    try:
        _write(folder, data, fingerprint)
    except OSError:
        pass  # an unwritable cache only costs speed
    return data


def _write(folder, data, fingerprint):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").unlink(missing_ok=True)  # invalid until rewritten
    for name in _ARRAYS:
        with atomic_path(folder / f"{name}.npy") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, getattr(data, name), allow_pickle=False)
    with atomic_path(folder / "manifest.json") as tmp:
        tmp.write_text(json.dumps({"fingerprint": fingerprint,
                                   "class_names": list(data.class_names)}))
