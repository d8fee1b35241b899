"""nndl.sklearn: scikit-learn's own estimator checks, the model-selection tools on a real
data set (digits), the estimator's API, the same engine as TwoLayerNet.train, and model
files that the CLI reads."""

import inspect
import os
import pickle
import re
import subprocess
import sys
from dataclasses import fields

import numpy as np
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import (
    GridSearchCV,
    cross_val_score,
    train_test_split,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from nndl.config import TrainOptions
from nndl.model_io import load_model
from nndl.neural_net import TwoLayerNet
from nndl.sklearn import DIFFERENT_DEFAULTS, TwoLayerNetClassifier, save_model
from tests.fakecifar import NAMES, expected_images, make_arrays, write_python_folder
from tests.test_cli import run_nndl

# The assignment's training algorithm (TwoLayerNet.train's defaults), where the estimator's
# own defaults differ: SGD with a per-epoch decay on minibatches drawn with replacement.
SGD = dict(optimizer="sgd", schedule="epoch_decay", batch_sampler="replacement",
           batch_size=200)
ASSIGNMENT = dict(SGD, hidden_size=50, std=1e-4, num_iters=100)
# Settings that learn scikit-learn's small check problems in a few dozen milliseconds.
QUICK = dict(SGD, hidden_size=20, std=0.1, num_iters=100, batch_size=50, random_state=0)
# Settings that reach > 90% on digits scaled to unit variance in under half a second.
DIGITS = dict(SGD, std=0.1, learning_rate=0.5, num_iters=300, random_state=0)
# Training is stochastic: a weighted fit equals a fit on repeated rows in distribution only.
NOT_DRAW_FOR_DRAW = {"check_sample_weight_equivalence_on_dense_data":
                     "sample weights weigh how often rows are drawn: equal to repeated rows "
                     "in distribution, not draw for draw"}


@parametrize_with_checks([
    TwoLayerNetClassifier(random_state=0),  # the defaults
    TwoLayerNetClassifier(learning_rate=0.5, **QUICK),
    # early stopping (a validation split), another optimizer and float32 through every check
    TwoLayerNetClassifier(learning_rate=0.01, **{**QUICK, "optimizer": "adam"},
                          early_stopping=3, dtype="float32"),
    # any depth, batch normalization
    TwoLayerNetClassifier(hidden_layer_sizes=(12, 8), batchnorm=True, random_state=0),
], expected_failed_checks=lambda estimator: NOT_DRAW_FOR_DRAW)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def test_pipeline_with_standard_scaler(digits):
    X_train, X_test, y_train, y_test = digits
    pipe = make_pipeline(StandardScaler(), TwoLayerNetClassifier(**DIGITS))
    assert pipe.fit(X_train, y_train).score(X_test, y_test) > 0.9


def test_grid_search_over_learning_rate(digits):
    X_train, X_test, y_train, y_test = digits
    pipe = make_pipeline(StandardScaler(), TwoLayerNetClassifier(**DIGITS))
    grid = {"twolayernetclassifier__learning_rate": [1e-3, 0.5]}
    search = GridSearchCV(pipe, grid, cv=3).fit(X_train, y_train)
    assert search.best_params_ == {"twolayernetclassifier__learning_rate": 0.5}
    assert search.best_score_ > 0.9 and search.score(X_test, y_test) > 0.9
    low, high = search.cv_results_["mean_test_score"]
    assert low < 0.5 < 0.9 < high  # 1e-3 barely moves from the 1e-4 initialization


def test_cross_val_score(digits):
    X_train, _, y_train, _ = digits
    pipe = make_pipeline(StandardScaler(), TwoLayerNetClassifier(**DIGITS))
    scores = cross_val_score(pipe, X_train, y_train, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.9


def test_any_label_values(blobs):
    X, y, X_val, y_val = blobs
    for labels in (np.array(["cat", "dog", "emu"]), np.array([-7, 3, 42])):
        clf = TwoLayerNetClassifier(learning_rate=0.1, std=0.1, random_state=0)
        clf.fit(X, labels[y])
        np.testing.assert_array_equal(clf.classes_, np.sort(labels))
        assert set(clf.predict(X_val)) <= set(labels)
        assert clf.score(X_val, labels[y_val]) > 0.9
        proba = clf.predict_proba(X_val)
        np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X_val))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_loss_curve_n_iter_and_history(blobs):
    X, y, _, _ = blobs
    clf = TwoLayerNetClassifier(num_iters=37, batch_size=40, random_state=0).fit(X, y)
    assert clf.n_iter_ == 37 == len(clf.loss_curve_)
    assert all(isinstance(v, float) for v in clf.loss_curve_)
    assert clf.history_["loss_history"] == clf.loss_curve_
    # epochs of 6 iterations: it 0, 6, .., 36; nothing scored without early stopping
    assert clf.history_["epoch_iterations"] == [0, 6, 12, 18, 24, 30, 36]
    assert clf.history_["val_acc_history"] == clf.history_["train_acc_history"] == []
    assert clf.n_features_in_ == 8 and clf.params_["W1"].shape == (100, 8)
    clf.fit(X, y)  # fit starts afresh
    assert clf.n_iter_ == 37


