"""Classification metrics on label arrays."""

from __future__ import annotations

import numpy as np


def accuracy(y_true, y_pred):
    """Fraction of equal labels, a float."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def confusion_matrix(y_true, y_pred, num_classes):
    """Counts (C, C): row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def per_class_accuracy(matrix):
    """Recall of each class from a confusion matrix (NaN for a class never seen)."""
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(matrix) / totals, np.nan)


def format_confusion(matrix, class_names):
    """A plain-text confusion matrix with per-class accuracy."""
    short = [n[:6] for n in class_names]
    width = max(len(n) for n in class_names)
    lines = [" " * width + "  " + " ".join(f"{s:>6}" for s in short) + "  accuracy"]
    for name, row, acc in zip(class_names, matrix, per_class_accuracy(matrix)):
        lines.append(f"{name:<{width}}  " + " ".join(f"{v:>6d}" for v in row) + f"  {acc:8.3f}")
    return "\n".join(lines)
