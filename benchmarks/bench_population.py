"""Population training vs one-by-one: the same 32 random trials, timed end to end.

32 random hidden-50 trials of 490 iterations each (batch 200, float32, the
assignment's split), run through ``nndl.search.run_search`` with
``population=32`` and ``population=1``, alternating, ``--repeats`` times each.
The random sampler draws the same 32 configurations in both modes. Pruning is
off so both modes do the same work. Prints medians and the ratio; writes
``benchmarks/results/population.json`` and ``.md``.

    python benchmarks/bench_population.py [--repeats 3] [--trials 32]
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from nndl.config import RunConfig
from nndl.search.api import run_search
from nndl.search.settings import SearchSettings
from nndl.search.space import default_space

RESULTS = Path(__file__).parent / "results"


def one_run(population, trials, iters):
    space = {k: v for k, v in default_space().items() if k not in ("batch_size", "num_iters")}
    base = RunConfig(dtype="float32").replace(batch_size=200, num_iters=iters)
    settings = SearchSettings(sampler="random", pruner="none", trials=trials,
                              population=population, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folder = run_search(space, base, settings, out=Path(tmp) / "run", log=lambda m: None)
        seconds = time.perf_counter() - start
        best = json.loads((folder / "metrics.json").read_text())["best"]["val_accuracy"]
    return seconds, best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--iters", type=int, default=490)
    args = parser.parse_args()
    one_run(args.trials, 2, 5)  # warm the data cache and imports
    times = {args.trials: [], 1: []}
    best = {}
    for _ in range(args.repeats):
        for population in (args.trials, 1):
            seconds, best[population] = one_run(population, args.trials, args.iters)
            times[population].append(seconds)
            print(f"population {population:>2}: {seconds:6.1f} s", flush=True)
    together, alone = (statistics.median(times[p]) for p in (args.trials, 1))
    result = {"trials": args.trials, "iterations": args.iters, "repeats": args.repeats,
              "seconds_population": times[args.trials], "seconds_one_by_one": times[1],
              "median_population": together, "median_one_by_one": alone,
              "speedup": alone / together, "best_val_accuracy": best}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "population.json").write_text(json.dumps(result, indent=2) + "\n")
    table = ("| mode | median seconds | speed-up |\n|---|---|---|\n"
             f"| `--population 1` | {alone:.1f} | 1.0x |\n"
             f"| `--population {args.trials}` | {together:.1f} | {alone / together:.2f}x |\n")
    (RESULTS / "population.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