def test_early_stopping_holds_out_a_split_and_may_stop(blobs):
    X, y, _, _ = blobs
    clf = TwoLayerNetClassifier(std=0.1, learning_rate=0.1, num_iters=2000, batch_size=24,
                                early_stopping=2, validation_fraction=0.25, random_state=0)
    clf.fit(X, y)
    assert clf.history_["stopped_early"] and clf.n_iter_ < 2000
    assert clf.n_iter_ == len(clf.loss_curve_)
    assert clf.history_["best_val_acc"] == max(clf.history_["val_acc_history"])


def test_partial_fit(blobs):
    X, y, X_val, y_val = blobs
    clf = TwoLayerNetClassifier(std=0.1, learning_rate=0.1, batch_size=40, random_state=0)
    with pytest.raises(ValueError, match="classes must be given"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:120], y[:120], classes=[0, 1, 2, 3])  # a class not (yet) seen
    assert clf.n_iter_ == 3 == len(clf.loss_curve_)  # one epoch: round(120 / 40) minibatches
    assert list(clf.classes_) == [0, 1, 2, 3] and clf.predict_proba(X_val).shape[1] == 4
    for _ in range(20):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 3 + 20 * 6 == len(clf.loss_curve_)
    assert clf.score(X_val, y_val) > 0.9
    assert np.mean(clf.loss_curve_[-6:]) < np.mean(clf.loss_curve_[:3])
    with pytest.raises(ValueError, match="labels not in classes"):
        clf.partial_fit(X[:5], np.full(5, 9))
    with pytest.raises(ValueError, match="differs from the classes"):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :3], y)


def test_partial_fit_continues_from_fit(blobs):
    X, y, _, _ = blobs
    settings = dict(SGD, std=0.1, learning_rate=0.1, num_iters=30, batch_size=40,
                    random_state=0)
    clf = TwoLayerNetClassifier(**settings).fit(X, y)
    before = {k: v.copy() for k, v in clf.params_.items()}
    clf.partial_fit(X, y)
    assert clf.n_iter_ == 36
    assert not np.array_equal(before["W1"], clf.params_["W1"])
    # the same as one more training call on the fitted network, from the same stream
    net = TwoLayerNet.from_params(before)
    fresh = TwoLayerNetClassifier(**settings).fit(X, y)
    net.rng = fresh._rng
    net.train(X, y, X, y, learning_rate=0.1, num_iters=6, batch_size=40)
    np.testing.assert_array_equal(net.params["W1"], clf.params_["W1"])


def test_every_train_option_is_a_parameter_with_its_default_or_a_stated_one():
    signature = inspect.signature(TwoLayerNetClassifier.__init__).parameters
    defaults = TrainOptions()
    doc = " ".join(TwoLayerNetClassifier.__doc__.split())
    for f in fields(TrainOptions):
        assert f.name in signature, f"TrainOptions.{f.name} is not a constructor parameter"
        default, why = DIFFERENT_DEFAULTS.get(f.name, (getattr(defaults, f.name), ""))
        assert signature[f.name].default == default, f.name
        shown = f'"{default}"' if isinstance(default, str) else repr(default)
        assert f"{f.name} : " in doc and f"default={shown}" in doc, f.name
        assert " ".join(why.split()) in doc, f.name  # the reason is said where it differs
    for name in ("hidden_size", "std", "dtype", "random_state", "validation_fraction",
                 "max_iter", "tol", "n_iter_no_change", "class_weight"):
        assert f"    {name} : " in TwoLayerNetClassifier.__doc__


def test_the_train_options_kinds_and_ranges_in_the_docstring_are_the_tables():
    """Each TrainOptions parameter is documented with its Param's kind and range, widened
    where the estimator takes more (num_iters None, batch_size "auto", early_stopping bool)."""
    from nndl.config import PARAMS

    doc = TwoLayerNetClassifier.__doc__
    assert "    momentum : float in [0, 1), default=0.9\n" in doc
    assert "    step_epochs : float > 0, default=10.0\n" in doc
    assert '    batch_size : int >= 1 or "auto", default="auto"\n' in doc
    assert "    early_stopping : bool or int >= 0, default=False\n" in doc
    for f in fields(TrainOptions):
        assert f"    {f.name} : " in doc and PARAMS[f.name].describe() in doc, f.name


