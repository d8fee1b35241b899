"""Hyperparameter search on Optuna, with population training and shared studies.

``run_search`` (and ``nndl search``) asks Optuna for trials, trains those that
can share a minibatch stream as one population, prunes hopeless ones, and
writes a run folder. Importing this package does not import Optuna; its names
load on first use.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "run_search": "nndl.search.api", "run_worker": "nndl.search.api",
    "open_study": "nndl.search.api", "SearchSettings": "nndl.search.settings",
    "Dimension": "nndl.search.space", "default_space": "nndl.search.space",
    "load_space": "nndl.search.space",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'nndl.search' has no attribute {name!r}")
