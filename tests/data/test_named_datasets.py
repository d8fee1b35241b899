"""The named data sets end to end: official formats made small, served by a real HTTP
server on 127.0.0.1 through the documented mirror variables, md5-checked, resumed,
decoded exactly."""

import sys
from dataclasses import replace

import numpy as np
import pytest

from nndl.data import (
    DATASETS,
    ChecksumError,
    DataError,
    DataNotFoundError,
    download_dataset,
    load_cifar10,
    load_dataset,
)
from tests.fakecifar import expected_images, make_arrays, write_python_folder
from tests.fakedatasets import (
    COARSE,
    FINE,
    cifar100_arrays,
    cifar100_tarball,
    md5,
    mnist_arrays,
    mnist_files,
)
from tests.test_cli import run_nndl


def serve(monkeypatch, server, name, files):
    """Serve ``files`` ({name: bytes}) as the data set's mirror, with their md5 sums (the
    test hook: DATASETS' entry with the md5 sums of the generated files)."""
    server.files = files
    spec = DATASETS[name]
    sums = tuple((file, md5(files[file])) for file, _ in spec.files)
    monkeypatch.setitem(DATASETS, name, replace(spec, files=sums))
    monkeypatch.setenv(spec.mirror_variable, server.base)


@pytest.fixture
def cifar100(http_server, monkeypatch):
    arrays = cifar100_arrays()
    serve(monkeypatch, http_server, "cifar100", {"cifar-100-python.tar.gz":
                                                 cifar100_tarball(arrays)})
    return arrays


@pytest.fixture
def mnist(http_server, monkeypatch):
    arrays = mnist_arrays()
    serve(monkeypatch, http_server, "mnist", mnist_files(arrays))
    return arrays


def test_cifar100_downloads_through_the_mirror_and_loads_fine_and_coarse(tmp_path, cifar100,
                                                                         http_server):
    root = tmp_path / "root"
    fine = load_dataset("cifar100", root, progress=False)
    assert http_server.paths == ["/mirror/cifar-100-python.tar.gz"]
    assert sorted(p.name for p in root.iterdir()) == ["cifar-100-python"]
    rows, fine_labels, coarse_labels = cifar100["train"]
    np.testing.assert_array_equal(fine.X_train, expected_images(rows))
    np.testing.assert_array_equal(fine.X_test, expected_images(cifar100["test"][0]))
    assert fine.y_train.tolist() == fine_labels and fine.y_train.dtype == np.int64
    assert fine.class_names == tuple(n.decode() for n in FINE) and fine.image_shape == (
        32, 32, 3)
    coarse = load_dataset("cifar100", root, labels="coarse", download=False)
    assert coarse.y_train.tolist() == coarse_labels
    assert coarse.class_names == tuple(n.decode() for n in COARSE)
    with pytest.raises(ValueError, match="applies to cifar100 only"):
        load_dataset("mnist", tmp_path, labels="coarse")


def test_mnist_downloads_every_file_checked_and_round_trips(tmp_path, mnist, http_server):
    data = load_dataset("mnist", tmp_path / "root", progress=False)
    assert sorted(http_server.paths) == sorted(f"/mirror/{n}" for n, _ in DATASETS[
        "mnist"].files)
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == ["mnist"]
    images, labels = mnist["train"]
    np.testing.assert_array_equal(data.X_train[..., 0], images)
    np.testing.assert_array_equal(data.X_test[..., 0], mnist["t10k"][0])
    assert data.y_train.tolist() == labels.tolist() and data.y_test.tolist() == mnist[
        "t10k"][1].tolist()
    assert data.image_shape == (28, 28, 1) and data.class_names == tuple("0123456789")


