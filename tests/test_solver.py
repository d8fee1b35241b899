"""The course's Solver (``nndl.solver``): its loop (minibatches with replacement, epochs,
learning-rate decay, accuracy checks, best parameters), its prints, and checkpoints in
nndl's own format."""

import re
import zipfile

import numpy as np
import pytest

from nndl import optim
from nndl.data_utils import get_CIFAR10_data
from nndl.fc_net import FullyConnectedNet
from nndl.model_io import ModelFileError, load_model
from nndl.solver import CheckpointError, Solver, load_checkpoint
from tests.fakecifar import make_arrays, write_python_folder

KEYS = ("X_train", "y_train", "X_val", "y_val")


class Recorder:
    """A model that predicts class 1 everywhere and records the rows it trains on (each
    training row holds its own index)."""

    def __init__(self):
        self.params = {"w": np.zeros(3)}
        self.batches = []

    def loss(self, X, y=None):
        if y is None:
            return np.tile([0.0, 1.0], (len(X), 1))
        self.batches.append(X[:, 0].astype(int))
        return float(len(self.batches)), {"w": np.ones(3)}


def index_data(n_train=40, n_val=10, val_label=0):
    return {"X_train": np.arange(n_train, dtype=float)[:, None], "y_train": np.ones(n_train, int),
            "X_val": np.zeros((n_val, 1)), "y_val": np.full(n_val, val_label)}


def test_minibatches_are_drawn_with_replacement_from_the_global_rng():
    model = Recorder()
    np.random.seed(3)
    solver = Solver(model, index_data(), batch_size=8, num_epochs=2, verbose=False)
    solver.train()
    np.random.seed(3)  # no accuracy sample is drawn: 40 rows < num_train_samples
    expected = [np.random.choice(40, 8) for _ in range(10)]  # 2 epochs of 40 // 8
    assert len(model.batches) == 10
    for got, want in zip(model.batches, expected):
        np.testing.assert_array_equal(got, want)


def test_iterations_epochs_decay_and_histories():
    model = Recorder()
    solver = Solver(model, index_data(n_train=40), update_rule="sgd",
                    optim_config={"learning_rate": 0.1}, lr_decay=0.5, batch_size=8,
                    num_epochs=3, verbose=False)
    solver.train()
    assert solver.loss_history == [float(i) for i in range(1, 16)]  # 3 epochs x 5 iterations
    assert solver.epoch == 3
    assert solver.optim_configs["w"]["learning_rate"] == pytest.approx(0.1 * 0.5**3)
    assert len(solver.train_acc_history) == 4  # the first iteration and each epoch's end
    assert solver.train_acc_history == [1.0] * 4 and solver.val_acc_history == [0.0] * 4
    # validation accuracy stayed 0: the first check's parameters are restored (not none)
    np.testing.assert_allclose(model.params["w"], -0.1 * np.ones(3))


def test_an_epoch_is_at_least_one_iteration(capsys):
    solver = Solver(Recorder(), index_data(n_train=10), batch_size=25, num_epochs=4)
    solver.train()
    assert len(solver.loss_history) == 4
    # every iteration ends an epoch, the first one included: one check each
    epochs = re.findall(r"\(Epoch (\d) / 4\)", capsys.readouterr().out)
    assert epochs == ["1", "2", "3", "4"] and len(solver.val_acc_history) == 4


def test_check_accuracy_samples_and_batches():
    model = Recorder()
    solver = Solver(model, index_data(), verbose=False)
    y = np.array([1, 1, 0, 1, 0])
    assert solver.check_accuracy(np.zeros((5, 1)), y, batch_size=2) == pytest.approx(0.6)
    np.random.seed(0)
    y = np.arange(300) % 2  # predictions are all 1
    acc = solver.check_accuracy(np.zeros((300, 1)), y, num_samples=100)
    np.random.seed(0)
    assert acc == pytest.approx(np.mean(y[np.random.choice(300, 100)] == 1))


def test_prints_like_the_course(capsys):
    solver = Solver(Recorder(), index_data(n_train=40), batch_size=8, num_epochs=2,
                    print_every=4)
    solver.train()
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["(Iteration 1 / 10) loss: 1.000000",
                         "(Epoch 0 / 2) train acc: 1.000000; val_acc: 0.000000"]
    iterations = [int(re.match(r"\(Iteration (\d+)", s)[1]) for s in lines if "Iteration" in s]
    assert iterations == [1, 5, 9]
    assert [s for s in lines if s.startswith("(Epoch")][1:] == [
        "(Epoch 1 / 2) train acc: 1.000000; val_acc: 0.000000",
        "(Epoch 2 / 2) train acc: 1.000000; val_acc: 0.000000"]


def test_update_rules_by_name_or_function():
    model = Recorder()
    solver = Solver(model, index_data(), update_rule="adam", verbose=False)
    assert solver.update_rule is optim.adam
    calls = []

    def rule(w, dw, config):
        calls.append(config)
        return w - dw, config

    solver = Solver(model, index_data(), update_rule=rule, optim_config={"x": 1},
                    num_epochs=1, batch_size=40, verbose=False)
    solver.train()
    assert calls == [{"x": 1}]


@pytest.mark.parametrize("name, hint", [("momentum", "sgd_momentum"),
                                        ("nesterov", "sgd_nesterov_momentum"),
                                        ("Adam", "adam")])
