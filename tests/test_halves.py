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
    monkeypatch.setattr(_halves, "worth_splitting", _with_two_threads(_halves.worth_splitting))
    calls = []
    forward = _halves.Halves.forward
    monkeypatch.setattr(_halves.Halves, "forward",
                        lambda self, *args: (calls.append(1), forward(self, *args))[1])
    return calls


def _with_two_threads(check):
    def worth_splitting(X, V, batch_size):
        threads = _blas.num_threads
        _blas.num_threads = lambda: 2
        try:
            return check(X, V, batch_size)
        finally:
            _blas.num_threads = threads
    return worth_splitting


def _train(data, seed=7, **options):
    X, y, Xv, yv = data
    params = TwoLayerNet(64, 6, 4, std=0.1, random_state=1, dtype=np.float32).params
    history = train_network(params, X, y, Xv, yv, TrainOptions(**{**OPTIONS, **options}),
                            rng=np.random.default_rng(seed))
    return params, history


@pytest.mark.parametrize("sampler", ["replacement", "shuffle"])
def test_the_split_step_trains_as_the_whole_one(data, split, sampler, monkeypatch):
    threads = _blas.num_threads()
    params, history = _train(data, batch_sampler=sampler)
    assert len(split) == OPTIONS["num_iters"]  # every step went through the split
    assert _blas.num_threads() == threads  # given back
    monkeypatch.setattr(_halves, "MIN_WORK", 10**18)  # now never split
    whole, expected = _train(data, batch_sampler=sampler)
    assert len(split) == OPTIONS["num_iters"]
    np.testing.assert_allclose(history["loss_history"], expected["loss_history"], rtol=1e-5)
    assert history["train_acc_history"] == expected["train_acc_history"]
    assert history["val_acc_history"] == expected["val_acc_history"]
    for key in whole:
        np.testing.assert_allclose(params[key], whole[key], rtol=1e-5, atol=1e-6)


def test_the_blocks_sampler_and_other_options_keep_the_whole_step(data, split):
    for options in (dict(batch_sampler="blocks"), dict(optimizer="momentum"),
                    dict(dropout=0.2), dict(label_smoothing=0.1)):
        _train(data, **options)
    assert split == []


@pytest.mark.parametrize("make", [
    lambda X, V: (np.asfortranarray(X), V),  # np.take would copy the whole array
    lambda X, V: (X[:, :63], V[:63]),  # an odd width
    lambda X, V: (X.astype(np.float64), V),  # another dtype than the layer
    lambda X, V: (list(X), V),
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
    monkeypatch.undo()
    monkeypatch.setattr(_halves, "MIN_WORK", 0)
    monkeypatch.setattr(_halves, "worth_splitting", _with_two_threads(_halves.worth_splitting))
    alone, _ = _train(data, num_iters=9)
    for key in alone:
        np.testing.assert_array_equal(params[key], alone[key])
