"""The course's modular networks (``nndl.fc_net``): its TwoLayerNet against the course
notebook's values, FullyConnectedNet's gradients against centred differences with and
without batch normalization and dropout."""

import numpy as np
import pytest

from nndl import layer_utils, layers
from nndl.fc_net import FullyConnectedNet, TwoLayerNet
from nndl.gradient_check import eval_numerical_gradient, rel_error


def numerical_grads(model, X, y):
    return {name: eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name],
                                          verbose=False)
            for name in model.params}


def test_star_import_brings_the_layer_functions_like_the_courses():
    namespace = {}
    exec("from nndl.fc_net import *", namespace)
    expected = {"TwoLayerNet", "FullyConnectedNet", *layers.__all__, *layer_utils.__all__}
    assert expected <= set(namespace)
    assert namespace["affine_forward"] is layers.affine_forward
    assert {"svm_loss", "dropout_forward", "affine_batchnorm_relu_forward"} <= set(namespace)


# -- TwoLayerNet ----------------------------------------------------------------------

def course_two_layer_net():
    """The course notebook's check: fixed parameters and inputs."""
    N, D, H, C = 3, 5, 50, 7
    model = TwoLayerNet(input_dim=D, hidden_dims=H, num_classes=C)
    model.params["W1"] = np.linspace(-0.7, 0.3, num=D * H).reshape(D, H)
    model.params["b1"] = np.linspace(-0.1, 0.9, num=H)
    model.params["W2"] = np.linspace(-0.3, 0.4, num=H * C).reshape(H, C)
    model.params["b2"] = np.linspace(-0.9, 0.1, num=C)
    X = np.linspace(-5.5, 4.5, num=N * D).reshape(D, N).T
    return model, X, np.array([0, 5, 1])


def test_two_layer_net_initialization():
    np.random.seed(0)
    model = TwoLayerNet(input_dim=20, hidden_dims=30, num_classes=4, weight_scale=1e-2)
    np.random.seed(0)
    np.testing.assert_array_equal(model.params["W1"], 1e-2 * np.random.randn(20, 30))  # (D, H)
    np.testing.assert_array_equal(model.params["W2"], 1e-2 * np.random.randn(30, 4))  # (H, C)
    np.testing.assert_array_equal(model.params["b1"], np.zeros(30))
    np.testing.assert_array_equal(model.params["b2"], np.zeros(4))
    assert model.params["W1"].dtype == np.float64 and model.reg == 0.0


def test_two_layer_net_scores_and_losses_match_the_course_notebook():
    model, X, y = course_two_layer_net()
    expected = [[11.53165108, 12.2917344, 13.05181771, 13.81190102, 14.57198434, 15.33206765,
                 16.09215096],
                [12.05769098, 12.74614105, 13.43459113, 14.1230412, 14.81149128, 15.49994135,
                 16.18839143],
                [12.58373087, 13.20054771, 13.81736455, 14.43418138, 15.05099822, 15.66781506,
                 16.2846319]]
    assert rel_error(model.loss(X), expected) < 1e-8
    assert model.loss(X, y)[0] == pytest.approx(3.4702243556, abs=1e-10)
    model.reg = 1.0  # 0.5 * reg * (|W1|^2 + |W2|^2)
    assert model.loss(X, y)[0] == pytest.approx(26.5948426952, abs=1e-10)


@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_two_layer_net_gradients(reg):
    model, X, y = course_two_layer_net()
    model.reg = reg
    _, grads = model.loss(X, y)
    for name, num in numerical_grads(model, X, y).items():
        assert rel_error(num, grads[name]) < 1e-6, name  # the course: "around 1e-7 or less"


def test_two_layer_net_dropout_keeps_units_with_probability_dropout():
    np.random.seed(0)
    model = TwoLayerNet(input_dim=6, hidden_dims=4000, num_classes=3, dropout=0.25)
    assert model.dropout_param == {"mode": "train", "p": 0.25}
    X, y = np.random.randn(1, 6), np.array([1])
    _, grads = model.loss(X, y)
    # an active hidden unit that is dropped gets no gradient into its row of W2
    active = (X @ model.params["W1"] + model.params["b1"])[0] > 0
    kept = np.any(grads["W2"] != 0, axis=1)
    assert not np.any(kept & ~active)
    assert abs(kept[active].mean() - 0.25) < 0.03  # about 2,000 active units


# -- FullyConnectedNet ----------------------------------------------------------------

