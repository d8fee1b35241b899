"""``nndl reproduce``: the whole assignment on CIFAR-10, as one run folder and report.

Steps: toy and gradient checks; the default SGD run; a hyperparameter search
at hidden size 50 aiming at >= 50% validation accuracy; first-layer weights of
the default and best networks; the best network's test accuracy; report.html.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

from nndl.checks import format_table, run_toy_checks
from nndl.config import RunConfig
from nndl.data import load_cifar10
from nndl.report import Report, pct
from nndl.runs import RunRecorder, new_run_dir
from nndl.training import TrainingDivergedError, TrainOptions
from nndl.vis_utils import plot_weight_grids
from nndl.workflow import fit, network_metrics, prepare_data, write_network_artifacts

# The assignment's own figures, shown beside ours.
ASSIGNMENT = {"default_val": 0.28, "best_val": 0.50, "best_test": 0.497}
TARGET_VAL = 0.50


@dataclass
class ReproducePlan:
    """What to run. :meth:`full` is the assignment; :meth:`quick` a seconds-long smoke run."""

    base: RunConfig
    default_train: TrainOptions
    search_space: list = field(default_factory=list)  # TrainOptions of each trial

    def describe(self):
        """The plan as JSON-ready data: model/data settings, default run, search space."""
        train_keys = set(self.default_train.to_dict())
        return {"hidden_size": self.base.hidden_size,
                **{k: v for k, v in self.base.to_dict().items() if k not in train_keys},
                "default_run": self.default_train.to_dict(),
                "search_space": [o.to_dict() for o in self.search_space]}

    @classmethod
    def full(cls, data=None, seed=0):
        base = RunConfig(data=data, seed=seed, hidden_size=50, dtype="float64")
        default = TrainOptions(learning_rate=1e-4, learning_rate_decay=0.95, reg=0.25,
                               num_iters=1000, batch_size=200)
        space = [TrainOptions(learning_rate=lr, reg=reg, num_iters=3000, batch_size=200,
                              learning_rate_decay=0.95)
                 for lr in (1e-3, 1.5e-3, 2e-3) for reg in (0.05, 0.1, 0.25)]
        return cls(base, default, space)

    @classmethod
    def quick(cls, data=None, seed=0):
        base = RunConfig(data=data, seed=seed, hidden_size=50, dtype="float64",
                         num_training=800, num_validation=200, num_test=100)
        default = TrainOptions(learning_rate=1e-4, reg=0.25, num_iters=40, batch_size=100)
        space = [TrainOptions(learning_rate=lr, reg=0.1, num_iters=40, batch_size=100)
                 for lr in (1e-3, 2e-3)]
        return cls(base, default, space)


def reproduce(plan, out=None, progress=True, log=print):
    """Run ``plan``; returns the run folder. Ctrl-C leaves a folder marked interrupted."""
    folder = new_run_dir(out, "reproduce")
    recorder = RunRecorder(folder, "reproduce", plan.describe())
    recorder.update(assignment=ASSIGNMENT, networks={})
    state = {"folder": folder, "recorder": recorder, "plan": plan}
    try:
        _run_steps(state, progress, log)
        recorder.finish()
    except KeyboardInterrupt:
        recorder.finish("interrupted")
        _write_report(state)
        log(f"interrupted: partial results in {folder} (metrics.json status 'interrupted')")
        raise
    except Exception as exc:
        recorder.update(error=str(exc))
        recorder.finish("failed")
        raise
    _write_report(state)
    return folder


def _run_steps(state, progress, log):
    folder, recorder, plan = state["folder"], state["recorder"], state["plan"]
    log("1/5 toy model and gradient checks")
    checks = run_toy_checks()
    (folder / "checks.txt").write_text(format_table(checks) + "\n")
    recorder.update(checks=[{"check": c.check, "value": c.value, "tolerance": c.tolerance,
                             "passed": c.passed} for c in checks])
    state["checks"] = checks

    log("2/5 loading CIFAR-10 and training the default network")
    prepared = prepare_data(plan.base, load_cifar10(plan.base.data))
    default_cfg = plan.base.replace(**plan.default_train.to_dict())
    state["default_model"], state["default"] = _train_network(
        folder / "default", default_cfg, prepared, progress, recorder, "default")
    log(f"    default network: validation accuracy {pct(state['default']['val_accuracy'])}")

    log(f"3/5 hyperparameter search at hidden size {plan.base.hidden_size} "
        f"({len(plan.search_space)} trials)")
    trials = []
    state["trials"] = trials
    best = None
    for i, options in enumerate(plan.search_space):
        cfg = plan.base.replace(**options.to_dict())
        try:
            model, history, seconds = fit(cfg, prepared, progress=progress)
        except TrainingDivergedError as exc:
            trials.append({"trial": i, **options.to_dict(), "state": "FAIL",
                           "val_accuracy": None, "seconds": None, "note": str(exc)})
            continue
        metrics = network_metrics(model, prepared, seconds, cfg)
        trials.append({"trial": i, **options.to_dict(), "state": "COMPLETE",
                       "val_accuracy": metrics["val_accuracy"], "seconds": round(seconds, 2)})
        log(f"    trial {i}: lr {options.learning_rate:g} reg {options.reg:g} -> "
            f"{pct(metrics['val_accuracy'])}")
        if best is None or metrics["val_accuracy"] > best[2]["val_accuracy"]:
            best = (model, history, metrics)
        _write_trials(folder / "trials.csv", trials)
    if best is None:
        raise RuntimeError("every search trial diverged")
    model, history, metrics = best
    model.metrics = metrics
    write_network_artifacts(folder / "best", model, history)
    recorder.metrics["networks"]["best"] = metrics
    recorder.update(search={"trials": len(trials), "target_val_accuracy": TARGET_VAL,
                            "best_val_accuracy": metrics["val_accuracy"],
                            "reached_target": metrics["val_accuracy"] >= TARGET_VAL})
    state["best"] = metrics
    state["best_model"] = model

    log("4/5 first-layer weights")
    plot_weight_grids([("default network", state["default_model"].net.params["W1"]),
                       ("best network", model.net.params["W1"])], folder / "weights.png")

    log(f"5/5 test accuracy of the best network: {pct(metrics['test_accuracy'])} on "
        f"{metrics['test_size']} images")


def _train_network(subfolder, cfg, prepared, progress, recorder, name):
    model, history, seconds = fit(cfg, prepared, progress=progress)
    metrics = network_metrics(model, prepared, seconds, cfg)
    model.metrics = metrics
    write_network_artifacts(subfolder, model, history)
    recorder.metrics["networks"][name] = metrics
    recorder.save()
    return model, metrics


def _write_trials(path, trials):
    columns = sorted({k for t in trials for k in t}, key=lambda k: (k != "trial", k))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(trials)


def _write_report(state):
    """report.html from whatever the run has reached (a partial run gets a partial report)."""
    folder, metrics = state["folder"], state["recorder"].metrics
    report = Report("nndl reproduce: the two-layer network assignment")
    status = metrics["status"]
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
        report.section("Toy model and gradient checks", "checks").table(
            ["check", "value", "tolerance", "pass"],
            [[c.check, f"{c.value:.3e}", f"{c.tolerance:.0e}", "yes" if c.passed else "NO"]
             for c in state["checks"]])
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
        ranked = sorted((t for t in state["trials"] if t["val_accuracy"] is not None),
                        key=lambda t: -t["val_accuracy"])
        report.section("Hyperparameter search", "search").paragraph(
            f"{len(state['trials'])} trials at hidden size {state['plan'].base.hidden_size}; "
            f"target {pct(TARGET_VAL)} validation accuracy (the assignment's best: "
            f"{pct(ASSIGNMENT['best_val'])}). All trials are in trials.csv.")
        report.table(["trial", "learning rate", "reg", "iterations", "validation accuracy"],
                     [[t["trial"], f"{t['learning_rate']:g}", f"{t['reg']:g}", t["num_iters"],
                       pct(t["val_accuracy"])] for t in ranked[:10]])
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
