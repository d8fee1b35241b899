"""The one training loop and its fused stepper against the layer-by-layer reference."""

import numpy as np
import pytest

from nndl import training
from nndl._gather import RowGatherer
from nndl.config import OPTIMIZERS, Augmentation, TrainOptions
from nndl.neural_net import TwoLayerNet
from nndl.sampling import MinibatchSampler
from nndl.schedules import SCHEDULES
from nndl.training import Member, TrainingDivergedError, train_members, train_network
from nndl.transforms import Pipeline, make_batch_transform
from tests.conftest import make_blobs
from tests.reference import make_optimizer, reference_train

BASE = dict(learning_rate=0.05, reg=0.01, num_iters=40, batch_size=32)
OPTIONS = {
    **{name: dict(optimizer=name) for name in OPTIMIZERS},
    "adamw": dict(optimizer="adamw", weight_decay=0.05, learning_rate=0.01),
    "adam": dict(optimizer="adam", learning_rate=0.01),
    "rmsprop": dict(optimizer="rmsprop", learning_rate=0.005),
    **{f"schedule {name}": dict(schedule=name) for name in SCHEDULES},
    "warmup": dict(schedule="cosine", warmup_iters=7),
    "step decay": dict(schedule="step", step_epochs=0.5, learning_rate_decay=0.7),
    "dropout": dict(dropout=0.3),
    "label smoothing": dict(label_smoothing=0.1),
    "momentum + dropout + smoothing": dict(optimizer="nesterov", dropout=0.2,
                                           label_smoothing=0.05, momentum=0.8),
    "shuffle sampler": dict(batch_sampler="shuffle"),
    "blocks sampler": dict(batch_sampler="blocks"),
}


@pytest.fixture
def data():
    return make_blobs(classes=4, dims=12, spread=2, n=400, n_train=320)


def fresh_params(seed=1, std=0.1, dtype=np.float64):
    return TwoLayerNet(12, 6, 4, std=std, random_state=seed, dtype=dtype).params


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_has_a_reference_to_be_tested_against(name):
    assert type(make_optimizer(name)).__name__ in ("SGD", "Momentum", "RMSProp", "Adam")


@pytest.mark.parametrize("name", list(OPTIONS))
def test_fused_equals_the_layer_by_layer_reference(data, name):
    X, y, Xv, yv = data
    options = TrainOptions(**{**BASE, **OPTIONS[name]})
    expected, losses = reference_train(fresh_params(), X, y, options, np.random.default_rng(7))
    member = Member(fresh_params(), options)
    train_members([member], X, y, Xv, yv, rng=np.random.default_rng(7))
    tol = 1e-10 if name == "sgd" else 1e-9
    assert member.state == "complete"
    np.testing.assert_allclose(member.history["loss_history"], losses, rtol=tol)
    for key in expected:
        np.testing.assert_allclose(member.params[key], expected[key], rtol=tol, atol=tol)


def test_soft_targets_and_augmentation_equal_the_reference():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(160, 4, 4, 3))
    y = rng.integers(0, 4, 160)
    soft = np.full((160, 4), 0.1) + 0.6 * np.eye(4)[y]
    pipeline = Pipeline(["mean"])
    rows = pipeline.fit_transform(images.reshape(160, -1))
    transform = make_batch_transform(pipeline, np.float64, Augmentation(flip=True, translate=1))
    options = TrainOptions(**{**BASE, "optimizer": "momentum"})
    params = TwoLayerNet(48, 6, 4, std=0.1, random_state=3).params
    expected, losses = reference_train(params, images, y, options, np.random.default_rng(5),
                                       transform, soft)
    member = Member({k: v.copy() for k, v in params.items()}, options)
    train_members([member], images, y, rows[:40], y[:40], rng=np.random.default_rng(5),
                  batch_transform=transform, soft_targets=soft)
    np.testing.assert_allclose(member.history["loss_history"], losses, rtol=1e-9)
    for key in expected:
        np.testing.assert_allclose(member.params[key], expected[key], rtol=1e-9, atol=1e-12)


