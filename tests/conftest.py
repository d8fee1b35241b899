import os

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _restore_global_rng():
    """Tests that seed NumPy's global RNG must not leak that state to others."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


def make_blobs(classes, dims, spread, n, n_train):
    """Gaussian clusters around ``classes`` random centers (std ``spread``) in ``dims``
    dimensions: (X_train, y_train, X_val, y_val), the first ``n_train`` of ``n`` for training."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, spread, size=(classes, dims))
    y = rng.integers(0, classes, n)
    X = centers[y] + rng.normal(size=(n, dims))
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


@pytest.fixture
def blobs():
    """A small separable 3-class problem: (X_train, y_train, X_val, y_val)."""
    return make_blobs(classes=3, dims=8, spread=3, n=300, n_train=240)


@pytest.fixture
def real_cifar10_root():
    """``$NNDL_DATA`` when it holds the real CIFAR-10; else the test is skipped."""
    from nndl.data import find_cifar10

    root = os.environ.get("NNDL_DATA")
    if not root or find_cifar10(root) is None:
        pytest.skip("set NNDL_DATA to a folder holding cifar-10-batches-py")
    return root
