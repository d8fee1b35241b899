import numpy as np

from nndl.vis_utils import plot_weight_grids, visualize_grid


def test_visualize_grid_layout_and_scaling():
    Xs = np.stack([np.full((2, 3, 1), v, dtype=float) for v in range(5)])
    Xs[1, 0, 0, 0] = 10.0  # one non-constant tile
    grid = visualize_grid(Xs, ubound=255.0, padding=1)
    assert grid.shape == (3 * 2 + 2, 3 * 3 + 2, 1)  # ceil(sqrt(5)) = 3 tiles per side
    assert np.isfinite(grid).all()  # constant tiles do not divide by zero
    tile1 = grid[0:2, 4:7, 0]
    assert tile1.max() == 255.0 and tile1.min() == 0.0
    assert (grid[2, :, 0] == 0).all()  # padding row


def test_weight_grid_png(tmp_path):
    w = np.random.default_rng(0).normal(size=(10, 3072))
    path = plot_weight_grids([("a", w), ("b", -w)], tmp_path / "w.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_accuracy_plot_has_whole_epoch_ticks(monkeypatch, tmp_path):
    from nndl import vis_utils

    monkeypatch.setattr(vis_utils, "_save", lambda fig, path: fig)
    history = {"train_acc_history": [0.1, 0.2], "val_acc_history": [0.1, 0.25]}
    fig = vis_utils.plot_accuracy_history(history, tmp_path / "a.png")
    ticks = [t for t in fig.axes[0].get_xticks() if 0 <= t <= 1]
    assert ticks and all(float(t).is_integer() for t in ticks)