def test_get_set_params_round_trip(blobs):
    X, y, _, _ = blobs
    clf = TwoLayerNetClassifier(hidden_size=7, learning_rate=0.05, optimizer="adam")
    params = clf.get_params()
    assert params["hidden_size"] == 7 and params["optimizer"] == "adam"
    assert params["num_iters"] is None and params["max_iter"] == 200
    other = TwoLayerNetClassifier().set_params(**params)
    assert other.get_params() == params
    assert clone(clf).get_params() == params
    assert clf.set_params(num_iters=5) is clf and clf.num_iters == 5
    clf.fit(X, y)
    assert clf.get_params()["num_iters"] == 5 and clf.n_iter_ == 5  # fit changes no param


def test_options_are_validated_in_fit_not_init(blobs):
    X, y, _, _ = blobs
    for bad, error in ((dict(learning_rate=-1.0), ValueError), (dict(optimizer="sgdd"), ValueError),
                       (dict(num_iters=2.5), TypeError), (dict(hidden_size=0), ValueError),
                       (dict(dtype="float16"), ValueError),
                       (dict(early_stopping=2, validation_fraction=0.0), ValueError)):
        clf = TwoLayerNetClassifier(**bad)  # nothing is checked here, by convention
        with pytest.raises(error):
            clf.fit(X, y)
        assert not hasattr(clf, "classes_")