MIXED = [dict(learning_rate=0.05, reg=0.01, learning_rate_decay=0.9),
         dict(learning_rate=0.01, optimizer="adam", reg=0.0),
         dict(learning_rate=0.2, reg=0.0, learning_rate_decay=1.0),
         dict(learning_rate=0.05, optimizer="momentum", schedule="one_cycle",
              label_smoothing=0.1),
         dict(learning_rate=0.01, reg=0.5, learning_rate_decay=0.5, early_stopping=3),
         dict(learning_rate=0.01, optimizer="adamw", weight_decay=0.1, schedule="cosine"),
         dict(learning_rate=0.003, optimizer="rmsprop", reg=0.02),
         dict(learning_rate=0.02, optimizer="adamw", weight_decay=0.02)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_member_of_a_mixed_population_equals_the_same_network_alone(data, dtype):
    X, y, Xv, yv = data
    X, Xv = X.astype(dtype), Xv.astype(dtype)
    options = [TrainOptions(num_iters=50, batch_size=32, **o) for o in MIXED]
    members = [Member(fresh_params(i, dtype=dtype), o) for i, o in enumerate(options)]
    train_members(members, X, y, Xv, yv, rng=np.random.default_rng(7))
    tol = 1e-10 if dtype == np.float64 else 2e-4
    for i, (member, o) in enumerate(zip(members, options)):
        alone = fresh_params(i, dtype=dtype)
        history = train_network(alone, X, y, Xv, yv, o, rng=np.random.default_rng(7))
        assert member.state == "complete"
        for name in alone:
            np.testing.assert_allclose(member.params[name], alone[name], rtol=tol, atol=tol)
        np.testing.assert_allclose(member.history["loss_history"], history["loss_history"],
                                   rtol=tol)
        assert member.history["val_acc_history"] == history["val_acc_history"]


def test_diverging_and_pruned_members_leave_without_stopping_the_rest(data):
    X, y, Xv, yv = data
    opts = lambda lr: TrainOptions(learning_rate=lr, num_iters=40, batch_size=32)  # noqa: E731
    members = [Member(fresh_params(1, std=1.0), opts(1e6)), Member(fresh_params(2), opts(0.05)),
               Member(fresh_params(3), opts(0.05))]
    train_members(members, X * 100, y, Xv * 100, yv,
                  on_epoch=lambda i, epoch, record: "pruned at epoch 1"
                  if i == 2 and epoch == 1 else None)
    assert members[0].state == "diverged" and "iteration" in members[0].reason
    assert members[2].state == "pruned" and len(members[2].history["val_acc_history"]) == 2
    assert members[1].state == "complete" and len(members[1].history["loss_history"]) == 40
    assert np.isfinite(members[1].params["W1"]).all()


def test_members_must_share_the_stream(data):
    X, y, Xv, yv = data
    members = [Member(fresh_params(), TrainOptions(batch_size=32)),
               Member(fresh_params(), TrainOptions(batch_size=64))]
    with pytest.raises(ValueError, match="must share batch_size"):
        train_members(members, X, y, Xv, yv)


@pytest.mark.parametrize("members", [1, 3])
@pytest.mark.parametrize("label_dtype", [np.uint8, np.int8, np.uint16, np.int32])
def test_labels_of_any_integer_dtype_train_as_int64_labels(data, label_dtype, members):
    """The step picks scores by label index (y * batch size + column): in the labels'
    own dtype that product would wrap around in uint8 (3 * 200 -> 88)."""
    X, y, Xv, yv = data
    options = TrainOptions(**{**BASE, "batch_size": 200})

    def trained(labels):
        ms = [Member(fresh_params(i), options) for i in range(members)]
        train_members(ms, X, labels, Xv, yv.astype(labels.dtype), rng=np.random.default_rng(3))
        return ms

    for a, b in zip(trained(y.astype(label_dtype)), trained(y.astype(np.int64))):
        for name in a.params:
            np.testing.assert_array_equal(a.params[name], b.params[name])
        assert a.history["loss_history"] == b.history["loss_history"]


@pytest.mark.parametrize("layout", ["fortran", "column slice", "row stride"])
def test_any_memory_layout_of_x_trains_as_its_c_ordered_copy(data, layout):
    """Minibatches of C-ordered data are gathered into reused buffers; any other layout is
    indexed as it is (``np.take`` would copy the whole array on every step)."""
    X, y, Xv, yv = data
    wide = np.hstack([X, np.ones((len(X), 1))])
    views = {"fortran": np.asfortranarray(X), "column slice": wide[:, :X.shape[1]],
             "row stride": np.repeat(X, 2, axis=0)[::2]}

    def trained(rows):
        member = Member(fresh_params(), TrainOptions(**BASE))
        train_members([member], rows, y, Xv, yv, rng=np.random.default_rng(5))
        return member

    a, b = trained(views[layout]), trained(np.ascontiguousarray(X))
    assert not views[layout].flags.c_contiguous
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    assert a.history == b.history


def test_nothing_uses_a_minibatch_after_the_next_is_drawn(data, monkeypatch):
    """The gatherer reuses its buffers: here it fills its one buffer with NaN before each
    gather, so any part of the loop that still read an earlier minibatch (scores at the
    epoch's end, early stopping, callbacks, a population) would change the run."""
    X, y, Xv, yv = data

    class Poisoning(RowGatherer):
        RING = 1

        def __call__(self, idx):
            if self._one is not None:
                self._one.fill(np.nan)
            return super().__call__(idx)

    def trained():
        options = [TrainOptions(**BASE, early_stopping=2),
                   TrainOptions(**{**BASE, "learning_rate": 0.02}, optimizer="adam")]
        members = [Member(fresh_params(i), o) for i, o in enumerate(options)]
        seen = []
        train_members(members, X, y, Xv, yv, rng=np.random.default_rng(6),
                      on_epoch=lambda i, epoch, record: seen.append(dict(record)))
        return members, seen

    a, seen_a = trained()
    monkeypatch.setattr(training, "RowGatherer", Poisoning)
    b, seen_b = trained()
    assert seen_a == seen_b
    for ma, mb in zip(a, b):
        assert ma.history == mb.history
        for name in ma.params:
            np.testing.assert_array_equal(ma.params[name], mb.params[name])


def test_labels_outside_the_classes_are_refused_by_the_loop(data):
    X, y, Xv, yv = data
    bad = y.copy()
    bad[5] = 4  # the network has 4 classes: 0..3
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 4\)"):
        train_members([Member(fresh_params(), TrainOptions(**BASE))], X, bad, Xv, yv)
    with pytest.raises(ValueError, match="y_val must hold labels"):
        train_members([Member(fresh_params(), TrainOptions(**BASE))], X, y, Xv, yv + 10)


