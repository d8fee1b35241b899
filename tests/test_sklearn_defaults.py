"""The estimator's defaults learn standardized data, say when they could not (a
ConvergenceWarning), stop on scikit-learn's MLP convergence rule, and weigh rows by
``sample_weight`` and ``class_weight``."""

import math
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nndl.sampling import MinibatchSampler
from nndl.sklearn import TwoLayerNetClassifier
from tests.test_sklearn import ASSIGNMENT


def _holdout_score(load, estimator):
    X, y = load(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0,
                                                        stratify=y)
    pipe = make_pipeline(StandardScaler(), estimator).fit(X_train, y_train)
    return pipe.score(X_test, y_test)


@pytest.mark.parametrize("load, least, converges", [(load_digits, 0.95, True),
                                                    (load_wine, 0.93, False),
                                                    (load_breast_cancer, 0.93, True)])
def test_defaults_learn_standardized_data(load, least, converges):
    """MLPClassifier's defaults score 0.97-0.98 on these held-out splits, and converge
    within 200 epochs on digits and breast cancer (not on wine); the assignment's train()
    defaults (the estimator's before) score chance: 0.10, 0.40, 0.63."""
    with warnings.catch_warnings():
        warnings.simplefilter("error" if converges else "ignore", ConvergenceWarning)
        assert _holdout_score(load, TwoLayerNetClassifier(random_state=0)) > least


def test_the_assignments_settings_warn_that_nothing_was_learned():
    with pytest.warns(ConvergenceWarning, match=r"chance level \(log 10 = 2.303\); try "
                      r"std='auto', a larger learning_rate"):
        score = _holdout_score(load_digits, TwoLayerNetClassifier(random_state=0, **ASSIGNMENT))
    assert score < 0.3


def test_a_budget_that_ends_first_warns(blobs):
    X, y, _, _ = blobs
    with pytest.warns(ConvergenceWarning, match=r"budget \(max_iter=2 epochs\) ended"):
        clf = TwoLayerNetClassifier(max_iter=2, random_state=0).fit(X, y)
    assert not clf.converged_ and clf.n_iter_ == 2  # 240 rows, batches of 200: 1 per epoch
    with pytest.warns(ConvergenceWarning, match=r"budget \(num_iters=7\) ended"):
        TwoLayerNetClassifier(num_iters=7, random_state=0).fit(X, y)


