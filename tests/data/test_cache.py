import hashlib
import json
import os

import numpy as np
import pytest

from nndl.data import DataError, load_cifar10, load_dataset
from nndl.data.cache import CacheWriter, cache_dir_for, cache_folder
from nndl.data.cifar10 import locate
from tests.fakecifar import make_arrays, write_python_folder


def test_second_load_comes_from_cache_and_change_invalidates(tmp_path):
    folder = write_python_folder(tmp_path / "copy", make_arrays())
    first = load_cifar10(folder, download=False)
    cache = cache_dir_for(locate(folder))
    assert sorted(p.name for p in cache.iterdir()) == [
        "X_test.npy", "X_train.npy", "manifest.json", "y_test.npy", "y_train.npy"]

    # the source overwritten with zeros, its size and time kept: a load that read it would
    # fail to unpickle it; one served from the .npy cache gives the first load's arrays
    batch = folder / "data_batch_1"
    stat = batch.stat()
    batch.write_bytes(bytes(stat.st_size))
    os.utime(batch, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = load_cifar10(folder, download=False)
    np.testing.assert_array_equal(second.X_train, first.X_train)

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
    with pytest.warns(UserWarning, match=r"X_train.npy: 7 bytes, expected 307456\); decoding "
                                         "the source again"):
        again = load_cifar10(folder, download=False)
    np.testing.assert_array_equal(again.X_train, first.X_train)


# --- issue 22, item 2: the cache verifies what it serves and repairs itself -----------

def _npz_and_its_cache(tmp_path):
    """A small .npz with a test split, loaded once; returns (path, the first Dataset,
    its cache folder)."""
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, X=rng.integers(0, 256, (60, 4, 4), dtype=np.uint8), y=np.arange(60) % 3,
             X_test=rng.integers(0, 256, (9, 4, 4), dtype=np.uint8), y_test=np.arange(9) % 3)
    first = load_dataset(path)  # copied: damaging a mapped file in place would crash us
    first = {name: np.array(getattr(first, name)) for name in _ARRAYS}
    return path, first, cache_folder("npz", path)


_ARRAYS = ("X_train", "y_train", "X_test", "y_test")


def _same(data, first):
    for name in _ARRAYS:
        a, b = getattr(data, name), first[name]
        assert a is not None and a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b)


def _damage_y_as_floats(folder):
    np.save(folder / "y_train.npy", np.load(folder / "y_train.npy").astype(float))


def _damage_label_out_of_range(folder):
    y = np.load(folder / "y_train.npy")
    y[0] = 7  # same shape and dtype: only the contents tell
    np.save(folder / "y_train.npy", y)


@pytest.mark.parametrize("damage", [
    lambda folder: (folder / "X_train.npy").unlink(),
    lambda folder: (folder / "X_test.npy").unlink(),  # served as "no test set" before
    _damage_y_as_floats,
    _damage_label_out_of_range,
    lambda folder: (folder / "X_train.npy").write_bytes(b""),
    lambda folder: (folder / "manifest.json").write_text("{}"),
], ids=["missing-X_train", "missing-X_test", "float-labels", "label-out-of-range",
        "empty-file", "empty-manifest"])
def test_a_damaged_user_cache_is_rebuilt_from_the_source(tmp_path, damage):
    path, first, folder = _npz_and_its_cache(tmp_path)
    damage(folder)
    with pytest.warns(UserWarning, match=rf"^{folder}: the decoded copy is damaged \(.*\); "
                                         "decoding the source again"):
        again = load_dataset(path)
    _same(again, first)
    _same(load_dataset(path), first)  # and the repaired copy is served from then on


def test_an_array_cut_at_any_offset_is_rebuilt(tmp_path):
    path, first, folder = _npz_and_its_cache(tmp_path)
    for name in ("y_train.npy", "X_test.npy"):
        size = (folder / name).stat().st_size
        for cut in range(0, size, 13):
            with open(folder / name, "r+b") as f:
                f.truncate(cut)
            with pytest.warns(UserWarning, match="damaged"):
                _same(load_dataset(path), first)


def test_cifar10_cache_is_verified_too(tmp_path):
    folder = write_python_folder(tmp_path / "copy", make_arrays())
    first = load_cifar10(folder, download=False)
    cache = cache_dir_for(locate(folder))
    (cache / "y_test.npy").write_bytes(b"")
    with pytest.warns(UserWarning, match="damaged"):
        again = load_cifar10(folder, download=False)
    np.testing.assert_array_equal(again.y_test, first.y_test)


def test_manifest_records_each_array_and_the_build_checks_what_it_wrote(tmp_path,
                                                                         monkeypatch):
    path, first, folder = _npz_and_its_cache(tmp_path)
    arrays = json.loads((folder / "manifest.json").read_text())["arrays"]
    assert sorted(arrays) == ["X_test", "X_train", "y_test", "y_train"]
    assert arrays["y_train"]["shape"] == [60] and arrays["y_train"]["dtype"] == "<i8"
    assert arrays["X_train"]["shape"] == [60, 4, 4, 1] and arrays["X_train"]["dtype"] == "|u1"
    data_bytes = (folder / "X_train.npy").read_bytes()[-960:]
    assert arrays["X_train"]["bytes"] == (folder / "X_train.npy").stat().st_size
    assert arrays["X_train"]["sha256"] == hashlib.sha256(data_bytes).hexdigest()

    real_write = CacheWriter._write

    def lossy_write(self, f, data):  # a disk that loses the last byte of X_train's pixels
        real_write(self, f, bytes(data)[:-1] + b"\x00" if len(data) == 960 else data)

    monkeypatch.setattr(CacheWriter, "_write", lossy_write)
    (folder / "manifest.json").unlink()
    with pytest.raises(DataError, match=rf"^{folder}: the decoded copy just written does not "
                                        r"verify \(X_train.npy: checksum"):
        load_dataset(path)


# --- issue 22, item 13: a full cache disk is named, not the source ---------------------

def _big_npz(tmp_path):
    path = tmp_path / "big.npz"
    np.savez(path, X=np.random.default_rng(0).integers(0, 256, (800, 16, 16), np.uint8),
             y=np.arange(800) % 4)  # 200 KB of pixels: more than the small disk holds
    return path


def _assert_the_full_disk_is_named(path, cache):
    folder = cache_folder("npz", path)
    with pytest.raises(DataError) as info:
        load_dataset(path)
    assert str(info.value).startswith(f"{folder}: no space left on the disk that holds this "
                                      f"folder, while writing the decoded copy of {path}; ")
    assert "not a readable .npz" not in str(info.value)
    assert [p.name for p in folder.parent.iterdir()] == [f"{folder.name}.lock"]  # no debris


def test_a_full_cache_disk_is_named_not_the_source(tmp_path, small_disk, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(small_disk))
    path = _big_npz(tmp_path)
    _assert_the_full_disk_is_named(path, small_disk)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "roomy"))
    assert load_dataset(path).X_train.shape == (800, 16, 16, 1)


def test_a_full_cache_disk_through_a_write_hook(tmp_path, monkeypatch):
    from tests.data.conftest import full_disk_open

    path = _big_npz(tmp_path)
    monkeypatch.setattr("nndl.data.cache.open", full_disk_open, raising=False)
    _assert_the_full_disk_is_named(path, tmp_path / "cache")