def test_fashion_mnist_has_its_class_names(tmp_path, http_server, monkeypatch):
    serve(monkeypatch, http_server, "fashion-mnist", mnist_files(mnist_arrays(seed=3)))
    data = load_dataset("fashion-mnist", tmp_path, progress=False)
    assert data.class_names[0] == "T-shirt/top" and data.class_names[-1] == "Ankle boot"
    assert (tmp_path / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").is_file()


def test_cut_connection_resumes_and_the_folder_appears_only_when_complete(tmp_path, mnist,
                                                                          http_server):
    http_server.cut_after = 500
    with pytest.raises(DataError, match="run the command again to resume"):
        download_dataset("mnist", tmp_path, progress=False)
    assert not (tmp_path / "mnist").exists()
    assert [p.name for p in (tmp_path / ".mnist.download").iterdir()] == [
        "train-images-idx3-ubyte.gz.part"]
    folder = download_dataset("mnist", tmp_path, progress=False)
    assert http_server.requests[1] == "bytes=500-"
    assert folder == tmp_path / "mnist" and sorted(p.name for p in tmp_path.iterdir()) == [
        "mnist"]
    assert load_dataset("mnist", tmp_path, download=False).X_train.shape == (40, 28, 28, 1)


def test_wrong_md5_leaves_nothing_that_looks_complete(tmp_path, mnist, http_server,
                                                      monkeypatch):
    spec = DATASETS["mnist"]
    bad = ((spec.files[0][0], "0" * 32), *spec.files[1:])
    monkeypatch.setitem(DATASETS, "mnist", replace(spec, files=bad))
    with pytest.raises(ChecksumError, match="train-images-idx3-ubyte.gz: md5 .* does not "
                                            "match"):
        download_dataset("mnist", tmp_path / "root", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_mirrors_are_tried_in_order(tmp_path, mnist, http_server, monkeypatch):
    monkeypatch.delenv("NNDL_MIRROR_MNIST")
    spec = DATASETS["mnist"]
    monkeypatch.setitem(DATASETS, "mnist", replace(
        spec, mirrors=("http://127.0.0.1:9/dead/", http_server.base)))
    assert download_dataset("mnist", tmp_path, progress=False) == tmp_path / "mnist"


def test_explicit_url_and_offline_message(tmp_path, mnist, http_server, monkeypatch):
    monkeypatch.setenv("NNDL_MIRROR_MNIST", "http://127.0.0.1:9/dead/")
    with pytest.raises(DataNotFoundError, match=r"MNIST not found\. Looked in: .* The "
                                                r"download failed: .*'nndl data download "
                                                r"mnist'"):
        load_dataset("mnist", tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []
    download_dataset("mnist", tmp_path, url=http_server.base.rstrip("/"), progress=False)
    assert (tmp_path / "mnist").is_dir()


def test_torchvision_layout_is_found(tmp_path, mnist):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, data in mnist_files(mnist).items():
        (raw / name).write_bytes(data)
    data = load_dataset("mnist", tmp_path, download=False)
    np.testing.assert_array_equal(data.X_train[..., 0], mnist["train"][0])


def test_damaged_idx_file_is_named(tmp_path, mnist):
    folder = tmp_path / "mnist"
    folder.mkdir()
    files = mnist_files(mnist)
    files["t10k-labels-idx1-ubyte.gz"] = files["t10k-labels-idx1-ubyte.gz"][:-12]
    for name, data in files.items():
        (folder / name).write_bytes(data)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: unreadable"):
        load_dataset("mnist", tmp_path, download=False)


def test_cifar10_dataset_has_load_cifar10s_numbers(tmp_path):
    folder = write_python_folder(tmp_path / "cifar-10-batches-py", make_arrays())
    data, arrays = load_dataset("cifar10", tmp_path), load_cifar10(tmp_path)
    np.testing.assert_array_equal(data.X_train, arrays.X_train)
    np.testing.assert_array_equal(data.y_test, arrays.y_test)
    assert data.y_train.dtype == np.int64 and data.class_names[0] == "airplane"
    assert isinstance(data.X_train, np.memmap)
    assert load_dataset(folder).X_test.shape == (20, 32, 32, 3)  # a path to a copy


def test_digits_from_scikit_learn(monkeypatch):
    data = load_dataset("digits")
    assert data.X_train.shape == (1797, 8, 8, 1) and data.X_train.dtype == np.uint8
    assert data.X_train.max() == 255 and data.X_test is None and data.y_test is None
    assert data.class_names == tuple("0123456789") and data.image_shape == (8, 8, 1)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'nndl\[sklearn\]'"):
        load_dataset("digits")


def test_cli_download_and_info(tmp_path, http_server):
    arrays = cifar100_arrays()
    http_server.payload = cifar100_tarball(arrays)
    result = run_nndl("data", "download", "cifar100", "--root", str(tmp_path), "--url",
                      http_server.url, "--md5", md5(http_server.payload), "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"CIFAR-100 is in {tmp_path / 'cifar-100-python'}\n"
    result = run_nndl("data", "info", "cifar100", "--root", str(tmp_path), "--labels",
                      "coarse")
    assert result.returncode == 0, result.stderr
    assert "train images   (30, 32, 32, 3) uint8" in result.stdout
    assert "test images    (10, 32, 32, 3) uint8" in result.stdout
    assert "train classes  coarse0 " in result.stdout
    assert "3 of 3 files differ from the official md5 sums" in result.stdout
    result = run_nndl("data", "info", "fashion-mnist", "--root", str(tmp_path / "none"))
    assert result.returncode == 0, result.stderr
    assert "train-images-idx3-ubyte.gz md5 8d4fb7e6c68d591d4c3dfef9ec88bf0d" in result.stdout
    assert "not downloaded; run 'nndl data download fashion-mnist'" in result.stdout
