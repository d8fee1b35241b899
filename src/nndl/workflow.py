"""Training runs end to end: data -> network -> training -> evaluation -> run folder.

The CLI's ``train`` and the reproduce workflow arrange these pieces; nothing
here parses arguments.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nndl.data import load_cifar10
from nndl.data_utils import build_pipeline, split_cifar10
from nndl.metrics import accuracy
from nndl.model_io import SavedModel, save_model
from nndl.neural_net import TwoLayerNet
from nndl.report import Report, pct
from nndl.runs import RunRecorder, new_run_dir
from nndl.training import TrainingDivergedError, distillation_targets, new_history, train_network
from nndl.transforms import make_batch_transform
from nndl.vis_utils import plot_accuracy_history, plot_loss_history, plot_weight_grids


@dataclass
class PreparedData:
    """Preprocessed rows for validation and test, training images or rows, and the
    fitted preprocessing. ``train_images`` is set when training augments; ``val_images``
    and ``test_images`` are the raw images (N, H, W, C) behind the rows."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    transform: object
    class_names: tuple
    train_images: np.ndarray | None = None
    val_images: np.ndarray | None = None
    test_images: np.ndarray | None = None

    @property
    def image_shape(self):
        """(H, W, C) of the images behind the rows (CIFAR-10's when there are none)."""
        for images in (self.train_images, self.test_images, self.val_images):
            if images is not None and images.ndim == 4:
                return tuple(images.shape[1:])
        return (32, 32, 3)


def prepare_data(cfg, data=None):
    """Split, preprocess (fit on training rows) and cast CIFAR-10 as ``cfg`` says."""
    data = data if data is not None else load_cifar10(cfg.data)
    num_test = len(data.X_test) if cfg.full_test else cfg.num_test
    Xtr, ytr, Xv, yv, Xte, yte = split_cifar10(data, cfg.num_training, cfg.num_validation,
                                               num_test)
    pipeline = build_pipeline(False, cfg.preprocessing_steps)
    # fresh float copies, preprocessed in place: the training matrix exists once
    rows = [x.reshape(len(x), -1).astype(cfg.dtype) for x in (Xtr, Xv, Xte)]
    train_rows = pipeline.fit_transform(rows[0], copy=False)
    val_rows, test_rows = (pipeline.transform(r, copy=False) for r in rows[1:])
    augment = cfg.augment.active
    return PreparedData(train_rows, ytr.astype(np.int64), val_rows, yv.astype(np.int64),
                        test_rows, yte.astype(np.int64), pipeline, data.class_names,
                        train_images=Xtr if augment else None, val_images=Xv,
                        test_images=Xte)


def fit(cfg, prepared, progress=True, callback=None, soft_targets=None):
    """Train a network as ``cfg`` says; returns (SavedModel, history, seconds).

    ``cfg.train`` goes to the training loop as it is; with augmentation the loop gets the
    training images and a batch transform built from ``cfg.augment``. When Ctrl-C or a
    diverging loss stops training, the exception propagates carrying ``partial``: the same
    (SavedModel of the weights reached, history recorded so far, seconds) triple."""
    net = TwoLayerNet(prepared.X_train.shape[1], cfg.hidden_size, len(prepared.class_names),
                      std=cfg.std, random_state=cfg.seed, dtype=np.dtype(cfg.dtype))
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


def _saved_model(net, cfg, prepared, history):
    return SavedModel(net, prepared.transform, prepared.class_names, cfg.to_dict(),
                      {k: history[k] for k in ("loss_history", "train_acc_history",
                                               "val_acc_history")},
                      prepared.image_shape)


def training_inputs(cfg, prepared):
    """(training rows or images, batch transform or None) for ``cfg``'s augmentation."""
    if prepared.train_images is None:
        return prepared.X_train, None
    return prepared.train_images, make_batch_transform(prepared.transform,
                                                       np.dtype(cfg.dtype), cfg.augment)


def network_metrics(model, prepared, seconds, cfg):
    """val/test accuracy, sizes, time and the configuration, for metrics.json."""
    net = model.net
    metrics = {
        "val_accuracy": accuracy(prepared.y_val, net._predict(prepared.X_val)),
        "test_accuracy": accuracy(prepared.y_test, net._predict(prepared.X_test)),
        "test_size": int(len(prepared.y_test)),
        "val_size": int(len(prepared.y_val)),
        "hidden_size": cfg.hidden_size,
        "train_seconds": round(seconds, 3),
        "config": cfg.to_dict(),
    }
    if prepared.test_images is not None and prepared.test_images.ndim == 4:
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
    teacher_cfg = recipe.teacher.replace(data=cfg.data, seed=cfg.seed)
    model, _, seconds = fit(teacher_cfg, prepared, progress=progress)
    scores = model.net.loss(prepared.X_train)
    targets = distillation_targets(scores, prepared.y_train, **recipe.distill)
    return network_metrics(model, prepared, seconds, teacher_cfg), targets


def run_train(cfg, out=None, progress=True, recipe=None):
    """``nndl train``: train (a recipe's teacher first, if it has one), evaluate and write
    a run folder; returns (folder, metrics).

    Ctrl-C keeps the weights reached (model, metrics, plots) and a partial report; a
    diverging loss keeps the histories, their plots and a report that says so. Either
    way the exception then propagates and ``metrics.json`` records the status."""
    start = time.perf_counter()
    prepared = prepare_data(cfg)  # bad data fails here, before any folder exists
    folder = new_run_dir(out, "train")
    recorder = RunRecorder(folder, "train", cfg.to_dict())
    with recorder.running():
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
                _write_train_outputs(folder, cfg, prepared, recorder, *exc.partial, stop=exc)
            raise
        _write_train_outputs(folder, cfg, prepared, recorder, model, history, seconds)
        recorder.update(total_seconds=round(time.perf_counter() - start, 3))
        recorder.finish()
    return folder, recorder.metrics


def _write_train_outputs(folder, cfg, prepared, recorder, model, history, seconds, stop=None):
    """model.npz, plots, metrics and report.html of a train run; ``stop`` (the Ctrl-C or
    divergence that ended training early) puts a note at the top of the report, and a
    diverged run keeps no model (its weights are not finite)."""
    diverged = isinstance(stop, TrainingDivergedError)
    report = Report("nndl train")
    if stop is not None:
        done = len(history["loss_history"])
        note = (f"Training diverged: {stop}." if diverged else
                f"Interrupted (Ctrl-C) after {done} of {cfg.train.num_iters} iterations: "
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
        report.section("Result").table(
            ["validation accuracy", "test accuracy", "test accuracy, flip TTA", "test images",
             "hidden size", "seconds"],
            [[pct(metrics["val_accuracy"]), pct(metrics["test_accuracy"]),
              pct(metrics["test_accuracy_flip_tta"]), metrics["test_size"], cfg.hidden_size,
              f"{seconds:.1f}"]])
    report.section("Configuration").table(["option", "value"], sorted(cfg.to_dict().items()))
    report.section("Training").figure(paths["loss"], "Training loss per iteration")
    report.figure(paths["accuracy"], "Train (minibatch) and validation accuracy per epoch")
    if "weights" in paths:
        report.section("First-layer weights").figure(paths["weights"], "W1 as images")
    report.write(folder / "report.html")


__all__ = ["PreparedData", "fit", "training_inputs", "network_metrics", "prepare_data", "run_train",
           "train_teacher", "write_network_artifacts"]
