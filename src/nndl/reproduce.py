"""``nndl reproduce``: the whole assignment on CIFAR-10, as one run folder and report.

Steps: toy and gradient checks (the first assignment's toy model, the second's layers,
update rules and networks); the default SGD run; a hyperparameter search
at hidden size 50 aiming at >= 50% validation accuracy; first-layer weights of
the default and best networks; the best network's test accuracy; report.html.
"""

from __future__ import annotations

import csv
import json
import textwrap
from dataclasses import dataclass, field

from nndl._atomic import write_text
from nndl.checks import format_table, run_toy_checks
from nndl.config import RunConfig, TrainOptions
from nndl.data import load_dataset
from nndl.data.errors import DataNotFoundError
from nndl.layer_checks import MEASURES, run_course_checks
from nndl.model_io import load_model
from nndl.report import Report, pct
from nndl.runs import recorded_run
from nndl.search.api import run_search
from nndl.search.settings import SearchSettings
from nndl.search.space import Dimension, largest_config
from nndl.vis_utils import plot_weight_grids
from nndl.workflow import (
    check_memory,
    fit,
    network_metrics,
    prepare_data,
    write_network_artifacts,
)

# The assignment's own figures, shown beside ours.
ASSIGNMENT = {"default_val": 0.28, "best_val": 0.50, "best_test": 0.497}
TARGET_VAL = 0.50
MAX_SEARCH_ROUNDS = 3


@dataclass
class ReproducePlan:
    """What to run. :meth:`full` is the assignment; :meth:`quick` a seconds-long smoke run."""

    base: RunConfig  # model, data and the search's fixed training options
    default_train: TrainOptions
    search_space: dict = field(default_factory=dict)  # name -> search Dimension (a grid)
    max_rounds: int = MAX_SEARCH_ROUNDS  # grid rounds until the target is reached
    smoke: bool = False  # a --quick run: checks the workflow, not the assignment's numbers

    def describe(self):
        """The plan as JSON-ready data: model/data settings, default run, search space."""
        return {"smoke_run": self.smoke, "hidden_size": self.base.hidden_size,
                "base": self.base.to_dict(),
                "default_run": self.default_train.to_dict(),
                "search_space": {k: vars(d) for k, d in self.search_space.items()}}

    @property
    def grid_size(self):
        size = 1
        for dim in self.search_space.values():
            size *= len(dim.grid_values())
        return size

    @classmethod
    def full(cls, data=None, seed=0):
        """The assignment: float64, 49,000 / 1,000 / 1,000; the search is the grid of
        learning rate {7e-4, 1e-3, 1.4e-3} x reg {0.1, 0.25, 0.5} at 3,000 iterations,
        batch 200, decay 0.95."""
        base = RunConfig(data=data, seed=seed, hidden_size=50, dtype="float64",
                         train=TrainOptions(num_iters=3000, batch_size=200,
                                            learning_rate_decay=0.95))
        default = TrainOptions(learning_rate=1e-4, learning_rate_decay=0.95, reg=0.25,
                               num_iters=1000, batch_size=200)
        space = {"learning_rate": Dimension(choices=[7e-4, 1e-3, 1.4e-3]),
                 "reg": Dimension(choices=[0.1, 0.25, 0.5])}
        return cls(base, default, space)

    @classmethod
    def quick(cls, data=None, seed=0):
        """A seconds-long smoke run on 800 / 200 / 100 images."""
        base = RunConfig(data=data, seed=seed, hidden_size=50, dtype="float64",
                         num_training=800, num_validation=200, num_test=100,
                         train=TrainOptions(num_iters=40, batch_size=100))
        default = TrainOptions(learning_rate=1e-4, reg=0.25, num_iters=40, batch_size=100)
        space = {"learning_rate": Dimension(choices=[1e-3, 2e-3]),
                 "reg": Dimension(choices=[0.1])}
        return cls(base, default, space, max_rounds=1, smoke=True)


def reproduce(plan, out=None, progress=True, log=print):
    """Run ``plan``; returns the run folder. Ctrl-C (and SIGTERM or SIGHUP in the ``nndl``
    command: :mod:`nndl._stops`) leaves the folder with what it reached, marked
    ``interrupted`` (``terminated``), and a partial report; a start that fails leaves no
    folder (:func:`nndl.runs.recorded_run`), and a plan that would not fit in memory
    is refused before the folder (:func:`check_plan_memory`)."""
    check_plan_memory(plan)
    state = {"plan": plan}
    try:
        with recorded_run(out, "reproduce", plan.describe()) as recorder:
            state.update(folder=recorder.folder, recorder=recorder)
            recorder.update(assignment=ASSIGNMENT, networks={})
            _run_steps(state, progress, log)
            recorder.finish()
    except KeyboardInterrupt:
        if "recorder" in state:
            _write_report(state)
            status = state["recorder"].metrics["status"]
            log(f"{status}: partial results in {state['folder']} (metrics.json status "
                f"{status!r})")
        raise
    _write_report(state)
    return state["folder"]


