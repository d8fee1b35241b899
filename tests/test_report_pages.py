"""What the reports draw and say, checked without a browser: every trial in the search
history on an axis that shows them all, importances only from enough trials, tables that
keep to their box, weight grids without filler blocks (confusion matrices past a few dozen
classes: tests/test_evaluate.py)."""

import numpy as np
import pytest

from nndl import vis_utils
from nndl.report import Report
from tests.search_study import DIVERGED, mixed_study


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions would save, instead of saving them."""
    figures = []
    monkeypatch.setattr(vis_utils, "_save", lambda fig, path: figures.append(fig) or path)
    return figures


def _points(ax):
    return np.concatenate([c.get_offsets() for c in ax.collections if len(c.get_offsets())])


def test_search_history_draws_every_trial_on_an_axis_that_holds_them(tmp_path, drawn):
    from nndl.search.results import _plots

    _plots(mixed_study(), tmp_path, chance=0.1)
    ax = drawn[0].axes[0]
    points = _points(ax)
    assert sorted(points[:, 0]) == list(range(8))  # all 8 trials, not the 2 complete ones
    pruned_last = [0.20 + 0.03 * i for i in (1, 2, 4, 6)]  # their epoch-1 values
    for value in (0.479, 0.486, *pruned_last):
        assert any(np.isclose(points[:, 1], value)), value
    low, high = ax.get_ylim()
    assert low <= 0.1 and high >= 0.486  # down to chance, up to the best: not 0.479..0.486


def test_history_caption_names_every_kind_of_trial():
    from nndl.search.results import history_caption, history_points

    points = history_points(mixed_study())
    assert [v is None for _, v, _ in points].count(True) == 2  # diverged early, failed
    text = history_caption(points, chance=0.1, unfinished=1)
    for phrase in ("8 trials", "2 complete", "4 pruned", "1 pruned before reporting",
                   "1 failed before reporting", "chance (10.0%)", "Left out: 1"):
        assert phrase in text, (phrase, text)


def _study(n_complete, varying):
    import optuna
    from optuna.distributions import FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    names = ["learning_rate", "reg", "std"]
    for i in range(n_complete):
        params = {p: (1e-3 * (i + 1) if k < varying else 1e-3) for k, p in enumerate(names)}
        study.add_trial(optuna.trial.create_trial(
            params=params, value=0.3 + 0.01 * i,
            distributions={p: FloatDistribution(1e-4, 1e-1) for p in names}))
    return study


@pytest.mark.parametrize(("n_complete", "varying", "drawn_too"),
                         [(2, 3, False), (4, 3, False), (5, 1, False), (5, 2, True)])
def test_importances_only_from_enough_completed_trials(tmp_path, n_complete, varying,
                                                       drawn_too):
    from nndl.search.results import _plots, importance_verdict

    made = _plots(_study(n_complete, varying), tmp_path)
    assert ("param_importances" in made) is drawn_too
    allowed, why_not = importance_verdict(_study(n_complete, varying))
    assert allowed is drawn_too
    if not drawn_too:
        assert f"{n_complete} completed trial(s) and {varying} varying" in why_not


def test_search_report_says_why_importances_are_missing(tmp_path):
    from tests.search_study import write_report

    page = write_report(mixed_study(), tmp_path).read_text()
    assert "Parameter importances are left out" in page
    assert "param_importances.png" not in page and not (tmp_path / "param_importances.png"
                                                        ).exists()


def test_a_long_cell_is_cut_with_its_whole_text_in_a_tooltip():
    page = Report("t").table(["number", "reason"], [[1, DIVERGED], [2, ""]],
                             clip=("reason",)).render()
    assert f'<td class="clip" title="{DIVERGED}">' in page
    assert '<div class="table-wrap"><table>' in page  # its own sideways-scrolling box
    assert "overflow-x: auto" in page and "text-overflow: ellipsis" in page


@pytest.mark.parametrize(("n", "shape"), [(1, (1, 1)), (2, (1, 2)), (3, (2, 2)), (7, (2, 4)),
                                          (10, (3, 4)), (50, (5, 10)), (64, (8, 8)),
                                          (2000, (40, 50))])
def test_grid_shape_leaves_no_empty_row(n, shape):
    rows, cols = vis_utils.grid_shape(n)
    assert (rows, cols) == shape
    assert (rows - 1) * cols < n <= rows * cols  # the last row holds at least one tile


def test_weight_grid_has_no_black_filler_blocks(drawn, tmp_path):
    w = np.random.default_rng(0).normal(size=(50, 3072))
    vis_utils.plot_weight_grids([("W1", w)], tmp_path / "w.png")
    grid = np.asarray(drawn[0].axes[0].images[0].get_array())
    tile = 32 + 3  # a tile and its padding
    assert grid.shape[:2] == (5 * tile - 3, 10 * tile - 3)  # 5 x 10 = 50 tiles, none unused
    assert not any((grid[r:r + 32, c:c + 32] == 0).all()  # no tile is a black block
                   for r in range(0, grid.shape[0], tile) for c in range(0, grid.shape[1], tile))
    assert (grid[32:35, :] == 255).all()  # the padding between rows is white


def test_unused_tiles_are_background_not_black():
    images = np.random.default_rng(1).integers(0, 256, (7, 4, 4, 3)).astype(float)
    grid = vis_utils.tile_images(images, padding=1, background=255.0)
    assert grid.shape == (2 * 5 - 1, 4 * 5 - 1, 3)  # 2 x 4 tiles
    assert (grid[5:9, 15:19] == 255.0).all()  # the one unused tile: white
    assert (grid[4, :, :] == 255.0).all()  # padding: white
    assert grid[0:4, 0:4].min() == 0.0 and grid[0:4, 0:4].max() == 255.0  # min-max scaled


def test_course_visualize_grid_keeps_its_square_black_layout():
    grid = vis_utils.visualize_grid(np.ones((50, 2, 2, 1)), padding=1)
    assert grid.shape == (8 * 3 - 1, 8 * 3 - 1, 1)  # ceil(sqrt(50)) = 8 a side, as the course
    assert (grid == 0).all()
