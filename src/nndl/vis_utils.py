"""Pictures: the assignment's ``visualize_grid`` and the plots of a run.

Plots use matplotlib's object API (``Figure``, Agg canvas): no global pyplot
state, no display needed. Each ``plot_*`` saves a PNG and returns its path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nndl._atomic import atomic_path
from nndl._typing import ArrayLike, NDArray, PathLike


def visualize_grid(Xs: ArrayLike, ubound: float = 255.0, padding: int = 1) -> NDArray:
    """Tile images (N, H, W, C) onto a square grid, each tile min-max scaled to
    [0, ubound]; a constant tile becomes 0 (no division by zero).

    The course's function, kept as the assignment's notebook uses it: G x G tiles, unused
    tiles and padding black. The reports draw with :func:`tile_images` instead.

    Returns
    -------
    grid : float ndarray of shape (G*H + (G-1)*padding, G*W + (G-1)*padding, C),
    G = ceil(sqrt(N)).
    """
    images = _check_images(Xs)
    size = math.ceil(math.sqrt(len(images)))
    return _tiles(images, size, size, padding, 0.0, ubound)


def _check_images(Xs: ArrayLike) -> NDArray:
    Xs = np.asarray(Xs)
    if Xs.ndim != 4:
        raise ValueError(f"Xs must have shape (N, H, W, C), got {Xs.shape}")
    return Xs


def _tiles(Xs, rows, cols, padding, background, ubound):
    """Images (N, H, W, C) row by row on a ``rows`` x ``cols`` grid, each min-max scaled to
    [0, ubound] (a constant one becomes 0); padding and unused tiles ``background``."""
    n, h, w, c = Xs.shape
    grid = np.full((rows * (h + padding) - padding, cols * (w + padding) - padding, c),
                   background, dtype=float)
    for i, img in enumerate(Xs):
        row, col = divmod(i, cols)
        y0, x0 = row * (h + padding), col * (w + padding)
        low, span = float(np.min(img)), float(np.max(img)) - float(np.min(img))
        grid[y0:y0 + h, x0:x0 + w] = ubound * (img - low) / span if span > 0 else 0.0
    return grid


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) for ``n`` tiles: the fewest unused tiles with ``rows <= cols <= 2 *
    rows`` (a landscape grid at most twice as wide as tall), ties to the squarest. The last
    row is never empty: 50 -> (5, 10), 10 -> (3, 4), 7 -> (2, 4), 3 -> (2, 2)."""
    if n < 1:
        raise ValueError(f"n must be a positive number of tiles, got {n}")
    shapes = [(math.ceil(n / cols), cols) for cols in range(math.ceil(math.sqrt(n)), n + 1)]
    fitting = [(r, c) for r, c in shapes if c <= 2 * r] or shapes[:1]
    return min(fitting, key=lambda rc: (rc[0] * rc[1] - n, rc[1] - rc[0]))


def tile_images(Xs: ArrayLike, padding: int = 1, background: float = 255.0) -> NDArray:
    """Images (N, H, W, C) on a :func:`grid_shape` grid, each tile min-max scaled to
    [0, 255] (a constant tile becomes 0), padding and the few unused tiles at the end
    ``background`` (white by default, the page's colour: no black filler blocks).

    Returns
    -------
    grid : float ndarray of shape (R*H + (R-1)*padding, K*W + (K-1)*padding, C), where
    (R, K) = grid_shape(N).
    """
    images = _check_images(Xs)
    return _tiles(images, *grid_shape(len(images)), padding, background, 255.0)


def first_layer_images(W1: ArrayLike, image_shape: Sequence[int] = (32, 32, 3)) -> NDArray:
    """The rows of ``W1`` (H, D) as images (H, *image_shape)."""
    return np.asarray(W1).reshape(-1, *image_shape)


def _figure(width=6.0, height=4.0):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig, path):
    path = Path(path)
    with atomic_path(path) as tmp:  # whole or not at all
        fig.savefig(tmp, format="png")
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


