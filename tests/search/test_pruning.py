"""Small searches: the pruner fits the budget, the first trial is the base configuration,
the default space trains; pruned members leave their population at once."""

import optuna
import pytest
from optuna.trial import TrialState

from nndl.config import RunConfig
from nndl.population import Population
from nndl.search.api import run_search
from nndl.search.settings import SearchSettings, resolve_pruner
from nndl.search.space import Dimension
from tests.search.conftest import SMALL, nndl
from tests.search.test_search import load


@pytest.mark.parametrize(("trials", "expected"), [(1, "none"), (8, "none"), (27, "none"),
                                                  (28, "halving"), (32, "halving")])
def test_auto_pruner_halves_only_from_28_trials(trials, expected):
    # 28 = 4 * (2 * 4 - 1): the reduction factor 4 and Optuna's best-so-far rule under 8
    assert resolve_pruner(SearchSettings(trials=trials)) == expected
    assert SearchSettings().pruner == "auto"


@pytest.mark.parametrize("pruner", ["none", "median", "halving", "hyperband"])
def test_a_named_pruner_is_kept_at_any_budget(pruner):
    assert resolve_pruner(SearchSettings(trials=2, pruner=pruner)) == pruner


@pytest.mark.slow
def test_default_small_search_prunes_no_trial_and_starts_from_the_base(tmp_path, search_env):
    """Two populations of 4: under the old default (halving) the second one's trials were
    pruned at epoch 1 against the first's; now all 8 run their budget. Trial 0 is what
    ``nndl train`` would run: the assignment's learning rate 1e-3, reg 0.1, decay 0.95,
    std 1e-4 (the batch size is fixed by the flags)."""
    out = tmp_path / "run"
    result = nndl("search", "--trials", "8", "--population", "4", "--num-iters", "40",
                  "--sampler", "random", *SMALL, "--out", str(out), env=search_env)
    assert result.returncode == 0, result.stdout + result.stderr
    study = load(out)
    assert study.user_attrs["nndl_settings"]["pruner"] == "none"
    reasons = [t.user_attrs.get("reason", "") for t in study.trials]
    assert len(study.trials) == 8
    assert not any("by the pruner" in r for r in reasons)
    first = next(t for t in study.trials if t.number == 0)
    assert first.params == {"learning_rate": 1e-3, "reg": 0.1, "learning_rate_decay": 0.95,
                            "std": 1e-4}


def test_pruned_members_leave_the_first_population_at_the_pruning_epoch(
        tmp_path, search_env, monkeypatch):
    """Halving prunes inside the first population (before any trial has completed), and
    the population shrinks in the step right after epoch 1, by the trials pruned there."""
    for name in ("NNDL_DATA", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, search_env[name])
    sizes = []
    real_step = Population.step
    monkeypatch.setattr(Population, "step", lambda self, *a, **k: (
        sizes.append(self.K), real_step(self, *a, **k))[1])
    base = RunConfig(dtype="float32", num_training=800, num_validation=200,
                     num_test=100).replace(batch_size=100, num_iters=30)
    space = {"learning_rate": Dimension(1e-4, 1e-2, log=True)}
    settings = SearchSettings(sampler="random", pruner="halving", trials=8, population=8)
    folder = run_search(space, base, settings, out=tmp_path / "run", log=lambda m: None)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = load(folder).trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, "halving pruned no trial of the first population"
    assert all(max(t.intermediate_values) == 1 for t in pruned)  # stopped at epoch 1
    assert {t.user_attrs["reason"] for t in pruned} == {"pruned at epoch 1 by the pruner"}
    # 800 rows / batch 100: epoch 1 ends with the step of iteration 8; the next rung,
    # epoch 4, is past the 30 iterations
    assert sizes[:9] == [8] * 9
    assert sizes[9:] == [8 - len(pruned)] * 21


@pytest.mark.slow
def test_one_population_and_one_by_one_prune_the_same_trials(tmp_path, search_env,
                                                              monkeypatch):
    """A trial's result does not depend on the population it trained in: the study has one
    minibatch stream, and members report to the pruner in trial order whatever their update
    rule. So halving prunes the same trials in both modes, and every trial reaches the same
    validation accuracies (before: each group drew its own stream, and 32 random trials
    pruned 19 as one population against 26 one by one, taking the population's gain)."""
    for name in ("NNDL_DATA", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, search_env[name])
    base = RunConfig(dtype="float64", num_training=800, num_validation=200,
                     num_test=100).replace(batch_size=100, num_iters=40)
    space = {"learning_rate": Dimension(1e-4, 1e-2, log=True),
             "optimizer": Dimension(choices=["sgd", "adam", "momentum"])}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    outcomes = []
    for population in (12, 1):
        settings = SearchSettings(sampler="random", pruner="halving", trials=12,
                                  population=population)
        folder = run_search(space, base, settings, out=tmp_path / f"run{population}",
                            log=lambda m: None)
        trials = sorted(load(folder).trials, key=lambda t: t.number)
        outcomes.append([(t.params, t.state, t.intermediate_values) for t in trials])
    together, alone = outcomes
    assert [p for p, _, _ in together] == [p for p, _, _ in alone]  # the same draws
    assert len({p["optimizer"] for p, _, _ in together}) > 1  # mixed rules: stacked apart
    assert [s for _, s, _ in together] == [s for _, s, _ in alone]
    assert any(s == TrialState.PRUNED for _, s, _ in together)
    for (_, _, a), (_, _, b) in zip(together, alone):
        assert a.keys() == b.keys()
        assert a == pytest.approx(b, abs=1e-9)
