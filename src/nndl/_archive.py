"""nndl's file format for arrays with metadata: one ``.npz`` archive of numeric arrays plus
``metadata.json`` (UTF-8 JSON stored as a uint8 array). Written atomically (a crash never
leaves half a file) and read with ``allow_pickle=False`` (nothing in it is ever unpickled).
Model files (:mod:`nndl.model_io`) and the Solver's checkpoints (:mod:`nndl.solver`) use it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from nndl._atomic import atomic_path
from nndl._typing import NDArray, PathLike

METADATA = "metadata.json"
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
    """Every array of the archive at ``path`` (``metadata.json`` raw among them); a missing,
    damaged or foreign file raises ``error`` naming the path and ``kind`` ("model", ...)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}
    except FileNotFoundError:
        raise error(f"{path}: no such {kind} file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        # NumPy takes any other file for a pickle and advises loading it unsafely: not here
        why = "not a NumPy .npz archive" if "allow_pickle" in str(exc) else str(exc)
        raise error(f"{path}: damaged or not an nndl {kind} file ({why})") from exc


def decode_metadata(path: PathLike, raw: NDArray | None, error: type[Exception], kind: str
                    ) -> dict[str, Any]:
    """The JSON object stored as ``raw`` (the ``metadata.json`` array); else ``error``."""
    try:
        metadata = json.loads(raw.tobytes().decode())  # type: ignore[union-attr]
    except (AttributeError, ValueError) as exc:
        raise error(f"{path}: not an nndl {kind} file (no readable metadata)") from exc
    if not isinstance(metadata, dict):
        raise error(f"{path}: metadata must be a JSON object, got {type(metadata).__name__}")
    return metadata