def test_fully_connected_net_parameters():
    model = FullyConnectedNet([20, 30], input_dim=15, num_classes=10, use_batchnorm=True)
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes == {"W1": (15, 20), "b1": (20,), "gamma1": (20,), "beta1": (20,),
                      "W2": (20, 30), "b2": (30,), "gamma2": (30,), "beta2": (30,),
                      "W3": (30, 10), "b3": (10,)}
    assert all(v.dtype == np.float32 for v in model.params.values())
    np.testing.assert_array_equal(model.params["gamma2"], 1)
    np.testing.assert_array_equal(model.params["beta1"], 0)
    assert model.num_layers == 3 and len(model.bn_params) == 2
    assert model.dropout_param == {} and not model.use_dropout


def test_initial_loss_is_chance():
    rng = np.random.RandomState(1)
    X, y = rng.randn(50, 3, 8, 8), rng.randint(10, size=50)  # images: flattened by the net
    model = FullyConnectedNet([40, 40], input_dim=3 * 8 * 8, weight_scale=1e-3)
    loss, _ = model.loss(X, y)
    assert loss == pytest.approx(np.log(10), abs=1e-3)
    assert model.loss(X).shape == (50, 10)


CONFIGS = {"plain": {}, "batchnorm": {"use_batchnorm": True},
           "dropout": {"dropout": 0.5, "seed": 123},
           "batchnorm + dropout": {"use_batchnorm": True, "dropout": 0.7, "seed": 1}}


@pytest.mark.parametrize("reg", [0, 3.14])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_fully_connected_net_gradients(config, reg):
    rng = np.random.RandomState(231)
    N, D, H1, H2, C = 10, 8, 12, 10, 6
    X, y = rng.randn(N, D), rng.randint(C, size=N)
    np.random.seed(0)
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, reg=reg, weight_scale=5e-2,
                              dtype=np.float64, **CONFIGS[config])
    for i in (1, 2, 3):  # zero biases put units whose inputs all dropped exactly on ReLU's kink
        model.params[f"b{i}"] = 0.1 * rng.randn(*model.params[f"b{i}"].shape)
    _, grads = model.loss(X, y)
    assert set(grads) == set(model.params)
    for name, num in numerical_grads(model, X, y).items():
        # tiny gradients have large relative errors from rounding alone (the course's notebooks
        # print up to 1e-5); the absolute error is the centred differences' rounding noise
        assert rel_error(num, grads[name]) < 1e-5, name
        np.testing.assert_allclose(grads[name], num, rtol=0, atol=5e-8, err_msg=name)


def test_batchnorm_net_uses_running_averages_at_test_time():
    rng = np.random.RandomState(0)
    X, y = rng.randn(20, 6) * 3 + 5, rng.randint(4, size=20)
    model = FullyConnectedNet([8], input_dim=6, num_classes=4, use_batchnorm=True,
                              dtype=np.float64)
    model.loss(X, y)
    running = model.bn_params[0]
    a = X @ model.params["W1"] + model.params["b1"]
    np.testing.assert_allclose(running["running_mean"], 0.1 * a.mean(axis=0))
    np.testing.assert_allclose(running["running_var"], 0.1 * a.var(axis=0))
    scores = model.loss(X)
    assert model.bn_params[0]["mode"] == "test"
    hidden = np.maximum(0, (a - running["running_mean"]) / np.sqrt(running["running_var"] + 1e-5))
    np.testing.assert_allclose(scores, hidden @ model.params["W2"] + model.params["b2"])


def test_dropout_is_off_at_test_time():
    np.random.seed(0)
    model = FullyConnectedNet([50], input_dim=5, num_classes=3, dropout=0.3, dtype=np.float64)
    X = np.random.randn(4, 5)
    expected = (np.maximum(0, X @ model.params["W1"] + model.params["b1"]) @ model.params["W2"]
                + model.params["b2"])
    np.testing.assert_allclose(model.loss(X), expected)
    assert model.dropout_param["mode"] == "test"


@pytest.mark.parametrize("kwargs, match", [
    ({"hidden_dims": 100}, "hidden_dims must be a list of ints"),
    ({"hidden_dims": [10, 0]}, "hidden_dims\\[1\\] must be an int >= 1"),
    ({"hidden_dims": [10], "dropout": 1.5}, "dropout must be in \\[0.0, 1.0\\]"),
    ({"hidden_dims": [10], "reg": -1}, "reg must be in"),
    ({"hidden_dims": [10], "dtype": np.int32}, "float32 or float64"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        FullyConnectedNet(**kwargs)


def test_inputs_of_the_wrong_size_or_labels_out_of_range_are_named():
    model = FullyConnectedNet([5], input_dim=12, num_classes=3)
    with pytest.raises(ValueError, match="input_dim = 12, got shape \\(2, 3, 5\\)"):
        model.loss(np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="y"):
        model.loss(np.zeros((2, 12)), np.array([0, 3]))
