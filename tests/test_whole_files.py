"""Every file nndl writes appears whole or not at all, even on a full disk (issue 22's
re-probe): the old file is kept whole, never truncated, and the error names the file."""

from __future__ import annotations

import errno

import numpy as np
import pytest

from tests.fulldisk import fill, small_tmpfs

OLD = "the old file, kept whole\n"


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a tmpfs with 4 KiB left, holding ``old.txt``-like files written first."""
    with small_tmpfs(tmp_path / "disk", size=1 << 20) as disk:
        yield disk


def _fill_then(disk, name):
    path = disk / name
    path.write_text(OLD)
    fill(disk, 0)
    return path


def _assert_kept(path, excinfo):
    assert excinfo.value.errno == errno.ENOSPC
    assert str(path) in str(excinfo.value)  # names the file, not a temporary one
    assert path.read_text() == OLD
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_trials_csv_on_a_full_disk_keeps_the_old_file(full_disk, monkeypatch):
    from nndl.search import results

    rows = [{"number": i, "reason": "x" * 200} for i in range(200)]  # ~40 KB
    monkeypatch.setattr(results, "trial_rows", lambda study: rows)
    path = _fill_then(full_disk, "trials.csv")
    with pytest.raises(OSError) as excinfo:
        results.write_trials_csv(None, path)
    _assert_kept(path, excinfo)


def test_text_files_on_a_full_disk_keep_the_old_file(full_disk):
    from nndl._atomic import write_text

    path = _fill_then(full_disk, "confusion_matrix.txt")
    with pytest.raises(OSError) as excinfo:
        write_text(path, "a new, longer text\n" * 2000)
    _assert_kept(path, excinfo)


def test_plots_on_a_full_disk_keep_the_old_file(full_disk):
    from nndl.vis_utils import plot_confusion_matrix

    path = _fill_then(full_disk, "confusion_matrix.png")
    with pytest.raises(OSError) as excinfo:
        plot_confusion_matrix(np.eye(3, dtype=int) * 5, ["a", "b", "c"], path)
    _assert_kept(path, excinfo)


def test_archive_on_a_full_disk_names_the_file(full_disk):
    from nndl._archive import write_archive

    path = _fill_then(full_disk, "model.npz")
    with pytest.raises(OSError) as excinfo:
        write_archive(path, {"W": np.ones(50_000)}, {"kind": "test"})
    _assert_kept(path, excinfo)


@pytest.mark.parametrize("module", ["evaluation", "workflow", "reproduce", "search/results",
                                    "vis_utils"])
def test_no_output_is_written_in_place(module):
    """The files above are written through nndl._atomic (the tests above show why)."""
    from pathlib import Path

    import nndl

    source = (Path(nndl.__file__).parent / f"{module}.py").read_text()
    for in_place in (").write_text(", "fig.savefig(path", 'open(path, "w"'):
        assert in_place not in source, (module, in_place)