def test_weight_decay_to_zero_trains_as_the_reference(data):
    """lr * reg = 1: W1's decay factor is 0, so W1 restarts from its data gradient alone,
    finite and equal to the reference (the folded scale cannot be divided by 0)."""
    X, y, Xv, yv = data
    options = TrainOptions(learning_rate=0.01, reg=100.0, num_iters=20, batch_size=32)
    expected, losses = reference_train(fresh_params(), X, y, options, np.random.default_rng(7))
    params = fresh_params()
    history = train_network(params, X, y, Xv, yv, options, rng=np.random.default_rng(7))
    np.testing.assert_allclose(history["loss_history"], losses, rtol=1e-10)
    for key in expected:
        np.testing.assert_allclose(params[key], expected[key], rtol=1e-10, atol=1e-12)


def test_weight_decay_to_zero_in_a_population_leaves_the_other_member(data):
    X, y, Xv, yv = data
    zeroing = TrainOptions(learning_rate=0.01, reg=100.0, num_iters=20, batch_size=32)
    plain = TrainOptions(learning_rate=0.01, reg=0.1, num_iters=20, batch_size=32)
    members = [Member(fresh_params(seed=1), zeroing), Member(fresh_params(seed=2), plain)]
    train_members(members, X, y, Xv, yv, rng=np.random.default_rng(3))
    for member, seed in zip(members, (1, 2)):
        alone = fresh_params(seed=seed)
        train_network(alone, X, y, Xv, yv, member.options, rng=np.random.default_rng(3))
        assert member.state == "complete"
        for key in alone:
            np.testing.assert_allclose(member.params[key], alone[key], rtol=1e-10, atol=1e-12)


