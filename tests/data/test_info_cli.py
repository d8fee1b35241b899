import hashlib

import numpy as np

from tests.fakecifar import make_arrays, write_python_folder
from tests.test_cli import run_nndl


def test_data_info_on_cifar_and_npz(tmp_path):
    write_python_folder(tmp_path / "cifar-10-batches-py", make_arrays())
    result = run_nndl("data", "info", str(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "CIFAR-10, python version" in out
    assert "train images   (100, 32, 32, 3) uint8" in out
    assert "7 of 7 files differ from the official md5 sums" in out
    np.savez(tmp_path / "d.npz", X=np.zeros((3, 2, 2)), y=np.array([0, 1, 1]))
    result = run_nndl("data", "info", str(tmp_path / "d.npz"))
    assert "train classes  0 1, 1 2" in result.stdout, result.stderr
    assert "train images   (3, 2, 2, 1) float32" in result.stdout


def test_data_info_missing_path_is_one_line(tmp_path):
    result = run_nndl("data", "info", str(tmp_path / "nope"))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "no such file or folder" in result.stderr


def test_data_download_cli(tmp_path, http_server):
    import hashlib

    from tests.fakecifar import tarball_bytes

    http_server.payload = tarball_bytes(make_arrays())
    md5 = hashlib.md5(http_server.payload).hexdigest()
    result = run_nndl("data", "download", "cifar10", "--root", str(tmp_path), "--url",
                      http_server.url, "--md5", md5, "--quiet")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cifar-10-batches-py" / "data_batch_5").is_file()


def test_data_download_failure_is_one_line_and_creates_nothing(tmp_path, http_server):
    http_server.payload = b"not a tarball"
    md5 = hashlib.md5(http_server.payload).hexdigest()
    for url in ("http://127.0.0.1:9/cifar-10-python.tar.gz", http_server.url):
        result = run_nndl("data", "download", "cifar10", "--root", str(tmp_path / "a" / "b"),
                          "--url", url, "--md5", md5, "--quiet")
        assert result.returncode == 1 and result.stderr.startswith("nndl data: error: ")
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert list(tmp_path.iterdir()) == []
