"""Training runs end to end: data -> network -> training -> evaluation -> run folder.

The CLI's ``train`` and the reproduce workflow arrange these pieces; nothing
here parses arguments.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nndl import _memory
from nndl._atomic import write_text
from nndl._stops import held_stops
from nndl._validation import env_int
from nndl.config import RunConfig, image_size
from nndl.data import load_dataset
from nndl.data.catalog import flips_keep_class
from nndl.data_utils import build_pipeline
from nndl.metrics import accuracy, confusion_matrix, format_confusion, per_class_counts
from nndl.model_io import SavedModel, save_model
from nndl.network import network_for
from nndl.report import Report, pct
from nndl.runs import recorded_run
from nndl.splits import RowSubset, split_dataset
from nndl.training import (
    LAYER_STAT_ROWS,
    TrainingDivergedError,
    distillation_targets,
    new_history,
    train_network,
    training_memory,
)
from nndl.transforms import Pipeline, make_batch_transform
from nndl.vis_utils import (
    ANNOTATED_CLASSES,
    confusion_plot_bytes,
    plot_accuracy_history,
    plot_confusion_matrix,
    plot_layer_stats,
    plot_loss_history,
    plot_weight_grids,
)

#: training rows whose float copy is larger than this stay on disk (memory-mapped images,
#: converted and preprocessed per minibatch); $NNDL_IN_MEMORY_BYTES overrides it (0: every
#: dataset is streamed)
IN_MEMORY_BYTES = 1 << 30


@dataclass
class PreparedData:
    """Preprocessed rows for validation and test, training rows (or images), and the
    fitted preprocessing. ``train_images`` (N, H, W, C) is set when training augments or
    the training rows are too large to hold (then ``X_train`` is None and every minibatch
    is converted on the fly); ``val_images`` and ``test_images`` are the raw images behind
    the rows."""

    X_train: np.ndarray | None
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    transform: Pipeline
    class_names: tuple
    train_images: Any = None
    val_images: np.ndarray | None = None
    test_images: np.ndarray | None = None
    data_digest: str | None = None  # nndl.data.Dataset.digest of the data split

    @property
    def image_shape(self) -> tuple:
        """(H, W, C) of the images behind the rows (CIFAR-10's when there are none)."""
        for images in (self.train_images, self.test_images, self.val_images):
            if images is not None and images.ndim == 4:
                return tuple(images.shape[1:])
        return (32, 32, 3)

    @property
    def input_size(self) -> int:
        """D: the width of a preprocessed row."""
        return int(self.X_val.shape[1])


def prepare_data(cfg: RunConfig, data: Any = None) -> PreparedData:
    """Load ``cfg.dataset`` (or use ``data``), split it (:mod:`nndl.splits`), fit the
    preprocessing on the training images and apply it to every split, in ``cfg.dtype``.
    A run that would not fit in memory (:func:`check_memory`) is refused before the
    images are decoded and before the float copies are made."""
    if data is None:
        data = _load(cfg)
    s = _split(cfg, data)
    _check_fits(run_memory(cfg, s, data.num_classes), "this run")
    pipeline = build_pipeline(False, cfg.preprocessing_steps)
    streamed = _too_large(s.train_images, cfg.dtype)
    if streamed:  # seen through a RowSubset, which keeps the process from growing
        if not isinstance(s.train_images, RowSubset):
            s.train_images = RowSubset(s.train_images, np.arange(len(s.train_images)))
        pipeline.fit_chunks(lambda: _row_chunks(s.train_images))
        train_rows = None
    else:  # a fresh float copy, preprocessed in place: the training matrix exists once
        train_rows = pipeline.fit_transform(_rows(s.train_images, cfg.dtype), copy=False)
    val_rows, test_rows = (pipeline.transform(_rows(x, cfg.dtype), copy=False)
                           for x in (s.val_images, s.test_images))
    keep_images = streamed or cfg.augment.active
    return PreparedData(train_rows, s.y_train, val_rows, s.y_val, test_rows, s.y_test,
                        pipeline, tuple(data.class_names),
                        train_images=s.train_images if keep_images else None,
                        val_images=s.val_images, test_images=s.test_images,
                        data_digest=data.digest())


# -- memory: refused before allocating (nndl._memory) ------------------------------------
#: the flags that shrink each part of an estimate (the advice of a refusal)
_PART_FLAGS = {"weights": "--hidden-size", "optimizer state": "--optimizer sgd",
               "activations": "--batch-size", "class matrices": "the number of classes",
               "data": "--num-training or --dtype float32", "preprocessing": "--preprocessing",
               "decoded images": "--image-size", "evaluation": "--num-test"}


def check_memory(cfg: RunConfig, data: Any = None, members: int = 1, processes: int = 1,
                 what: str = "this run") -> None:
    """Refuse in one line (:class:`nndl._memory.MemoryLimitError`) a run of ``cfg`` that
    would need more memory than this process may use (see :mod:`nndl._memory`):
    ``members`` networks trained together in each of ``processes`` processes (a search's
    population and workers). ``data``: the loaded dataset (memory-mapped), else it is
    loaded here, an image folder's decoding checked first (``--image-size``)."""
    if data is None:
        data = _load(cfg)
    estimate = run_memory(cfg, _split(cfg, data), data.num_classes, members)
    _check_fits(estimate.scaled(processes), what)


def run_memory(cfg: RunConfig, splits: Any, num_classes: int, members: int = 1
               ) -> _memory.Estimate:
    """Bytes a run of ``cfg`` on ``splits`` (:class:`nndl.splits.Splits`) allocates, by part:
    :func:`nndl.training.training_memory` for ``members`` networks, plus

    * data: the validation and test images the split gathered, float copies of every
      split's rows (the training rows only when they are held in memory:
      ``IN_MEMORY_BYTES``) and the images read to make them;
    * preprocessing: mean and scale (D), standardize's float64 deviations (N, D), pca and
      zca's float64 centred rows, covariance and eigenvectors (D, D);
    * evaluation: the flip-averaged accuracies' mirrored rows and scores (cifar);
    * class matrices: the confusion matrix and its plot
      (:func:`nndl.vis_utils.confusion_plot_bytes`).

    Memory-mapped training images are not counted."""
    s, image = np.dtype(cfg.dtype).itemsize, splits.train_images
    width, pixel = int(np.prod(image.shape[1:])), image.dtype.itemsize
    n_train, n_val, n_test = len(splits.y_train), len(splits.y_val), len(splits.y_test)
    held = 0 if _too_large(image, cfg.dtype) else n_train
    steps = cfg.preprocessing_steps
    gathered = bool(held) and not cfg.augment.active
    estimate = training_memory(width, cfg.hidden_widths, num_classes, cfg.train.batch_size,
                               cfg.dtype, members, (cfg.train.optimizer,), n_val, gathered)
    estimate.add("data", (n_val + n_test) * width * (pixel + s) + held * width * (pixel + s))
    if not gathered:  # each minibatch's images, and their augmented copies
        estimate.add("activations", cfg.train.batch_size * width * pixel
                     * (4 if cfg.augment.active else 1))
    estimate.add("preprocessing", 2 * width * 8 + 2 * 4096 * width * 8 * (not held))
    if "standardize" in steps:
        estimate.add("preprocessing", held * width * 8)
    if {"pca", "zca"} & set(steps):
        estimate.add("preprocessing", 2 * held * width * 8 + 4 * width * width * 8
                     + 2 * (n_val + n_test) * width * s)
    if flips_keep_class(cfg.dataset):
        estimate.add("evaluation", 4 * n_test * width * s
                     + 4 * n_test * (sum(cfg.hidden_widths) + num_classes) * s)
    return estimate.add("class matrices", confusion_plot_bytes(num_classes))


def _check_fits(estimate, what):
    """:func:`nndl._memory.check_fits` advising the flags of the two largest parts."""
    largest = sorted(estimate.parts, key=lambda k: -estimate.parts[k])[:2]
    advice = "lower " + " or ".join(_PART_FLAGS[part] for part in largest)
    _memory.check_fits(estimate, what, advice)


def _load(cfg):
    """``cfg``'s dataset, memory-mapped; an image folder resized by ``--image-size`` is
    first checked to fit while it is decoded (one image at that size, as Pillow's RGBX
    and NumPy's copies, and a network taking at least its pixels)."""
    size = image_size(cfg)
    if size is not None:
        pixels = size[0] * size[1]
        estimate = training_memory(pixels, cfg.hidden_widths, 2, cfg.train.batch_size,
                                   cfg.dtype).add("decoded images", 6 * pixels)
        _memory.check_fits(estimate, f"--image-size {cfg.image_size}", "lower --image-size")
    return load_dataset(cfg.dataset, cfg.data, labels=cfg.labels, image_size=size)


def _split(cfg, data):
    return split_dataset(data, num_training=cfg.num_training,
                         num_validation=cfg.num_validation, num_test=cfg.num_test,
                         full_test=cfg.full_test, seed=cfg.seed)


def _rows(images, dtype):
    """Images (N, H, W, C), an array or a RowSubset -> a float copy (N, H*W*C)."""
    return np.asarray(images[:]).reshape(len(images), -1).astype(dtype)


def _too_large(images, dtype):
    limit = env_int("NNDL_IN_MEMORY_BYTES", IN_MEMORY_BYTES, minimum=0,
                    meaning="bytes; 0 streams every dataset from disk")
    return len(images) * int(np.prod(images.shape[1:])) * np.dtype(dtype).itemsize > limit


def _row_chunks(images, size=4096):
    """(n, D) uint8/float chunks of the rows of ``images`` (a RowSubset), in order."""
    for start in range(0, len(images), size):
        chunk = images[start:start + size]
        yield chunk.reshape(len(chunk), -1)


def fit(cfg, prepared, progress=True, callback=None, soft_targets=None):
    """Train a network as ``cfg`` says; returns (SavedModel, history, seconds).

    ``cfg.train`` goes to the training loop as it is; with augmentation the loop gets the
    training images and a batch transform built from ``cfg.augment``. When Ctrl-C or a
    diverging loss stops training, the exception propagates carrying ``partial``: the same
    (SavedModel of the weights reached, history recorded so far, seconds) triple."""
    net = network_for(cfg, prepared.input_size, len(prepared.class_names))
    X, transform = training_inputs(cfg, prepared)
    history = new_history()
    start = time.perf_counter()
    try:
        train_network(net.params, X, prepared.y_train, prepared.X_val, prepared.y_val,
                      cfg.train, rng=net.rng, batch_transform=transform,
                      soft_targets=soft_targets, callback=callback, progress=progress,
                      history=history)
    except (KeyboardInterrupt, TrainingDivergedError) as exc:
        exc.partial = (_saved_model(net, cfg, prepared, history), history,
                       time.perf_counter() - start)
        raise
    return _saved_model(net, cfg, prepared, history), history, time.perf_counter() - start


def run_settings(cfg: RunConfig, prepared: PreparedData) -> dict[str, Any]:
    """What a model file records of its run: the configuration, and the digest of the data
    it was split from (``data_digest``)."""
    return {**cfg.to_dict(), "data_digest": prepared.data_digest}


def _saved_model(net, cfg, prepared, history):
    return SavedModel(net, prepared.transform, prepared.class_names, run_settings(cfg, prepared),
                      {k: history[k] for k in ("loss_history", "train_acc_history",
                                               "val_acc_history")},
                      prepared.image_shape)


def training_inputs(cfg, prepared):
    """(training rows, or images and the batch transform that turns them into rows)."""
    if prepared.train_images is None:
        return prepared.X_train, None
    return prepared.train_images, make_batch_transform(prepared.transform,
                                                       np.dtype(cfg.dtype), cfg.augment)


def network_metrics(model, prepared, seconds, cfg):
    """val/test accuracy, sizes, time and the configuration, for metrics.json; beside them
    the flip-averaged accuracies (``*_accuracy_flip_tta``) where the dataset allows flips
    (:func:`nndl.data.catalog.flips_keep_class`: CIFAR, not digits or unknown folders)."""
    net = model.net
    metrics = {
        "val_accuracy": accuracy(prepared.y_val, net._predict(prepared.X_val)),
        "test_accuracy": accuracy(prepared.y_test, net._predict(prepared.X_test)),
        "test_size": int(len(prepared.y_test)),
        "val_size": int(len(prepared.y_val)),
        "hidden_size": cfg.hidden_size,
        "hidden_sizes": list(cfg.hidden_widths),
        "train_seconds": round(seconds, 3),
        "config": cfg.to_dict(),
    }
    if flips_keep_class(cfg.dataset) and prepared.test_images is not None and \
            prepared.test_images.ndim == 4:
        # reported beside, never instead of, the single-pass accuracies above
        for split, images, labels in (("val", prepared.val_images, prepared.y_val),
                                      ("test", prepared.test_images, prepared.y_test)):
            metrics[f"{split}_accuracy_flip_tta"] = accuracy(
                labels, model.predict_images(images, tta="flip"))
    return metrics


def write_network_artifacts(folder, model, history, name="model"):
    """model.npz, loss.png, accuracy.png in ``folder``; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "model": save_model(folder / f"{name}.npz", model),
        "loss": plot_loss_history(history, folder / "loss.png"),
        "accuracy": plot_accuracy_history(history, folder / "accuracy.png"),
    }


def train_teacher(recipe, cfg, prepared, progress=True):
    """Train ``recipe``'s teacher on ``prepared`` and return (its metrics, the student's soft
    targets (N, C) for the training rows)."""
    model, _, seconds = fit(teacher_config(recipe, cfg), prepared, progress=progress)
    if prepared.X_train is None:
        raise ValueError("a recipe with a teacher needs the training rows in memory; this "
                         "dataset is streamed from disk (see IN_MEMORY_BYTES)")
    scores = model.net._scores(prepared.X_train)  # either network class, rows checked
    targets = distillation_targets(scores, prepared.y_train, **recipe.distill)
    return network_metrics(model, prepared, seconds, teacher_config(recipe, cfg)), targets


def teacher_config(recipe, cfg):
    """The configuration ``recipe``'s teacher trains with beside the student's ``cfg``."""
    return recipe.teacher.replace(data=cfg.data, seed=cfg.seed)


def run_train(cfg, out=None, progress=True, recipe=None):
    """``nndl train``: train (a recipe's teacher first, if it has one), evaluate and write
    a run folder; returns (folder, metrics).

    Ctrl-C (and SIGTERM or SIGHUP in the ``nndl`` command: :mod:`nndl._stops`) keeps the
    weights reached (model, metrics, plots) and a partial report; a diverging loss keeps
    the histories, their plots and a report that says so. Either way the exception then
    propagates and ``metrics.json`` records the status. A start that fails leaves no
    folder (:func:`nndl.runs.recorded_run`)."""
    start = time.perf_counter()
    if recipe is not None and recipe.teacher is not None:  # a wider network on this data
        teacher = recipe.teacher
        check_memory(cfg.replace(hidden_size=teacher.hidden_size,
                                 hidden_sizes=teacher.hidden_sizes,
                                 batchnorm=teacher.batchnorm, **teacher.train.to_dict()),
                     what="this recipe's teacher")
    prepared = prepare_data(cfg)  # bad data fails here, before any folder exists
    with recorded_run(out, "train", cfg.to_dict()) as recorder:
        folder = recorder.folder
        soft_targets = None
        if recipe is not None:
            recorder.update(recipe=recipe.name, recipe_description=recipe.description)
            if recipe.teacher is not None:
                teacher, soft_targets = train_teacher(recipe, cfg, prepared, progress)
                recorder.update(teacher={k: v for k, v in teacher.items() if k != "config"},
                                teacher_config=teacher["config"])
        try:
            model, history, seconds = fit(cfg, prepared, progress=progress,
                                          soft_targets=soft_targets)
        except (KeyboardInterrupt, TrainingDivergedError) as exc:
            if hasattr(exc, "partial"):
                with held_stops():  # a further stop waits for the outputs (a third: at once)
                    _write_train_outputs(folder, cfg, prepared, recorder, *exc.partial,
                                         stop=exc)
            raise
        # a stop while the outputs are written waits for them all (metrics, plots,
        # report), then stops the run: status terminated; a second stops at once
        with held_stops():
            _write_train_outputs(folder, cfg, prepared, recorder, model, history, seconds)
        recorder.update(total_seconds=round(time.perf_counter() - start, 3))
        recorder.finish()
    return folder, recorder.metrics


def _write_train_outputs(folder, cfg, prepared, recorder, model, history, seconds, stop=None):
    """model.npz, plots, metrics and report.html of a train run; ``stop`` (the Ctrl-C,
    SIGTERM or divergence that ended training early) puts a note at the top of the report,
    and a diverged run keeps no model (its weights are not finite)."""
    diverged = isinstance(stop, TrainingDivergedError)
    report = Report("nndl train")
    if stop is not None:
        done = len(history["loss_history"])
        how = (f"Terminated ({stop.signal_name})" if hasattr(stop, "signal_name") else
               "Interrupted (Ctrl-C)")
        note = (f"Training diverged: {stop}." if diverged else
                f"{how} after {done} of {cfg.train.num_iters} iterations: "
                "the model, accuracies and plots are those of the weights reached.")
        report.paragraph(note, css_class="status")
        recorder.update(iterations_done=done)
    if diverged:
        paths = {"loss": plot_loss_history(history, folder / "loss.png"),
                 "accuracy": plot_accuracy_history(history, folder / "accuracy.png")}
    else:
        metrics = network_metrics(model, prepared, seconds, cfg)
        model.metrics = metrics
        paths = write_network_artifacts(folder, model, history)
        paths["weights"] = plot_weight_grids([("W1", model.net.params["W1"])],
                                             folder / "weights.png", model.image_shape)
        recorder.update(**{k: v for k, v in metrics.items() if k != "config"})
        _result_section(report, metrics, seconds)
    report.section("Configuration").table(["option", "value"],
                                          sorted(resolved_settings(cfg, prepared).items()))
    report.section("Training").figure(paths["loss"], "Training loss per iteration")
    report.figure(paths["accuracy"], "Train (minibatch) and validation accuracy per epoch")
    _layer_section(report, folder, history)
    if not diverged:
        _class_section(report, folder, model, prepared)
    if "weights" in paths:
        report.section("First-layer weights").figure(paths["weights"], "W1 as images")
    report.write(folder / "report.html")


def _layer_section(report, folder, history):
    """layers.png and a table of each layer at the last scored epoch, from the history's
    ``layer_stats`` (nothing for a history without them: an older one, or a run without
    validation rows)."""
    stats = history.get("layer_stats")
    if not stats:
        return
    png = plot_layer_stats(stats, folder / "layers.png")
    report.section("Layers").figure(
        png, "Standard deviation of each layer's outputs on the validation rows (at most "
        f"{LAYER_STAT_ROWS:,}; the last layer's: its scores) and the Frobenius norm of its "
        "weights, per epoch")
    last = len(stats[-1])
    report.paragraph(f"Each layer at the last scored epoch ({len(stats) - 1}).")
    report.table(["layer", "outputs", "activation mean", "activation std", "weight norm"],
                 [[i, "scores" if i == last else "activations", f"{s['act_mean']:.4g}",
                   f"{s['act_std']:.4g}", f"{s['weight_norm']:.4g}"]
                  for i, s in enumerate(stats[-1], start=1)])


def _result_section(report, metrics, seconds):
    """The headline table; the flip-averaged test accuracy only where it was measured."""
    flips = "test_accuracy_flip_tta" in metrics
    report.section("Result").table(
        ["validation accuracy", "test accuracy"] + ["test accuracy, flip TTA"] * flips
        + ["test images", "hidden size", "seconds"],
        [[pct(metrics["val_accuracy"]), pct(metrics["test_accuracy"])]
         + [pct(metrics.get("test_accuracy_flip_tta"))] * flips
         + [metrics["test_size"], metrics["hidden_size"], f"{seconds:.1f}"]])


def resolved_settings(cfg, prepared):
    """The configuration as the run used it: :meth:`RunConfig.to_dict` with the split sizes
    counted (``49,000 (default)`` instead of None, ``144 (asked: 0.1)`` for a fraction) and
    the image size read from the images; other unset options say ``default``."""
    values = cfg.to_dict()
    for key, labels in (("num_training", prepared.y_train), ("num_validation", prepared.y_val),
                        ("num_test", prepared.y_test)):
        asked, used = values[key], len(labels)
        values[key] = f"{used:,}" + ("" if asked == used else
                                     " (default)" if asked is None else f" (asked: {asked})")
    if values["image_size"] is None:
        height, width = prepared.image_shape[:2]
        values["image_size"] = f"{width}x{height} (the images' own)"
    return {k: "default" if v is None else v for k, v in values.items()}


def _class_section(report, folder, model, prepared):
    """Per-class accuracy and the confusion matrix of the test images (also as
    confusion_matrix.png/.txt, as ``nndl evaluate`` writes them)."""
    names = prepared.class_names
    matrix = confusion_matrix(prepared.y_test, model.net._predict(prepared.X_test), len(names))
    write_text(folder / "confusion_matrix.txt", format_confusion(matrix, names) + "\n")
    png = plot_confusion_matrix(matrix, names, folder / "confusion_matrix.png")
    rows = [[c["class"], c["images"], c["correct"], pct(c["accuracy"])]
            for c in per_class_counts(matrix, names)]
    report.section("Classes", "classes")
    note = "" if len(names) <= ANNOTATED_CLASSES else (
        f" With {len(names)} classes the cells show colours only (confusion_matrix.txt has "
        "every count).")
    report.figure(png, "Confusion matrix of the test images: rows the true class, columns "
                  "the predicted one." + note)
    report.paragraph("Accuracy of each class on the test images (click a header to sort).")
    report.table(["class", "test images", "correct", "accuracy"], rows, sortable=True)


__all__ = ["PreparedData", "check_memory", "fit", "run_memory", "training_inputs",
           "network_metrics", "prepare_data", "resolved_settings", "run_train", "train_teacher",
           "write_network_artifacts"]