def test_float32_keeps_a_weight_decay_below_float32_precision():
    """lr * reg = 1e-8 (the defaults of ``TwoLayerNet.train``): 1 - 1e-8 is 1 in float32,
    yet W1 decays. All-zero inputs make W1's data gradient 0, so decay is all it sees."""
    X, y = np.zeros((64, 12), np.float32), np.arange(64) % 4
    params = fresh_params(dtype=np.float32)
    W1 = params["W1"].copy()
    train_network(params, X, y, X[:8], y[:8], TrainOptions(
        learning_rate=1e-3, reg=1e-5, learning_rate_decay=1.0, num_iters=1000, batch_size=16))
    np.testing.assert_allclose(params["W1"], W1 * (1 - 1e-8) ** 1000, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_divergence_in_the_last_step_is_reported(data, dtype):
    """The loss is computed before each step: weights that become non-finite in the last
    one (lr * reg overflows) are caught when the run ends, not returned as complete."""
    X, y, Xv, yv = (a.astype(dtype) if a.dtype.kind == "f" else a for a in data)
    net = TwoLayerNet(12, 6, 4, std=1.0, random_state=0, dtype=dtype)
    with pytest.raises(TrainingDivergedError, match="at iteration 1 ") as caught, \
            np.errstate(over="ignore", invalid="ignore"):
        net.train(X, y, Xv, yv, learning_rate=1e300, reg=1e300, num_iters=1, batch_size=32)
    assert len(caught.value.history["loss_history"]) == 1


def test_a_member_diverging_in_the_last_step_leaves_the_others_complete(data):
    X, y, Xv, yv = data
    members = [Member(fresh_params(), TrainOptions(learning_rate=1e300, reg=1e300, num_iters=1)),
               Member(fresh_params(), TrainOptions(learning_rate=0.01, num_iters=1))]
    with np.errstate(over="ignore", invalid="ignore"):
        train_members(members, X, y, Xv, yv, rng=np.random.default_rng(0))
    assert [m.state for m in members] == ["diverged", "complete"]
    assert "iteration 0" in members[0].reason
    assert all(np.isfinite(a).all() for a in members[1].params.values())


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_stop_signal_inside_a_step_stops_after_it(data, monkeypatch, name):
    """A real SIGINT (or, as the ``nndl`` command handles it, SIGTERM) delivered in the
    middle of a step (between W1's decay and its gradient update) stops the run after that
    step: the weights are those of a run as long as the loss history, never half-updated,
    and the handlers are back afterwards."""
    import os
    import signal

    from nndl import _blas
    from nndl._stops import Terminated, stop_signals_like_ctrl_c

    X, y, Xv, yv = data
    options = TrainOptions(**{**BASE, "reg": 0.5})
    calls, add_product = [], _blas.add_product

    def interrupted_add_product(*args):
        calls.append(1)
        if len(calls) == 7:
            os.kill(os.getpid(), getattr(signal, name))
        return add_product(*args)

    monkeypatch.setattr(_blas, "add_product", interrupted_add_product)
    params = fresh_params()
    history = training.new_history()
    with pytest.raises(KeyboardInterrupt) as stop, stop_signals_like_ctrl_c():
        train_network(params, X, y, Xv, yv, options, rng=np.random.default_rng(4),
                      history=history)
    monkeypatch.undo()
    assert isinstance(stop.value, Terminated) == (name == "SIGTERM")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    steps = len(history["loss_history"])
    assert steps == 7
    alone = fresh_params()
    train_network(alone, X, y, Xv, yv, TrainOptions(**{**BASE, "reg": 0.5, "num_iters": steps}),
                  rng=np.random.default_rng(4))
    for key in alone:
        np.testing.assert_array_equal(params[key], alone[key])


def test_a_dropout_member_leaves_the_others_minibatches_alone(data):
    """The dropout masks' generator is derived from the stream's state, not drawn from it:
    a plain member trains the same with or without a dropout member beside it."""
    X, y, Xv, yv = data
    plain = Member(fresh_params(), TrainOptions(**BASE))
    train_members([plain, Member(fresh_params(seed=2), TrainOptions(**BASE, dropout=0.3))],
                  X, y, Xv, yv, rng=np.random.default_rng(9))
    alone = Member(fresh_params(), TrainOptions(**BASE))
    train_members([alone], X, y, Xv, yv, rng=np.random.default_rng(9))
    np.testing.assert_allclose(plain.history["loss_history"], alone.history["loss_history"],
                               rtol=1e-12)
    for key in alone.params:
        np.testing.assert_allclose(plain.params[key], alone.params[key], rtol=1e-12, atol=1e-15)


def _train(data, X=None, X_val=None, params=None, **kwargs):
    Xd, y, Xv, yv = data
    return train_network(fresh_params() if params is None else params,
                         Xd if X is None else X, y, Xv if X_val is None else X_val, yv,
                         TrainOptions(**{**BASE, "num_iters": 3}), **kwargs)


@pytest.mark.parametrize("change,message", [
    (lambda X, Xv: (X[:, :10], Xv), r"X must be 2-D with 12 columns .* got shape \(320, 10\)"),
    (lambda X, Xv: (np.hstack([X, X]), Xv), r"X must be 2-D with 12 columns"),
    (lambda X, Xv: (X, np.hstack([Xv, Xv])), r"X_val must be 2-D with 12 columns"),
    (lambda X, Xv: (X[:, 0], Xv), r"X must be 2-D .* got shape \(320,\)"),
    (lambda X, Xv: (X, Xv[:, :3]), r"X_val must be 2-D with 12 columns"),
])
def test_data_of_another_width_is_refused_before_any_product(data, change, message):
    """BLAS trusts the sizes it is given: a width that does not match W1 is refused by name
    (before: out-of-bounds reads and writes, garbage losses or a segfault)."""
    X, Xv = change(data[0], data[2])
    with pytest.raises(ValueError, match=message):
        _train(data, X=X, X_val=Xv)


@pytest.mark.parametrize("width", [11, 24])
def test_a_transform_returning_rows_of_another_width_is_refused(width):
    rng = np.random.default_rng(0)
    images, y = rng.normal(size=(100, 2, 2, 3)), rng.integers(0, 4, 100)
    net = TwoLayerNet(12, 6, 4, random_state=0)
    with pytest.raises(ValueError, match=rf"batch_transform must turn 10 images into rows of "
                                         rf"shape \(10, 12\) .* got \(10, {width}\)"):
        net.train(images, y, images.reshape(100, -1)[:20], y[:20], num_iters=2,
                  batch_size=10, batch_transform=lambda b, r: np.resize(b, (len(b), width)))


@pytest.mark.parametrize("soft,message", [
    (np.full(320, 0.9), r"soft_targets must have shape \(320, 4\)"),
    (np.full((300, 4), 0.25), r"soft_targets must have shape \(320, 4\)"),
    (np.full((320, 5), 0.2), r"soft_targets must have shape \(320, 4\)"),
    (np.full((320, 4), 0.3), "sum to 1"),
    (np.full((320, 4), np.nan), "finite"),
    (np.tile([1.5, -0.5, 0.0, 0.0], (320, 1)), "non-negative"),
])
def test_soft_targets_that_are_not_distributions_per_row_are_refused(data, soft, message):
    with pytest.raises(ValueError, match=message):
        _train(data, soft_targets=soft)


def test_other_inputs_of_the_loop_get_one_clear_error(data):
    X, y, Xv, yv = data
    with pytest.raises(ValueError, match="X_val contains NaN or infinite values"):
        _train(data, X_val=np.where(np.arange(12) == 3, np.inf, Xv))
    with pytest.raises(ValueError, match="X contains NaN or infinite values"):
        _train(data, X=np.where(np.arange(12) == 3, np.nan, X))
    with pytest.raises(ValueError, match=r"X must be 2-D .* got shape \(\)"):
        _train(data, X=3.0)
    with pytest.raises(TypeError, match="options must be a TrainOptions, got dict"):
        train_network(fresh_params(), X, y, Xv, yv, dict(BASE))
    with pytest.raises(TypeError, match="params must be float32 or float64 arrays, got float16"):
        _train(data, params={k: v.astype(np.float16) for k, v in fresh_params().items()})
    wider = TwoLayerNet(12, 7, 4, random_state=0).params
    with pytest.raises(ValueError, match=r"members of one population must share layer sizes"):
        train_members([Member(fresh_params(), TrainOptions(**BASE)),
                       Member(wider, TrainOptions(**BASE))], X, y, Xv, yv)
    single = {k: v.astype(np.float32) for k, v in fresh_params().items()}
    with pytest.raises(ValueError, match=r"share layer sizes and dtype: W1 \(6, 12\) float32"):
        train_members([Member(fresh_params(), TrainOptions(**BASE)),
                       Member(single, TrainOptions(**BASE))], X, y, Xv, yv)


def test_ctrl_c_leaves_the_weights_reached(data):
    X, y, Xv, yv = data
    params = fresh_params()
    before = params["W1"].copy()

    def interrupt(epoch, record):
        if epoch == 2:
            raise KeyboardInterrupt
        return False

    with pytest.raises(KeyboardInterrupt):
        train_network(params, X, y, Xv, yv, TrainOptions(**BASE), callback=interrupt)
    assert not np.array_equal(params["W1"], before) and np.isfinite(params["W1"]).all()


@pytest.mark.parametrize("sampler", ["shuffle", "blocks"])
def test_epoch_samplers_see_each_row_once_per_epoch(sampler):
    sample = MinibatchSampler(sampler, np.random.default_rng(0), 100, 20)
    seen = []
    for _ in range(5):
        idx = sample()
        seen.extend(range(100)[idx] if isinstance(idx, slice) else idx.tolist())
    assert sorted(seen) == list(range(100))


@pytest.mark.parametrize(("n", "missing", "twice"), [(95, 0, 5), (105, 5, 0)])
def test_shuffle_epochs_are_whole_passes_when_the_batch_does_not_divide_the_rows(n, missing,
                                                                                  twice):
    """An epoch of the loop is round(n / 20) = 5 batches of 20: 100 draws of n rows, so
    every row once and 5 twice (n = 95), or all rows but 5 (n = 105), in every epoch."""
    sample = MinibatchSampler("shuffle", np.random.default_rng(0), n, 20)
    for _ in range(3):
        counts = np.bincount(np.concatenate([sample() for _ in range(5)]), minlength=n)
        assert np.sum(counts == 0) == missing and np.sum(counts == 2) == twice
        assert counts.max() <= 2


def test_without_validation_rows_nothing_is_scored_and_training_is_the_same(data):
    """X_val None: no per-epoch scoring (two forward passes an epoch saved), the same
    weights and losses as with scoring, and the record's accuracies None."""
    X, y, X_val, y_val = data
    runs, records = [], []
    for val in ((X_val, y_val), (None, None)):
        params = TwoLayerNet(12, 10, 4, std=0.1, random_state=0).params
        history = train_network(params, X, y, *val, TrainOptions(num_iters=30, batch_size=40),
                                rng=1, callback=lambda e, r: records.append(r) and False)
        runs.append((params, history))
    (scored, h1), (unscored, h2) = runs
    np.testing.assert_array_equal(scored["W1"], unscored["W1"])
    assert h1["loss_history"] == h2["loss_history"] and h1["epoch_iterations"] == \
        h2["epoch_iterations"] == [0, 8, 16, 24]
    assert len(h1["val_acc_history"]) == 4 and h2["val_acc_history"] == []
    assert records[-1]["val_acc"] is None and records[-1]["train_acc"] is None
    with pytest.raises(ValueError, match="early stopping needs validation rows"):
        train_network(TwoLayerNet(12, 10, 4, random_state=0).params, X, y, None, None,
                      TrainOptions(num_iters=5, early_stopping=2))
    with pytest.raises(ValueError, match="given together"):
        train_network(TwoLayerNet(12, 10, 4, random_state=0).params, X, y, X_val, None)
