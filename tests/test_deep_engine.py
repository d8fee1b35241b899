"""The engine at any depth against the course's FullyConnectedNet, step by step.

The reference is independent of the engine's code: the course's layers
(:mod:`nndl.layers`, through :class:`nndl.fc_net.FullyConnectedNet`, weights (D, M)) and
the plainly written update rules of ``tests/reference.py``; the learning rate is constant.
"""

import numpy as np
import pytest

from nndl.config import TrainOptions
from nndl.fc_net import FullyConnectedNet
from nndl.population import Population
from nndl.sampling import MinibatchSampler
from nndl.training import Member, train_members
from tests.conftest import make_blobs
from tests.reference import make_optimizer

SIZES = [12, 10, 8, 4]
BASE = dict(learning_rate=0.05, reg=0.01, num_iters=30, batch_size=32, learning_rate_decay=1.0)


@pytest.fixture
def data():
    return make_blobs(classes=4, dims=12, spread=2, n=400, n_train=320)


def deep_params(sizes=SIZES, batchnorm=False, seed=1, dtype=np.float64):
    """Random parameters in the engine's layout: W<l> (n_out, n_in)."""
    rng = np.random.default_rng(seed)
    params = {}
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{layer}"] = rng.normal(0, np.sqrt(2 / n_in), (n_out, n_in))
        params[f"b{layer}"] = rng.normal(0, 0.1, n_out)
        if batchnorm and layer < len(sizes) - 1:
            params[f"gamma{layer}"] = 1 + 0.1 * rng.normal(size=n_out)
            params[f"beta{layer}"] = 0.1 * rng.normal(size=n_out)
            params[f"running_mean{layer}"] = 0.1 * rng.normal(size=n_out)
            params[f"running_var{layer}"] = 1 + 0.1 * rng.random(n_out)
    return {k: v.astype(dtype) for k, v in params.items()}


def course_net(params, sizes, batchnorm, reg):
    """The course's FullyConnectedNet holding ``params`` (its weights are (n_in, n_out))."""
    net = FullyConnectedNet(sizes[1:-1], input_dim=sizes[0], num_classes=sizes[-1],
                            use_batchnorm=batchnorm, reg=reg, dtype=np.float64)
    net.params = {k: (v.T if k.startswith("W") else v).copy() for k, v in params.items()
                  if not k.startswith("running")}
    for i, bn_param in enumerate(net.bn_params, start=1):
        bn_param["running_mean"] = params[f"running_mean{i}"].copy()
        bn_param["running_var"] = params[f"running_var{i}"].copy()
    return net


def reference_steps(params, X, y, options, rng, sizes, batchnorm):
    """(parameters in the engine's layout, losses) after ``options.num_iters`` steps."""
    net = course_net(params, sizes, batchnorm, options.reg)
    optimizer = make_optimizer(options.optimizer, options.momentum, options.weight_decay)
    sample = MinibatchSampler(options.batch_sampler, rng, len(X), options.batch_size)
    losses = []
    for _ in range(options.num_iters):
        idx = sample()
        loss, grads = net.loss(X[idx], y[idx])
        optimizer.step(net.params, grads, options.learning_rate)
        losses.append(loss)
    out = {k: (v.T if k.startswith("W") else v) for k, v in net.params.items()}
    for i, bn_param in enumerate(net.bn_params, start=1):
        out[f"running_mean{i}"] = bn_param["running_mean"]
        out[f"running_var{i}"] = bn_param["running_var"]
    return out, losses


@pytest.mark.parametrize("sizes", [SIZES, [12, 9, 4], [12, 7, 6, 5, 4]])
@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw", "rmsprop"])
def test_a_deep_network_trains_as_the_course_net_step_by_step(data, sizes, batchnorm,
                                                              optimizer):
    X, y, _, _ = data
    extra = {"weight_decay": 0.05} if optimizer == "adamw" else {}
    lr = {"sgd": 0.05, "momentum": 0.05}.get(optimizer, 0.005)
    options = TrainOptions(**{**BASE, "optimizer": optimizer, "learning_rate": lr, **extra})
    start = deep_params([12, *sizes[1:]], batchnorm)
    expected, losses = reference_steps(start, X, y, options, np.random.default_rng(7),
                                       sizes, batchnorm)
    member = Member({k: v.copy() for k, v in start.items()}, options)
    train_members([member], X, y, None, None, rng=np.random.default_rng(7))
    assert member.state == "complete"
    np.testing.assert_allclose(member.history["loss_history"], losses, rtol=1e-9)
    assert set(member.params) == set(expected)
    for key in expected:
        np.testing.assert_allclose(member.params[key], expected[key], rtol=1e-8, atol=1e-10,
                                   err_msg=key)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_scores_use_the_running_statistics_as_the_course_test_mode(data, batchnorm):
    X, _, _, _ = data
    params = deep_params(batchnorm=batchnorm)
    expected = course_net(params, SIZES, batchnorm, 0.0).loss(X)  # y None: test mode
    pop = Population([params], [TrainOptions()], np.float64)
    np.testing.assert_allclose(pop.scores(X)[0], expected, rtol=1e-10, atol=1e-12)


