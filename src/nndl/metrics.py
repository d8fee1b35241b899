"""Classification metrics on label arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nndl._typing import ArrayLike, NDArray


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of equal labels, a float."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> NDArray:
    """Counts (C, C): row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def per_class_accuracy(matrix: NDArray) -> NDArray:
    """Recall of each class from a confusion matrix (NaN for a class never seen)."""
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(matrix) / totals, np.nan)


def per_class_counts(matrix: NDArray, class_names: Sequence[str]) -> list[dict]:
    """One dict per class from a confusion matrix (C, C): ``class``, ``images``, ``correct``
    and ``accuracy`` (None for a class with no images)."""
    return [{"class": name, "images": int(n), "correct": int(k),
             "accuracy": float(k / n) if n else None}
            for name, n, k in zip(class_names, np.sum(matrix, axis=1), np.diag(matrix))]


def format_confusion(matrix: ArrayLike, class_names: Sequence[str]) -> str:
    """A plain-text confusion matrix with per-class accuracy ("-" for a class with no
    images); class names are never cut (each column is as wide as its name or its largest
    count)."""
    matrix = np.asarray(matrix)
    names = [str(n) for n in class_names]
    first = max(len(n) for n in names)
    widths = [max(len(n), len(str(int(matrix.max(initial=0))))) for n in names]
    lines = [" " * first + "  " + " ".join(f"{n:>{w}}" for n, w in zip(names, widths))
             + "  accuracy"]
    for name, row, acc in zip(names, matrix, per_class_accuracy(matrix)):
        lines.append(f"{name:<{first}}  " + " ".join(f"{v:>{w}d}" for v, w in zip(row, widths))
                     + (f"  {acc:8.3f}" if np.isfinite(acc) else f"  {'-':>8}"))
    return "\n".join(lines)
