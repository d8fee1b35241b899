import os
import pickle

import numpy as np
import pytest

from nndl.data import DataError, UnsafePickleError, load_cifar10
from nndl.data.cifar10 import locate, parse_python_batch, read_source
from tests.fakecifar import (
    expected_images,
    make_arrays,
    py2_dumps,
    tarball_bytes,
    write_binary_folder,
    write_python_folder,
)


@pytest.fixture
def batches():
    return make_arrays()


def _check(data, batches):
    train_rows = np.concatenate([b[0] for b in batches[:5]])
    np.testing.assert_array_equal(data.X_train, expected_images(train_rows))
    np.testing.assert_array_equal(data.y_train, sum((b[1] for b in batches[:5]), []))
    np.testing.assert_array_equal(data.X_test, expected_images(batches[5][0]))
    assert data.X_train.shape == (100, 32, 32, 3) and data.X_train.dtype == np.uint8
    assert data.class_names[0] == "airplane" and data.class_names[9] == "truck"


@pytest.mark.parametrize("writer", [write_python_folder, write_binary_folder])
def test_folder_formats(tmp_path, batches, writer):
    folder = writer(tmp_path / "copy", batches)
    _check(read_source(locate(folder)), batches)


def test_tarball_read_without_extracting(tmp_path, batches):
    tarball = tmp_path / "cifar-10-python.tar.gz"
    tarball.write_bytes(tarball_bytes(batches))
    source = locate(tarball)
    assert source.kind == "tarball"
    _check(read_source(source), batches)
    assert list(tmp_path.iterdir()) == [tarball]


def test_data_root_holding_the_folder(tmp_path, batches):
    write_python_folder(tmp_path / "cifar-10-batches-py", batches)
    _check(load_cifar10(tmp_path, download=False), batches)


def test_image_layout_is_height_width_rgb():
    rows = np.zeros((1, 3072), np.uint8)
    rows[0, 0] = 200  # red of pixel (0, 0)
    rows[0, 1024 + 33] = 100  # green of pixel (1, 1)
    images, _ = parse_python_batch(py2_dumps({b"data": rows, b"labels": [3]}), "x")
    assert images[0, 0, 0].tolist() == [200, 0, 0]
    assert images[0, 1, 1].tolist() == [0, 100, 0]


class _Hostile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_python3_pickles_needing_other_globals_are_refused(tmp_path):
    data = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [1]}, protocol=2)
    with pytest.raises(UnsafePickleError, match="_codecs.encode"):
        parse_python_batch(data, "py3-batch")


def test_hostile_pickle_is_refused_without_side_effect(tmp_path, batches):
    folder = write_python_folder(tmp_path / "copy", batches)
    marker = tmp_path / "pwned"
    (folder / "data_batch_3").write_bytes(py2_dumps(
        {b"data": _Hostile(marker), b"labels": [0]}))
    with pytest.raises(UnsafePickleError, match=r"data_batch_3.*refusing to unpickle.*system"):
        read_source(locate(folder))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "data_batch_2").unlink(), r"data_batch_2: missing"),
        (lambda f: (f / "data_batch_4").write_bytes((f / "data_batch_4").read_bytes()[:5000]),
         r"data_batch_4: truncated or corrupt"),
        (lambda f: (f / "test_batch").write_bytes(py2_dumps(
            {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})),
         r"test_batch: expected uint8 pixel rows"),
        (lambda f: (f / "data_batch_1").write_bytes(py2_dumps(
            {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]})),
         r"data_batch_1: labels must be integers in \[0, 10\), found 0..12"),
        (lambda f: (f / "data_batch_1").write_bytes(py2_dumps(
            {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]})),
         r"data_batch_1: 1 labels for 2 images"),
    ],
)
def test_damaged_python_folder(tmp_path, batches, damage, message):
    folder = write_python_folder(tmp_path / "copy", batches)
    damage(folder)
    with pytest.raises(DataError, match=message):
        read_source(locate(folder))


def test_truncated_binary_batch(tmp_path, batches):
    folder = write_binary_folder(tmp_path / "bin", batches)
    path = folder / "data_batch_5.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match=r"data_batch_5.bin: .* not a whole number"):
        read_source(locate(folder))


@pytest.mark.parametrize("labels", [[3.7, 3.7], [float("nan"), 0], [True, False], [b"a", b"b"]],
                         ids=["float", "nan", "bool", "bytes"])
def test_labels_that_are_not_integers_are_refused(tmp_path, batches, labels):
    folder = write_python_folder(tmp_path / "copy", batches)
    (folder / "data_batch_2").write_bytes(py2_dumps(
        {b"data": np.zeros((2, 3072), np.uint8), b"labels": labels}))
    with pytest.raises(DataError, match=r"data_batch_2: labels must be integers in \[0, 10\)"):
        read_source(locate(folder))
