"""Each layer's statistics in a training history (``layer_stats``) against a forward pass
written here in NumPy from the trained parameters, and the train report's layer plot and
table."""

import numpy as np
import pytest

from nndl.config import TrainOptions
from nndl.training import LAYER_STAT_ROWS, Member, train_members, train_network
from tests.test_deep_engine import deep_params

SIZES = [6, 5, 4, 3]


def reference_stats(params, X, batchnorm):
    """Per layer (act_mean, act_std, weight_norm): test-mode forward pass of the network
    (affine, batch normalization with the running statistics, ReLU; scores last)."""
    L = len(SIZES) - 1
    out, h = [], X
    for layer in range(1, L + 1):
        W = params[f"W{layer}"]
        a = h @ W.T + params[f"b{layer}"]
        if layer < L:
            if batchnorm:
                a = (a - params[f"running_mean{layer}"]) / np.sqrt(
                    params[f"running_var{layer}"] + 1e-5) * params[f"gamma{layer}"] \
                    + params[f"beta{layer}"]
            a = np.maximum(a, 0)
        h = a
        out.append((a.mean(), a.std(), np.sqrt((W ** 2).sum())))
    return out


def blobs(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, SIZES[-1], n)
    return rng.normal(size=(n, SIZES[0])) + y[:, None], y


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("batchnorm", [False, True])
def test_last_entry_matches_a_numpy_forward_pass_of_the_trained_members(batchnorm, backend):
    if backend == "torch":
        pytest.importorskip("torch")
    X, y = blobs(100, 0)
    X_val, y_val = blobs(LAYER_STAT_ROWS + 200, 1)  # the first 1,000 rows only count
    # 100 rows in batches of 50: epochs scored after iterations 0, 2, 4; the last is the
    # last step, so the last entry describes the parameters the members end with. SGD with
    # L2 keeps W1 behind a scale; SGD is stacked first (rule order) though member 1
    members = [Member(deep_params(SIZES, batchnorm, seed=s),
                      TrainOptions(num_iters=5, batch_size=50, learning_rate=lr, reg=0.1,
                                   optimizer=opt, backend=backend))
               for s, (lr, opt) in enumerate([(0.01, "adam"), (0.3, "sgd")])]
    train_members(members, X, y, X_val, y_val, rng=0)
    for m in members:
        stats = m.history["layer_stats"]
        assert len(stats) == len(m.history["val_acc_history"]) == 3
        want = reference_stats(m.params, X_val[:LAYER_STAT_ROWS], batchnorm)
        got = [(s["act_mean"], s["act_std"], s["weight_norm"]) for s in stats[-1]]
        np.testing.assert_allclose(got, want, rtol=1e-9)
        everything = reference_stats(m.params, X_val, batchnorm)
        assert not np.allclose(got, everything, rtol=1e-6)  # a subset of the rows
    initial = deep_params(SIZES, batchnorm, seed=0)
    assert members[0].history["layer_stats"][0][0]["weight_norm"] != pytest.approx(
        np.sqrt((initial["W1"] ** 2).sum()), rel=1e-6)  # recorded after the first step


def test_no_validation_rows_record_nothing_and_old_histories_still_fill():
    X, y = blobs(100, 0)
    history = {"loss_history": [], "train_acc_history": [], "val_acc_history": [],
               "epoch_iterations": [], "best_val_acc": -1.0, "stopped_early": False}
    params = deep_params(SIZES, seed=3)
    train_network(params, X, y, X[:30], y[:30], TrainOptions(num_iters=3, batch_size=50),
                  rng=0, history=history)  # a history made before layer_stats existed
    assert len(history["layer_stats"]) == 2
    assert [len(entry) for entry in history["layer_stats"]] == [3, 3]
    none = train_network(deep_params(SIZES, seed=3), X, y, None, None,
                         TrainOptions(num_iters=3, batch_size=50), rng=0)
    assert none["layer_stats"] == [] and none["val_acc_history"] == []


def test_layer_plot_refuses_an_empty_history(tmp_path):
    from nndl.vis_utils import plot_layer_stats

    with pytest.raises(ValueError, match="layer_stats must hold"):
        plot_layer_stats([], tmp_path / "layers.png")
    assert not (tmp_path / "layers.png").exists()
