"""Pictures: the assignment's ``visualize_grid`` and the plots of a run.

Plots use matplotlib's object API (``Figure``, Agg canvas): no global pyplot
state, no display needed. Each ``plot_*`` saves a PNG and returns its path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nndl._typing import ArrayLike, NDArray, PathLike


def visualize_grid(Xs: ArrayLike, ubound: float = 255.0, padding: int = 1) -> NDArray:
    """Tile images (N, H, W, C) onto a square grid, each tile min-max scaled to
    [0, ubound]; a constant tile becomes 0 (no division by zero).

    Returns
    -------
    grid : float ndarray of shape (G*H + (G-1)*padding, G*W + (G-1)*padding, C),
    G = ceil(sqrt(N)).
    """
    Xs = np.asarray(Xs)
    if Xs.ndim != 4:
        raise ValueError(f"Xs must have shape (N, H, W, C), got {Xs.shape}")
    n, h, w, c = Xs.shape
    size = math.ceil(math.sqrt(n))
    grid = np.zeros((h * size + padding * (size - 1), w * size + padding * (size - 1), c))
    for i, img in enumerate(Xs):
        row, col = divmod(i, size)
        y0, x0 = row * (h + padding), col * (w + padding)
        low, high = float(np.min(img)), float(np.max(img))
        span = high - low
        grid[y0:y0 + h, x0:x0 + w] = ubound * (img - low) / span if span > 0 else 0.0
    return grid


def first_layer_images(W1: ArrayLike, image_shape: Sequence[int] = (32, 32, 3)) -> NDArray:
    """The rows of ``W1`` (H, D) as images (H, *image_shape)."""
    return np.asarray(W1).reshape(-1, *image_shape)


def _figure(width=6.0, height=4.0):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def plot_loss_history(history: Mapping[str, Sequence[float]], path: PathLike,
                      title: str = "Loss history") -> Path:
    """The per-iteration training loss."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(history["loss_history"], linewidth=0.8)
    ax.set(title=title, xlabel="Iteration", ylabel="Loss")
    return _save(fig, path)


def plot_accuracy_history(history: Mapping[str, Sequence[float]], path: PathLike,
                          title: str = "Classification accuracy history") -> Path:
    """Per-epoch train (minibatch) and validation accuracy."""
    fig = _figure()
    ax = fig.add_subplot()
    from matplotlib.ticker import MaxNLocator

    ax.plot(history["train_acc_history"], label="train (minibatch)")
    ax.plot(history["val_acc_history"], label="validation")
    ax.set(title=title, xlabel="Epoch", ylabel="Classification accuracy")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.legend()
    return _save(fig, path)


def plot_weight_grids(named_weights: Sequence[tuple[str, NDArray]], path: PathLike,
                      image_shape: Sequence[int] = (32, 32, 3)) -> Path:
    """First-layer weights of one or more networks as image grids, side by side.

    ``named_weights``: list of (title, W1 of shape (H, D)).
    """
    fig = _figure(4.0 * len(named_weights), 4.3)
    for i, (title, W1) in enumerate(named_weights, start=1):
        ax = fig.add_subplot(1, len(named_weights), i)
        grid = visualize_grid(first_layer_images(W1, image_shape), padding=3)
        ax.imshow(grid.astype("uint8") if grid.shape[-1] == 3 else grid[..., 0], cmap="gray")
        ax.set_title(title)
        ax.axis("off")
    return _save(fig, path)


#: up to this many classes a confusion matrix shows each cell's count and every class name;
#: past it, colours alone and :data:`NAMED_CLASSES` names spread over each axis (drawing
#: 250,000 annotated cells of 500 classes took 6.5 minutes)
ANNOTATED_CLASSES = 30
NAMED_CLASSES = 20


def plot_confusion_matrix(matrix: ArrayLike, class_names: Sequence[str], path: PathLike,
                          title: str = "Confusion matrix") -> Path:
    """Counts (C, C), rows the true class, columns the predicted one; counts written in
    the cells and every class named only up to :data:`ANNOTATED_CLASSES` classes."""
    matrix = np.asarray(matrix)
    fig = _figure(6.5, 5.5)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", interpolation="nearest")
    fig.colorbar(image, ax=ax)
    count = len(class_names)
    named = count if count <= ANNOTATED_CLASSES else NAMED_CLASSES
    ticks = np.unique(np.linspace(0, count - 1, named).round()).astype(int)
    ax.set_xticks(ticks, [class_names[i] for i in ticks], rotation=45, ha="right")
    ax.set_yticks(ticks, [class_names[i] for i in ticks])
    if count > ANNOTATED_CLASSES:
        title += f" ({count} classes, {len(ticks)} named)"
    ax.set(title=title, xlabel="Predicted", ylabel="True")
    if count <= ANNOTATED_CLASSES:
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                    color="white" if v > matrix.max() / 2 else "black")
    return _save(fig, path)