def test_unknown_update_rule_is_named_with_a_hint(name, hint):
    with pytest.raises(ValueError, match=f"update_rule must be one of .*did you mean {hint}"):
        Solver(Recorder(), index_data(), update_rule=name)


@pytest.mark.parametrize("change, match", [
    ({"y_val": None}, "missing y_val"),
    ({"y_train": np.ones(3, int)}, "same number of rows"),
])
def test_bad_data_is_named(change, match):
    data = {**index_data(), **change}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ValueError, match=match):
        Solver(Recorder(), data)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="num_epochs must be an int >= 1"):
        Solver(Recorder(), index_data(), num_epochs=0)
    with pytest.raises(TypeError, match="model must have a params dict"):
        Solver(object(), index_data())
    with pytest.raises(TypeError, match="unexpected keyword argument 'learning_rate'"):
        Solver(Recorder(), index_data(), learning_rate=1e-3)


# -- on (fake) CIFAR-10 images --------------------------------------------------------

@pytest.fixture
def small_data(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_python_folder(tmp_path / "cifar-10-batches-py", make_arrays(per_batch=20))
    data = get_CIFAR10_data(50, 20, 10, root=tmp_path)
    return {k: data[k] for k in KEYS}


@pytest.mark.slow
def test_overfits_50_images(small_data):
    """The course's check: a three-layer net learns 50 training images by heart."""
    np.random.seed(0)
    model = FullyConnectedNet([100, 100], weight_scale=1e-2, dtype=np.float64)
    solver = Solver(model, small_data, num_epochs=20, batch_size=25, update_rule="sgd",
                    optim_config={"learning_rate": 1e-2}, verbose=False)
    solver.train()
    assert solver.train_acc_history[-1] == 1.0
    assert solver.loss_history[-1] < 0.05 < 2.0 < solver.loss_history[0]


def test_checkpoints_and_the_best_parameters(small_data, tmp_path):
    np.random.seed(1)
    model = FullyConnectedNet([30], weight_scale=1e-2, use_batchnorm=True, dropout=0.8)
    solver = Solver(model, small_data, num_epochs=4, batch_size=25, update_rule="adam",
                    optim_config={"learning_rate": 1e-3}, lr_decay=0.9,
                    checkpoint_name=tmp_path / "run", verbose=False)
    solver.train()
    files = sorted(p.name for p in tmp_path.glob("run_epoch_*.npz"))
    assert files == [f"run_epoch_{e}.npz" for e in range(5)]
    saved = [load_checkpoint(tmp_path / f) for f in files]
    last = saved[-1]
    assert last["model"] == "nndl.fc_net.FullyConnectedNet" and last["update_rule"] == "adam"
    assert last["epoch"] == 4 and last["loss_history"] == solver.loss_history
    assert last["val_acc_history"] == solver.val_acc_history
    assert last["optim_configs"]["W1"]["t"] == 8  # 4 epochs x 2 iterations
    assert last["optim_configs"]["W1"]["learning_rate"] == pytest.approx(1e-3 * 0.9**4)
    assert last["optim_configs"]["W1"]["v"].shape == (3072, 30)
    assert last["bn_params"][0]["running_mean"].shape == (30,)
    assert last["dropout_param"]["p"] == 0.8
    # the model ends with the parameters of the first check of the best validation accuracy
    best = saved[int(np.argmax(solver.val_acc_history))]
    assert solver.best_val_acc == max(solver.val_acc_history)
    for name, value in model.params.items():
        np.testing.assert_array_equal(value, best["params"][name])
    with zipfile.ZipFile(tmp_path / files[0]) as archive:  # arrays and JSON, no pickle
        assert all(n.endswith(".npy") for n in archive.namelist())
        assert "metadata.json.npy" in archive.namelist()


def test_load_checkpoint_refuses_other_files(tmp_path, small_data):
    (tmp_path / "pickle.npz").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(CheckpointError, match="damaged or not an nndl checkpoint file"):
        load_checkpoint(tmp_path / "pickle.npz")
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "missing.npz")
    model = FullyConnectedNet([5])
    Solver(model, small_data, num_epochs=1, batch_size=50, checkpoint_name=tmp_path / "c",
           verbose=False).train()
    with pytest.raises(ModelFileError, match="not an nndl model file"):
        load_model(tmp_path / "c_epoch_1.npz")  # a checkpoint is no model file (epoch 1)
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(CheckpointError, match="no readable metadata"):
        load_checkpoint(tmp_path / "other.npz")


@pytest.mark.slow
def test_batchnorm_trains_a_deep_net_that_plain_training_cannot(real_cifar10_root):
    """The course's weight-scale experiment: 5 hidden layers of 100 units at weight scale
    1e-4, 1,000 images, 10 epochs of Adam. Without batch normalization the signal vanishes
    and training accuracy stays at chance; with it the net learns."""
    data = get_CIFAR10_data(1000, 1000, 10, root=real_cifar10_root)
    small = {k: data[k] for k in KEYS}
    accuracies = {}
    for use_batchnorm in (False, True):
        np.random.seed(0)
        model = FullyConnectedNet([100] * 5, weight_scale=1e-4, use_batchnorm=use_batchnorm)
        solver = Solver(model, small, num_epochs=10, batch_size=50, update_rule="adam",
                        optim_config={"learning_rate": 1e-3}, verbose=False)
        solver.train()
        accuracies[use_batchnorm] = max(solver.train_acc_history)
    assert accuracies[False] < 0.20
    assert accuracies[True] > 0.40
