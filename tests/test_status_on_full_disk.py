"""A run's last status is written even when the disk is full beyond the INCOMPLETE
reserve, or out of inodes (issue 22's re-probe): never left ``running``."""

from __future__ import annotations

import errno
import json

import pytest

from nndl.runs import RESERVE, RunRecorder, new_run_dir
from tests.fulldisk import fill, small_tmpfs


def _fail_a_run(recorder, **metrics):
    folder = recorder.folder
    with pytest.raises(OSError) as excinfo, recorder.running():
        if metrics:
            recorder.update(**metrics)
        (folder / "model.npz").write_bytes(b"\0" * (RESERVE * 4))
    assert excinfo.value.errno == errno.ENOSPC
    return json.loads((folder / "metrics.json").read_text())


def test_metrics_larger_than_the_reserve_still_record_the_failure(tmp_path):
    with small_tmpfs(tmp_path / "disk", size=1 << 20) as disk:
        recorder = RunRecorder(new_run_dir(disk / "run"), "evaluate", {"model": "model.npz"})
        fill(disk, 0)
        # e.g. the per-class results of a 3000-class model: more than the reserve
        per_class = [{"class": f"class {i}", "accuracy": 0.5} for i in range(3000)]
        metrics = _fail_a_run(recorder, per_class=per_class)
        assert metrics["status"] == "failed"
        assert "No space left on device" in metrics["error"]
        assert "per_class" not in metrics and "disk was full" in metrics["note"]


def test_out_of_inodes_still_records_the_failure(tmp_path):
    with small_tmpfs(tmp_path / "disk", size=4 << 20, inodes=6) as disk:
        recorder = RunRecorder(new_run_dir(disk / "run"), "evaluate", {"model": "model.npz"})
        n = 0
        with pytest.raises(OSError):  # use up the inodes
            while True:
                (disk / f"f{n}").touch()
                n += 1
        metrics = _fail_a_run(recorder)
        assert metrics["status"] == "failed"
        assert "No space left on device" in metrics["error"]
        assert metrics["config"] == {"model": "model.npz"}  # it all fits in place


def test_a_complete_run_is_never_cut(tmp_path):
    with small_tmpfs(tmp_path / "disk", size=1 << 20) as disk:
        folder = new_run_dir(disk / "run")
        recorder = RunRecorder(folder, "evaluate")
        fill(disk, 0)
        recorder.metrics["per_class"] = ["x" * 100] * 3000
        with pytest.raises(OSError):
            recorder.finish()
        assert (folder / "INCOMPLETE").exists()


def test_a_start_on_a_full_disk_names_the_marker_and_leaves_nothing(tmp_path):
    with small_tmpfs(tmp_path / "disk", size=1 << 20) as disk:
        (disk / "runs").mkdir()
        filler = fill(disk, 0)
        with pytest.raises(OSError) as excinfo:
            new_run_dir(disk / "runs" / "run")
        assert f"No space left on device: '{disk}/runs/run/INCOMPLETE'" in str(excinfo.value)
        assert sorted(disk.iterdir()) == [filler, disk / "runs"]
        assert list((disk / "runs").iterdir()) == []
