"""A search command that fails says so in one line and leaves no file or folder behind."""

import uuid

import pytest

from tests.search.conftest import SMALL, nndl


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def assert_one_line_error(result, *words):
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nndl search: error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_resume_of_a_folder_without_a_study_creates_nothing(tmp_path, search_env):
    train_run = tmp_path / "train-run"
    train_run.mkdir()
    (train_run / "metrics.json").write_text("{}")
    result = nndl("search", "--resume", "--out", str(train_run), "--no-progress",
                  env=search_env, cwd=tmp_path)
    assert_one_line_error(result, str(train_run), "study.journal")
    assert listing(tmp_path) == ["train-run", "train-run/metrics.json"]


@pytest.mark.parametrize("action", ["worker", "status"])
def test_worker_or_status_without_a_study_creates_nothing(tmp_path, search_env, action):
    result = nndl("search", action, env=search_env, cwd=tmp_path)
    assert_one_line_error(result, "study.journal")
    result = nndl("search", action, "--out", str(tmp_path / "no" / "such"), env=search_env,
                  cwd=tmp_path)
    assert_one_line_error(result, str(tmp_path / "no" / "such"))
    result = nndl("search", action, "--storage", "sqlite:///x.db", env=search_env,
                  cwd=tmp_path)
    assert_one_line_error(result, "x.db")
    assert listing(tmp_path) == []


@pytest.mark.parametrize("out", [True, False])
def test_unreachable_storage_is_one_line_naming_it_and_leaves_no_folder(tmp_path, search_env,
                                                                        out):
    url = "postgresql://nobody:secret@127.0.0.1:1/x"
    args = ["--out", str(tmp_path / "run")] if out else []
    result = nndl("search", "--storage", url, "--trials", "2", "--num-iters", "20", *SMALL,
                  "--no-progress", *args, env=search_env, cwd=tmp_path)
    assert_one_line_error(result, "postgresql://nobody:***@127.0.0.1:1/x")
    assert "secret" not in result.stderr
    assert listing(tmp_path) == []


def test_taken_study_name_leaves_no_folder(tmp_path, search_env, postgres_url):
    name = f"taken-{uuid.uuid4().hex[:8]}"
    args = ["search", "--storage", postgres_url, "--study", name, "--trials", "1",
            "--num-iters", "20", *SMALL, "--no-progress"]
    first = nndl(*args, "--out", str(tmp_path / "first"), env=search_env)
    assert first.returncode == 0, first.stdout + first.stderr
    second = nndl(*args, "--out", str(tmp_path / "deep" / "second"), env=search_env)
    assert_one_line_error(second, name, "already exists")
    (tmp_path / "empty").mkdir()
    third = nndl(*args, "--out", str(tmp_path / "empty"), env=search_env)
    assert_one_line_error(third, name, "already exists")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "first"]
    assert list((tmp_path / "empty").iterdir()) == []


def test_search_on_missing_data_creates_nothing(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "NNDL_CIFAR10_URL": "http://127.0.0.1:9/x.tar.gz",
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-m", "nndl", "search", "--data",
                             str(tmp_path / "typo" / "deep"), "--trials", "2"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 1 and "CIFAR-10 not found" in result.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "typo").exists()


@pytest.mark.parametrize("workers", ["0", "-3"])
def test_workers_below_one_are_refused_before_anything_is_made(tmp_path, search_env, workers):
    result = nndl("search", "--workers", workers, "--trials", "2", "--num-iters", "20", *SMALL,
                  "--no-progress", env=search_env, cwd=tmp_path)
    assert_one_line_error(result, "workers must be", workers)
    assert listing(tmp_path) == []
