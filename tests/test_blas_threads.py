"""Small steps train on one BLAS thread (a second costs more than it saves there), large
ones keep BLAS's own count, and the count is given back afterwards."""

import numpy as np
import pytest

from nndl import _blas
from nndl.config import TrainOptions
from nndl.neural_net import TwoLayerNet
from nndl.training import train_network

pytestmark = pytest.mark.skipif(_blas.num_threads() is None, reason="no OpenBLAS found")


def _threads_while_training(D, H, batch_size, optimizer="sgd"):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(400, D)), rng.integers(0, 3, 400)
    seen = []
    net = TwoLayerNet(D, H, 3, std=0.01, random_state=0)
    train_network(net.params, X, y, X[:50], y[:50],
                  TrainOptions(num_iters=4, batch_size=batch_size, optimizer=optimizer),
                  callback=lambda epoch, record: seen.append(_blas.num_threads()) and False)
    return set(seen)


def test_small_steps_hold_blas_at_one_thread_and_give_it_back():
    before = _blas.set_num_threads(2)
    try:
        assert 64 * 20 * 200 < _blas.SMALL_WORK
        assert _threads_while_training(D=64, H=20, batch_size=200) == {1}
        assert _blas.num_threads() == 2
        big_H = _blas.SMALL_WORK // (200 * 64) + 1  # B * D * H just at the limit
        # (Adam: one plain-SGD network this large would be split between the cores instead,
        # nndl._halves, each half on one thread)
        assert _threads_while_training(D=64, H=big_H, batch_size=200, optimizer="adam") == {2}
    finally:
        _blas.set_num_threads(before)


def test_holders_at_once_give_back_what_the_first_found():
    before = _blas.set_num_threads(2)
    try:
        _blas.hold_one_thread()
        with _blas.one_thread():
            assert _blas.num_threads() == 1
        assert _blas.num_threads() == 1  # the first holder still holds
        _blas.release_threads()
        assert _blas.num_threads() == 2
        with _blas.one_thread(enabled=False):
            assert _blas.num_threads() == 2
    finally:
        _blas.set_num_threads(before)
