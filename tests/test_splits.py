import os
from types import SimpleNamespace

import numpy as np
import pytest

from nndl.splits import RowSubset, split_dataset, stratified_split


def dataset(name="mine", n=200, with_test=False, classes=(0.6, 0.3, 0.1)):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(len(classes)), [round(f * n) for f in classes])
    X = np.arange(n)[:, None, None, None] * np.ones((1, 2, 2, 1), dtype=np.int64)  # row = id
    X_test = np.zeros((30, 2, 2, 1)) if with_test else None
    y_test = rng.integers(0, len(classes), 30) if with_test else None
    return SimpleNamespace(name=name, X_train=X, y_train=y, X_test=X_test, y_test=y_test)


def ids(images):
    return np.asarray(images)[:, 0, 0, 0]


def test_stratified_split_keeps_each_class_share():
    y = np.repeat([0, 1, 2], [60, 30, 10])
    kept, taken = stratified_split(y, 10, np.random.default_rng(1))
    assert np.bincount(y[taken]).tolist() == [6, 3, 1]
    assert len(kept) == 90 and not set(kept) & set(taken)
    again = stratified_split(y, 10, np.random.default_rng(1))[1]
    assert np.array_equal(taken, again)  # the seed decides


def test_split_without_official_test_covers_every_image_once():
    s = split_dataset(dataset(), seed=3)
    train, val, test = ids(s.train_images[np.arange(len(s.y_train))]), ids(s.val_images), \
        ids(s.test_images)
    assert (len(train), len(val), len(test)) == (144, 16, 40)  # 20% test, 10% of the rest
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(200))
    assert np.bincount(s.y_test).tolist() == [24, 12, 4]
    assert isinstance(s.train_images, RowSubset)


def test_split_with_official_test_and_sizes():
    s = split_dataset(dataset(with_test=True), num_validation=0.25, num_test=10,
                      num_training=100)
    assert len(s.y_test) == 10 and len(s.y_val) == 50 and len(s.y_train) == 100
    assert s.val_images.shape == (50, 2, 2, 1)


def test_cifar10_keeps_the_assignments_contiguous_split():
    data = dataset(name="cifar10", with_test=True)
    s = split_dataset(data, num_training=150, num_validation=20, num_test=5)
    assert ids(s.train_images).tolist() == list(range(150))
    assert ids(s.val_images).tolist() == list(range(150, 170))
    assert len(s.y_test) == 5


def test_row_subset_gathers_only_its_rows():
    X = np.arange(10)[:, None] * 10
    sub = RowSubset(X, [7, 2, 5])
    assert len(sub) == 3 and sub.shape == (3, 1)
    assert sub[np.array([2, 0])].ravel().tolist() == [50, 70]
    assert sub[1:3].ravel().tolist() == [20, 50]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"num_validation": 1.5}, "fraction must be in"),
    ({"num_training": 10_000}, "num_training must be in"),
    ({"num_test": 500}, "num_test must be in"),
])
def test_impossible_sizes_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        split_dataset(dataset(), **kwargs)


def _resident_kb(path):
    """Resident kB of this process's mappings of ``path`` (Linux)."""
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        if line[0] in "0123456789abcdef" and "-" in line.split()[0]:
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="Linux /proc only")
def test_rows_of_a_memory_map_are_read_without_mapping_the_file(tmp_path):
    path = tmp_path / "rows.npy"
    data = np.arange(4096 * 1024, dtype=np.int64).reshape(4096, 256, 4) % 251
    np.save(path, data.astype(np.uint8))  # 4 MB
    images = np.load(path, mmap_mode="r")
    sub = RowSubset(images[10:], np.arange(4000) * 997 % 4000)  # a view, scattered rows
    rows = np.r_[np.arange(0, 4000, 3), [5, 6, 7, 8]]
    np.testing.assert_array_equal(sub[rows], data[10:][np.arange(4000) * 997 % 4000][rows])
    np.testing.assert_array_equal(sub[5:9], data[10:][(np.arange(4000) * 997 % 4000)[5:9]])
    assert _resident_kb(path) < 256  # read with preadv, not through the map
    images[:].sum()  # reading through the map makes it resident
    assert _resident_kb(path) >= 4000