def check_plan_memory(plan):
    """Refuse ``plan`` in one line when its largest step (the grid's networks trained
    together as one population) would not fit in memory (:func:`nndl.workflow.check_memory`).
    Only where CIFAR-10 is already there: a copy still to download is checked once it is
    (each training's own check, :func:`nndl.workflow.prepare_data`)."""
    try:
        data = load_dataset("cifar10", plan.base.data, download=False, progress=False)
    except DataNotFoundError:
        return
    check_memory(largest_config(plan.search_space, plan.base), data, members=plan.grid_size,
                 what="nndl reproduce")


def _checks_table(report, checks):
    report.table(["check", "value", "tolerance", "pass"],
                 [[c.check, f"{c.value:.3e}", f"{c.tolerance:.0e}", "yes" if c.passed else "NO"]
                  for c in checks])


def _run_steps(state, progress, log):
    folder, recorder, plan = state["folder"], state["recorder"], state["plan"]
    log("1/5 toy model, layer and gradient checks")
    state["checks"], state["course_checks"] = run_toy_checks(), run_course_checks()
    checks = state["checks"] + state["course_checks"]
    write_text(folder / "checks.txt",
               f"{format_table(checks)}\n\n{textwrap.fill(MEASURES, 92)}\n")
    recorder.update(checks=[{"check": c.check, "value": c.value, "tolerance": c.tolerance,
                             "passed": c.passed} for c in checks])

    log("2/5 loading CIFAR-10 and training the default network")
    prepared = prepare_data(plan.base, load_dataset("cifar10", plan.base.data))
    default_cfg = plan.base.replace(**plan.default_train.to_dict())
    state["default_model"], state["default"] = _train_network(
        folder / "default", default_cfg, prepared, progress, recorder, "default")
    log(f"    default network: validation accuracy {pct(state['default']['val_accuracy'])}")

    log(f"3/5 hyperparameter search at hidden size {plan.base.hidden_size} "
        f"({plan.grid_size} grid trials, trained together as one population)")
    state["trials"], best = [], None
    for round_ in range(1, plan.max_rounds + 1):
        metrics, search_dir = _search_round(plan, folder, round_, state["trials"], log,
                                            progress, prepared)
        if best is None or metrics["val_accuracy"] > best[0]["val_accuracy"]:
            best = (metrics, search_dir)
        if best[0]["val_accuracy"] >= TARGET_VAL:
            break
        if round_ < plan.max_rounds:
            log(f"    best so far {pct(best[0]['val_accuracy'])} < {pct(TARGET_VAL)}: another "
                "round with new seeds and 1,000 more iterations")
    metrics, search_dir = best
    model = load_model(search_dir / "best" / "model.npz")
    write_network_artifacts(folder / "best", model, model.history)
    recorder.metrics["networks"]["best"] = metrics
    recorder.update(search={"trials": len(state["trials"]), "rounds": round_,
                            "target_val_accuracy": TARGET_VAL,
                            "best_val_accuracy": metrics["val_accuracy"],
                            "reached_target": metrics["val_accuracy"] >= TARGET_VAL,
                            "folder": search_dir.name})
    state["best"] = metrics

    log("4/5 first-layer weights")
    plot_weight_grids([("default network", state["default_model"].net.params["W1"]),
                       ("best network", model.net.params["W1"])], folder / "weights.png")

    log(f"5/5 test accuracy of the best network: {pct(metrics['test_accuracy'])} on "
        f"{metrics['test_size']} images")


def _search_round(plan, folder, round_, trials, log, progress, prepared):
    """One grid round through the search engine; round r uses seed + r - 1 and
    (r - 1) * 1,000 more iterations. Appends its trials; returns (best metrics, folder)."""
    base = plan.base.replace(seed=plan.base.seed + round_ - 1,
                             num_iters=plan.base.train.num_iters + 1000 * (round_ - 1))
    out = folder / ("search" if round_ == 1 else f"search-{round_}")
    search_dir = run_search(plan.search_space, base,
                            SearchSettings(sampler="grid", pruner="none", trials=plan.grid_size,
                                           seed=base.seed, study=f"reproduce-{round_}"),
                            out=out, log=lambda m: log(f"    {m}"), progress=progress,
                            prepared=prepared)
    with open(search_dir / "trials.csv", newline="") as f:
        trials.extend(dict(row, round=round_, num_iters=base.train.num_iters)
                      for row in csv.DictReader(f))
    return json.loads((search_dir / "metrics.json").read_text())["best"], search_dir


