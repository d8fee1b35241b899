"""The ``nndl check`` command: its flags and what it prints and writes.

Exit status: 0 when every part of every submission passes, 1 when any fails (or was not
run), 2 on usage errors (through the parser's ``error``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nndl.grading.grader import Session, Settings, SubmissionResult

DESCRIPTION = (
    "Grade a student's own implementation of either assignment part by part. The first "
    "assignment's TwoLayerNet: the toy scores, the toy loss with regularization, each "
    "gradient against the numerical gradient of the student's own loss and against nndl's "
    "reference, the toy training run's final loss, predict, and with --full the default "
    "run's CIFAR-10 validation accuracy (25-32%). The second assignment's: each layer's "
    "forward and backward pass, the sandwich layers, each update rule, FullyConnectedNet's "
    "loss and gradients (plain, batchnorm, dropout; two depths, two regularization "
    "strengths) and the Solver overfitting 50 images. PATH is a .py file defining "
    "TwoLayerNet or a folder laid out as the course has it (nndl/neural_net.py; "
    "nndl/layers.py, nndl/layer_utils.py, nndl/optim.py, nndl/fc_net.py). The student's "
    "code runs in child processes, never in nndl's: a "
    "time limit per part, a memory limit, a scratch working folder, and on Linux no "
    "network; every verdict is computed by nndl from the plain data they send back. The "
    "inputs are drawn from --seed: the same seed gives the same verdicts. A failing "
    "part shows your value, the expected value and the tolerance, and names the common "
    "mistakes. Several PATHs: a summary (summary.csv, summary.html, results.json) in "
    "--out. Exit status 0 when every part passes, 1 when any fails, 2 on usage errors.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from nndl.grading.variants import VARIANTS

    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="a student's .py file or folder (several: a batch)")
    p.add_argument("--variant", choices=list(VARIANTS), default="c147",
                   help="the first assignment's conventions: c147 (W1 (H, D), 0.5 * reg * "
                   "sum(W**2)) or cs231n (W1 (D, H), reg * sum(W**2)) (default: c147; the "
                   "second assignment is checked with C147's)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the inputs and of the runs (default: 0)")
    p.add_argument("--full", action="store_true",
                   help="also train the notebook's default network on CIFAR-10 (hidden 50, "
                   "1,000 iterations) and check its validation accuracy is 25-32%%")
    p.add_argument("--data", help="CIFAR-10 location for --full (default: $NNDL_DATA, else "
                   "the user cache; downloaded if absent)")
    p.add_argument("--timeout", type=float, default=20.0, metavar="SECONDS",
                   help="time limit of each part (default: 20)")
    p.add_argument("--memory", type=int, default=1024, metavar="MB",
                   help="memory limit of each part (default: 1024; --full adds what its "
                   "data needs)")
    p.add_argument("--full-timeout", type=float, default=600.0, metavar="SECONDS",
                   help="time limit of each --full run (default: 600)")
    p.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                   help="total time for the --full runs of all submissions, from the first "
                   "one's start; runs that would start later are skipped (default: none)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="submissions graded at once (default: 1)")
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    p.add_argument("--gradescope", metavar="FILE",
                   help="write Gradescope's results.json to FILE (one PATH)")
    p.add_argument("--weights", metavar="TOML",
                   help="part weights for --gradescope and the summary's score: lines "
                   "'part_id = weight' (default 1 each)")
    p.add_argument("--out", metavar="DIR",
                   help="the folder for summary.csv, summary.html and results.json, written "
                   "for several PATHs or when given (default: runs/check-<time>)")


def run_check(args: argparse.Namespace, usage_error: Callable[[str], None]) -> int:
    """Run the command; returns the exit status (usage errors go to ``usage_error``)."""
    from nndl.grading.grader import Session, Settings
    from nndl.grading.output import read_weights
    from nndl.grading.sandbox import isolation
    from nndl.grading.variants import VARIANTS

    _check_usage(args, usage_error)
    settings = Settings(variant=VARIANTS[args.variant], seed=args.seed, timeout=args.timeout,
                        memory_mb=args.memory, full=args.full, full_timeout=args.full_timeout,
                        budget=args.budget, data=args.data)
    network = isolation().note
    with Session(settings) as session:
        weights = {}
        if args.weights:
            try:
                weights = read_weights(args.weights, session.part_ids())
            except (ValueError, FileNotFoundError) as exc:
                usage_error(str(exc))
        if session.full_data is not None:
            session.full_data.get()  # CIFAR-10 missing or unreadable: fail before grading
        results = _grade(session, args.paths, args.jobs)
    _report(args, results, settings, network, weights)
    return 0 if all(r.passed for r in results) else 1


def _check_usage(args: argparse.Namespace, usage_error: Callable[[str], None]) -> None:
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        usage_error(f"no such file or folder: {', '.join(missing)}")
    for path in args.paths:
        if Path(path).is_file() and Path(path).suffix != ".py":
            usage_error(f"{path}: not a Python file (.py) or a folder")
    if args.gradescope and len(args.paths) > 1:
        usage_error("--gradescope writes one submission's results.json: give one PATH")
    if args.budget is not None and not args.full:
        usage_error("--budget is the time of the --full runs: add --full")
    for flag, value in (("--timeout", args.timeout), ("--full-timeout", args.full_timeout),
                        ("--budget", args.budget)):
        if value is not None and not value > 0:
            usage_error(f"{flag} must be > 0, got {value:g}")
    if args.jobs < 1:
        usage_error(f"--jobs must be >= 1, got {args.jobs}")
    if args.memory < 256:
        usage_error(f"--memory must be >= 256 MB (Python and NumPy need about 100), got "
                    f"{args.memory}")


def _grade(session: Session, paths: list[str], jobs: int) -> list[SubmissionResult]:
    """Every submission, ``jobs`` at a time, in the order given; a batch reports each one
    on stderr as it finishes."""
    from nndl.grading.grader import grade_all

    def progress(done: int, result: SubmissionResult) -> None:
        if len(paths) > 1:
            print(f"[{done}/{len(paths)}] {result.path}: {result.passed_count} of "
                  f"{len(result.verdicts)} parts pass", file=sys.stderr, flush=True)

    return grade_all(session, paths, jobs, progress)


def _report(args: argparse.Namespace, results: list[SubmissionResult], settings: Settings,
            network: str, weights: dict[str, float]) -> None:
    from nndl.grading import output
    from nndl.runs import finish_run_dir, new_run_dir, write_json

    document = output.to_json(results, settings, network)
    if args.gradescope:
        write_json(args.gradescope, output.gradescope(results[0], weights, settings, network))
    summary = len(results) > 1 or args.out
    if summary:
        folder = new_run_dir(args.out, "check")
        csv_path, html_path = output.write_summary(folder, results, settings, network,
                                                   weights)
        write_json(folder / "results.json", document)
        finish_run_dir(folder)
    if args.json:
        print(json.dumps(document, indent=2))
        return
    print(f"nndl check: {output.header(settings, network)}")
    if len(results) == 1:
        print(output.table(results[0]))
    else:
        print(output.summary_lines(results))
    if summary:
        print(f"summary: {csv_path}, {html_path}; every verdict: {folder / 'results.json'}")
    if args.gradescope:
        print(f"wrote {args.gradescope}")
