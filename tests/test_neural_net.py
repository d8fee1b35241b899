"""The assignment's numbers as exact numbers, and the TwoLayerNet contract."""

import numpy as np
import pytest

from nndl.checks import TOY_FINAL_TRAIN_LOSS, TOY_LOSS, TOY_SCORES, toy_data, toy_model
from nndl.gradient_check import eval_numerical_gradient, rel_error
from nndl.neural_net import TwoLayerNet
from nndl.training import TrainingDivergedError


def test_parameter_shapes_and_global_rng_init():
    np.random.seed(3)
    net = TwoLayerNet(7, 5, 4, std=0.5)
    np.random.seed(3)
    w1, w2 = 0.5 * np.random.randn(5, 7), 0.5 * np.random.randn(4, 5)
    np.testing.assert_array_equal(net.params["W1"], w1)
    np.testing.assert_array_equal(net.params["W2"], w2)
    assert net.params["b1"].shape == (5,) and not net.params["b1"].any()
    assert net.params["b2"].shape == (4,) and not net.params["b2"].any()


def test_toy_scores():
    net = toy_model()
    X, _ = toy_data()
    assert np.sum(np.abs(net.loss(X) - TOY_SCORES)) < 1e-7


def test_toy_loss():
    net = toy_model()
    X, y = toy_data()
    loss, _ = net.loss(X, y, reg=0.05)
    assert abs(loss - 1.071696123862817) < 1e-12
    assert TOY_LOSS == 1.071696123862817


@pytest.mark.parametrize("name", ["W1", "b1", "W2", "b2"])
def test_toy_gradients(name):
    net = toy_model()
    X, y = toy_data()
    _, grads = net.loss(X, y, reg=0.05)
    numeric = eval_numerical_gradient(lambda _: net.loss(X, y, reg=0.05)[0], net.params[name],
                                      verbose=False)
    assert rel_error(numeric, grads[name]) < 1e-8


def test_toy_training_final_loss():
    net = toy_model()
    X, y = toy_data()
    net = toy_model()  # seed 0 again, data not re-drawn
    stats = net.train(X, y, X, y, learning_rate=1e-1, reg=5e-6, num_iters=100)
    assert abs(stats["loss_history"][-1] - 0.014497864587765886) < 1e-10
    assert TOY_FINAL_TRAIN_LOSS == 0.014497864587765886
    assert len(stats["loss_history"]) == 100
    assert len(stats["train_acc_history"]) == 100  # N=5 < batch: every iteration is an epoch


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_network_gradients_random_shapes(dtype):
    rng = np.random.default_rng(5)
    for n, d, h, c in [(3, 4, 5, 2), (7, 2, 3, 6), (1, 9, 4, 3)]:
        net = TwoLayerNet(d, h, c, std=0.5, random_state=rng, dtype=np.float64)
        X, y = rng.normal(size=(n, d)), rng.integers(0, c, n)
        _, grads = net.loss(X, y, reg=0.3)
        for name in net.params:
            def f(_, net=net, X=X, y=y):
                return net.loss(X, y, reg=0.3)[0]

            numeric = eval_numerical_gradient(f, net.params[name], verbose=False)
            assert rel_error(numeric, grads[name]) < 1e-7
    net32 = TwoLayerNet(4, 6, 3, random_state=0, dtype=dtype)
    loss, grads = net32.loss(rng.normal(size=(5, 4)), np.array([0, 1, 2, 0, 1]), reg=0.1)
    assert all(g.dtype == dtype for g in grads.values())
    assert net32.loss(rng.normal(size=(2, 4))).dtype == dtype