def test_convergence_rule_is_scikit_learns(blobs):
    """With tol larger than any loss, every epoch after the first counts as one without
    progress; more than n_iter_no_change = 3 of them (epoch 5) end training. Epochs are 6
    minibatches of 40 of the 240 rows: epoch e is iterations 6 (e - 1) .. 6 e - 1, and the
    loop checks it after iteration 6 e, the next epoch's first."""
    X, y, _, _ = blobs
    clf = TwoLayerNetClassifier(tol=100.0, n_iter_no_change=3, batch_size=40, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.converged_ and clf.history_["stopped_early"]
    assert clf.n_iter_ == 6 * 5 + 1
    # a fixed budget (num_iters) runs to its end whatever the rule says
    with pytest.warns(ConvergenceWarning):  # 1 epoch of 6 minibatches: not yet converged
        fixed = TwoLayerNetClassifier(tol=100.0, n_iter_no_change=3, num_iters=6,
                                      batch_size=40, random_state=0)
        fixed.fit(X, y)
    assert fixed.n_iter_ == 6
    fixed.set_params(num_iters=60).fit(X, y)
    assert fixed.n_iter_ == 60 and fixed.converged_


def test_weighted_sampler_draws_rows_in_proportion_to_their_weights():
    weights = np.array([0.0, 1.0, 2.0, 5.0, 0.0, 2.0])
    sample = MinibatchSampler("shuffle", np.random.default_rng(0), 6, 1000, weights)
    counts = np.bincount(np.concatenate([sample() for _ in range(200)]), minlength=6)
    expected = 200_000 * weights / weights.sum()
    assert counts[0] == counts[4] == 0  # a zero weight: never drawn (also the last rows')
    np.testing.assert_allclose(counts, expected, rtol=0.02)


def test_equal_weights_draw_as_no_weights():
    for kind in ("replacement", "shuffle", "blocks"):
        plain = MinibatchSampler(kind, np.random.default_rng(3), 50, 8)
        equal = MinibatchSampler(kind, np.random.default_rng(3), 50, 8, np.full(50, 2.5))
        for _ in range(20):
            a, b = plain(), equal()
            assert (a == b) if isinstance(a, slice) else np.array_equal(a, b)


def test_sample_weight_zero_removes_a_class(blobs):
    """Rows of weight zero are never drawn: with all of class 2's at zero the network never
    sees it, and predicts it for few of its own rows (for nearly all without the weights)."""
    X, y, X_val, y_val = blobs
    weights = (y != 2).astype(float)
    plain = TwoLayerNetClassifier(random_state=0).fit(X, y)
    weighted = TwoLayerNetClassifier(random_state=0).fit(X, y, sample_weight=weights)
    rows = X_val[y_val == 2]
    assert np.mean(plain.predict(rows) == 2) > 0.9
    assert np.mean(weighted.predict(rows) == 2) < 0.1


def test_equal_sample_weights_change_nothing(blobs):
    X, y, X_val, _ = blobs
    plain = TwoLayerNetClassifier(max_iter=20, random_state=0).fit(X, y)
    equal = TwoLayerNetClassifier(max_iter=20, random_state=0).fit(X, y, np.full(len(y), 3.0))
    np.testing.assert_array_equal(plain.predict_proba(X_val), equal.predict_proba(X_val))


def _imbalanced(n_major=950, n_minor=50, gap=1.5):
    """Two overlapping 1-D Gaussians, unit variance, centres ``gap`` apart."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, n_major), rng.normal(gap, 1, n_minor)])[:, None]
    return X, np.repeat([0, 1], [n_major, n_minor])


def test_balanced_class_weight_recovers_the_minority_class():
    """Unweighted, the decision threshold sits where 19 majority rows outweigh one minority
    row (x = 0.75 + ln(19) / 1.5 = 2.71: recall 1 - Phi(1.21) = 11%); balanced it sits
    halfway (x = 0.75: recall Phi(0.75) = 77%). scikit-learn's LogisticRegression with the
    same class weights is the independent check (recall 4% and 80% on this sample)."""
    X, y = _imbalanced()
    minority = X[y == 1]
    plain = TwoLayerNetClassifier(random_state=0).fit(X, y)
    balanced = TwoLayerNetClassifier(class_weight="balanced", random_state=0).fit(X, y)
    by_dict = TwoLayerNetClassifier(class_weight={1: 19.0}, random_state=0).fit(X, y)
    logistic = LogisticRegression(class_weight="balanced").fit(X, y)
    recall = [np.mean(clf.predict(minority) == 1)
              for clf in (plain, balanced, by_dict, logistic)]
    assert recall[0] < 0.3 and recall[1] > 0.6 and recall[2] > 0.6
    assert abs(recall[1] - recall[3]) < 0.1
    assert math.isclose(np.mean(plain.predict(X) == y), 0.95, abs_tol=0.02)


def test_weights_are_checked(blobs):
    X, y, _, _ = blobs
    clf = TwoLayerNetClassifier(max_iter=2)
    for bad, match in ((np.ones(5), r"shape \(240,\)"), (-np.ones(len(y)), "non-negative"),
                       (np.full(len(y), np.nan), "finite"), (np.zeros(len(y)), "all zero")):
        with pytest.raises(ValueError, match=match):
            clf.fit(X, y, sample_weight=bad)
    with pytest.raises(ValueError, match="class_weight must be None"):
        TwoLayerNetClassifier(class_weight="even").fit(X, y)
    with pytest.raises(ValueError, match="not supported by partial_fit"):
        TwoLayerNetClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


def test_a_loss_far_above_chance_blames_the_learning_rate_not_chance():
    """At learning rate 10 the digits loss ends in the hundreds (the network still ranks
    most rows right): that is no chance-level loss, and a larger rate is the wrong advice."""
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        TwoLayerNetClassifier(learning_rate=10.0, max_iter=20, random_state=0).fit(X, y)
    said = " ".join(str(w.message) for w in caught)
    assert "far above chance level" in said and "(10) is likely too large" in said
    assert "chance level (log" not in said.replace("far above chance level (log", "")
