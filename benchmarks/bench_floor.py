"""The floor under one step of the assignment's network on this machine.

A float32 step (hidden 50, batch 200, D 3,072) is a gather of 200 random training rows and
two large products, plus ~0.1 ms of small operations. This measures what each of the large
parts costs at best, and what the machine and another library give for the same work, so
that a speed target can be set against the hardware rather than against hope.

Each of ``--repeats`` fresh processes times in alternating blocks (medians of 30-call
blocks, 10 rounds; synthetic data of CIFAR-10's size: the bytes are what counts):

- ``gather``: 200 random rows of a 49,000 x 3,072 float32 array (600 MB) into a reused
  buffer, as the training loop does; ``contiguous copy``: 200 consecutive rows from a
  random offset (the same 2.4 MB read in order); ``hot gather``: the same 200 rows again
  (from the cache);
- the forward product (200 x 3072) @ (3072 x 50) and the weight-gradient update
  ``V += X.T @ dh`` (3072 x 50) through NumPy's OpenBLAS, on two threads and on one
  (threadpoolctl), beside the 2048^3 product peak on two and on one;

and a fresh process of its own times PyTorch's ``mm`` / ``addmm_`` of the same shapes (when
installed). Writes ``benchmarks/results/floor.json`` and ``floor.md``.

    python benchmarks/bench_floor.py [--repeats 3]
"""

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_cpu import alternating_medians_ms, cpu_name

RESULTS = Path(__file__).parent / "results"
N, D, B, H = 49_000, 3072, 200, 50
PRODUCT_GFLOP = 2 * B * D * H / 1e9  # each of the two large products


def peak_gflops(matmul, a, repeats=5):
    matmul(a, a)
    best = min(_seconds(lambda: matmul(a, a)) for _ in range(repeats))
    return 2 * a.shape[0] ** 3 / best / 1e9


def _seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def numpy_process(seed):
    """Gathers and OpenBLAS products in this process: ms per call and GFLOP/s peaks."""
    from threadpoolctl import threadpool_limits

    from nndl import _blas

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D), dtype=np.float32)
    buf = np.empty((B, D), np.float32)
    hot = rng.integers(0, N, B)
    V = rng.standard_normal((D, H), dtype=np.float32) * 1e-3
    dh = rng.standard_normal((B, H), dtype=np.float32)
    hidden = np.empty((B, H), np.float32)
    batch = X[hot]

    def contiguous_copy():
        start = int(rng.integers(0, N - B))
        np.copyto(buf, X[start:start + B])

    result = alternating_medians_ms({
        "gather": lambda: np.take(X, rng.integers(0, N, B), axis=0, out=buf, mode="clip"),
        "contiguous copy": contiguous_copy,
        "hot gather": lambda: np.take(X, hot, axis=0, out=buf, mode="clip"),
        "draw": lambda: rng.integers(0, N, B)})
    draw = result.pop("draw")  # the index draw is not part of a gather
    result["gather"] -= draw
    square = rng.standard_normal((2048, 2048), dtype=np.float32)
    for threads in (2, 1):
        with threadpool_limits(threads):
            products = alternating_medians_ms({
                "forward": lambda: _blas.gemm(hidden, batch, V),
                "gradient": lambda: _blas.add_product(V, batch, dh, -1e-9)})
            result[f"peak GFLOP/s, {threads} thread(s)"] = peak_gflops(np.matmul, square)
        for name, ms in products.items():
            result[f"{name} product, {threads} thread(s)"] = ms
    return result


def torch_process(seed):
    """PyTorch's own products of the same shapes (its default threads): ms per call."""
    import torch

    torch.manual_seed(seed)
    batch, V, dh = torch.randn(B, D), torch.randn(D, H) * 1e-3, torch.randn(B, H)
    out = torch.empty(B, H)
    result = alternating_medians_ms({
        "forward product": lambda: torch.mm(batch, V, out=out),
        "gradient product": lambda: V.addmm_(batch.t(), dh, alpha=-1e-9)})
    result["peak GFLOP/s"] = peak_gflops(torch.mm, torch.randn(2048, 2048))
    result["threads"] = torch.get_num_threads()
    return result


def run_in_subprocess(kind, seed):
    out = subprocess.run([sys.executable, __file__, "--single", kind, "--seed", str(seed)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def medians(runs):
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def markdown(result):
    np_ms, lines = result["numpy"], []
    peak2 = np_ms["peak GFLOP/s, 2 thread(s)"]
    lines += [f"Machine: {result['cpu']}; {result['repeats']} fresh processes, medians.", "",
              "| part | ms | note |", "|---|---|---|"]
    gather = np_ms["gather"]
    for name in ("gather", "contiguous copy", "hot gather"):
        rate = B * D * 4 / np_ms[name] / 1e6
        lines.append(f"| {name} (2.4 MB) | {np_ms[name]:.3f} | {rate:.1f} GB/s, "
                     f"{np_ms[name] / gather:.2f}x the gather |")
    for threads in (2, 1):
        peak = np_ms[f"peak GFLOP/s, {threads} thread(s)"]
        for name in ("forward", "gradient"):
            ms = np_ms[f"{name} product, {threads} thread(s)"]
            gflops = PRODUCT_GFLOP / ms * 1e3
            lines.append(f"| OpenBLAS {name} product, {threads} thread(s) | {ms:.3f} | "
                         f"{gflops:.0f} GFLOP/s, {gflops / peak:.0%} of its {peak:.0f} peak |")
    if result.get("torch"):
        t = result["torch"]
        for name in ("forward product", "gradient product"):
            gflops = PRODUCT_GFLOP / t[name] * 1e3
            lines.append(f"| PyTorch {name}, {t['threads']:.0f} thread(s) | {t[name]:.3f} | "
                         f"{gflops:.0f} GFLOP/s, {gflops / peak2:.0%} of OpenBLAS's "
                         f"{peak2:.0f} peak (its own: {t['peak GFLOP/s']:.0f}) |")
    floor = gather + np_ms["forward product, 2 thread(s)"] + np_ms["gradient product, 2 thread(s)"]
    lines += ["", f"Gather + the two products on two threads: {floor:.3f} ms a step "
              f"({2000 * floor / 1e3:.2f} s for 2,000 steps, before any small operation)."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per kind")
    parser.add_argument("--single", choices=("numpy", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        run = numpy_process if args.single == "numpy" else torch_process
        print(json.dumps(run(args.seed)))
        return
    kinds = ["numpy"] + (["torch"] if importlib.util.find_spec("torch") else [])
    runs = {kind: [] for kind in kinds}
    for seed in range(args.repeats):
        for kind in kinds:  # alternate the kinds, each in a fresh process
            runs[kind].append(run_in_subprocess(kind, seed))
            print(kind, seed, json.dumps(runs[kind][-1]), flush=True)
    result = {"cpu": cpu_name(), "repeats": args.repeats, "runs": runs,
              **{kind: medians(r) for kind, r in runs.items()}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "floor.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "floor.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
