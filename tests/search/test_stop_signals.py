"""A search told to stop (Ctrl-C, SIGTERM, SIGHUP: real signals to a real process) keeps
its finished trials and a report, marks the trials it was running for retry, exits 128 +
the signal, and ``search status`` and ``--resume`` say how it ended.

The space makes trial 0 short (20 iterations) and trial 1 endless (10**6): the stop
always lands while trial 1 trains, once trial 0 has completed (markers read from the
study, no sleeping)."""

import json
import os
import signal
import sys

import optuna
import pytest
from optuna.trial import TrialState

from nndl.search.storage import WORKER_ATTR, open_storage
from tests.search.conftest import SMALL, nndl, start_nndl, wait_for

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def trials_of(out):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        storage = open_storage(None, out, create=False)
        return optuna.load_study(study_name="nndl", storage=storage).trials
    except (KeyError, ValueError):
        return []


def first_done_second_training(out):
    trials = trials_of(out)
    return len(trials) == 2 and trials[0].state == TrialState.COMPLETE \
        and trials[1].state == TrialState.RUNNING and "stream_seed" in trials[1].user_attrs


def search_args(tmp_path, *extra):
    space = tmp_path / "space.toml"
    space.write_text("[num_iters]\nchoices = [20, 1000000]\n")
    # the grid sampler shuffles the grid by --seed-search: seed 1 puts 20 first
    return ["search", "--space", str(space), "--sampler", "grid", "--seed-search", "1",
            "--population", "1", "--pruner", "none", *SMALL, "--no-progress", "--out",
            str(tmp_path / "run"), *extra]


def stop_line(signum, out):
    said = "interrupted" if signum == signal.SIGINT else \
        f"terminated by {signal.Signals(signum).name}"
    return f"nndl search: {said}; what the run reached is in {out}"


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("signum", [  # SIGTERM in the quick loop, the others slow
    pytest.param(signal.SIGTERM, id="SIGTERM"),
    pytest.param(signal.SIGHUP, id="SIGHUP", marks=pytest.mark.slow),
    pytest.param(signal.SIGINT, id="SIGINT", marks=pytest.mark.slow)])
def test_a_stopped_search_keeps_what_finished_and_resumes(tmp_path, search_env, signum):
    out = tmp_path / "run"
    args = search_args(tmp_path)
    proc = start_nndl(*args, env=search_env)
    try:
        wait_for(lambda: first_done_second_training(out), interval=0.05)
        assert trials_of(out)[0].params["num_iters"] == 20  # the precondition of the design
        proc.send_signal(signum)
        output, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    assert proc.returncode == 128 + signum, output
    assert output.strip().splitlines()[-1] == stop_line(signum, out), output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == ("interrupted" if signum == signal.SIGINT else "terminated")
    assert metrics["best"]["trial"] == 0 and metrics["trials"]["COMPLETE"] == 1
    assert (out / "best" / "model.npz").is_file() and (out / "trials.csv").is_file()
    assert f"stopped by {name} after 1 of its 2 trials" in (out / "report.html").read_text()
    complete, stopped = trials_of(out)
    assert complete.state == TrialState.COMPLETE
    assert stopped.state == TrialState.FAIL and stopped.user_attrs["stopped"] == name
    assert f"stopped by {name}" in stopped.user_attrs["reason"]

    status = nndl("search", "status", "--out", str(out), env=search_env)
    assert status.returncode == 0, status.stderr
    said = "was interrupted (Ctrl-C)" if signum == signal.SIGINT else f"was stopped by {name}"
    assert f"the search in {out} {said}" in status.stdout
    assert f"nndl search --resume --out {out} continues it" in status.stdout

    # the resume runs the stopped trial again (same parameters and seed, not an attempt)
    resumed = start_nndl(*args, "--resume", env=search_env)
    try:
        retry = wait_for(lambda: [t for t in trials_of(out) if t.state == TrialState.RUNNING
                                  and "stream_seed" in t.user_attrs], interval=0.05)[0]
        resumed.send_signal(signal.SIGTERM)
        output, _ = resumed.communicate(timeout=120)
    finally:
        resumed.kill()
    assert resumed.returncode == 143, output
    assert f"resuming the search in {out}, which {said}" in output
    assert retry.user_attrs["retry_of"] == 1 and retry.user_attrs["attempt"] == 1
    assert retry.params == stopped.params
    assert retry.user_attrs["init_seed"] == stopped.user_attrs["init_seed"]
    assert all(t.state != TrialState.RUNNING for t in trials_of(out))


@pytest.mark.slow
def test_a_search_with_workers_stops_them_and_keeps_what_finished(tmp_path, search_env):
    out = tmp_path / "run"
    proc = start_nndl(*search_args(tmp_path, "--workers", "2"), env=search_env)
    try:
        wait_for(lambda: first_done_second_training(out), interval=0.05)
        worker = int(trials_of(out)[1].user_attrs[WORKER_ATTR].rpartition(":")[2])
        assert worker != proc.pid
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, output
    assert output.strip().splitlines()[-1] == stop_line(signal.SIGTERM, out), output
    assert not alive(worker)
    complete, stopped = trials_of(out)
    assert complete.state == TrialState.COMPLETE
    assert stopped.state == TrialState.FAIL and stopped.user_attrs["stopped"] == "SIGTERM"
    assert (out / "best" / "model.npz").is_file() and (out / "report.html").is_file()
    assert json.loads((out / "metrics.json").read_text())["status"] == "terminated"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's parent-death signal")
@pytest.mark.slow
def test_a_worker_whose_parent_is_killed_marks_its_trial_for_retry_and_exits(tmp_path,
                                                                            search_env):
    out = tmp_path / "run"
    proc = start_nndl(*search_args(tmp_path, "--workers", "2"), env=search_env)
    worker = None
    try:
        wait_for(lambda: first_done_second_training(out), interval=0.05)
        worker = int(trials_of(out)[1].user_attrs[WORKER_ATTR].rpartition(":")[2])
        proc.kill()  # SIGKILL: the parent can do nothing; its worker gets SIGTERM
        proc.wait()
        wait_for(lambda: not alive(worker), timeout=60)
    finally:
        proc.kill()
        if worker and alive(worker):
            os.kill(worker, signal.SIGKILL)
    stopped = trials_of(out)[1]
    assert stopped.state == TrialState.FAIL and stopped.user_attrs["stopped"] == "SIGTERM"
    status = nndl("search", "status", "--out", str(out), env=search_env)
    assert f"the search in {out} was killed (SIGKILL" in status.stdout, status.stdout
