import os

import numpy as np

from nndl.data import load_cifar10
from nndl.data.cache import cache_dir_for
from nndl.data.cifar10 import locate
from tests.fakecifar import make_arrays, write_python_folder


def test_second_load_comes_from_cache_and_change_invalidates(tmp_path, monkeypatch):
    folder = write_python_folder(tmp_path / "copy", make_arrays())
    first = load_cifar10(folder, download=False)
    cache = cache_dir_for(locate(folder))
    assert sorted(p.name for p in cache.iterdir()) == [
        "X_test.npy", "X_train.npy", "manifest.json", "y_test.npy", "y_train.npy"]

    calls = []
    monkeypatch.setattr("nndl.data.cache.read_source", lambda s: calls.append(s) or first)
    second = load_cifar10(folder, download=False)
    assert calls == []  # served from the .npy cache
    np.testing.assert_array_equal(second.X_train, first.X_train)

    monkeypatch.undo()
    new = make_arrays(seed=1)
    write_python_folder(folder, new)
    stat = (folder / "data_batch_1").stat()
    os.utime(folder / "data_batch_1", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    third = load_cifar10(folder, download=False)
    assert not np.array_equal(third.X_train, first.X_train)


def test_damaged_cache_is_rebuilt(tmp_path):
    folder = write_python_folder(tmp_path / "copy", make_arrays())
    first = load_cifar10(folder, download=False)
    (cache_dir_for(locate(folder)) / "X_train.npy").write_bytes(b"garbage")
    again = load_cifar10(folder, download=False)
    np.testing.assert_array_equal(again.X_train, first.X_train)
