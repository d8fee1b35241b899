"""Workers sharing a study on a real PostgreSQL server (.ci/services starts one)."""

import signal
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from nndl.search.storage import open_storage
from tests.search.conftest import SMALL, nndl, start_nndl, wait_for

pytestmark = pytest.mark.postgres


def study_trials(url, name):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=open_storage(url)).trials


def test_two_workers_complete_a_study_without_loss_or_duplicates(tmp_path, search_env,
                                                                 postgres_url):
    name = f"two-{uuid.uuid4().hex[:8]}"
    env = {**search_env, "NNDL_GRACE_PERIOD": "20"}  # live workers: the default grace
    result = nndl("search", "--storage", postgres_url, "--study", name, "--workers", "2",
                  "--sampler", "random", "--trials", "8", "--population", "2",
                  "--num-iters", "60", *SMALL, "--out", str(tmp_path / "run"), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    trials = study_trials(postgres_url, name)
    assert [t.number for t in trials] == list(range(8))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == 8  # no trial run twice
    assert (tmp_path / "run" / "best" / "model.npz").is_file()


def test_killed_worker_leaves_its_trial_failed_and_the_study_completes(tmp_path, search_env,
                                                                       postgres_url):
    name = f"kill-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "run"
    first = start_nndl("search", "--storage", postgres_url, "--study", name, "--sampler",
                       "random", "--trials", "4", "--population", "1", "--num-iters", "100000",
                       "--pruner", "none", *SMALL, "--out", str(out), env=search_env)

    def running():
        try:
            return [t for t in study_trials(postgres_url, name) if t.state == TrialState.RUNNING]
        except KeyError:
            return []

    victim = wait_for(running)[0]
    first.send_signal(signal.SIGKILL)
    first.wait()
    # The study's definition lives in its user attributes; shorten the remaining trials so
    # that the worker that takes over finishes quickly.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=open_storage(postgres_url))
    base = dict(study.user_attrs["nndl_base"])
    base["num_iters"] = 50
    study.set_user_attr("nndl_base", base)
    settings = dict(study.user_attrs["nndl_settings"])
    settings["num_iters"] = 50
    study.set_user_attr("nndl_settings", settings)
    second = nndl("search", "worker", "--storage", postgres_url, "--study", name, "--out",
                  str(out), env=search_env)
    assert second.returncode == 0, second.stdout + second.stderr
    trials = study_trials(postgres_url, name)
    assert trials[victim.number].state == TrialState.FAIL
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 4
