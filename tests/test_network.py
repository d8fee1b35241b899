"""Network: any depth, the first assignment's weights for [D, H, C], trained and scored by
the engine."""

import numpy as np
import pytest

from nndl.architecture import Architecture, init_params
from nndl.config import RunConfig
from nndl.fc_net import FullyConnectedNet
from nndl.network import Network, network_for
from nndl.neural_net import TwoLayerNet
from tests.conftest import make_blobs


def test_init_draws_the_first_assignment_weights_for_one_hidden_layer():
    drawn = init_params(Architecture((12, 7, 3)), 1e-4, np.random.default_rng(3))
    expected = TwoLayerNet(12, 7, 3, random_state=3).params
    assert drawn.keys() == expected.keys()
    for name in expected:
        np.testing.assert_array_equal(drawn[name], expected[name])


def test_auto_init_is_he_for_every_layer():
    params = init_params(Architecture((400, 300, 200, 10), batchnorm=True), "auto",
                         np.random.default_rng(0))
    for name, fan_in in (("W1", 400), ("W2", 300), ("W3", 200)):
        assert params[name].std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.05)
    np.testing.assert_array_equal(params["gamma2"], 1.0)
    np.testing.assert_array_equal(params["running_var1"], 1.0)
    np.testing.assert_array_equal(params["b3"], 0.0)


def test_scores_are_the_course_nets_in_test_mode():
    net = Network([12, 9, 8, 4], batchnorm=True, random_state=1)
    rng = np.random.default_rng(2)
    for name in net.params:  # move the batch-norm parameters away from 1 and 0
        if name.startswith(("gamma", "beta", "running")):
            net.params[name] += rng.random(net.params[name].shape)
    course = FullyConnectedNet([9, 8], input_dim=12, num_classes=4, use_batchnorm=True,
                               dtype=np.float64)
    course.params = {k: (v.T if k.startswith("W") else v).copy()
                     for k, v in net.params.items() if not k.startswith("running")}
    for i, bn_param in enumerate(course.bn_params, start=1):
        bn_param.update(running_mean=net.params[f"running_mean{i}"],
                        running_var=net.params[f"running_var{i}"])
    X = rng.normal(size=(5000, 12))  # more than one chunk of rows
    np.testing.assert_allclose(net.scores(X), course.loss(X), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(net.predict_proba(X).sum(axis=1), 1.0)


def test_a_deep_network_with_batchnorm_learns_the_blobs():
    X, y, Xv, yv = make_blobs(classes=4, dims=12, spread=2, n=600, n_train=500)
    net = Network([12, 32, 32, 4], batchnorm=True, random_state=0)
    history = net.train(X, y, Xv, yv, optimizer="adam", learning_rate=1e-2, num_iters=200,
                        batch_size=50)
    assert history["loss_history"][-1] < 0.5 * history["loss_history"][0]
    assert (net.predict(Xv) == yv).mean() > 0.9


def test_network_for_keeps_the_first_assignment_class_and_goes_deeper():
    assert type(network_for(RunConfig(), 20, 3)) is TwoLayerNet
    deep = network_for(RunConfig(hidden_sizes="8,6", batchnorm=True), 20, 3)
    assert type(deep) is Network and deep.sizes == (20, 8, 6, 3)
    assert "gamma2" in deep.params
    assert type(network_for(RunConfig(std="auto"), 20, 3)) is Network  # He needs Network


@pytest.mark.parametrize("sizes", [[12, 4], 12, [12, 0, 4]])
def test_bad_sizes_are_refused_by_name(sizes):
    with pytest.raises((ValueError, TypeError), match="sizes"):
        Network(sizes)
