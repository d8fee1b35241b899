"""An Optuna study shaped like a real small search (parameters of the default space, trials
complete, pruned at their first rungs, diverged and failed with their reasons), built
without training, and its report written by nndl's search results code."""

import optuna
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

SPACE = {"learning_rate": FloatDistribution(1e-4, 1e-2, log=True),
         "reg": FloatDistribution(1e-3, 1.0, log=True),
         "learning_rate_decay": FloatDistribution(0.85, 1.0),
         "std": FloatDistribution(1e-5, 1e-3, log=True),
         "batch_size": IntDistribution(100, 400, step=100),
         "num_iters": IntDistribution(500, 3000, step=500)}
DIVERGED = ("diverged: weights became NaN or infinite in the step of iteration 57 (learning "
            "rate 0.00912); try a smaller learning_rate")
PRUNED = "pruned at epoch 1 by the pruner"


def _params(i):
    return {"learning_rate": 1e-4 * 1.7 ** i, "reg": 1e-3 * 2.3 ** i,
            "learning_rate_decay": 0.86 + 0.017 * i, "std": 1e-5 * 1.8 ** i,
            "batch_size": 100 * (1 + i % 4), "num_iters": 500 * (1 + i % 6)}


def _attrs(reason=""):
    return {"seconds": 12.345, "population_size": 8, "retry_of": "", "reason": reason}


def mixed_study():
    """8 trials: 2 complete (47.9%, 48.6%), 4 pruned at epoch 1 after reporting, 1 diverged
    before reporting anything (PRUNED, no value), 1 failed (a killed worker)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    values = {0: 0.479, 3: 0.486}
    for i in range(8):
        common = {"params": _params(i), "distributions": SPACE}
        if i in values:
            trial = create_trial(value=values[i], intermediate_values={0: 0.31, 1: 0.40,
                                                                       2: values[i]},
                                 user_attrs=_attrs(), **common)
        elif i == 5:
            trial = create_trial(state=TrialState.PRUNED, user_attrs=_attrs(DIVERGED), **common)
        elif i == 7:
            trial = create_trial(state=TrialState.FAIL, user_attrs=_attrs(
                "worker stopped sending heartbeats (killed?); marked failed"), **common)
        else:
            trial = create_trial(state=TrialState.PRUNED, intermediate_values={
                0: 0.15 + 0.02 * i, 1: 0.20 + 0.03 * i}, user_attrs=_attrs(PRUNED), **common)
        study.add_trial(trial)
    return study


def write_report(study, folder, chance=0.1):
    """report.html of ``study`` as a finished search writes it (with made-up test figures),
    ``chance`` the chance level of its classes."""
    from nndl.search import results

    best = study.best_trial
    metrics = {"trial": best.number, "val_accuracy": best.value, "test_accuracy": 0.47,
               "test_size": 1000, "hidden_size": 50}
    counts = {s.name: len(study.get_trials(states=(s,))) for s in
              (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    results._report(study, folder, metrics, counts, results._plots(study, folder, chance),
                    chance)
    return folder / "report.html"