def test_random_state_streams_are_reproducible_and_independent_of_global(blobs):
    X, y, Xv, yv = blobs
    runs = []
    for _ in range(2):
        np.random.seed(np.random.randint(1000))  # global state must not matter
        net = TwoLayerNet(8, 10, 3, std=0.1, random_state=42)
        stats = net.train(X, y, Xv, yv, learning_rate=0.1, num_iters=30, batch_size=32)
        runs.append((net.params["W1"].copy(), stats["loss_history"]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


def test_train_learns_and_records_per_epoch(blobs):
    X, y, Xv, yv = blobs
    net = TwoLayerNet(8, 20, 3, std=0.1, random_state=0)
    stats = net.train(X, y, Xv, yv, learning_rate=0.1, num_iters=60, batch_size=40)
    # 240 / 40 = 6 iterations per epoch: records at it = 0, 6, ..., 54
    assert stats["epoch_iterations"] == list(range(0, 60, 6))
    assert len(stats["val_acc_history"]) == 10
    assert stats["val_acc_history"][-1] > 0.9
    assert (net.predict(Xv) == yv).mean() == stats["val_acc_history"][-1]


def test_learning_rate_decays_once_per_epoch():
    from nndl.schedules import make_schedule

    schedule = make_schedule("epoch_decay", num_iters=8, iterations_per_epoch=3, decay=0.5)
    # 3 iterations per epoch; decay after it = 0, 3, 6
    assert [schedule(it) for it in range(8)] == [1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]


def test_early_stopping_restores_the_best_weights(blobs):
    X, y, Xv, yv = blobs
    net = TwoLayerNet(8, 10, 3, std=0.1, random_state=0)
    stats = net.train(X, y, Xv, yv, learning_rate=0.1, num_iters=400, batch_size=40,
                      early_stopping=2)
    assert stats["stopped_early"]
    assert (net.predict(Xv) == yv).mean() == max(stats["val_acc_history"])


def test_float32_end_to_end(blobs):
    X, y, Xv, yv = blobs
    net = TwoLayerNet(8, 10, 3, std=0.1, random_state=0, dtype=np.float32)
    net.train(X, y, Xv, yv, learning_rate=0.1, num_iters=20, batch_size=40)
    assert all(p.dtype == np.float32 for p in net.params.values())
    net64 = TwoLayerNet(8, 10, 3, std=0.1, random_state=0)
    net64.train(X, y, Xv, yv, learning_rate=0.1, num_iters=20, batch_size=40)
    np.testing.assert_allclose(net.params["W1"], net64.params["W1"], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda net, X, y: net.loss(X[0]), "X must be 2-D"),
        (lambda net, X, y: net.loss(X[:, :3]), "X must have 4 columns"),
        (lambda net, X, y: net.loss(X, y[:2]), "y must have shape"),
        (lambda net, X, y: net.loss(X, y.astype(float)), "y must hold integer"),
        (lambda net, X, y: net.loss(X, y + 3), r"labels in \[0, 3\)"),
        (lambda net, X, y: net.loss(np.where(X > 0, np.nan, X)), "NaN or infinite"),
        (lambda net, X, y: net.train(X, y, X, y, batch_size=0), "batch_size must be"),
        (lambda net, X, y: net.train(X, y, X, y, num_iters=0), "num_iters must be"),
        (lambda net, X, y: net.train(X, y, X, y, reg=-1.0), "reg must be"),
        (lambda net, X, y: net.train(X, y, X, y, learning_rate=-1.0), "learning_rate must be"),
        (lambda net, X, y: net.loss(X, y, reg=-0.5), "reg must be"),
        (lambda net, X, y: TwoLayerNet(4, 0, 3), "hidden_size must be"),
        (lambda net, X, y: TwoLayerNet(4, 2, 3, dtype=np.int32), "dtype must be"),
    ],
)
def test_bad_input_is_named(call, message):
    net = toy_model()
    X, y = toy_data()
    with pytest.raises((ValueError, TypeError), match=message):
        call(net, X, y)


def test_divergence_raises_with_iteration():
    X, y = toy_data()
    net = TwoLayerNet(4, 10, 3, std=1.0, random_state=0)
    with pytest.raises(TrainingDivergedError, match=r"iteration \d+.*smaller learning_rate"):
        net.train(X * 1e3, y, X, y, learning_rate=1e30, num_iters=50)