MIXED = [dict(learning_rate=0.05, reg=0.01),
         dict(learning_rate=0.005, optimizer="adam", dropout=0.3),
         dict(learning_rate=0.02, optimizer="momentum", label_smoothing=0.1),
         dict(learning_rate=0.1, reg=0.0, dropout=0.1),
         dict(learning_rate=0.003, optimizer="rmsprop", reg=0.02)]


@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_deep_member_of_a_population_trains_as_it_would_alone(data, batchnorm, dtype):
    """Each deep member (its own rule, dropout, smoothing, batch statistics) reaches the
    weights, losses and accuracies it reaches alone; the dropout masks are drawn for the
    whole population, so the members with dropout are checked against the same draw by
    training the population again without the others."""
    X, y, Xv, yv = data
    X, Xv = X.astype(dtype), Xv.astype(dtype)
    options = [TrainOptions(num_iters=40, batch_size=32, **o) for o in MIXED]
    members = [Member(deep_params(batchnorm=batchnorm, seed=i, dtype=dtype), o)
               for i, o in enumerate(options)]
    train_members(members, X, y, Xv, yv, rng=np.random.default_rng(3))
    tol = 1e-9 if dtype == np.float64 else 3e-4
    # a bias before batch normalization has a zero gradient but for rounding, which Adam
    # and RMSProp scale up to whole steps: in float32 those biases wander apart
    noise = {"b1", "b2", "running_mean1", "running_mean2"} if batchnorm and \
        dtype == np.float32 else set()  # (and the running means follow them)
    for i, (member, o) in enumerate(zip(members, options)):
        if o.dropout:  # the population's mask stream: compared in the next test
            continue
        alone = Member(deep_params(batchnorm=batchnorm, seed=i, dtype=dtype), o)
        train_members([alone], X, y, Xv, yv, rng=np.random.default_rng(3))
        assert member.state == alone.state == "complete"
        for name in alone.params:
            if name in noise:
                continue
            np.testing.assert_allclose(member.params[name], alone.params[name], rtol=tol,
                                       atol=tol, err_msg=name)
        np.testing.assert_allclose(member.history["loss_history"],
                                   alone.history["loss_history"], rtol=tol)
        assert member.history["val_acc_history"] == alone.history["val_acc_history"]


def test_pruned_deep_members_leave_and_the_rest_go_on(data):
    X, y, Xv, yv = data
    options = [TrainOptions(num_iters=40, batch_size=32, **o) for o in MIXED]
    members = [Member(deep_params(batchnorm=True, seed=i), o) for i, o in enumerate(options)]
    train_members(members, X, y, Xv, yv, rng=np.random.default_rng(3),
                  on_epoch=lambda i, epoch, record: "pruned" if i in (0, 3) and epoch == 1
                  else None)
    alone = Member(deep_params(batchnorm=True, seed=2), options[2])
    train_members([alone], X, y, Xv, yv, rng=np.random.default_rng(3))
    assert [m.state for m in members] == ["pruned", "complete", "complete", "pruned",
                                          "complete"]
    for name in alone.params:
        np.testing.assert_allclose(members[2].params[name], alone.params[name], rtol=1e-9,
                                   atol=1e-12, err_msg=name)


def test_members_of_other_architectures_are_refused(data):
    X, y, Xv, yv = data
    members = [Member(deep_params(), TrainOptions()),
               Member(deep_params(batchnorm=True), TrainOptions())]
    with pytest.raises(ValueError, match="share an architecture|share layer sizes"):
        train_members(members, X, y, Xv, yv)
    with pytest.raises(ValueError, match="W3"):
        train_members([Member({**deep_params(), "W3": np.zeros((4, 7))}, TrainOptions())],
                      X, y, Xv, yv)
