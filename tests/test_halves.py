"""The lone SGD step split between two cores (``nndl._halves``): the same training to
rounding, BLAS's threads given back on every exit, the worker's errors raised, Ctrl-C."""

import os
import signal

import numpy as np
import pytest

from nndl import _blas, _halves
from nndl.config import TrainOptions
from nndl.neural_net import TwoLayerNet
from nndl.training import new_history, train_network

OPTIONS = dict(learning_rate=0.05, reg=0.01, num_iters=60, batch_size=32)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 64)).astype(np.float32)
    y = rng.integers(0, 4, 500)
    return X, y, X[:50], y[:50]


@pytest.fixture
def split(monkeypatch):
    """Split every eligible step whatever this machine's BLAS threads, and count the
    forward products the split did."""
    if not _blas.available(np.float32) or _blas.num_threads() is None:
        pytest.skip("NumPy's OpenBLAS is not found: the split is never used")
    monkeypatch.setattr(_halves, "MIN_WORK", 0)
    monkeypatch.setattr(_halves, "_two_blas_threads", lambda: True)
    calls = []
    forward = _halves.Halves.forward
    monkeypatch.setattr(_halves.Halves, "forward",
                        lambda self, *args: (calls.append(1), forward(self, *args))[1])
    return calls


def _train(data, seed=7, dtype=np.float32, **options):
    X, y, Xv, yv = (a.astype(dtype) if a.dtype.kind == "f" else a for a in data)
    params = TwoLayerNet(64, 6, 4, std=0.1, random_state=1, dtype=dtype).params
    history = train_network(params, X, y, Xv, yv, TrainOptions(**{**OPTIONS, **options}),
                            rng=np.random.default_rng(seed))
    return params, history


@pytest.mark.parametrize("extra", [{}, dict(dropout=0.2, label_smoothing=0.1)])
@pytest.mark.parametrize("sampler", ["replacement", "shuffle"])
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_the_split_step_trains_as_the_whole_one(data, split, sampler, dtype, tol, extra,
                                                monkeypatch):
    """float32 keeps the first layer column by column, float64 row by row (halves of it
    are then strided blocks, and the main thread sums the squares of all of it). Dropout
    and label smoothing are the step's, not the products': they split too."""
    threads = _blas.num_threads()
    params, history = _train(data, batch_sampler=sampler, dtype=dtype, **extra)
    assert len(split) == OPTIONS["num_iters"]  # every step went through the split
    assert _blas.num_threads() == threads  # given back
    monkeypatch.setattr(_halves, "MIN_WORK", 10**18)  # now never split
    whole, expected = _train(data, batch_sampler=sampler, dtype=dtype, **extra)
    assert len(split) == OPTIONS["num_iters"]
    np.testing.assert_allclose(history["loss_history"], expected["loss_history"], rtol=tol)
    assert history["train_acc_history"] == expected["train_acc_history"]
    assert history["val_acc_history"] == expected["val_acc_history"]
    for key in whole:
        assert params[key].dtype == dtype
        np.testing.assert_allclose(params[key], whole[key], rtol=tol, atol=tol / 10)


def test_the_blocks_sampler_and_other_rules_keep_the_whole_step(data, split):
    for options in (dict(batch_sampler="blocks"), dict(optimizer="momentum")):
        _train(data, **options)
    assert split == []


@pytest.mark.parametrize("make", [
    lambda X, V: (np.asfortranarray(X), V),  # np.take would copy the whole array
    lambda X, V: (X[:, :63], V[:63]),  # an odd width
    lambda X, V: (X.astype(np.float64), V),  # another dtype than the layer
    lambda X, V: (list(X), V),
    lambda X, V: (X, np.zeros((128, 6), np.float32)[::2]),  # a layer neither way contiguous
])
def test_only_c_ordered_data_of_the_layers_dtype_and_an_even_width_is_split(data, make):
    X, V = make(data[0], np.zeros((64, 6), np.float32))
    assert not _halves.worth_splitting(X, V, 32)


def test_a_split_needs_two_blas_threads_and_enough_work(data, monkeypatch):
    X, V = data[0], np.zeros((64, 6), np.float32)
    monkeypatch.setattr(_halves, "MIN_WORK", 32 * 64 * 6)
    for threads, expected in ((1, False), (2, _blas.available(np.float32)), (8, False)):
        monkeypatch.setattr(_blas, "num_threads", lambda threads=threads: threads)
        assert _halves.worth_splitting(X, V, 32) is expected
    monkeypatch.setattr(_halves, "MIN_WORK", 32 * 64 * 6 + 1)
    assert not _halves.worth_splitting(X, V, 32)


def test_an_error_in_the_worker_reaches_the_caller_and_threads_come_back(data, split,
                                                                         monkeypatch):
    threads = _blas.num_threads()
    backward, worker_calls = _halves.Halves._backward, []

    def failing(self, side, dhidden, alpha):
        worker_calls.extend([1] if side == 1 else [])
        if len(worker_calls) == 5 and side == 1:
            raise MemoryError("the worker's half")
        return backward(self, side, dhidden, alpha)

    monkeypatch.setattr(_halves.Halves, "_backward", failing)
    with pytest.raises(MemoryError, match="the worker's half"):
        _train(data)
    assert _blas.num_threads() == threads


