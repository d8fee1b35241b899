"""Where data lives: an explicit argument, else ``$NNDL_DATA``, else the user cache.

``$NNDL_DATA`` is a data *root* (like torchvision's ``root``): a folder that
contains ``cifar-10-batches-py/``. The per-user cache follows the platform's
convention: ``$XDG_CACHE_HOME/nndl`` (default ``~/.cache/nndl``) on Linux,
``~/Library/Caches/nndl`` on macOS, ``%LOCALAPPDATA%\\nndl`` on Windows.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_DATA = "NNDL_DATA"


def user_cache_dir():
    """The per-user cache folder of nndl (not created here)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nndl"


def data_root(root=None):
    """The data root to use: ``root`` if given, else ``$NNDL_DATA``, else the user cache."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser()
    return user_cache_dir() / "data"


def candidate_roots(root=None):
    """Every place looked in, in order, with where each came from (for messages)."""
    if root is not None:
        return [(Path(root).expanduser(), "the given path")]
    places = []
    env = os.environ.get(ENV_DATA)
    if env:
        places.append((Path(env).expanduser(), f"${ENV_DATA}"))
    places.append((user_cache_dir() / "data", "the user cache"))
    return places
