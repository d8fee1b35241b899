"""This checkout's engine against another revision's, side by side on the first assignment.

The assignment's best configuration (hidden 50, batch 200, 2,000 SGD iterations, learning
rate 1e-3, decay 0.95, reg 0.1, mean-subtracted CIFAR-10 49,000 / 1,000) trained through
``TwoLayerNet.train`` in float32 and float64, by this checkout's ``src`` and by the ``src``
of ``--base`` (a git revision, exported to a temporary folder). The two alternate, each
timed run in a fresh process of its own; only the training call is timed. Prints per-dtype
medians and the median of the per-round ratios (this checkout / base: below 1.05 is
"within 5%"), with the validation accuracies (they must agree). Writes
``benchmarks/results/versions.json`` and ``.md``.

    python benchmarks/bench_versions.py [--base HEAD~1] [--repeats 5]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DTYPES = ("float32", "float64")


def one_run(dtype):
    """(training seconds, validation accuracy) of one run in this process."""
    import numpy as np

    from nndl.config import RunConfig
    from nndl.neural_net import TwoLayerNet
    from nndl.workflow import prepare_data

    data = prepare_data(RunConfig(dtype="float32"))
    X, Xv = data.X_train.astype(dtype), data.X_val.astype(dtype)
    net = TwoLayerNet(X.shape[1], 50, 10, random_state=0, dtype=np.dtype(dtype))
    start = time.perf_counter()
    net.train(X, data.y_train, Xv, data.y_val, learning_rate=1e-3, learning_rate_decay=0.95,
              reg=0.1, num_iters=2000, batch_size=200)
    seconds = time.perf_counter() - start
    return seconds, float((net.predict(Xv) == data.y_val).mean())


def in_fresh_process(src, dtype):
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, __file__, "--single", dtype], env=env, check=True,
                         capture_output=True, text=True, cwd=tempfile.gettempdir()).stdout
    return json.loads(out.strip().splitlines()[-1])


def export(rev, folder):
    """``rev``'s ``src`` folder under ``folder``; returns its path."""
    archive = Path(folder) / "src.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), rev, "src"],
                   check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return Path(folder) / "src"


def markdown(result):
    lines = [f"`TwoLayerNet.train` on the assignment's configuration: this checkout "
             f"({result['head']}) against `{result['base']}`, {result['repeats']} alternating "
             f"rounds, each run in a fresh process", "",
             "| dtype | base median s | this median s | ratio (this / base) "
             "| val acc base / this |",
             "|---|---|---|---|---|"]
    for dtype, row in result["rows"].items():
        lines.append(f"| {dtype} | {row['base_s']:.2f} | {row['this_s']:.2f} | "
                     f"{row['ratio']:.3f} | {100 * row['base_acc']:.1f}% / "
                     f"{100 * row['this_acc']:.1f}% |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD~1", help="git revision to compare against")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--single", choices=DTYPES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        print(json.dumps(one_run(args.single)))
        return
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          check=True, capture_output=True, text=True).stdout.strip()
    runs = {(side, dtype): [] for side in ("base", "this") for dtype in DTYPES}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"base": export(args.base, tmp), "this": ROOT / "src"}
        for r in range(args.repeats):
            for dtype in DTYPES:
                for side in (("base", "this") if r % 2 == 0 else ("this", "base")):
                    runs[side, dtype].append(in_fresh_process(trees[side], dtype))
                    print(f"round {r + 1}: {side:4s} {dtype} {runs[side, dtype][-1][0]:6.2f} s",
                          flush=True)
    rows = {}
    for dtype in DTYPES:
        base, this = runs["base", dtype], runs["this", dtype]
        rows[dtype] = {"base_s": statistics.median(s for s, _ in base),
                       "this_s": statistics.median(s for s, _ in this),
                       "ratio": statistics.median(t[0] / b[0] for b, t in zip(base, this)),
                       "base_acc": base[0][1], "this_acc": this[0][1],
                       "base_runs": base, "this_runs": this}
    result = {"base": args.base, "head": head, "repeats": args.repeats, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "versions.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "versions.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
