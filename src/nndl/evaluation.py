"""Evaluating a saved model: which images it is scored on (and why), accuracy, per-class
accuracy, the confusion matrix, and a run folder like every command's.

By default a model from a training run (``nndl train``, ``search``, ``reproduce``) is scored
on exactly that run's test images: its model file records the run's settings (dataset,
split sizes, seed), and :func:`nndl.splits.split_dataset` rebuilds the same split. Anything
else (``--num-test``, ``--full-test``, another ``--dataset``, a model file that records no
run) is allowed and said plainly in one sentence, printed and kept in ``metrics.json``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nndl import _memory
from nndl._atomic import write_text
from nndl._typing import NDArray, PathLike
from nndl.config import RunConfig
from nndl.data import DATASETS, load_dataset
from nndl.data.catalog import warn_unless_flips_keep_class
from nndl.metrics import confusion_matrix, format_confusion, per_class_counts
from nndl.model_io import SavedModel, load_model, prediction_memory
from nndl.report import Report
from nndl.runs import recorded_run
from nndl.splits import split_dataset
from nndl.vis_utils import confusion_plot_bytes, plot_confusion_matrix

#: the training run's settings that decide its splits (stored in the model's hyperparameters)
_SPLIT_KEYS = ("dataset", "data", "labels", "num_training", "num_validation", "num_test",
               "full_test", "seed")
#: keys every run's settings have had, from before runs recorded their dataset (CIFAR-10
#: then); an estimator's parameters (``nndl.sklearn.save_model``) have none of them
_OLD_RUN_KEYS = ("num_training", "num_validation", "num_test", "preprocessing")


@dataclass
class EvaluationImages:
    """The images an evaluation scores (N, H, W, C), their int labels (N,), the dataset and
    split they come from, whether they are the training run's own, and in words which
    they are and why."""

    images: Any
    labels: NDArray
    dataset: str
    split: str
    own: bool
    description: str


def evaluate_model_file(model_path: PathLike, dataset: str | None = None,
                        data: PathLike | None = None, num_test: int | None = None,
                        split: str = "test", out: PathLike | None = None,
                        tta: str | None = None, full_test: bool = False) -> dict[str, Any]:
    """``nndl evaluate``: score a model file and write a run folder (``out``, else
    ``runs/evaluate-<time>``) with ``metrics.json``, ``report.html``,
    ``confusion_matrix.txt`` and ``confusion_matrix.png``.

    The images are chosen by :func:`evaluation_images` (by default the training run's own
    test images); ``tta="flip"`` averages over each image and its mirror (with a warning
    where the dataset's catalog flag says a mirrored image may change class:
    :func:`nndl.data.catalog.flips_keep_class`). Bad input (no such file, no dataset
    named, a dataset that does not fit the model, too little memory: :mod:`nndl._memory`)
    fails before the folder exists. Returns ``metrics.json``'s entries plus ``matrix``
    (C, C), ``text``, ``png``, ``report`` and ``folder``.
    """
    model = load_model(model_path)
    chosen = evaluation_images(model, dataset, data, num_test, split, full_test)
    warn_unless_flips_keep_class(chosen.dataset, tta)
    needs = prediction_memory(model, len(chosen.labels), tta).add(
        "class matrices", confusion_plot_bytes(len(model.class_names)))
    _memory.check_fits(needs, f"evaluating {model_path} on {len(chosen.labels):,} images",
                       "lower --num-test")
    predicted = model.predict_images(chosen.images, tta)
    matrix = confusion_matrix(chosen.labels, predicted, len(model.class_names))
    config = {"model": str(model_path), "dataset": dataset, "data": data, "split": split,
              "num_test": num_test, "full_test": full_test, "tta": tta}
    with recorded_run(out, "evaluate", config) as recorder:
        folder = recorder.folder
        metrics = _metrics(model_path, chosen, matrix, model.class_names, tta)
        recorder.update(**metrics)
        text = summary_line(metrics) + "\n" + chosen.description + "\n\n" + format_confusion(
            matrix, model.class_names)
        write_text(folder / "confusion_matrix.txt", text + "\n")
        png = plot_confusion_matrix(matrix, model.class_names, folder / "confusion_matrix.png")
        report = _write_report(folder, metrics, png)
        recorder.finish()
    return {**recorder.metrics, "matrix": matrix, "text": text, "png": png, "report": report,
            "folder": folder}


def summary_line(metrics: dict[str, Any]) -> str:
    """``"test accuracy: 46.10% on 1000 images"`` (with the test-time averaging, if any)."""
    how = " with flip test-time averaging" if metrics["tta"] else ""
    return (f"{metrics['split']} accuracy{how}: {100 * metrics['accuracy']:.2f}% on "
            f"{metrics['num_images']} images")


def _metrics(model_path, chosen, matrix, class_names, tta):
    return {"model": str(Path(model_path).resolve()),
            "accuracy": float(np.trace(matrix) / matrix.sum()), "num_images": int(matrix.sum()),
            "dataset": chosen.dataset,
            "split": chosen.split, "own_images": chosen.own, "images": chosen.description,
            "tta": tta, "per_class_accuracy": per_class_counts(matrix, class_names)}


def _write_report(folder, metrics, png):
    """report.html of an evaluation: result, which images, matrix, per-class accuracy."""
    percent = lambda v: "-" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    report = Report("nndl evaluate")
    report.section("Result").table(
        ["accuracy", "images", "split", "dataset", "test-time averaging"],
        [[percent(metrics["accuracy"]), metrics["num_images"], metrics["split"],
          metrics["dataset"], metrics["tta"] or "none"]])
    report.paragraph(f"Model {metrics['model']}, scored on {metrics['images']}")
    report.section("Confusion matrix").figure(
        png, "Rows: the true class; columns: the predicted one (counts in "
        "confusion_matrix.txt)")
    report.section("Per-class accuracy").table(  # last: it has a row per class
        ["class", "images", "correct", "accuracy"],
        [[c["class"], c["images"], c["correct"], percent(c["accuracy"])]
         for c in metrics["per_class_accuracy"]], sortable=True)
    return report.write(folder / "report.html")


def evaluation_images(model: SavedModel, dataset: str | None = None,
                      data: PathLike | None = None, num_test: int | None = None,
                      split: str = "test", full_test: bool = False) -> EvaluationImages:
    """The images to score ``model`` on, and which they are in words.

    * default: the training run's own ``split`` images (the run's settings rebuild its
      split);
    * ``num_test`` / ``full_test``: the first ``num_test`` / all images of the dataset's
      official test set; without one, of the run's own test images (the rest of the
      dataset trained the model);
    * another ``dataset``, or a model file recording no run (``nndl.sklearn.save_model``):
      that dataset's official test set, else its default stratified test split, which
      may hold images the model was trained on (said so). A model file that records no
      run needs ``dataset``: nothing is guessed, nothing downloaded.
    """
    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    run = _training_run(model)
    if dataset is None and run is None:
        raise ValueError("the model file names no dataset (it records no training run, as "
                         "from nndl.sklearn.save_model): pass --dataset NAME_OR_PATH")
    name = str(dataset if dataset is not None else run["dataset"])
    own = run is not None and _same_dataset(name, run["dataset"])
    if split == "val" and not own:
        raise ValueError("--split val scores the validation images of the run that trained "
                         "the model, but " + _not_own_reason(run, name))
    if split == "val" and (num_test is not None or full_test):
        raise ValueError("--num-test and --full-test choose test images; leave them out "
                         "with --split val")
    cfg = RunConfig.from_dict({**(run if own else {}), "dataset": name})
    source = _load(model, name, data, cfg)
    if split == "val":
        splits = _split(source, cfg)
        chosen = EvaluationImages(splits.val_images, splits.y_val, name, "val", True,
                                  f"the run's own {len(splits.y_val):,} validation images of "
                                  f"{name}.")
    elif source.X_test is not None:
        chosen = _official_test(source, cfg, name, run, own, num_test, full_test)
    else:
        chosen = _held_out_test(source, cfg, name, run, own, num_test)
    if own and model.hyperparameters.get("data_digest") not in (None, source.digest()):
        warnings.warn(f"{name} has changed since the run that trained the model (its images "
                      "or labels differ): the split rebuilt from the run's settings is not "
                      "necessarily the run's own", UserWarning, stacklevel=2)
        chosen.own = False
        chosen.description += (f" {name} has changed since the run: not necessarily the "
                               "run's own images.")
    return _by_model_classes(chosen, source.class_names, model.class_names)


def _by_model_classes(chosen, data_names, model_names):
    """``chosen`` with its labels as the model's class indices: matched by name when the
    model's class names are the dataset's in another order (an estimator sorts its labels),
    else by position, with a warning when the names differ."""
    data_names, model_names = tuple(map(str, data_names)), tuple(map(str, model_names))
    if data_names == model_names:
        return chosen
    if sorted(data_names) == sorted(model_names):
        order = np.array([model_names.index(n) for n in data_names])
        chosen.labels = order[np.asarray(chosen.labels, dtype=np.int64)]
        chosen.description += " Classes matched to the model's by name."
        return chosen
    warnings.warn(f"the model's class names ({_names(model_names)}) are not the dataset's "
                  f"({_names(data_names)}): class i of the model is scored as the dataset's "
                  "class i", UserWarning, stacklevel=3)
    chosen.description += " Classes matched by position: their names differ."
    return chosen


def _names(names, shown=4):
    more = f", ... ({len(names)} in all)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _official_test(source, cfg, name, run, own, num_test, full_test):
    total = len(source.y_test)
    splits = _split(source, cfg) if own else None  # the run's own, exactly
    run_size = len(splits.y_test) if own else None
    n = (run_size if own else total) if num_test is None and not full_test else \
        total if full_test else num_test
    if not 1 <= n <= total:
        raise ValueError(f"--num-test must be in 1..{total} ({name}'s official test "
                         f"images), got {n}")
    if own and n == run_size:
        return EvaluationImages(splits.test_images, splits.y_test, name, "test", True,
                                "the run's own test images: " + _first(n, total, name) + ".")
    if own:
        flag = "--full-test" if full_test else "--num-test"
        why = (f"as {flag} asks (the run's own were the first {run_size:,}; no official test "
               "image was trained on)")
    else:
        why = f"since {_not_own_reason(run, name)}"
    return EvaluationImages(source.X_test[:n], np.asarray(source.y_test[:n], dtype=np.int64),
                            name, "test", False, f"{_first(n, total, name)}, {why}.")


def _held_out_test(source, cfg, name, run, own, num_test):
    """A dataset without an official test set: the test images the run held out (another
    dataset's: those of a default split), all or the first ``num_test``."""
    splits = _split(source, cfg)
    count = len(splits.y_test)
    n = count if num_test is None else num_test
    if not 1 <= n <= count:
        raise ValueError(f"--num-test must be in 1..{count} ({name} has no official test "
                         "set: only the images held out from training are unseen), got "
                         f"{n}")
    held = (f"{count:,} images of {name} held out from training by a stratified split (seed "
            f"{cfg.seed})")
    some = "" if n == count else f"the first {n:,} of "
    if not own:
        what = (f"{some}{held}, since {_not_own_reason(run, name)} and {name} has no "
                "official test set: not necessarily images the model never saw.")
    elif n == count:
        what = f"the run's own test images: {held}."
    else:
        what = f"{some}the run's own test images ({held}), as --num-test asks."
    return EvaluationImages(splits.test_images[:n], splits.y_test[:n], name, "test",
                            own and n == count, what)


def _first(n, total, name):
    return (f"all {total:,} official test images of {name}" if n == total else
            f"the first {n:,} of {name}'s {total:,} official test images")


def _not_own_reason(run, name):
    if run is None:
        return "the model file records no training run (as nndl.sklearn.save_model's do)"
    return f"the model was trained on {run['dataset']}, not {name}"


def _training_run(model):
    """The split settings of the run that trained ``model`` (its hyperparameters), with
    its dataset; None when the file records no run."""
    settings = {k: v for k, v in model.hyperparameters.items() if k in _SPLIT_KEYS}
    if "dataset" in settings:
        return settings
    if all(k in model.hyperparameters for k in _OLD_RUN_KEYS):
        return {**settings, "dataset": "cifar10"}  # from before runs recorded their dataset
    return None


def _same_dataset(name, trained):
    if name == trained:
        return True
    if name in DATASETS or trained in DATASETS:
        return False
    return Path(name).expanduser().resolve() == Path(str(trained)).expanduser().resolve()


def _load(model, name, data, cfg):
    """The dataset ``name`` from ``data``, else the run's data root while it exists, else
    the default root; checked against the model's images and classes."""
    if data is None and cfg.data is not None and Path(cfg.data).expanduser().is_dir():
        data = cfg.data
    height, width = model.image_shape[:2]
    folder = name not in DATASETS and Path(name).expanduser().is_dir()  # resized to the model
    source = load_dataset(name, data, labels=cfg.labels,
                          image_size=(width, height) if folder else None)
    _check_compatible(model, source, name)
    return source


def _split(source, cfg):
    """The splits of ``source`` by ``cfg``'s settings: a run's own, rebuilt."""
    return split_dataset(source, num_training=cfg.num_training,
                         num_validation=cfg.num_validation, num_test=cfg.num_test,
                         full_test=cfg.full_test, seed=cfg.seed)


def _check_compatible(model, source, name):
    shape, classes = tuple(source.X_train.shape[1:]), len(source.class_names)
    if shape != tuple(model.image_shape) or classes != len(model.class_names):
        raise ValueError(
            f"the model takes {'x'.join(map(str, model.image_shape))} images of "
            f"{len(model.class_names)} classes, but {name} has {'x'.join(map(str, shape))} "
            f"images of {classes} classes; pass --dataset with the model's dataset")


__all__ = ["EvaluationImages", "evaluate_model_file", "evaluation_images", "summary_line"]