def test_same_weights_as_two_layer_net_train():
    """The assignment's settings through the estimator and through TwoLayerNet.train, with the
    same seed: the same engine gives bit-identical weights."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(500, 48)), np.arange(500) % 10
    X_val, y_val = rng.normal(size=(50, 48)), np.arange(50) % 10
    assignment = dict(learning_rate=1e-4, learning_rate_decay=0.95, reg=0.25, num_iters=60,
                      batch_size=200)
    estimator = dict(ASSIGNMENT, **assignment)
    for seed in (0, None):
        if seed is None:  # the assignment's own way: the global RNG, seeded
            np.random.seed(0)
        net = TwoLayerNet(48, 50, 10, std=1e-4, random_state=seed)
        stats = net.train(X, y, X_val, y_val, **assignment)
        if seed is None:
            np.random.seed(0)
        with pytest.warns(ConvergenceWarning, match="chance level"):  # 60 steps at 1e-4
            clf = TwoLayerNetClassifier(random_state=seed, **estimator).fit(X, y)
        for name in ("W1", "b1", "W2", "b2"):
            np.testing.assert_array_equal(clf.params_[name], net.params[name])
        assert clf.loss_curve_ == stats["loss_history"]
        np.testing.assert_array_equal(clf.predict_proba(X_val), net.predict_proba(X_val))
        np.testing.assert_array_equal(clf.to_net().params["W1"], net.params["W1"])


def test_pickles_with_any_random_state(blobs):
    X, y, X_val, _ = blobs
    for seed in (None, 0, np.random.default_rng(1), np.random.RandomState(2)):
        clf = TwoLayerNetClassifier(num_iters=5, random_state=seed).fit(X, y)
        copy = pickle.loads(pickle.dumps(clf))
        np.testing.assert_array_equal(copy.predict_proba(X_val), clf.predict_proba(X_val))


def test_nndl_core_does_not_import_scikit_learn():
    code = ("import sys, nndl, nndl.cli, nndl.model_io, nndl.training, nndl.workflow; "
            "assert 'sklearn' not in sys.modules, 'sklearn imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- model files ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cifar_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    batches = make_arrays(per_batch=60, seed=1)
    write_python_folder(root / "cifar-10-batches-py", batches)
    env = {**os.environ, "NNDL_DATA": str(root),
           "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache")), "MPLBACKEND": "Agg"}
    return env, batches


def test_saved_pipeline_is_what_nndl_evaluate_and_predict_use(tmp_path, cifar_env):
    env, batches = cifar_env
    rows = np.concatenate([b[0] for b in batches[:5]])
    X = expected_images(rows).reshape(len(rows), -1)  # images flattened height, width, channel
    y = np.concatenate([b[1] for b in batches[:5]])
    pipe = make_pipeline(StandardScaler(), TwoLayerNetClassifier(
        hidden_size=16, std=0.01, learning_rate=0.05, num_iters=20, batch_size=50,
        random_state=0)).fit(X, y)
    assert list(pipe[-1].classes_) == list(range(10))
    names = [n.decode() for n in NAMES]
    path = save_model(pipe, tmp_path / "model.npz", class_names=names)

    test_images = expected_images(batches[5][0])
    test_labels = np.asarray(batches[5][1])
    model = load_model(path)
    assert model.transform.names == ["standardize"] and model.class_names == tuple(names)
    assert model.image_shape == (32, 32, 3)
    assert model.hyperparameters["num_iters"] == 20 and len(model.history["loss_history"]) == 20
    expected = pipe.predict_proba(test_images.reshape(60, -1))
    np.testing.assert_allclose(model.predict_proba_images(test_images), expected, atol=1e-10)

    result = run_nndl("evaluate", str(path), "--dataset", "cifar10", "--num-test", "60",
                      "--out", str(tmp_path / "eval"), env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    accuracy = np.mean(expected.argmax(axis=1) == test_labels)
    assert f"{100 * accuracy:.2f}% on 60 images" in result.stdout

    Image.fromarray(test_images[0]).save(tmp_path / "first.png")
    result = run_nndl("predict", str(path), str(tmp_path / "first.png"), "--top", "1",
                      env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    top = re.search(r"first\.png: (\w+) ", result.stdout)
    assert top and top.group(1) == names[expected[0].argmax()]


def test_save_model_names_shapes_and_networks(tmp_path, blobs):
    X, y, _, _ = blobs
    clf = TwoLayerNetClassifier(num_iters=3, random_state=0).fit(X, np.array(["b", "a", "c"])[y])
    with pytest.raises(ValueError, match="image_shape"):
        save_model(clf, tmp_path / "m.npz")  # 8 columns are no (32, 32, 3) image
    path = save_model(clf, tmp_path / "m.npz", image_shape=(2, 4, 1))
    loaded = load_model(path)
    assert loaded.class_names == ("a", "b", "c") and loaded.image_shape == (2, 4, 1)
    np.testing.assert_array_equal(loaded.net.params["W2"], clf.params_["W2"])
    with pytest.raises(ValueError, match="3 names"):
        save_model(clf, tmp_path / "m.npz", class_names=["x"], image_shape=(2, 4, 1))
    with pytest.raises(ValueError, match="8 values"):
        save_model(clf, tmp_path / "m.npz", image_shape=(3, 3, 1))

    net = TwoLayerNet(3072, 5, 4, random_state=0)
    loaded = load_model(save_model(net, tmp_path / "net.npz"))
    assert loaded.class_names == ("0", "1", "2", "3") and loaded.image_shape == (32, 32, 3)
    np.testing.assert_array_equal(loaded.net.params["W1"], net.params["W1"])

    with pytest.raises(NotFittedError):
        save_model(TwoLayerNetClassifier(), tmp_path / "x.npz")
    with pytest.raises(TypeError, match="StandardScaler"):
        save_model(make_pipeline(MinMaxScaler(), clf), tmp_path / "x.npz")
    with pytest.raises(TypeError, match="TwoLayerNetClassifier"):
        save_model(StandardScaler(), tmp_path / "x.npz")


def test_a_deep_estimator_learns_digits_and_saves_a_file_that_predicts_the_same(
        digits, tmp_path):
    """hidden_layer_sizes (scikit-learn's name) and batch normalization, with the
    estimator's defaults otherwise; the model file holds the same network."""
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, _, y, _ = digits
    est = TwoLayerNetClassifier(hidden_layer_sizes=(64, 32), batchnorm=True, random_state=0)
    scores = cross_val_score(make_pipeline(StandardScaler(), est), X, y, cv=3)
    assert scores.mean() > 0.93  # MLPClassifier's defaults: 0.94 in this split
    est.fit(X, y)
    assert set(est.params_) >= {"W3", "gamma2", "running_var2"} and est.params_["W2"].shape \
        == (32, 64)
    assert type(est.to_net()).__name__ == "Network"
    path = save_model(est, tmp_path / "m.npz", image_shape=(8, 8, 1), input_range=(0, 16))
    model = load_model(path)
    images = (X[:50] * 255 / 16).reshape(50, 8, 8, 1)
    np.testing.assert_array_equal(est.classes_[model.predict_images(images)],
                                  est.predict(X[:50]))


def test_bad_hidden_layer_sizes_are_refused_by_name():
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    for sizes in ((), "12", (12, 0), (12, 1.5)):
        with pytest.raises((ValueError, TypeError), match="hidden_layer_sizes"):
            TwoLayerNetClassifier(hidden_layer_sizes=sizes).fit(X, y)
