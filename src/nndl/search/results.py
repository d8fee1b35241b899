"""What a finished search leaves in its run folder: trials.csv, the best model,
its test accuracy, Optuna's plots, metrics.json and report.html."""

from __future__ import annotations

import csv
from pathlib import Path

from nndl._atomic import atomic_path, naming
from nndl.config import RunConfig
from nndl.metrics import accuracy
from nndl.model_io import load_model, save_model
from nndl.report import Report, pct
from nndl.vis_utils import plot_trial_history
from nndl.workflow import fit, prepare_data


def trial_rows(study):
    """One dict per trial: number, state, parameters, validation accuracy, seconds,
    population size, the failed trial it runs again (if any), reason."""
    params = sorted({p for t in study.get_trials(deepcopy=False) for p in t.params})
    rows = []
    for t in study.get_trials(deepcopy=False):
        row = {"number": t.number, "state": t.state.name}
        row.update({p: t.params.get(p, "") for p in params})
        row["val_accuracy"] = "" if t.value is None else t.value
        row["seconds"] = t.user_attrs.get("seconds", "")
        row["population_size"] = t.user_attrs.get("population_size", "")
        row["retry_of"] = t.user_attrs.get("retry_of", "")  # a failed trial run again
        row["reason"] = t.user_attrs.get("reason", "")
        rows.append(row)
    return rows


def write_trials_csv(study, path):
    rows = trial_rows(study)
    if not rows:
        return
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


#: The fewest characters of a reason shown, however little room the other columns leave.
MIN_REASON_WIDTH = 24


def format_trials(study, width=None):
    """The trial table as text (``nndl search status``), one line per trial.

    The last column is the reason a trial was pruned, diverged or failed, on one line;
    with ``width`` (the terminal's columns) it is cut to what fits after the other
    columns (at least :data:`MIN_REASON_WIDTH` characters) and ends in "..." where cut;
    without, it is whole. trials.csv keeps every reason whole.
    """
    rows = trial_rows(study)
    if not rows:
        return "no trials yet"
    columns = list(rows[0])
    cells = [[" ".join(_fmt(r[c]).split()) for c in columns] for r in rows]  # one line each
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    if width is not None:  # the reason column is the last
        room = max(width - sum(w + 2 for w in widths[:-1]), MIN_REASON_WIDTH)
        cells = [row[:-1] + [_cut(row[-1], room)] for row in cells]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cut(text, width):
    return text if len(text) <= width else text[:width - 3] + "..."


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def best_model(study, folder, prepare=prepare_data):
    """The best trial's model: the file its worker saved, else retrained from its config."""
    best = study.best_trial
    saved = folder / "trials" / f"trial-{best.number}.npz"
    if saved.is_file():
        return best, load_model(saved)
    cfg = RunConfig.from_dict(study.user_attrs["nndl_base"]).replace(
        **best.params, seed=best.user_attrs.get("init_seed", 0))
    model, _, _ = fit(cfg, prepare(cfg), progress=False)
    return best, model


