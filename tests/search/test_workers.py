"""Local worker processes never outlive their search, and never run beside a resume."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nndl.search.storage import WORKER_ATTR, open_storage
from tests.search.conftest import SMALL, nndl, start_nndl, wait_for

LONG = ["--sampler", "random", "--trials", "4", "--population", "1", "--num-iters", "1000000",
        "--pruner", "none", *SMALL, "--no-progress"]


def running_pids(folder):
    """Process ids of the workers training trials of the study in ``folder``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name="nndl",
                                  storage=open_storage(None, folder, create=False))
    except (KeyError, ValueError):
        return set()
    return {int(t.user_attrs[WORKER_ATTR].rpartition(":")[2]) for t in study.trials
            if t.state == TrialState.RUNNING and WORKER_ATTR in t.user_attrs}


def alive(pid):
    """True while ``pid`` runs (a zombie waiting to be reaped counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_local_workers_die_with_their_killed_parent(tmp_path, search_env):
    out = tmp_path / "run"
    parent = start_nndl("search", "--workers", "2", *LONG, "--out", str(out), env=search_env)
    pids = set()
    try:
        pids = wait_for(lambda: len(running_pids(out)) == 2 and running_pids(out))
        parent.kill()
        parent.wait()
        wait_for(lambda: not any(alive(pid) for pid in pids), timeout=10)
    finally:
        parent.kill()
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_worker_whose_parent_is_gone_stops_before_any_trial(tmp_path, search_env):
    """The portable check behind the death signal: a worker started for a search that has
    already exited runs nothing."""
    out = tmp_path / "run"
    done = nndl("search", "--trials", "1", "--num-iters", "20", *SMALL, "--no-progress",
                "--out", str(out), env=search_env)
    assert done.returncode == 0, done.stdout + done.stderr
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    env = {**search_env, "NNDL_SEARCH_PARENT": str(gone.pid)}
    worker = nndl("search", "worker", "--out", str(out), env=env)
    assert worker.returncode == 1
    assert f"process {gone.pid}" in worker.stderr and "Traceback" not in worker.stderr


def test_resume_refuses_while_a_worker_of_the_study_runs(tmp_path, search_env):
    out = tmp_path / "run"
    first = start_nndl("search", *LONG, "--out", str(out), env=search_env)
    resumed = None
    try:
        pid = wait_for(lambda: running_pids(out))
        assert pid == {first.pid}
        resumed = start_nndl("search", *LONG, "--out", str(out), "--resume", env=search_env)
        output, _ = resumed.communicate(timeout=60)  # a resume beside it would train on
        assert resumed.returncode == 1
        assert f"process {first.pid}" in output and "Traceback" not in output
        assert running_pids(out) == {first.pid}  # its trial was not failed under it
    finally:
        for proc in (first, resumed):
            if proc is not None:
                proc.kill()
                proc.wait()


def trials_in(folder):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name="nndl",
                                 storage=open_storage(None, folder, create=False)).trials
    except (KeyError, ValueError):
        return []


def kill_a_training_worker(folder, parent):
    """SIGKILL a worker process (not ``parent``) while it trains a trial of the study in
    ``folder``; returns (pid, trial number). The worker is frozen (SIGSTOP) first and
    killed only if its trial is still RUNNING then, so the kill always lands mid-trial."""
    while True:
        trial = wait_for(lambda: [t for t in trials_in(folder) if t.state == TrialState.RUNNING
                                  and "stream_seed" in t.user_attrs], interval=0.05)[0]
        pid = int(trial.user_attrs[WORKER_ATTR].rpartition(":")[2])
        assert pid != parent.pid
        os.kill(pid, signal.SIGSTOP)
        if trials_in(folder)[trial.number].state == TrialState.RUNNING:
            os.kill(pid, signal.SIGKILL)
            return pid, trial.number
        os.kill(pid, signal.SIGCONT)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.slow
def test_a_killed_worker_s_trial_runs_again_on_the_other_and_the_search_ends_well(
        tmp_path, search_env):
    """A journal study: the other worker fails the dead worker's trial, runs it again and
    finishes the study; the search exits 0 with one warning naming the killed worker."""
    out = tmp_path / "run"
    proc = start_nndl("search", "--workers", "2", "--sampler", "random", "--trials", "4",
                      "--population", "1", "--num-iters", "400", "--pruner", "none", *SMALL,
                      "--no-progress", "--out", str(out), env=search_env)
    try:
        pid, number = kill_a_training_worker(out, proc)
        output, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, output
    warning = f"nndl search: warning: worker process {pid} was killed by SIGKILL; the other " \
              "workers finished the study"
    assert [line for line in output.splitlines() if "warning" in line.lower()] == [warning], \
        output
    assert "[W " not in output and "lock" not in output, output  # no stale Optuna lock
    trials = trials_in(out)
    killed = trials[number]
    assert killed.state == TrialState.FAIL
    assert killed.user_attrs["reason"] == f"its worker process {pid} exited before it finished"
    retry, = [t for t in trials if t.user_attrs.get("retry_of") == number]
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["attempt"] == 2
    assert retry.params == killed.params
    assert retry.user_attrs["init_seed"] == killed.user_attrs["init_seed"]
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 4
    assert not any(t.state == TrialState.RUNNING for t in trials)
    assert not (out / "study.journal.lock").exists()
