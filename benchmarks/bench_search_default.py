"""The default search at a small budget: ``nndl search --trials 8`` on CIFAR-10, seeds 0-4.

Each seed is one ``nndl search --trials 8 --seed-search SEED`` (the shipped defaults: TPE,
``--pruner auto``, the default space) in a fresh process on the CIFAR-10 copy that
``NNDL_DATA`` names. For each: the best validation accuracy, its test accuracy, the trials
pruned by the pruner and the trials that diverged, and the seconds it took; then how many
seeds reached the assignment's 50% validation. Extra arguments after ``--`` go to every
search (e.g. ``-- --pruner halving`` to time the previous default). Writes
``benchmarks/results/NAME.json`` and ``.md`` (``--name``, default ``search-default``).

    NNDL_DATA=/path/to/datasets python benchmarks/bench_search_default.py [--seeds 0 1 2 3 4]
"""

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
TARGET = 0.50  # the assignment's validation accuracy


def one_search(seed, trials, extra):
    """What one search of ``trials`` trials with ``--seed-search seed`` found and took."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nndl", "search", "--trials", str(trials),
                        "--seed-search", str(seed), "--no-progress", "--out", str(out),
                        *extra], check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        best = json.loads((out / "metrics.json").read_text())["best"]
        with open(out / "trials.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    reasons = [row["reason"] for row in rows]
    accuracies = sorted((float(r["val_accuracy"]) for r in rows if r["state"] == "COMPLETE"),
                        reverse=True)
    return {"seed": seed, "best_val_accuracy": best["val_accuracy"],
            "test_accuracy": best["test_accuracy"], "best_trial": best["trial"],
            "pruned": sum("by the pruner" in r for r in reasons),
            "diverged": sum(r.startswith("diverged") for r in reasons),
            "completed_val_accuracies": accuracies,
            "reached_target": sum(a >= TARGET for a in accuracies), "seconds": seconds}


def write_results(name, trials, extra, runs):
    reached = sum(r["best_val_accuracy"] >= TARGET for r in runs)
    result = {"command": f"nndl search --trials {trials} --seed-search SEED "
                         + " ".join(extra), "target": TARGET, "seeds_reaching_target": reached,
              "seeds": len(runs), "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"`{result['command'].strip()}` on CIFAR-10: {reached} of {len(runs)} seeds reach "
             f"{100 * TARGET:.0f}% validation\n",
             "| seed | best validation | its test (1,000) | trials >= 50% | pruned | diverged "
             "| seconds |", "|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['seed']} | {100 * r['best_val_accuracy']:.1f}% | "
                     f"{100 * r['test_accuracy']:.1f}% | {r['reached_target']} of {trials} | "
                     f"{r['pruned']} | {r['diverged']} | {r['seconds']:.0f} |")
    table = "\n".join(lines) + "\n"
    (RESULTS / f"{name}.md").write_text(table)
    print(table)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--name", default="search-default", help="results file name")
    parser.add_argument("extra", nargs="*", help="arguments for every search (after --)")
    args = parser.parse_args()
    runs = []
    for seed in args.seeds:
        runs.append(one_search(seed, args.trials, args.extra))
        r = runs[-1]
        print(f"seed {seed}: best {100 * r['best_val_accuracy']:.1f}%, {r['pruned']} pruned, "
              f"{r['diverged']} diverged, {r['seconds']:.0f} s", flush=True)
    write_results(args.name, args.trials, args.extra, runs)


if __name__ == "__main__":
    main()
