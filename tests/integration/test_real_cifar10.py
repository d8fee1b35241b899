"""The real CIFAR-10 copy that $NNDL_DATA points at (CI sets it)."""

import os

import numpy as np
import pytest

from nndl.data import find_cifar10, load_cifar10
from nndl.data_utils import get_CIFAR10_data, get_CIFAR10_rows, load_CIFAR10


@pytest.fixture(scope="module")
def real_root():
    root = os.environ.get("NNDL_DATA")
    if not root or find_cifar10(root) is None:
        if os.environ.get("CI"):
            pytest.fail("CI=true but $NNDL_DATA does not point at CIFAR-10")
        pytest.skip("set NNDL_DATA to a folder holding cifar-10-batches-py")
    return root


def test_real_copy_labels_and_shapes(real_root):
    data = load_cifar10(real_root, download=False)
    assert data.y_train[:5].tolist() == [6, 9, 9, 4, 1]
    assert data.y_test[:5].tolist() == [3, 8, 8, 0, 6]
    assert data.X_train.shape == (50000, 32, 32, 3) and data.X_test.shape == (10000, 32, 32, 3)
    assert np.bincount(data.y_train).tolist() == [5000] * 10


@pytest.mark.slow
def test_second_load_is_served_from_the_npy_cache(real_root, monkeypatch):
    load_CIFAR10(real_root)  # fills the cache if needed
    monkeypatch.setattr("nndl.data.cache.read_source", lambda s: pytest.fail("decoded again"))
    X_train, y_train, X_test, y_test = load_CIFAR10(real_root)
    assert X_train.dtype == np.float64 and X_train.shape == (50000, 32, 32, 3)


def test_assignment_split_on_real_data(real_root):
    X_train, y_train, X_val, y_val, X_test, y_test = get_CIFAR10_rows(root=real_root,
                                                                      dtype=np.float32)
    assert X_train.shape == (49000, 3072) and X_val.shape == (1000, 3072)
    assert X_test.shape == (1000, 3072)
    assert y_val[:3].tolist() == load_cifar10(real_root).y_train[49000:49003].tolist()
    assert abs(float(X_train.mean())) < 1e-3


def test_second_assignment_data_on_real_data(real_root):
    data = get_CIFAR10_data(2000, 500, 300, root=real_root)
    shapes = {k: v.shape for k, v in data.items()}
    assert shapes == {"X_train": (2000, 3, 32, 32), "y_train": (2000,),
                      "X_val": (500, 3, 32, 32), "y_val": (500,),
                      "X_test": (300, 3, 32, 32), "y_test": (300,)}
    rows = get_CIFAR10_rows(2000, 500, 300, root=real_root)
    np.testing.assert_array_equal(data["X_val"].transpose(0, 2, 3, 1).reshape(500, -1), rows[2])
    assert abs(float(data["X_train"].mean())) < 1e-9