def finish_search(study, folder, recorder, log=print, prepare=None, stopped=None):
    """Write the run folder's results and mark the run complete; returns the metrics dict.
    ``prepare(cfg)`` gives the preprocessed data (default:
    :func:`nndl.workflow.prepare_data`).

    ``stopped`` (why the search ended early, e.g. "stopped by SIGTERM"): the results of
    the trials finished so far are written all the same (trials.csv always; the best
    model, its test accuracy and the report, which says so, once a trial completed) and
    the run's status is left to the caller; returns None when no trial completed."""
    prepare = prepare or prepare_data
    from optuna.trial import TrialState

    write_trials_csv(study, folder / "trials.csv")
    counts = {s.name: len(study.get_trials(deepcopy=False, states=(s,))) for s in
              (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    if not counts["COMPLETE"]:
        if stopped:
            recorder.update(trials=counts)
            return None
        raise RuntimeError("no trial completed; see trials.csv for the reasons")
    best, model = best_model(study, folder, prepare)
    cfg = RunConfig.from_dict(model.hyperparameters)
    prepared = prepare(cfg)
    metrics = {
        "val_accuracy": best.value,
        "test_accuracy": accuracy(prepared.y_test, model.net._predict(prepared.X_test)),
        "test_size": len(prepared.y_test), "hidden_size": cfg.hidden_size,
        "trial": best.number, "config": cfg.to_dict(),
    }
    model.metrics = metrics
    with naming(folder / "best" / "model.npz"):
        (folder / "best").mkdir(exist_ok=True)
        save_model(folder / "best" / "model.npz", model)
    chance = 1 / len(model.class_names)
    plots = _plots(study, folder, chance)
    recorder.update(best=metrics, trials=counts,
                    seconds=sum(t.user_attrs.get("seconds", 0) or 0
                                for t in study.get_trials(deepcopy=False)))
    if not stopped:
        recorder.finish()
    _report(study, folder, metrics, counts, plots, chance, stopped)
    log(f"best trial {best.number}: validation {pct(best.value)}, test "
        f"{pct(metrics['test_accuracy'])} on {metrics['test_size']} images")
    return metrics


#: Parameter importances are drawn from at least this many completed trials, with at least
#: MIN_IMPORTANCE_PARAMS parameters that vary among them; fewer give a ranking of noise
MIN_IMPORTANCE_TRIALS = 5
MIN_IMPORTANCE_PARAMS = 2
_FINISHED = ("COMPLETE", "PRUNED", "FAIL")


def history_points(study):
    """(number, value, state) of every finished trial: a complete trial at its validation
    accuracy, a pruned or failed one at the last validation accuracy it reported (None when
    it reported none, e.g. diverged in its first epoch)."""
    points = []
    for t in study.get_trials(deepcopy=False):
        if t.state.name not in _FINISHED:
            continue
        value = t.value if t.state.name == "COMPLETE" else \
            t.intermediate_values.get(max(t.intermediate_values, default=None))
        points.append((t.number, value, t.state.name))
    return points


def history_caption(points, chance=None, unfinished=0):
    """What the history plot shows, in words: every trial, and how each kind is drawn."""
    count = lambda state, has: sum(  # noqa: E731
        1 for _, v, s in points if s == state and (v is not None) == has)
    parts = [f"{count('COMPLETE', True)} complete (dots; the line is the best so far)"]
    for state, word, marker in (("PRUNED", "pruned", "crosses"), ("FAIL", "failed", "squares")):
        if count(state, True):
            parts.append(f"{count(state, True)} {word} ({marker}, at the last validation "
                         "accuracy they reported)")
        if count(state, False):
            parts.append(f"{count(state, False)} {word} before reporting any value "
                         "(hollow triangles on the bottom edge)")
    text = f"Every one of the {len(points)} trials: " + "; ".join(parts) + "."
    if chance is not None:
        text += f" Dashed: chance ({100 * chance:.1f}%)."
    if unfinished:
        text += f" Left out: {unfinished} trial(s) still running or waiting."
    return text


def importance_verdict(study):
    """(whether to draw parameter importances, why not) under the minimums above."""
    complete = study.get_trials(deepcopy=False, states=(_state("COMPLETE"),))
    params = {p for t in complete for p in t.params}
    varying = [p for p in params if len({repr(t.params.get(p)) for t in complete}) > 1]
    if len(complete) >= MIN_IMPORTANCE_TRIALS and len(varying) >= MIN_IMPORTANCE_PARAMS:
        return True, ""
    return False, (f"Parameter importances are left out: they need at least "
                   f"{MIN_IMPORTANCE_TRIALS} completed trials with at least "
                   f"{MIN_IMPORTANCE_PARAMS} parameters that vary among them; this search has "
                   f"{len(complete)} completed trial(s) and {len(varying)} varying "
                   "parameter(s).")


def _state(name):
    from optuna.trial import TrialState

    return TrialState[name]


def _plots(study, folder, chance=None):
    """The history of every trial (:func:`nndl.vis_utils.plot_trial_history`) and, when
    :func:`importance_verdict` allows, Optuna's parameter importances."""
    points = history_points(study)
    made = {}
    if points:
        with naming(folder / "optimization_history.png"):
            made["optimization_history"] = plot_trial_history(
                *zip(*points), folder / "optimization_history.png", chance=chance)
    if importance_verdict(study)[0]:
        path = _importance_plot(study, folder / "param_importances.png")
        if path is not None:
            made["param_importances"] = path
    return made


def _importance_plot(study, path):
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization import matplotlib as ovm

    try:  # Optuna's plots set a global style: keep it inside this context
        with warnings.catch_warnings(), matplotlib.rc_context():
            warnings.simplefilter("ignore")
            ax = ovm.plot_param_importances(study, target_name="Validation accuracy")
            fig = ax.figure
            fig.tight_layout()
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=Path(path).suffix.lstrip("."))
            matplotlib.pyplot.close(fig)
    except (ValueError, RuntimeError, ZeroDivisionError):
        return None  # e.g. every completed trial with the same value
    return path


def _report(study, folder, metrics, counts, plots, chance=None, stopped=None):
    report = Report("nndl search")
    if stopped:
        wanted = study.user_attrs.get("nndl_settings", {}).get("trials", "?")
        finished = counts["COMPLETE"] + counts["PRUNED"]
        report.section("Stopped early", "stopped").paragraph(
            f"This search {stopped} after {finished} of its {wanted} trials; what follows is "
            f"what those trials reached. nndl search --resume --out {folder} runs the rest "
            "(trials stopped midway run again).")
    report.section("Best trial", "best").table(
        ["trial", "validation accuracy", "test accuracy", "test images", "hidden size"],
        [[metrics["trial"], pct(metrics["val_accuracy"]), pct(metrics["test_accuracy"]),
          metrics["test_size"], metrics["hidden_size"]]])
    report.table(["parameter", "value"],
                 [(k, _fmt(v)) for k, v in sorted(study.best_trial.params.items())])
    report.section("Trials", "trials").paragraph(
        ", ".join(f"{n} {state.lower()}" for state, n in counts.items()) +
        ". Click a column's header to sort by it; hover over a reason to read it whole; "
        "trials.csv has the unrounded values.")
    rows = trial_rows(study)
    columns = [c for c in (rows[0] if rows else ()) if any(r[c] != "" for r in rows)]
    if rows:
        report.table(columns, [[pct(r[c]) if c == "val_accuracy" and r[c] != "" else _fmt(r[c])
                                for c in columns] for r in rows], sortable=True,
                     clip=("reason",))
    if "optimization_history" in plots:
        points = history_points(study)
        unfinished = len(study.get_trials(deepcopy=False)) - len(points)
        report.figure(plots["optimization_history"],
                      "Optimization history. " + history_caption(points, chance, unfinished))
    drawn, why_not = importance_verdict(study)
    if "param_importances" in plots:
        complete = counts.get("COMPLETE", 0)
        report.figure(plots["param_importances"],
                      f"Parameter importances (Optuna's default evaluator) from the {complete} "
                      "completed trials only; pruned and failed trials do not count"
                      + (". With under 20 trials, a rough guide." if complete < 20 else "."))
    elif not drawn:
        report.paragraph(why_not)
    with naming(folder / "report.html"):
        report.write(folder / "report.html")
