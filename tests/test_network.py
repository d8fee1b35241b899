"""``Network``, any depth: its weights drawn as TwoLayerNet draws them (He's scale for
"auto"), its scores the course's FullyConnectedNet's in test mode, its training
TwoLayerNet's for the first assignment's network, and its argument checks."""

import numpy as np
import pytest

from nndl import network as network_module
from nndl.architecture import Architecture, init_params
from nndl.network import Network
from nndl.neural_net import TwoLayerNet
from tests.conftest import make_blobs
from tests.test_deep_engine import course_net, deep_params

SIZES = [12, 10, 8, 4]


@pytest.mark.parametrize("random_state", [None, 3, np.random.RandomState(5)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_first_assignments_network_is_drawn_exactly_as_two_layer_net(random_state, dtype):
    def make(cls):
        np.random.seed(0)
        state = random_state
        if isinstance(state, np.random.RandomState):
            state = np.random.RandomState(5)  # a fresh copy for each network
        if cls is Network:
            return Network([7, 6, 3], std=0.1, random_state=state, dtype=dtype)
        return TwoLayerNet(7, 6, 3, std=0.1, random_state=state, dtype=dtype)

    ours, theirs = make(Network), make(TwoLayerNet)
    assert list(ours.params) == ["W1", "b1", "W2", "b2"]
    for name in theirs.params:
        assert ours.params[name].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(ours.params[name], theirs.params[name], err_msg=name)


def test_auto_is_he_per_layer_and_batchnorm_starts_as_pytorch():
    params = Network(SIZES, batchnorm=True, random_state=4).params
    rng = np.random.default_rng(4)  # W1, W2, W3 in order, each sqrt(2 / n_in) * N(0, 1)
    for layer, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:]), start=1):
        expected = np.sqrt(2 / n_in) * rng.standard_normal((n_out, n_in))
        np.testing.assert_array_equal(params[f"W{layer}"], expected)
        np.testing.assert_array_equal(params[f"b{layer}"], np.zeros(n_out))
    for layer, width in ((1, 10), (2, 8)):
        np.testing.assert_array_equal(params[f"gamma{layer}"], np.ones(width))
        np.testing.assert_array_equal(params[f"beta{layer}"], np.zeros(width))
        np.testing.assert_array_equal(params[f"running_mean{layer}"], np.zeros(width))
        np.testing.assert_array_equal(params[f"running_var{layer}"], np.ones(width))
    assert "gamma3" not in params and len(params) == 6 + 8


def test_init_params_draws_a_plain_std_and_names_a_bad_one():
    rng = np.random.default_rng(0)
    params = init_params(Architecture((5, 4, 2)), 0.5, np.random.default_rng(0), np.float32)
    np.testing.assert_array_equal(params["W1"],
                                  (0.5 * rng.standard_normal((4, 5))).astype(np.float32))
    with pytest.raises(ValueError, match="std must be a number >= 0 or 'auto', got 'he'"):
        init_params(Architecture((5, 4, 2)), "he", rng)
    with pytest.raises(ValueError, match="std must be in"):
        init_params(Architecture((5, 4, 2)), -1.0, rng)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_scores_are_the_course_nets_test_mode_scores_chunk_by_chunk(batchnorm, monkeypatch):
    X = np.random.default_rng(2).normal(size=(50, 12))
    params = deep_params(SIZES, batchnorm)
    expected = course_net(params, SIZES, batchnorm, 0.0).loss(X)
    net = Network.from_params(params)
    np.testing.assert_allclose(net.scores(X), expected, rtol=1e-10, atol=1e-12)
    monkeypatch.setattr(network_module, "SCORE_CHUNK_BYTES", 7 * 8 * sum(SIZES))  # 7 rows
    assert network_module.score_chunk_rows(SIZES, np.float64) == 7
    np.testing.assert_allclose(net.scores(X), expected, rtol=1e-10, atol=1e-12)
    probs = np.exp(expected) / np.exp(expected).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(net.predict_proba(X), probs, rtol=1e-10)
    np.testing.assert_array_equal(net.predict(X), np.argmax(expected, axis=1))
    assert net.scores(X[:0]).shape == (0, 4)


