"""The download path end to end against a real HTTP server on 127.0.0.1."""

import hashlib
import io
import os
import tarfile
from dataclasses import replace

import pytest

from nndl.data import DATASETS, ChecksumError, DataError, DataNotFoundError, load_cifar10
from nndl.data.download import download_cifar10, download_file, safe_extract
from tests.fakecifar import make_arrays, tarball_bytes


@pytest.fixture
def tarball():
    data = tarball_bytes(make_arrays(per_batch=50))
    return data, hashlib.md5(data).hexdigest()


def test_download_verifies_and_extracts(tmp_path, http_server, tarball):
    http_server.payload, md5 = tarball
    folder = download_cifar10(tmp_path, url=http_server.url, md5=md5, progress=False)
    assert folder == tmp_path / "cifar-10-batches-py"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar-10-batches-py"]
    data = load_cifar10(tmp_path, download=False)
    assert data.X_train.shape == (250, 32, 32, 3)


def test_wrong_md5_leaves_nothing_that_looks_complete(tmp_path, http_server, tarball):
    http_server.payload, _ = tarball
    with pytest.raises(ChecksumError, match="does not match"):
        download_cifar10(tmp_path, url=http_server.url, md5="0" * 32, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cut_connection_then_resume(tmp_path, http_server, tarball):
    http_server.payload, md5 = tarball
    http_server.cut_after = len(tarball[0]) // 3
    dest = tmp_path / "cifar-10-python.tar.gz"
    with pytest.raises(DataError, match="run the command again to resume"):
        download_file(http_server.url, dest, md5, progress=False)
    part = tmp_path / "cifar-10-python.tar.gz.part"
    assert not dest.exists() and part.stat().st_size == len(tarball[0]) // 3
    download_file(http_server.url, dest, md5, progress=False)
    assert http_server.requests[-1] == f"bytes={len(tarball[0]) // 3}-"
    assert dest.read_bytes() == tarball[0] and not part.exists()


def test_automatic_download_when_missing(tmp_path, http_server, tarball, monkeypatch):
    http_server.payload, md5 = tarball
    monkeypatch.setenv("NNDL_DATA", str(tmp_path / "root"))
    monkeypatch.setenv("NNDL_CIFAR10_URL", http_server.url)
    spec = DATASETS["cifar10"]
    monkeypatch.setitem(DATASETS, "cifar10", replace(spec, files=((spec.files[0][0], md5),)))
    data = load_cifar10(progress=False)
    assert data.X_test.shape == (50, 32, 32, 3)
    assert (tmp_path / "root" / "cifar-10-batches-py" / "test_batch").is_file()


def test_offline_message_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("NNDL_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("NNDL_CIFAR10_URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    with pytest.raises(DataNotFoundError) as info:
        load_cifar10(progress=False)
    message = str(info.value)
    assert str(tmp_path / "nowhere") in message and "$NNDL_DATA" in message
    assert "user cache" in message and "nndl data download cifar10" in message


def test_extraction_refuses_path_traversal(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escaped")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    evil = tmp_path / "evil.tar.gz"
    evil.write_bytes(buf.getvalue())
    (tmp_path / "out").mkdir()
    with pytest.raises(DataError, match="unsafe archive member"):
        safe_extract(evil, tmp_path / "out")
    assert not (tmp_path / "escaped").exists()


def test_matching_md5_but_not_a_tar_archive(tmp_path, http_server):
    http_server.payload = b"an error page, not a tarball" * 10
    md5 = hashlib.md5(http_server.payload).hexdigest()
    tarball = tmp_path / "cifar-10-python.tar.gz"
    for attempt in (1, 2):  # the second run downloads again: it does not trust the bad file
        with pytest.raises(DataError, match=rf"^{tarball}: not a readable tar archive .*; the "
                                            "downloaded file was deleted$"):
            download_cifar10(tmp_path, url=http_server.url, md5=md5, progress=False)
        assert list(tmp_path.iterdir()) == []
        assert len(http_server.requests) == attempt


def test_failed_download_creates_no_folder(tmp_path, http_server, tarball):
    root = tmp_path / "a" / "typo" / "deep"
    with pytest.raises(DataError, match="download of .* failed"):
        download_cifar10(root, url="http://127.0.0.1:9/cifar-10-python.tar.gz", progress=False)
    http_server.payload, _ = tarball
    with pytest.raises(ChecksumError):
        download_cifar10(root, url=http_server.url, md5="0" * 32, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cut_download_keeps_its_new_folder_for_the_resume(tmp_path, http_server, tarball):
    http_server.payload, md5 = tarball
    http_server.cut_after = 1000
    root = tmp_path / "new" / "root"
    with pytest.raises(DataError, match="run the command again to resume"):
        download_cifar10(root, url=http_server.url, md5=md5, progress=False)
    assert [p.name for p in root.iterdir()] == ["cifar-10-python.tar.gz.part"]
    download_cifar10(root, url=http_server.url, md5=md5, progress=False)
    assert [p.name for p in root.iterdir()] == ["cifar-10-batches-py"]


@pytest.mark.parametrize("where", ["a/typo/deep/dir", "a_file/dir"])
def test_data_not_found_creates_nothing_and_says_where_it_looked(tmp_path, monkeypatch, where):
    (tmp_path / "a_file").write_text("not a folder")
    monkeypatch.setenv("NNDL_CIFAR10_URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(DataNotFoundError, match=rf"Looked in: {tmp_path / where} \(the given "
                                                r"path\)\. The download failed: "):
        load_cifar10(tmp_path / where, progress=False)
    assert sorted(tmp_path.rglob("*")) == before


def _assert_full_disk_named(folder, http_server):
    http_server.payload = os.urandom(200_000)  # more than the small disk holds
    md5 = hashlib.md5(http_server.payload).hexdigest()
    with pytest.raises(DataError) as info:
        download_file(http_server.url, folder / "f.bin", md5, progress=False)
    assert str(info.value).startswith(f"{folder}: no space left on the disk that holds this "
                                      f"folder, while downloading {http_server.url}; free "
                                      "space there and run the command again to resume")


def test_a_full_disk_during_a_download_is_named(small_disk, http_server):
    _assert_full_disk_named(small_disk, http_server)


def test_a_full_disk_during_a_download_through_a_write_hook(tmp_path, http_server,
                                                            monkeypatch):
    from tests.data.conftest import full_disk_open

    monkeypatch.setattr("nndl.data.download.open", full_disk_open, raising=False)
    _assert_full_disk_named(tmp_path, http_server)
