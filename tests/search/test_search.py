import json

import optuna
import pytest
from optuna.trial import TrialState

from nndl.search.storage import open_storage
from tests.search.conftest import SMALL, nndl


def load(folder, url=None, name="nndl"):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=open_storage(url, folder))


def test_search_writes_run_folder_and_prunes_divergence(tmp_path, search_env):
    space = tmp_path / "space.toml"
    space.write_text("[learning_rate]\nchoices = [1e-3, 1e7]\n[reg]\nchoices = [0.1]\n")
    out = tmp_path / "run"
    result = nndl("search", "--sampler", "grid", "--space", str(space), "--num-iters", "40",
                  *SMALL, "--out", str(out), env=search_env)
    assert result.returncode == 0, result.stdout + result.stderr
    study = load(out)
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE", "PRUNED"]
    pruned = next(t for t in study.trials if t.state == TrialState.PRUNED)
    assert pruned.params["learning_rate"] == 1e7
    assert pruned.user_attrs["reason"].startswith("diverged: loss became")
    rows = (out / "trials.csv").read_text().splitlines()
    assert rows[0].startswith("number,state,learning_rate,reg,val_accuracy,seconds")
    assert len(rows) == 3
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "complete" and metrics["best"]["hidden_size"] == 50
    assert metrics["best"]["config"]["learning_rate"] == 1e-3
    assert (out / "best" / "model.npz").is_file()
    best = metrics["best"]
    assert f"best:    trial {best['trial']}, validation {100 * best['val_accuracy']:.1f}%" \
        in result.stdout  # the command ends with what it found and where
    assert "learning_rate=0.001" in result.stdout
    assert f"report:  {out / 'report.html'}" in result.stdout
    status = nndl("search", "status", "--out", str(out), env=search_env)
    assert status.returncode == 0 and "PRUNED" in status.stdout and "COMPLETE" in status.stdout
    wrong = nndl("search", "status", "--out", str(out), "--trials", "3", env=search_env)
    assert wrong.returncode == 2  # status has its own options


@pytest.mark.slow
def test_trials_with_any_options_share_one_population(tmp_path, search_env):
    """Adam, dropout, schedules and augmentation no longer train one by one: every trial
    that shares the stream (batch size, iterations, hidden size, data) joins the group."""
    space = tmp_path / "space.toml"
    space.write_text('[optimizer]\nchoices = ["sgd", "adam", "nesterov"]\n'
                     '[schedule]\nchoices = ["epoch_decay", "cosine"]\n'
                     "[dropout]\nchoices = [0.0, 0.3]\n")
    out = tmp_path / "run"
    result = nndl("search", "--sampler", "random", "--space", str(space), "--trials", "4",
                  "--pruner", "none", "--num-iters", "20", "--flip", "--learning-rate", "1e-3",
                  *SMALL, "--out", str(out), env=search_env)
    assert result.returncode == 0, result.stdout + result.stderr
    trials = load(out).trials
    assert len({t.params["optimizer"] for t in trials}) > 1  # the draw mixes optimizers
    assert [t.user_attrs["population_size"] for t in trials] == [4] * 4
    assert len({t.user_attrs["stream_seed"] for t in trials}) == 1
    assert all(t.state == TrialState.COMPLETE for t in trials)


def test_optuna_plots_say_what_they_show(tmp_path, monkeypatch):
    import optuna
    from matplotlib.figure import Figure

    from nndl.search.results import _plots

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    space = {p: optuna.distributions.FloatDistribution(1e-4, 1e-1) for p in ("learning_rate",
                                                                            "reg")}
    for lr, reg, acc in ((1e-3, 0.01, 0.3), (2e-3, 0.02, 0.4), (5e-4, 0.05, 0.2),
                         (3e-3, 0.01, 0.35), (1e-4, 0.03, 0.1)):  # enough for importances
        study.add_trial(optuna.trial.create_trial(
            params={"learning_rate": lr, "reg": reg}, value=acc, distributions=space))
    labels = []
    real = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: (
        labels.extend(t for ax in fig.axes for t in (ax.get_xlabel(), ax.get_ylabel(),
                                                     ax.get_title())), real(fig, *a, **k))[1])
    made = _plots(study, tmp_path)
    assert set(made) == {"optimization_history", "param_importances"}
    text = " ".join(labels)
    assert "Validation accuracy" in text and "Objective Value" not in text
