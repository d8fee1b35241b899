"""Concurrent first use (issue 22, item 3): processes that decode or download one item at
once take turns through a lock; one does the work, the others wait and get its complete
result. The interleavings are forced with barriers, never left to timing: every party
arrives either at the work itself (before the fix, all of them) or at the lock's wait
(after it), and only then does the work go on."""

import hashlib
import multiprocessing
import os
import threading

import numpy as np
import pytest

from nndl.data import DATASETS, download_dataset, load_dataset
from nndl.data.download import download_cifar10, download_file
from tests.fakecifar import make_arrays, tarball_bytes
from tests.fakedatasets import md5, mnist_arrays, mnist_files

TIMEOUT = 60  # a safety net for a broken build; no test waits on it when it passes


def _write_npz(path, seed, with_test):
    rng = np.random.default_rng(seed)
    arrays = {"X": rng.integers(0, 256, (50, 4, 4), dtype=np.uint8), "y": np.arange(50) % 5}
    if with_test:
        arrays.update(X_test=rng.integers(0, 256, (7, 4, 4), dtype=np.uint8),
                      y_test=np.arange(7) % 5)
    np.savez(path, **arrays)
    return arrays


def _once(action):
    """``action`` the first time the returned function is called in this thread only."""
    local = threading.local()

    def first(*_):
        if not getattr(local, "done", False):
            local.done = True
            action()
    return first


def _load_in_child(barrier, path, log, results):
    """Load ``path`` counting decodes in ``log``; the decode, or a wait for the lock,
    first meets the other processes at ``barrier``."""
    import nndl._atomic
    import nndl.data.datasets

    arrive = _once(lambda: barrier.wait(TIMEOUT))
    real = nndl.data.datasets.read_npz

    def counted_read(source, writer):
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        arrive()
        return real(source, writer)

    nndl._atomic._waiting = arrive
    nndl.data.datasets.read_npz = counted_read
    try:
        data = load_dataset(path)
        results.put((data.X_train.sum(dtype=np.int64), data.y_train.tolist(),
                     None if data.X_test is None else data.X_test.sum(dtype=np.int64)))
    except Exception as exc:  # reported to the test, which shows it
        results.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks the test process")
@pytest.mark.parametrize("before", ["first-use", "source-changed"])
def test_four_processes_loading_one_dataset_decode_it_once(tmp_path, before):
    path = tmp_path / "d.npz"
    if before == "source-changed":  # an old copy in the cache, then a new source
        _write_npz(path, 1, with_test=False)
        assert load_dataset(path).X_test is None
        stat = path.stat()
        _write_npz(path, 2, with_test=True)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    else:
        _write_npz(path, 2, with_test=True)
    expected = _write_npz(tmp_path / "expected.npz", 2, with_test=True)
    ctx = multiprocessing.get_context("fork")
    barrier, results, log = ctx.Barrier(4), ctx.Queue(), tmp_path / "decodes.log"
    children = [ctx.Process(target=_load_in_child, args=(barrier, path, log, results))
                for _ in range(4)]
    for child in children:
        child.start()
    got = [results.get(timeout=TIMEOUT) for _ in children]
    for child in children:
        child.join(TIMEOUT)
    want = (expected["X"].sum(dtype=np.int64), expected["y"].tolist(),
            expected["X_test"].sum(dtype=np.int64))
    assert got == [want] * 4
    assert len(log.read_text().splitlines()) == 1  # decoded once; the others waited


def _run_threads(target, count=3):
    """Run ``target()`` in ``count`` threads; returns what each returned or raised."""
    outcomes = [None] * count

    def run(i):
        try:
            outcomes[i] = target()
        except Exception as exc:
            outcomes[i] = exc
    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    return outcomes


