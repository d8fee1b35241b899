import numpy as np
import pytest

from nndl.data_utils import get_CIFAR10_data, get_CIFAR10_rows, load_CIFAR10
from tests.fakecifar import expected_images, make_arrays, write_python_folder


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    batches = make_arrays()
    write_python_folder(tmp_path / "cifar-10-batches-py", batches)
    return tmp_path, batches


def test_load_CIFAR10_matches_assignment_types(fake_root):
    root, batches = fake_root
    X_train, y_train, X_test, y_test = load_CIFAR10(root / "cifar-10-batches-py")
    assert X_train.dtype == np.float64 and X_train.shape == (100, 32, 32, 3)
    np.testing.assert_array_equal(X_test, expected_images(batches[5][0]))
    assert y_train.dtype.kind == "i"


def test_split_and_mean_subtraction_like_the_assignment(fake_root):
    root, _ = fake_root
    X_tr, y_tr, X_te, y_te = load_CIFAR10(root)
    split = get_CIFAR10_rows(80, 20, 10, root=root)
    X_train, y_train, X_val, y_val, X_test, y_test = split
    mean_image = np.mean(X_tr[:80], axis=0)
    np.testing.assert_array_equal(X_train, (X_tr[:80] - mean_image).reshape(80, -1))
    np.testing.assert_array_equal(X_val, (X_tr[80:100] - mean_image).reshape(20, -1))
    np.testing.assert_array_equal(X_test, (X_te[:10] - mean_image).reshape(10, -1))
    np.testing.assert_array_equal(y_val, y_tr[80:100])
    np.testing.assert_array_equal(split.mean_image, mean_image)
    assert split.class_names[3] == "cat"


def test_the_second_assignments_dict_of_channel_first_images(fake_root):
    root, _ = fake_root
    X_tr, y_tr, X_te, y_te = load_CIFAR10(root)
    data = get_CIFAR10_data(80, 20, 10, root=root)
    assert list(data) == ["X_train", "y_train", "X_val", "y_val", "X_test", "y_test"]
    mean_image = np.mean(X_tr[:80], axis=0)  # the course's: float64, training images only
    first = (0, 3, 1, 2)  # channels first
    np.testing.assert_array_equal(data["X_train"], (X_tr[:80] - mean_image).transpose(first))
    np.testing.assert_array_equal(data["X_val"], (X_tr[80:] - mean_image).transpose(first))
    np.testing.assert_array_equal(data["X_test"], (X_te[:10] - mean_image).transpose(first))
    assert data["X_train"].shape == (80, 3, 32, 32) and data["X_train"].flags.c_contiguous
    np.testing.assert_array_equal(data["y_val"], y_tr[80:])
    np.testing.assert_array_equal(data["y_test"], y_te[:10])
    raw = get_CIFAR10_data(80, 20, 10, subtract_mean=False, root=root, dtype=np.float32)
    np.testing.assert_array_equal(raw["X_test"], X_te[:10].transpose(first))
    assert raw["X_train"].dtype == np.float32


def test_options_float32_full_test_and_no_mean(fake_root):
    root, _ = fake_root
    X_train, _, _, _, X_test, _ = get_CIFAR10_rows(80, 20, 10, root=root, dtype=np.float32,
                                                   full_test=True)
    assert X_train.dtype == np.float32 and X_test.shape == (20, 3072)
    raw = get_CIFAR10_rows(80, 20, 10, subtract_mean=False, root=root)
    assert raw.mean_image is None and raw[0].min() >= 0


def test_standardize_fit_on_training_split_only(fake_root):
    root, _ = fake_root
    split = get_CIFAR10_rows(80, 20, 10, root=root, preprocessing="standardize")
    np.testing.assert_allclose(split[0].mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(split[0].std(axis=0), 1, atol=1e-9)
    assert abs(split[2].mean()) > 1e-6  # validation used the training statistics
    assert split.transform.names == ["standardize"]


def test_bad_split_sizes(fake_root):
    root, _ = fake_root
    with pytest.raises(ValueError, match="num_training \\+ num_validation must be at most 100"):
        get_CIFAR10_rows(90, 20, 10, root=root)
    with pytest.raises(ValueError, match="num_test must be at most 20"):
        get_CIFAR10_rows(80, 20, 30, root=root)
