"""Training on a dataset larger than its float copy in RAM: peak memory of ``nndl train``.

Generates a 32x32x3 dataset of 300,000 images (900 MB as uint8, 3.7 GB as float32) as an
``.npz`` written member by member (the generator never holds it either), then runs
``nndl train --dataset that.npz`` in a fresh process and records its peak resident memory
(``ru_maxrss``), time and accuracy. The .npz has no test split, so nndl draws a stratified
one: 10,000 images here (``--num-test``; its rows are held in memory, the training rows are
not). The first run also decodes the ``.npz`` into nndl's
uint8 cache; the second reads the cache memory-mapped. Results go to
``benchmarks/results/memmap.json`` and ``.md``.

The images are class-coloured noise: each class has its own mean colour per pixel, so a
two-layer network can learn them (the accuracy shows training worked, nothing more).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
N, SHAPE, CLASSES, CHUNK = 300_000, (32, 32, 3), 10, 10_000


def write_npz(path, n=N, seed=0):
    """X (n, 32, 32, 3) uint8 and y (n,) int64 into ``path``, CHUNK images at a time."""
    rng = np.random.default_rng(seed)
    centers = rng.integers(120, 136, size=(CLASSES, *SHAPE))
    y = rng.integers(0, CLASSES, n)
    with zipfile.ZipFile(path, "w", allowZip64=True) as zf:
        with zf.open("X.npy", "w", force_zip64=True) as f:
            header = {"descr": "|u1", "fortran_order": False, "shape": (n, *SHAPE)}
            np.lib.format.write_array_header_2_0(f, header)
            for start in range(0, n, CHUNK):
                labels = y[start:start + CHUNK]
                noise = rng.normal(0, 90, size=(len(labels), *SHAPE))
                f.write(np.clip(centers[labels] + noise, 0, 255).astype(np.uint8).tobytes())
        with zf.open("y.npy", "w") as f:
            np.lib.format.write_array(f, y)
    return path


def run_train(npz, out, iters, env):
    """(peak RSS in MB, seconds, metrics) of one ``nndl train`` process."""
    args = [sys.executable, "-m", "nndl", "train", "--dataset", str(npz), "--dtype", "float32",
            "--num-iters", str(iters), "--num-test", "10000", "--no-progress", "--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    stderr = proc.stderr.read().decode()
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"nndl train failed: {stderr}")
    return usage.ru_maxrss / 1024, seconds, json.loads((out / "metrics.json").read_text())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--images", type=int, default=N)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        npz = write_npz(tmp / "big.npz", args.images)
        env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "cache"), "MPLBACKEND": "Agg"}
        runs = []
        for label in ("first run (decodes into the cache)", "second run (cache only)"):
            rss, seconds, metrics = run_train(npz, tmp / f"run{len(runs)}", args.iters, env)
            runs.append({"run": label, "peak_rss_mb": round(rss), "seconds": round(seconds, 1),
                         "val_accuracy": metrics["val_accuracy"],
                         "test_accuracy": metrics["test_accuracy"]})
            print(runs[-1], flush=True)
    float32_gb = args.images * int(np.prod(SHAPE)) * 4 / 1e9
    result = {"images": args.images, "shape": SHAPE, "uint8_gb": float32_gb / 4,
              "float32_gb": float32_gb, "iterations": args.iters, "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "memmap.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"`nndl train` on {args.images:,} generated 32x32x3 images "
             f"({float32_gb / 4:.1f} GB as uint8, {float32_gb:.1f} GB as float32), "
             f"{args.iters} iterations, float32:", "",
             "| run | peak RSS | seconds | val acc | test acc |", "|---|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['peak_rss_mb']:,} MB | {r['seconds']} | "
              f"{100 * r['val_accuracy']:.1f}% | {100 * r['test_accuracy']:.1f}% |"
              for r in runs]
    (RESULTS / "memmap.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
