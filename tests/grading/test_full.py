"""--full: the notebook's default run on CIFAR-10, its validation accuracy in 25-32%, within
a time budget shared by a batch's runs."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from nndl.grading import Session, Settings, grader
from tests.fakecifar import make_arrays, write_python_folder

from .conftest import C147


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "data"
    write_python_folder(root / "cifar-10-batches-py", make_arrays(per_batch=200))
    return root


@pytest.fixture
def temp_root(tmp_path, monkeypatch):
    """A fresh folder for ``tempfile``'s folders (where the session writes its split)."""
    root = tmp_path / "temp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def split_folders(root):
    return sorted(root.glob("nndl-check-data-*"))


def test_the_full_part_trains_the_students_network_and_scores_its_predictions(fake_cifar,
                                                                             temp_root):
    """On a small copy of random images nothing can be learned: the accuracy is near
    chance, outside the band, and the hint says so."""
    settings = Settings(full=True, data=str(fake_cifar), full_sizes=(900, 100), timeout=30,
                        full_timeout=120)
    with Session(settings) as session:
        result = session.grade(C147, only={"full"})
        (folder,) = split_folders(temp_root)
        assert (folder / "train_rows.npy").is_file()
    assert split_folders(temp_root) == []  # the split's files go with the session
    (v,) = result.verdicts
    assert v.kind == "wrong" and v.expected == [0.25, 0.32]
    assert 0.0 <= v.value <= 0.2 and v.value * 100 == pytest.approx(round(v.value * 100))
    assert v.message.startswith(f"validation accuracy {v.value:.1%}, expected 25%-32%")
    assert v.hint == "the network barely learned: chance is 10%"


def test_a_spent_budget_skips_the_full_run_without_loading_data(tmp_path, temp_root):
    settings = Settings(full=True, data=str(tmp_path / "no-data-here"), budget=1.0,
                        timeout=30)
    with Session(settings) as session:
        result = session.grade(C147, only={"full"})
        assert split_folders(temp_root) == []  # no split written: the data never loaded
    (v,) = result.verdicts
    assert v.status == "skip" and v.kind == "budget" and not result.passed
    assert v.message == "not run: the --full time budget of 1 s was spent"


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("NNDL_DATA"), reason="needs CIFAR-10 in $NNDL_DATA")
def test_the_reference_passes_the_full_run_on_cifar10(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-m", "nndl", "check", str(C147), "--full"],
                            capture_output=True, text=True, timeout=900, env=env,
                            cwd=Path(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(x for x in result.stdout.splitlines() if "CIFAR-10 default run" in x)
    assert "pass" in line and "validation accuracy 2" in line


def test_full_is_a_part_only_when_asked(session):
    assert "full" not in session.part_ids()
    with Session(Settings(full=True)) as asked:
        ids = asked.part_ids()  # the first assignment's last part, before the second's
        assert ids[ids.index("predict") + 1] == "full" and ids[-1] == "files"


def test_the_budget_counts_from_the_first_full_run(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(grader.time, "monotonic", lambda: clock[0])
    budget = grader.FullBudget(60.0)
    clock[0] = 500.0
    assert budget.allow(600.0) == 60.0  # the first run starts the clock
    clock[0] = 530.0
    assert budget.allow(600.0) == 30.0 and budget.allow(10.0) == 10.0
    clock[0] = 556.0  # under MIN_FULL_SECONDS left: not worth starting
    assert budget.allow(600.0) == 0.0
    assert grader.FullBudget(None).allow(600.0) == 600.0
