import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _restore_global_rng():
    """Tests that seed NumPy's global RNG must not leak that state to others."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


@pytest.fixture
def blobs():
    """A small separable 3-class problem: (X_train, y_train, X_val, y_val)."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, size=(3, 8))
    y = rng.integers(0, 3, 300)
    X = centers[y] + rng.normal(size=(300, 8))
    return X[:240], y[:240], X[240:], y[240:]
