"""Small CIFAR-10 copies in the official formats, written by the tests themselves."""

import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer",
         b"dog", b"frog", b"horse", b"ship", b"truck"]


def make_arrays(per_batch=20, seed=0):
    """Six batches (5 train + test) of (rows uint8 (n, 3072), labels list)."""
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
             [int(v) for v in rng.integers(0, 10, per_batch)]) for _ in range(6)]


def _batch_names():
    return [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


class Py2Pickler(pickle._Pickler):
    """Protocol 2 with byte strings as Python 2 wrote them (BINSTRING), like the
    official files; Python 3 would route them through ``_codecs.encode``."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_bytes(self, obj):
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_bytes


def py2_dumps(obj):
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def python_batch_bytes(rows, labels):
    return py2_dumps({b"batch_label": b"fake", b"labels": labels, b"data": rows})


def write_python_folder(folder, batches):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, (rows, labels) in zip(_batch_names(), batches):
        (folder / name).write_bytes(python_batch_bytes(rows, labels))
    meta = {b"label_names": NAMES, b"num_cases_per_batch": len(batches[0][1]), b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(py2_dumps(meta))
    return folder


def write_binary_folder(folder, batches):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, (rows, labels) in zip(_batch_names(), batches):
        records = np.concatenate([np.asarray(labels, np.uint8)[:, None], rows], axis=1)
        (folder / f"{name}.bin").write_bytes(records.tobytes())
    (folder / "batches.meta.txt").write_text("\n".join(n.decode() for n in NAMES) + "\n")
    return folder


def tarball_bytes(batches, top="cifar-10-batches-py", extra_members=()):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        files = {f"{top}/{n}": python_batch_bytes(*b) for n, b in zip(_batch_names(), batches)}
        files[f"{top}/batches.meta"] = py2_dumps({b"label_names": NAMES})
        files.update(extra_members)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def expected_images(rows):
    return rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def fake_cifar_env(tmp_path_factory, per_batch=200, **extra):
    """Environment variables for running ``nndl`` on a small python-version CIFAR-10 copy
    (``per_batch`` images per batch file) with a private cache and no display."""
    import os

    root = tmp_path_factory.mktemp("data")
    write_python_folder(root / "cifar-10-batches-py", make_arrays(per_batch=per_batch))
    return {**os.environ, "NNDL_DATA": str(root), "MPLBACKEND": "Agg",
            "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache")), **extra}