def _train_network(subfolder, cfg, prepared, progress, recorder, name):
    model, history, seconds = fit(cfg, prepared, progress=progress)
    metrics = network_metrics(model, prepared, seconds, cfg)
    model.metrics = metrics
    write_network_artifacts(subfolder, model, history)
    recorder.metrics["networks"][name] = metrics
    recorder.save()
    return model, metrics


def _write_report(state):
    """report.html from whatever the run has reached (a partial run gets a partial report)."""
    folder, metrics = state["folder"], state["recorder"].metrics
    report = Report("nndl reproduce: the two-layer network assignment")
    status = metrics["status"]
    plan = state["plan"]
    if plan.smoke:
        report.paragraph(
            f"A --quick smoke run ({plan.base.num_training} training images, "
            f"{plan.base.train.num_iters} iterations): it shows the workflow runs end to end; "
            "its accuracies are not comparable with the assignment's. Run nndl reproduce "
            "without --quick for those.", "status")
    if status != "complete":
        report.paragraph(f"This run is {status}: the sections below show what it reached.",
                         "status")
    default, best = state.get("default"), state.get("best")
    report.section("Summary", "summary").table(
        ["figure", "nndl", "assignment"],
        [["default network, validation accuracy", pct(default and default["val_accuracy"]),
          pct(ASSIGNMENT["default_val"])],
         ["best network, validation accuracy", pct(best and best["val_accuracy"]),
          pct(ASSIGNMENT["best_val"])],
         ["best network, test accuracy", pct(best and best["test_accuracy"]),
          pct(ASSIGNMENT["best_test"])]])
    if "checks" in state:
        report.section("Toy model and gradient checks", "checks")
        _checks_table(report, state["checks"])
        report.section("Layers, update rules and deep networks (the second assignment)",
                       "layers").paragraph(MEASURES)
        _checks_table(report, state["course_checks"])
    if default:
        report.section("Default network", "default").paragraph(
            f"Hidden size {default['hidden_size']}, {default['config']['num_iters']} iterations, "
            f"batch {default['config']['batch_size']}, learning rate "
            f"{default['config']['learning_rate']:g}, decay "
            f"{default['config']['learning_rate_decay']:g}, reg {default['config']['reg']:g}: "
            f"validation accuracy {pct(default['val_accuracy'])} (the assignment expects about "
            f"{pct(ASSIGNMENT['default_val'])}).")
        report.figure(folder / "default" / "loss.png", "Default network: loss history")
        report.figure(folder / "default" / "accuracy.png",
                      "Default network: train and validation accuracy")
    if state.get("trials"):
        ranked = sorted((t for t in state["trials"] if t["val_accuracy"]),
                        key=lambda t: -float(t["val_accuracy"]))
        report.section("Hyperparameter search", "search").paragraph(
            f"{len(state['trials'])} grid trials at hidden size {plan.base.hidden_size}, "
            f"batch {plan.base.train.batch_size}, each grid trained together as one "
            f"population, in rounds until the best reaches {pct(TARGET_VAL)} validation "
            f"accuracy (the assignment's best: {pct(ASSIGNMENT['best_val'])}). All trials "
            "are in search/trials.csv (and search-N/ for later rounds).")
        report.table(["round", "trial", "iterations", "learning rate", "reg", "state",
                      "validation accuracy"],
                     [[t["round"], t["number"], t["num_iters"], f"{float(t['learning_rate']):g}",
                       f"{float(t['reg']):g}", t["state"], pct(float(t["val_accuracy"]))]
                      for t in ranked[:10]])
    if best:
        report.figure(folder / "best" / "loss.png", "Best network: loss history")
        report.figure(folder / "best" / "accuracy.png",
                      "Best network: train and validation accuracy")
        report.section("First-layer weights", "weights").figure(
            folder / "weights.png", "W1 of the default (left) and best (right) networks")
        report.section("Test accuracy", "test").paragraph(
            f"The best network classifies {pct(best['test_accuracy'])} of "
            f"{best['test_size']} test images correctly (the assignment's: "
            f"{pct(ASSIGNMENT['best_test'])} on the first 1,000).")
    report.write(folder / "report.html")