def plot_layer_stats(layer_stats: Sequence[Sequence[Mapping[str, float]]], path: PathLike,
                     title: str = "Layers per epoch") -> Path:
    """Each layer's activation standard deviation and weight norm against the epoch, two
    panels side by side, one line a layer (``layer_stats``: per epoch a list of dicts with
    ``act_std`` and ``weight_norm`` per layer, as :func:`nndl.training.new_history` records
    them; the last layer's activations are its scores)."""
    from matplotlib.ticker import MaxNLocator

    if not layer_stats:
        raise ValueError("layer_stats must hold at least one epoch's statistics, got none")
    count = len(layer_stats[0])
    fig = _figure(10.0, 3.6)
    for i, (key, label) in enumerate((("act_std", "Activation std"),
                                      ("weight_norm", "Weight norm (Frobenius)")), start=1):
        ax = fig.add_subplot(1, 2, i)
        for layer in range(count):
            name = f"layer {layer + 1}" + (" (scores)" if layer == count - 1 else "")
            ax.plot([entry[layer][key] for entry in layer_stats], marker=".", label=name)
        ax.set(xlabel="Epoch", ylabel=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper", fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def plot_weight_grids(named_weights: Sequence[tuple[str, NDArray]], path: PathLike,
                      image_shape: Sequence[int] = (32, 32, 3)) -> Path:
    """First-layer weights of one or more networks as image grids (:func:`tile_images`: as
    many tiles as rows of W1, unused ones white), side by side.

    ``named_weights``: list of (title, W1 of shape (H, D)).
    """
    grids = [tile_images(first_layer_images(W1, image_shape), padding=3)
             for _, W1 in named_weights]
    aspect = max(grid.shape[0] / grid.shape[1] for grid in grids)  # height / width
    fig = _figure(5.0 * len(grids), max(2.0, 5.0 * aspect) + 0.5)
    for i, ((title, _), grid) in enumerate(zip(named_weights, grids), start=1):
        ax = fig.add_subplot(1, len(grids), i)
        if grid.shape[-1] == 3:
            ax.imshow(grid.astype("uint8"))
        else:
            ax.imshow(grid[..., 0], cmap="gray", vmin=0, vmax=255)
        ax.set_title(title)
        ax.axis("off")
    return _save(fig, path)


#: up to this many classes a confusion matrix shows each cell's count and every class name;
#: past it, colours alone and :data:`NAMED_CLASSES` names spread over each axis (drawing
#: 250,000 annotated cells of 500 classes took 6.5 minutes)
ANNOTATED_CLASSES = 30
NAMED_CLASSES = 20


#: a figure of matplotlib's (measured: 8 MiB for a confusion matrix of 10 classes), and
#: what each cell of a confusion matrix adds to its plot (68 bytes at 2,000 classes)
PLOT_BYTES, PLOT_CELL_BYTES = 12 << 20, 72


def confusion_plot_bytes(num_classes: int) -> int:
    """Bytes the confusion matrix of ``num_classes`` classes (int64) and its plot
    (:func:`plot_confusion_matrix`) take: what :mod:`nndl._memory`'s checks count."""
    return PLOT_BYTES + (8 + PLOT_CELL_BYTES) * num_classes * num_classes


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


def plot_trial_history(numbers: Sequence[int], values: Sequence[float | None],
                       states: Sequence[str], path: PathLike, chance: float | None = None,
                       title: str = "Search history") -> Path:
    """Every trial of a search by its number: ``COMPLETE`` ones as dots at their validation
    accuracy with the best so far as a line, ``PRUNED`` ones as crosses and ``FAIL`` ones as
    squares at ``values`` (their last reported accuracy), and any trial without a value as a
    hollow triangle on the bottom edge; ``chance`` (1 / classes) as a dashed line. The value
    axis spans every value drawn and the chance level (a few points of margin), so trials
    far below the best are not cut off.
    """
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    numbers, states = list(numbers), list(states)
    known = [v for v in values if v is not None]
    low, high = _value_range(known + ([chance] if chance is not None else []))
    fig = _figure(7.0, 4.0)
    ax = fig.add_subplot()
    styles = {"COMPLETE": ("o", "C0", "complete"), "PRUNED": ("x", "C1", "pruned (last value)"),
              "FAIL": ("s", "C3", "failed (last value)")}
    for state, (marker, color, label) in styles.items():
        points = [(n, v) for n, v, s in zip(numbers, values, states) if s == state and
                  v is not None]
        if points:
            ax.scatter(*zip(*points), marker=marker, color=color, label=label, zorder=3)
    best = _best_so_far(numbers, values, states)
    if best:
        ax.step(*zip(*best), where="post", color="C0", alpha=0.5, label="best so far")
    missing = [n for n, v in zip(numbers, values) if v is None]
    if missing:
        ax.scatter(missing, [low] * len(missing), marker="^", facecolors="none",
                   edgecolors="C3", clip_on=False, zorder=3, label="no value")
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=0.8, label="chance")
    ax.set_ylim(low, high)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title=title, xlabel="Trial", ylabel="Validation accuracy")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    return _save(fig, path)


def _value_range(values):
    """(low, high) of an accuracy axis that shows every one of ``values``."""
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    margin = max(0.02, 0.05 * (high - low))
    return max(0.0, low - margin), min(1.0, high + margin)


def _best_so_far(numbers, values, states):
    """(number, best complete value up to it) steps, from the first complete trial on."""
    best, steps = None, []
    for n, v, s in sorted(zip(numbers, values, states), key=lambda t: t[0]):
        if s == "COMPLETE" and v is not None:
            best = v if best is None else max(best, v)
        if best is not None:
            steps.append((n, best))
    return steps
