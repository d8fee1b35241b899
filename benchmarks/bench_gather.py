"""How the assignment's run takes its minibatches: split between two cores, or gathered whole.

nndl float32 on the ``bench_cpu.py`` configuration (hidden 50, batch 200, 2,000 SGD
iterations, mean-subtracted CIFAR-10, minibatches drawn with replacement), as the loop runs
it on this machine (``two cores``: where BLAS has two threads, each core gathers and updates
its own half of the columns, ``nndl._halves``), and with that split turned off, the whole
minibatch gathered by the gatherer (``nndl._gather.RowGatherer``) as it is (``adaptive``:
one reused buffer or a ring of them, by its own timings; what machines without the split
use), held to its one buffer (``one buffer``: what nndl did before it, like NumPy's fancy
indexing, whose fresh array lands on the memory just freed) or held to the ring (``ring``,
apart from its first 8 calls and its 8-call trials of the one buffer). The four alternate,
each timed run in a fresh process, ``--repeats`` rounds; per gathering run also the share of
gathers that went into the ring and the median gather of each way. Ratios are medians of
the per-round ratios against ``one buffer``. Writes ``benchmarks/results/gather.json`` and
``gather.md`` (the README quotes them).

    python benchmarks/bench_gather.py [--repeats 10]
"""

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_cpu import cpu_name, run_nndl  # the run of bench_cpu's "nndl float32"

from nndl import _halves
from nndl._gather import RowGatherer
from nndl.config import RunConfig
from nndl.workflow import prepare_data

RESULTS = Path(__file__).parent / "results"
MODES = ("two cores", "adaptive", "one buffer", "ring")


def hold(mode):
    """Set the split's and the gatherer's knobs for ``mode`` (in this process only)."""
    if mode != "two cores":
        _halves.worth_splitting = lambda *args: False
    if mode == "one buffer":
        RowGatherer.RING = 1  # no ring is made: every gather into the one buffer
    elif mode == "ring":
        RowGatherer.MARGIN = -math.inf  # the ring always counts as faster


def record(log):
    """Wrap the gatherer's call to log (way, seconds) of every gather."""
    call = RowGatherer.__call__

    def recorded(self, idx):
        start = time.perf_counter()
        rows = call(self, idx)
        log.append((self.way, time.perf_counter() - start))
        return rows

    RowGatherer.__call__ = recorded


def single(mode, seed):
    """One timed training run in this fresh process: seconds, validation accuracy, whether
    it split, the share of gathers into the ring and the median gather (ms) of each way
    (None where the gatherer did not run)."""
    hold(mode)
    log = []
    record(log)
    split = []
    use_halves = _halves.Halves.__init__
    _halves.Halves.__init__ = lambda self, *args: (split.append(1), use_halves(self, *args))[1]
    seconds, accuracy = run_nndl(prepare_data(RunConfig(dtype="float32")), np.float32, seed)
    ways = np.array([w for w, _ in log])
    times = np.array([t for _, t in log])
    gather_ms = {name: 1e3 * float(np.median(times[ways == way])) if (ways == way).any()
                 else None for way, name in ((0, "one buffer"), (1, "ring"))}
    return {"seconds": seconds, "val_accuracy": accuracy, "split": bool(split),
            "ring_share": float(ways.mean()) if len(ways) else None, "gather_ms": gather_ms}


def run_in_subprocess(mode, seed):
    out = subprocess.run([sys.executable, __file__, "--single", mode, "--seed", str(seed)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarize(runs):
    reference = [r["seconds"] for r in runs["one buffer"]]
    rows = []
    for mode, values in runs.items():
        seconds = [v["seconds"] for v in values]
        rows.append({"mode": mode, "median_seconds": statistics.median(seconds),
                     "speed_vs_one_buffer": statistics.median(
                         r / s for r, s in zip(reference, seconds)),
                     "max_seconds": max(seconds),
                     "median_ring_share": _median_or_none(v["ring_share"] for v in values),
                     "split_runs": sum(v.get("split", False) for v in values),
                     "runs": values})
    return rows


def _median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _percent(share):
    return "-" if share is None else f"{100 * share:.0f}%"


def markdown(result):
    lines = ["| minibatches | median s | vs one buffer (paired) | slowest run s | "
             "gathers into the ring (median) | runs split |", "|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['mode']} | {row['median_seconds']:.2f} | "
                     f"{row['speed_vs_one_buffer']:.2f}x | {row['max_seconds']:.2f} | "
                     f"{_percent(row['median_ring_share'])} | {row['split_runs']} |")
    lines.append(f"\nMachine: {result['cpu']}. nndl float32, 2,000 iterations of batch 200; "
                 f"{result['repeats']} alternating rounds, each run in a fresh process.")
    lines.append("Per run (seconds, share of gathers into the ring, median gather ms "
                 "one buffer / ring):")
    for row in result["rows"]:
        runs = "; ".join(
            f"{v['seconds']:.2f} s {_percent(v['ring_share'])} "
            + " / ".join("-" if v["gather_ms"][k] is None else f"{v['gather_ms'][k]:.2f}"
                         for k in ("one buffer", "ring")) for v in row["runs"])
        lines.append(f"- {row['mode']}: {runs}")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--single", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:  # one timed run, in this fresh process
        print(json.dumps(single(args.single, args.seed)))
        return
    runs = {mode: [] for mode in MODES}
    for r in range(args.repeats):
        for mode in MODES:
            runs[mode].append(run_in_subprocess(mode, r))
            last = runs[mode][-1]
            print(f"round {r + 1}: {mode:10s} {last['seconds']:6.2f} s  "
                  f"ring {_percent(last['ring_share'])}", flush=True)
    result = {"repeats": args.repeats, "cpu": cpu_name(), "rows": summarize(runs)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gather.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (RESULTS / "gather.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