@pytest.fixture
def three_at_once(http_server, monkeypatch):
    """Three parties meet at a barrier: at the server, before the body of a response for
    a path that ``.held(path)`` says (every download, before the fix), or at the lock's
    wait (after it)."""
    barrier = threading.Barrier(3, timeout=TIMEOUT)
    http_server.held = lambda path: True
    http_server.before_body = lambda path: http_server.held(path) and barrier.wait()
    monkeypatch.setattr("nndl._atomic._waiting", _once(barrier.wait))
    return http_server


def test_three_downloads_of_one_file_fetch_it_once(tmp_path, three_at_once):
    three_at_once.payload = os.urandom(3 << 20)
    md5sum = hashlib.md5(three_at_once.payload).hexdigest()
    dest = tmp_path / "file.bin"
    outcomes = _run_threads(lambda: download_file(three_at_once.url, dest, md5sum,
                                                  progress=False))
    assert outcomes == [dest] * 3
    assert dest.read_bytes() == three_at_once.payload
    assert len(three_at_once.requests) == 1 and sorted(os.listdir(tmp_path)) == ["file.bin"]


def test_three_downloads_of_one_archive_fetch_and_extract_it_once(tmp_path, three_at_once):
    three_at_once.payload = tarball_bytes(make_arrays(per_batch=400))
    md5sum = hashlib.md5(three_at_once.payload).hexdigest()
    outcomes = _run_threads(lambda: download_cifar10(tmp_path, url=three_at_once.url,
                                                     md5=md5sum, progress=False))
    assert outcomes == [tmp_path / "cifar-10-batches-py"] * 3
    assert len(three_at_once.requests) == 1
    assert sorted(os.listdir(tmp_path)) == ["cifar-10-batches-py"]
    assert load_dataset(tmp_path / "cifar-10-batches-py").X_test.shape == (400, 32, 32, 3)


def test_three_downloads_of_one_file_set_fetch_each_file_once(tmp_path, three_at_once,
                                                              monkeypatch):
    from tests.data.test_named_datasets import serve

    files = mnist_files(mnist_arrays())
    serve(monkeypatch, three_at_once, "mnist", files)
    first = DATASETS["mnist"].files[0][0]  # the barrier holds the first file downloaded
    three_at_once.held = lambda path: path.endswith(first)
    outcomes = _run_threads(lambda: download_dataset("mnist", tmp_path, progress=False))
    assert outcomes == [tmp_path / "mnist"] * 3
    assert sorted(os.listdir(tmp_path)) == ["mnist"]
    assert {p.name: md5(p.read_bytes()) for p in (tmp_path / "mnist").iterdir()} == \
        {name: md5(data) for name, data in files.items()}
    assert sorted(three_at_once.paths) == sorted(f"/mirror/{name}" for name in files)


def _decode_until_killed(path, started):
    import nndl.data.datasets

    real = nndl.data.datasets.read_npz

    def stalled_read(source, writer):
        info = real(source, writer)  # the arrays are written: then the process is killed
        started.set()
        threading.Event().wait()
        return info

    nndl.data.datasets.read_npz = stalled_read
    load_dataset(path)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks the test process")
def test_a_decode_killed_midway_leaves_no_lock_held_and_no_staging_folder(tmp_path):
    import signal

    from nndl.data.cache import cache_folder

    path = tmp_path / "d.npz"
    expected = _write_npz(path, 3, with_test=True)
    ctx = multiprocessing.get_context("fork")
    started = ctx.Event()
    child = ctx.Process(target=_decode_until_killed, args=(path, started))
    child.start()
    assert started.wait(TIMEOUT)
    folder = cache_folder("npz", path)
    staging = [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]
    assert len(staging) == 1  # the killed build's half-made copy
    os.kill(child.pid, signal.SIGKILL)
    child.join(TIMEOUT)
    data = load_dataset(path)  # the kernel dropped the dead process's lock
    np.testing.assert_array_equal(data.X_test[..., 0], expected["X_test"])
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name,
                                                                f"{folder.name}.lock"]
