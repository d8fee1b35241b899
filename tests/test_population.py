import numpy as np
import pytest

from nndl.neural_net import TwoLayerNet
from nndl.population import Member, train_population
from nndl.training import TrainOptions, train_network
from tests.conftest import make_blobs


@pytest.fixture
def data():
    return make_blobs(classes=4, dims=12, spread=2, n=400, n_train=320)


MEMBERS = [Member(0.05, reg=0.01, learning_rate_decay=0.9, std=0.1, seed=1),
           Member(0.2, reg=0.0, learning_rate_decay=1.0, std=0.01, seed=2),
           Member(0.01, reg=0.5, learning_rate_decay=0.5, std=1e-3, seed=3)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_member_equals_the_same_trial_trained_alone(data, dtype):
    X, y, Xv, yv = data
    results = train_population(MEMBERS, X, y, Xv, yv, hidden_size=6, num_iters=50,
                               batch_size=32, stream_seed=7, dtype=dtype)
    tol = 1e-10 if dtype == np.float64 else 2e-4
    for member, result in zip(MEMBERS, results):
        net = TwoLayerNet(12, 6, 4, std=member.std, random_state=member.seed, dtype=dtype)
        options = TrainOptions(learning_rate=member.learning_rate, reg=member.reg,
                               learning_rate_decay=member.learning_rate_decay, num_iters=50,
                               batch_size=32)
        alone = train_network(net, X.astype(dtype), y, Xv.astype(dtype), yv, options,
                              rng=np.random.default_rng(7))
        assert result.state == "complete"
        for name in net.params:
            np.testing.assert_allclose(result.net.params[name], net.params[name], rtol=tol,
                                       atol=tol)
        np.testing.assert_allclose(result.history["loss_history"], alone["loss_history"],
                                   rtol=tol)
        assert result.history["val_acc_history"] == alone["val_acc_history"]


def test_diverging_and_pruned_members_leave_without_stopping_the_rest(data):
    X, y, Xv, yv = data
    members = [Member(1e6, std=1.0, seed=1), Member(0.05, std=0.1, seed=2),
               Member(0.05, std=0.1, seed=3)]
    results = train_population(members, X * 100, y, Xv * 100, yv, hidden_size=6, num_iters=40,
                               batch_size=32, dtype=np.float64,
                               on_epoch=lambda i, epoch, acc: "pruned at epoch 1"
                               if i == 2 and epoch == 1 else None)
    assert results[0].state == "diverged" and "iteration" in results[0].reason
    assert results[2].state == "pruned" and len(results[2].history["val_acc_history"]) == 2
    assert results[1].state == "complete" and len(results[1].history["loss_history"]) == 40
    assert np.isfinite(results[1].net.params["W1"]).all()
