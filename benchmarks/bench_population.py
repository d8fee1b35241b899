"""Population training vs one-by-one: the same 32 random trials, timed end to end.

32 random hidden-50 trials of 490 iterations each (batch 200, float32, the
assignment's split), run through ``nndl.search.run_search`` with
``population=32`` and ``population=1``, alternating, ``--repeats`` times each,
each timed run in a fresh process. The random sampler draws the same 32
configurations in both modes. ``--pruner none`` (default): both modes do the same
work; ``--pruner halving``: the pruner stops trials at epoch 1 in both modes (the
pruned members of a population leave it there), and the table says how many.
Prints medians and the ratio; writes ``benchmarks/results/population.json`` and
``.md`` (``population-halving.*`` etc. for another pruner).

    python benchmarks/bench_population.py [--repeats 3] [--trials 32] [--pruner halving]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def one_run(population, trials, iters, pruner):
    """(seconds, best validation accuracy, trials pruned) of one search in this process."""
    from nndl.config import RunConfig
    from nndl.search.api import run_search
    from nndl.search.settings import SearchSettings
    from nndl.search.space import default_space

    space = {k: v for k, v in default_space().items() if k not in ("batch_size", "num_iters")}
    base = RunConfig(dtype="float32").replace(batch_size=200, num_iters=iters)
    settings = SearchSettings(sampler="random", pruner=pruner, trials=trials,
                              population=population, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folder = run_search(space, base, settings, out=Path(tmp) / "run", log=lambda m: None)
        seconds = time.perf_counter() - start
        best = json.loads((folder / "metrics.json").read_text())["best"]["val_accuracy"]
        rows = (folder / "trials.csv").read_text().splitlines()[1:]
        pruned = sum(",PRUNED," in row for row in rows)
    return seconds, best, pruned


def in_fresh_process(population, args):
    out = subprocess.run([sys.executable, __file__, "--single", str(population), "--trials",
                          str(args.trials), "--iters", str(args.iters), "--pruner",
                          args.pruner], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def write_results(args, runs):
    together, alone = (statistics.median(r["seconds"] for r in runs[p])
                       for p in (args.trials, 1))
    result = {"trials": args.trials, "iterations": args.iters, "repeats": args.repeats,
              "pruner": args.pruner, "fresh_process_per_run": True,
              "seconds_population": [r["seconds"] for r in runs[args.trials]],
              "seconds_one_by_one": [r["seconds"] for r in runs[1]],
              "pruned_population": [r["pruned"] for r in runs[args.trials]],
              "pruned_one_by_one": [r["pruned"] for r in runs[1]],
              "median_population": together, "median_one_by_one": alone,
              "speedup": alone / together,
              "best_val_accuracy": {str(p): runs[p][-1]["best"] for p in runs}}
    name = "population" if args.pruner == "none" else f"population-{args.pruner}"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    pruned = {p: "/".join(str(r["pruned"]) for r in runs[p]) for p in runs}
    table = (f"{args.trials} random trials of {args.iters} iterations, `--pruner "
             f"{args.pruner}`, {args.repeats} alternating runs each in a fresh process\n\n"
             "| mode | median seconds | trials pruned (each run) | speed-up |\n"
             "|---|---|---|---|\n"
             f"| `--population 1` | {alone:.1f} | {pruned[1]} | 1.0x |\n"
             f"| `--population {args.trials}` | {together:.1f} | {pruned[args.trials]} | "
             f"{alone / together:.2f}x |\n")
    (RESULTS / f"{name}.md").write_text(table)
    print(table)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--iters", type=int, default=490)
    parser.add_argument("--pruner", default="none",
                        choices=("none", "halving", "median", "hyperband"))
    parser.add_argument("--single", type=int, metavar="POPULATION", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single is not None:  # one timed run, in the process the parent started
        seconds, best, pruned = one_run(args.single, args.trials, args.iters, args.pruner)
        print(json.dumps({"seconds": seconds, "best": best, "pruned": pruned}))
        return
    one_run(args.trials, 2, 5, "none")  # warm the data cache
    runs = {args.trials: [], 1: []}
    for _ in range(args.repeats):
        for population in (args.trials, 1):
            runs[population].append(in_fresh_process(population, args))
            r = runs[population][-1]
            print(f"population {population:>2}: {r['seconds']:6.1f} s, {r['pruned']} pruned",
                  flush=True)
    write_results(args, runs)


if __name__ == "__main__":
    main()
