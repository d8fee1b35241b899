"""A dead worker, a database outage and odd study names: the search reports what
finished, waits the outage out, and says in one line what it could not do."""

import json
import os
import signal
import uuid

import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from nndl.search.storage import WORKER_ATTR, open_storage
from tests.search.conftest import SMALL, nndl, start_nndl, wait_for
from tests.search.tcpproxy import Proxy

TWO_WORKERS = ["--workers", "2", "--sampler", "random", "--trials", "6", "--population", "1",
               "--pruner", "none", "--num-iters", "200", *SMALL, "--no-progress"]


def study_trials(url, folder, name):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        storage = open_storage(url, folder, create=False)
        return optuna.load_study(study_name=name, storage=storage).trials
    except (KeyError, ValueError):
        return []


def training_workers(url, folder, name):
    """pid -> trial of the workers training a trial now, once both do."""
    held = {int(t.user_attrs[WORKER_ATTR].rpartition(":")[2]): t
            for t in study_trials(url, folder, name)
            if t.state == TrialState.RUNNING and "stream_seed" in t.user_attrs}
    return held if len(held) == 2 else None


def kill_one_worker(args, url, out, name, env):
    proc = start_nndl(*args, env=env)
    try:
        held = wait_for(lambda: training_workers(url, out, name), interval=0.05)
        victim = min(held)
        os.kill(victim, signal.SIGKILL)
        output, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    return proc.returncode, output, victim, held[victim]


@pytest.mark.postgres
def test_a_killed_worker_does_not_make_a_finished_study_look_failed(tmp_path, search_env,
                                                                    postgres_url):
    name, out = f"dead-{uuid.uuid4().hex[:8]}", tmp_path / "run"
    env = {**search_env, "NNDL_GRACE_PERIOD": "3"}
    args = ["search", "--storage", postgres_url, "--study", name, *TWO_WORKERS, "--out",
            str(out)]
    rc, output, victim, trial = kill_one_worker(args, postgres_url, out, name, env)
    assert rc == 0, output
    assert f"worker process {victim} was killed by SIGKILL; the other workers finished the " \
        "study" in output
    assert "Heartbeat" not in output  # Optuna's warning for ask() with heartbeats: not shown
    trials = study_trials(postgres_url, out, name)
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 6
    assert trials[trial.number].state == TrialState.FAIL
    for path in ("best/model.npz", "trials.csv", "report.html"):
        assert (out / path).is_file(), path
    assert json.loads((out / "metrics.json").read_text())["status"] == "complete"


@pytest.mark.slow
def test_a_killed_journal_worker_does_not_make_a_finished_study_look_failed(tmp_path,
                                                                          search_env):
    """As with PostgreSQL: the other worker fails the dead one's trial (its process is
    gone), runs it again and finishes the study; the search exits 0 with a warning."""
    out = tmp_path / "run"
    args = ["search", *TWO_WORKERS, "--out", str(out)]
    rc, output, victim, trial = kill_one_worker(args, None, out, "nndl", search_env)
    assert rc == 0, output
    assert f"worker process {victim} was killed by SIGKILL; the other workers finished the " \
        "study" in output
    trials = study_trials(None, out, "nndl")
    assert trials[trial.number].state == TrialState.FAIL
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 6
    for path in ("best/model.npz", "trials.csv", "report.html"):
        assert (out / path).is_file(), path
    assert json.loads((out / "metrics.json").read_text())["status"] == "complete"


@pytest.fixture
def proxied(postgres_url):
    """The test server's URL through a proxy that can cut it off (with a password, which
    the server's trust authentication ignores, to check that no message shows it)."""
    url = make_url(postgres_url)
    proxy = Proxy(url.host, url.port)
    yield proxy, url.set(port=proxy.port, password="secret").render_as_string(
        hide_password=False)
    proxy.close()


@pytest.mark.postgres
def test_a_database_outage_is_waited_out(tmp_path, search_env, postgres_url, proxied):
    proxy, url = proxied
    name, out = f"outage-{uuid.uuid4().hex[:8]}", tmp_path / "run"
    env = {**search_env, "NNDL_GRACE_PERIOD": "60"}  # the outage must not fail live trials
    proc = start_nndl("search", "--storage", url, "--study", name, "--sampler", "random",
                      "--trials", "3", "--population", "1", "--pruner", "none",
                      "--num-iters", "300", *SMALL, "--no-progress", "--out", str(out),
                      env=env)
    lines = []
    try:
        wait_for(lambda: [t for t in study_trials(postgres_url, out, name)
                          if t.state == TrialState.RUNNING and "stream_seed" in t.user_attrs],
                 interval=0.05)
        proxy.down()
        while "does not answer" not in (line := proc.stdout.readline()):  # it has noticed
            assert line, "".join(lines)
            lines.append(line)
        lines.append(line)
        proxy.up()
        output, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    output = "".join(lines) + output
    assert proc.returncode == 0, output
    assert "waiting up to 60 s" in output and "secret" not in output
    trials = study_trials(postgres_url, out, name)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3


@pytest.mark.postgres
def test_a_database_gone_longer_than_storage_wait_is_one_line_naming_it(tmp_path, search_env,
                                                                        postgres_url, proxied):
    proxy, url = proxied
    name, out = f"gone-{uuid.uuid4().hex[:8]}", tmp_path / "run"
    proc = start_nndl("search", "--storage", url, "--study", name, "--storage-wait", "2",
                      "--trials", "2", "--population", "1", "--num-iters", "1000000", *SMALL,
                      "--no-progress", "--out", str(out), env=search_env)
    try:
        wait_for(lambda: [t for t in study_trials(postgres_url, out, name)
                          if t.state == TrialState.RUNNING and "stream_seed" in t.user_attrs],
                 interval=0.05)
        proxy.down()
        output, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1, output
    shown = url.replace(":secret@", ":***@")
    last = output.strip().splitlines()[-1]
    assert last.startswith(f"nndl search: error: the study storage {shown} did not answer "
                           "for 2 s"), output
    assert "secret" not in output and "Traceback" not in output


@pytest.mark.parametrize("study", ["x" * 513, ""])
def test_a_study_name_the_database_cannot_hold_is_refused_in_one_line(tmp_path, search_env,
                                                                      study):
    result = nndl("search", "--study", study, "--trials", "1", "--num-iters", "20", *SMALL,
                  "--no-progress", env=search_env, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("nndl search: error: study name must have 1 to 512 "
                                    f"characters, got {len(study)}")
    assert "bug" not in result.stderr and list(tmp_path.iterdir()) == []