def test_the_first_assignments_network_trains_as_two_layer_net():
    X, y, Xv, yv = make_blobs(classes=3, dims=6, spread=2, n=300, n_train=240)
    options = dict(learning_rate=0.1, reg=1e-3, num_iters=60, batch_size=40,
                   optimizer="momentum", dropout=0.2)
    ours = Network([6, 9, 3], std=1e-2, random_state=1)
    theirs = TwoLayerNet(6, 9, 3, std=1e-2, random_state=1)
    history = ours.train(X, y, Xv, yv, **options)
    expected = theirs.train(X, y, Xv, yv, **options)  # the same defaults otherwise
    assert history["loss_history"] == expected["loss_history"]
    assert history["val_acc_history"] == expected["val_acc_history"]
    for name in theirs.params:
        np.testing.assert_array_equal(ours.params[name], theirs.params[name])


def test_a_deep_network_learns_and_keeps_its_architecture():
    X, y, Xv, yv = make_blobs(classes=4, dims=12, spread=2, n=400, n_train=320)
    net = Network(SIZES, batchnorm=True, random_state=0)
    history = net.train(X, y, Xv, yv, learning_rate=0.05, num_iters=200, batch_size=32,
                        optimizer="adam", learning_rate_decay=1.0)
    assert history["val_acc_history"][-1] > 0.9  # well-separated blobs
    assert np.mean(net.predict(Xv) == yv) > 0.9
    assert net.sizes == tuple(SIZES) and net.architecture.batchnorm
    assert (net.input_size, net.output_size) == (12, 4)
    assert not np.allclose(net.params["running_var1"], 1.0)  # the statistics were updated
    assert repr(net) == "Network(sizes=[12, 10, 8, 4], batchnorm=True, dtype=float64)"


@pytest.mark.parametrize(("args", "kwargs", "error", "message"), [
    (([4, 3],), {}, ValueError, r"sizes must be \[D, H1, ..., C\] with at least one hidden"),
    (([4, 0, 3],), {}, ValueError, r"sizes\[1\] must be an int >= 1, got 0"),
    (([4, 2.5, 3],), {}, TypeError, r"sizes\[1\] must be an int >= 1, got 2.5"),
    (("4,3,2",), {}, TypeError, r"sizes must be a sequence of ints"),
    (([4, 3, 2], 1), {}, TypeError, r"batchnorm must be True or False, got 1"),
    (([4, 3, 2],), {"std": "he"}, ValueError, r"std must be a number >= 0 or 'auto'"),
    (([4, 3, 2],), {"dtype": np.int32}, ValueError, r"dtype must be float32 or float64"),
    (([4, 3, 2],), {"random_state": -1}, ValueError, r"random_state must be a non-negative"),
])
def test_bad_arguments_are_named(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        Network(*args, **kwargs)


def test_bad_rows_and_params_are_named():
    net = Network([4, 3, 2], random_state=0)
    with pytest.raises(ValueError, match=r"X must have 4 columns \(the input size\)"):
        net.predict(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"X_val must have 4 columns"):
        net.train(np.zeros((2, 4)), [0, 1], np.zeros((2, 5)), [0, 1])
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 2\)"):
        net.train(np.zeros((2, 4)), [0, 2])
    with pytest.raises(TypeError, match="unexpected keyword argument 'learning_rat'"):
        net.train(np.zeros((2, 4)), [0, 1], learning_rat=0.1)
    with pytest.raises(ValueError, match=r"params must hold W1, b1, W2, b2"):
        Network.from_params({"W1": np.zeros((3, 4))})
    with pytest.raises(TypeError, match="params must be a dict of arrays"):
        Network.from_params([np.zeros((3, 4))])


def test_from_params_keeps_the_weights_and_their_dtype():
    params = deep_params(SIZES, batchnorm=True, dtype=np.float32)
    net = Network.from_params(params)
    assert net.dtype == np.float32 and net.architecture == Architecture(tuple(SIZES), True)
    for name, value in params.items():
        np.testing.assert_array_equal(net.params[name], value)
