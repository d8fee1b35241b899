"""The ``--full`` part's data: the assignment's CIFAR-10 split, written once for every child.

The parent loads CIFAR-10 through nndl's data location (``--data``, else ``$NNDL_DATA``,
else the user cache; downloaded when missing) and writes the assignment's split to a folder
of its own as ``.npy`` files: the training and validation rows as uint8, the training rows'
mean (float64) and the labels. A child builds the notebook's arrays from them (float64 rows
minus the mean row) and trains the student's network on them; the parent scores the
predictions it sends back.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nndl._typing import NDArray, PathLike

#: The notebook's default run, and the band its validation accuracy falls in.
DEFAULT_RUN = {"num_iters": 1000, "batch_size": 200, "learning_rate": 1e-4,
               "learning_rate_decay": 0.95, "reg": 0.25, "verbose": False}
HIDDEN = 50
BAND = (0.25, 0.32)


@dataclass(frozen=True)
class FullData:
    """The split's files (for the child) and the validation labels (for the verdict)."""

    train_rows: Path
    mean: Path
    y_train: Path
    val_rows: Path
    y_val: Path
    labels: NDArray
    input_size: int
    float_bytes: int  # of the float64 training rows the child builds


class FullDataSource:
    """Prepares :class:`FullData` on first use, once, for every submission of a run."""

    def __init__(self, root: PathLike | None = None, num_training: int = 49000,
                 num_validation: int = 1000) -> None:
        self.root, self.sizes = root, (num_training, num_validation)
        self._lock = threading.Lock()
        self._data: FullData | None = None
        self._folder: Path | None = None

    def get(self) -> FullData:
        with self._lock:
            if self._data is None:
                self._folder = Path(tempfile.mkdtemp(prefix="nndl-check-data-"))
                self._data = _write_split(self.root, self._folder, *self.sizes)
            return self._data

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder, self._data = None, None


def _write_split(root: PathLike | None, folder: Path, num_training: int,
                 num_validation: int) -> FullData:
    from nndl.data import load_cifar10
    from nndl.splits import assignment_split

    data = load_cifar10(root)
    X_train, y_train, X_val, y_val, _, _ = assignment_split(data, num_training, num_validation,
                                                            0)
    train = np.ascontiguousarray(X_train.reshape(len(X_train), -1))
    files = {"train_rows": train, "mean": train.mean(axis=0, dtype=np.float64),
             "y_train": np.asarray(y_train, dtype=np.int64),
             "val_rows": np.ascontiguousarray(X_val.reshape(len(X_val), -1)),
             "y_val": np.asarray(y_val, dtype=np.int64)}
    paths = {}
    for name, array in files.items():
        paths[name] = folder / f"{name}.npy"
        np.save(paths[name], array, allow_pickle=False)
    return FullData(**paths, labels=files["y_val"], input_size=train.shape[1],
                    float_bytes=train.size * 8)
