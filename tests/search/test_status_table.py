"""``nndl search status``'s table: the reason a trial was pruned, diverged or failed is its
last column, on one line, cut to the terminal's width."""

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from nndl.search.results import format_trials

DIVERGED = "diverged: loss became inf at iteration 12 (learning rate 0.1)"
FAILED = "its worker stopped before it finished\n(resumed study)"


def study_of_three():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    space = {"learning_rate": FloatDistribution(1e-5, 1.0, log=True)}
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.5,
                                 params={"learning_rate": 1e-3}, distributions=space))
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"learning_rate": 0.1},
                                 distributions=space, user_attrs={"reason": DIVERGED}))
    study.add_trial(create_trial(state=TrialState.FAIL, params={"learning_rate": 0.2},
                                 distributions=space, user_attrs={"reason": FAILED}))
    return study


def test_reasons_are_the_last_column_whole_without_a_width():
    header, complete, pruned, failed = format_trials(study_of_three()).splitlines()
    assert header.split()[-1] == "reason" and header.split()[:2] == ["number", "state"]
    assert complete.split()[:2] == ["0", "COMPLETE"] and complete.rstrip().endswith("0.5")
    assert pruned.endswith("  " + DIVERGED) and pruned.split()[:2] == ["1", "PRUNED"]
    assert failed.endswith("  its worker stopped before it finished (resumed study)")
    assert header.index("reason") == pruned.index(DIVERGED) == failed.index("its worker")


def test_reasons_are_cut_to_the_terminal_width():
    lines = format_trials(study_of_three(), width=120).splitlines()
    start = lines[0].index("reason")
    room = 120 - start  # what the other columns leave
    assert 24 <= room < len(DIVERGED)
    assert lines[2][start:] == DIVERGED[:room - 3] + "..."
    assert len(lines[2]) == len(lines[3]) == 120


def test_a_narrow_terminal_still_shows_24_characters_of_a_reason():
    lines = format_trials(study_of_three(), width=10).splitlines()
    start = lines[0].index("reason")
    assert lines[2][start:] == DIVERGED[:21] + "..."
