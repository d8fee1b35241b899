"""Small copies of CIFAR-100 and MNIST in their official formats, written by the tests."""

import gzip
import hashlib
import io
import tarfile

import numpy as np

from tests.fakecifar import py2_dumps

FINE = [f"fine{i}".encode() for i in range(100)]
COARSE = [f"coarse{i}".encode() for i in range(20)]


def cifar100_arrays(n_train=30, n_test=10, seed=0):
    """{"train"|"test": (rows uint8 (n, 3072), fine labels list, coarse labels list)}."""
    rng = np.random.default_rng(seed)
    return {split: (rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                    [int(v) for v in rng.integers(0, 100, n)],
                    [int(v) for v in rng.integers(0, 20, n)])
            for split, n in (("train", n_train), ("test", n_test))}


def cifar100_files(arrays):
    """{member name: bytes} of the python-version folder, pickled like the official files."""
    files = {split: py2_dumps({b"filenames": [b"x.png"] * len(fine), b"batch_label": b"fake",
                               b"fine_labels": fine, b"coarse_labels": coarse, b"data": rows})
             for split, (rows, fine, coarse) in arrays.items()}
    files["meta"] = py2_dumps({b"fine_label_names": FINE, b"coarse_label_names": COARSE})
    return files


def cifar100_tarball(arrays):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in cifar100_files(arrays).items():
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def idx_bytes(array):
    """An IDX file of uint8 ``array``: 0, 0, 0x08, ndim, big-endian dims, values."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def mnist_arrays(n_train=40, n_test=12, seed=0):
    rng = np.random.default_rng(seed)
    return {split: (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                    rng.integers(0, 10, n).astype(np.uint8))
            for split, n in (("train", n_train), ("t10k", n_test))}


def mnist_files(arrays):
    """{official .gz name: gzipped IDX bytes}."""
    files = {}
    for split, (images, labels) in arrays.items():
        files[f"{split}-images-idx3-ubyte.gz"] = gzip.compress(idx_bytes(images), mtime=0)
        files[f"{split}-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(labels), mtime=0)
    return files


def md5(data):
    return hashlib.md5(data).hexdigest()
