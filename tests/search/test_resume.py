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

    result = nndl(*args, "--resume", env=search_env)
    assert result.returncode == 0, result.stdout + result.stderr
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