def test_ctrl_c_in_a_split_step_stops_after_it(data, split, monkeypatch):
    """SIGINT while the worker runs its half: the run stops after that whole step."""
    X, y, Xv, yv = data
    forward, worker_calls = _halves.Halves._forward, []

    def interrupted(self, side, idx, alpha):
        worker_calls.extend([1] if side == 1 else [])
        if len(worker_calls) == 9 and side == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return forward(self, side, idx, alpha)

    monkeypatch.setattr(_halves.Halves, "_forward", interrupted)
    params = TwoLayerNet(64, 6, 4, std=0.1, random_state=1, dtype=np.float32).params
    history = new_history()
    with pytest.raises(KeyboardInterrupt):
        train_network(params, X, y, Xv, yv, TrainOptions(**OPTIONS),
                      rng=np.random.default_rng(7), history=history)
    assert len(history["loss_history"]) == 9
    monkeypatch.setattr(_halves.Halves, "_forward", forward)
    alone, _ = _train(data, num_iters=9)
    for key in alone:
        np.testing.assert_array_equal(params[key], alone[key])


def _worker_alive():
    import threading

    return any(t.name == "nndl-halves" for t in threading.enumerate())


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_a_fold_of_the_weight_scale_keeps_the_loss_right(data, split, dtype, tol,
                                                          monkeypatch):
    """lr * reg = 0.1: the scale shrinks by 0.9 a step and is folded into V every ~44
    steps; the split's cached norms of V follow the fold (the loss was 769 for 2.37)."""
    options = dict(learning_rate=1e-3, reg=100.0, learning_rate_decay=1.0, num_iters=100,
                   dtype=dtype)
    params, history = _train(data, **options)
    assert len(split) == 100
    monkeypatch.setattr(_halves, "MIN_WORK", 10**18)
    whole, expected = _train(data, **options)
    np.testing.assert_allclose(history["loss_history"], expected["loss_history"], rtol=tol)
    for key in whole:
        np.testing.assert_allclose(params[key], whole[key], rtol=tol, atol=tol / 10)


def test_an_error_before_the_first_step_leaves_nothing_held(data, split, monkeypatch):
    from nndl import training

    threads = _blas.num_threads()

    def failing_bar(*args):
        raise RuntimeError("no bar")

    monkeypatch.setattr(training, "_progress_bar", failing_bar)
    with pytest.raises(RuntimeError, match="no bar"):
        _train(data)
    monkeypatch.setattr(training, "held_stops", failing_bar)
    with pytest.raises(RuntimeError, match="no bar"):
        _train(data)
    assert _blas.num_threads() == threads and not _worker_alive()


def _interrupt_step_5(monkeypatch, then):
    """In step 5, Ctrl-C while the main thread waits for the worker's forward half (so the
    loop stops after that step), then ``then()`` in the worker's gradient half, after the
    loop has stopped and while the run waits for that half."""
    import time

    forward, backward, calls = _halves.Halves._forward, _halves.Halves._backward, []

    def forward_5(self, side, idx, alpha):
        calls.extend([1] if side == 1 else [])
        if len(calls) == 5 and side == 1:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # handled while the main thread waits
        return forward(self, side, idx, alpha)

    def backward_5(self, side, dhidden, alpha):
        if len(calls) == 5 and side == 1:
            time.sleep(0.2)  # the loop has stopped by now and waits for this half
            then()
        return backward(self, side, dhidden, alpha)

    monkeypatch.setattr(_halves.Halves, "_forward", forward_5)
    monkeypatch.setattr(_halves.Halves, "_backward", backward_5)
    return forward, backward


def test_a_second_ctrl_c_while_the_worker_finishes_still_settles_the_weights(data, split,
                                                                             monkeypatch):
    """Pressed again while the run waits for the worker's last half: the weights of 5 whole
    steps are still written, the worker is gone, BLAS has its threads back, and the
    interrupt is raised."""
    import time

    def press_again():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)

    X, y, Xv, yv = data
    threads = _blas.num_threads()
    forward, backward = _interrupt_step_5(monkeypatch, press_again)
    params = TwoLayerNet(64, 6, 4, std=0.1, random_state=1, dtype=np.float32).params
    original, history = params["W1"], new_history()
    with pytest.raises(KeyboardInterrupt):
        train_network(params, X, y, Xv, yv, TrainOptions(**OPTIONS),
                      rng=np.random.default_rng(7), history=history)
    assert _blas.num_threads() == threads and not _worker_alive()
    assert params["W1"] is not original and len(history["loss_history"]) == 5
    monkeypatch.setattr(_halves.Halves, "_forward", forward)
    monkeypatch.setattr(_halves.Halves, "_backward", backward)
    alone, _ = _train(data, num_iters=5)
    for key in alone:
        np.testing.assert_array_equal(params[key], alone[key])


def test_a_worker_error_during_an_interrupted_step_is_not_lost(data, split, monkeypatch):
    """The worker's last gradient half fails after the loop has stopped for Ctrl-C: the
    weights miss that half, so the worker's error is what is raised."""
    def fail():
        raise MemoryError("the worker's half")

    threads = _blas.num_threads()
    _interrupt_step_5(monkeypatch, fail)
    with pytest.raises(MemoryError, match="the worker's half"):
        _train(data)
    assert _blas.num_threads() == threads and not _worker_alive()


def test_splits_in_two_threads_at_once_give_blas_its_threads_back(data, split):
    """BLAS's thread count is process-wide: the last split to end restores it."""
    import threading

    threads, errors = _blas.num_threads(), []

    def train(iterations):
        try:
            _train(data, num_iters=iterations)
        except Exception as error:  # reported below
            errors.append(error)

    for _ in range(5):
        workers = [threading.Thread(target=train, args=(n,)) for n in (20, 40)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert not errors and _blas.num_threads() == threads and not _worker_alive()
