"""``nndl search --resume`` after a SIGKILL: nothing lost, nothing repeated, the killed
trial run again, with a journal file and with PostgreSQL."""

import json
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from nndl.search.storage import open_storage
from tests.search.conftest import SMALL, nndl, start_nndl, wait_for

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def trials_of(folder, url, name):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        storage = open_storage(url, folder, create=False)
        return optuna.load_study(study_name=name, storage=storage).trials
    except (KeyError, ValueError):  # no journal file, or not yet its create-study record
        return []


@pytest.mark.parametrize("storage", ["journal", pytest.param("postgres",
                                                             marks=pytest.mark.postgres)])
@pytest.mark.slow
def test_resume_continues_the_sequence_and_reruns_the_killed_trial(tmp_path, search_env,
                                                                   storage, request):
    url = request.getfixturevalue("postgres_url") if storage == "postgres" else None
    name = f"resume-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "run"
    args = ["search", "--sampler", "random", "--trials", "4", "--population", "1",
            "--num-iters", "500", "--pruner", "none", "--study", name, *SMALL,
            "--no-progress", "--out", str(out), *(["--storage", url] if url else [])]
    proc = start_nndl(*args, env=search_env)

    def killable():  # two trials complete and the third one training
        trials = trials_of(out, url, name)
        training = [t for t in trials if t.state == TrialState.RUNNING
                    and "stream_seed" in t.user_attrs]
        return sum(t.state == TrialState.COMPLETE for t in trials) >= 2 and training

    wait_for(killable, interval=0.05)
    proc.kill()
    proc.wait()
    before = trials_of(out, url, name)
    killed = [t for t in before if t.state == TrialState.RUNNING]
    assert len(killed) == 1, [t.state for t in before]
    killed = killed[0]

    status = nndl("search", "status", "--out", str(out), "--study", name,
                  *(["--storage", url] if url else []), env=search_env)
    assert f"the search in {out} was killed (SIGKILL" in status.stdout, status.stdout
    result = nndl(*args, "--resume", env=search_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"resuming the search in {out}, which was killed (SIGKILL" in result.stdout
    after = trials_of(out, url, name)
    for trial in before:  # nothing lost
        if trial.state in FINISHED:
            assert (after[trial.number].params, after[trial.number].value) == \
                (trial.params, trial.value)
    assert after[killed.number].state == TrialState.FAIL
    reruns = [t for t in after if t.user_attrs.get("retry_of") == killed.number]
    assert len(reruns) == 1 and reruns[0].state == TrialState.COMPLETE
    assert reruns[0].params == killed.params
    assert reruns[0].user_attrs["init_seed"] == killed.user_attrs["init_seed"]
    finished = [t for t in after if t.state in FINISHED]
    assert len(finished) == 4
    # nothing repeated: the resumed sampler continued its sequence instead of restarting it
    assert len({tuple(sorted(t.params.items())) for t in finished}) == 4
    assert all(t.state != TrialState.RUNNING for t in after)
    assert json.loads((out / "metrics.json").read_text())["status"] == "complete"


@pytest.mark.slow
def test_resume_applies_trials_and_refuses_flags_that_change_what_a_trial_means(tmp_path,
                                                                               search_env):
    space = tmp_path / "space.toml"
    space.write_text("[learning_rate]\nlow = 1e-4\nhigh = 1e-2\nlog = true\n")
    out = tmp_path / "run"
    first = nndl("search", "--space", str(space), "--sampler", "random", "--trials", "2",
                 "--population", "1", "--num-iters", "30", *SMALL, "--no-progress", "--out",
                 str(out), env=search_env)
    assert first.returncode == 0, first.stdout + first.stderr
    metrics = (out / "metrics.json").read_text()
    resume = ["search", "--resume", "--out", str(out), "--no-progress"]
    for flags, named in ((["--num-iters", "500"], "--num-iters 500"),
                         (["--hidden-size", "7"], "--hidden-size 7"),
                         (["--learning-rate", "1e-3"], "--learning-rate"),
                         (["--sampler", "tpe"], "--sampler tpe"),
                         (["--seed-search", "3"], "--seed-search 3"),
                         (["--space", str(space.with_name("other.toml"))], "--space")):
        if flags[0] == "--space":
            space.with_name("other.toml").write_text("[reg]\nchoices = [0.1, 0.2]\n")
        refused = nndl(*resume, *flags, "--trials", "3", env=search_env)
        assert refused.returncode == 1, (flags, refused.stdout + refused.stderr)
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and named in lines[0] and "--resume" in lines[0], lines
        assert (out / "metrics.json").read_text() == metrics  # refused before any change
    assert "num_iters 30" in nndl(*resume, "--num-iters", "500", env=search_env).stderr
    same = nndl(*resume, "--num-iters", "30", "--sampler", "random", "--trials", "3",
                env=search_env)  # flags equal to the study's are fine; --trials applies
    assert same.returncode == 0, same.stdout + same.stderr
    trials = trials_of(out, None, "nndl")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert {t.user_attrs["population_size"] for t in trials} == {1}
    assert all(t.params.keys() == {"learning_rate"} for t in trials)
    config = json.loads((out / "metrics.json").read_text())["best"]["config"]
    assert config["num_iters"] == 30
    searched = [line for line in same.stdout.splitlines() if "learning_rate=" in line]
    assert len(searched) == 1 and "=" not in searched[0].replace("learning_rate=", ""), \
        same.stdout  # the summary lists the study's own space, nothing else


def test_a_refused_resume_names_every_flag_that_applies():
    """--workers and --storage-wait apply to a resume too (run_search takes them apart
    from the study's settings); the refusal said only --trials and --population."""
    from nndl.config import RunConfig
    from nndl.search.resume import Requested, resume_settings
    from nndl.search.settings import SearchSettings

    requested = Requested({}, RunConfig(), SearchSettings(sampler="random"), ["sampler"])
    with pytest.raises(ValueError, match=r"\(only --trials, --population, --workers and "
                                         r"--storage-wait apply\)"):
        resume_settings(requested, {}, RunConfig(), SearchSettings(sampler="tpe"))
