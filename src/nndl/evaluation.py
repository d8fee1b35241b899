"""Evaluating a saved model on a dataset: accuracy, per-class accuracy, confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nndl._typing import PathLike
from nndl.config import RunConfig
from nndl.data import DATASETS, load_dataset
from nndl.data.catalog import warn_unless_flips_keep_class
from nndl.metrics import accuracy, confusion_matrix, format_confusion
from nndl.model_io import SavedModel, load_model
from nndl.runs import finish_run_dir, new_run_dir
from nndl.splits import split_dataset
from nndl.vis_utils import plot_confusion_matrix

# the training run's settings that decide its splits (stored in the model's hyperparameters)
_SPLIT_KEYS = ("dataset", "labels", "num_training", "num_validation", "num_test", "seed")


def evaluate_model_file(model_path: PathLike, dataset: str | None = None,
                        data: PathLike | None = None, num_test: int | None = None,
                        split: str = "test", out: PathLike | None = None,
                        tta: str | None = None) -> dict[str, Any]:
    """Evaluate a model file on its dataset's test images (all of them, or the first
    ``num_test``) or, with ``split="val"``, on the validation images of the run that trained
    it (the same seeded split). ``dataset`` defaults to the one the model was trained on
    (CIFAR-10 for older files); ``tta="flip"`` averages over each image and its mirror
    (with a warning where the dataset's flag says mirrored images may change class:
    :func:`nndl.data.catalog.flips_keep_class`).
    Writes confusion_matrix.png/.txt to a new folder; returns a dict with ``accuracy``,
    ``matrix``, ``text`` and ``png``."""
    model = load_model(model_path)
    warn_unless_flips_keep_class(dataset or model.hyperparameters.get("dataset", "cifar10"), tta)
    images, labels = _evaluation_images(model, dataset, data, num_test, split)
    predicted = model.predict_images(images, tta)
    matrix = confusion_matrix(labels, predicted, len(model.class_names))
    acc = accuracy(labels, predicted)
    how = " with flip test-time averaging" if tta else ""
    text = (f"{split} accuracy{how}: {100 * acc:.2f}% on {len(labels)} images\n\n"
            + format_confusion(matrix, model.class_names))
    folder = new_run_dir(out, "evaluate")
    (folder / "confusion_matrix.txt").write_text(text + "\n")
    png = plot_confusion_matrix(matrix, model.class_names, folder / "confusion_matrix.png")
    finish_run_dir(folder)
    return {"accuracy": acc, "matrix": matrix, "text": text, "png": png}


def _evaluation_images(model: SavedModel, dataset: str | None, data: PathLike | None,
                       num_test: int | None, split: str) -> tuple[Any, Any]:
    trained = {k: v for k, v in model.hyperparameters.items() if k in _SPLIT_KEYS}
    name = dataset or trained.get("dataset", "cifar10")
    settings = trained if trained.get("dataset", "cifar10") == name else {}
    cfg = RunConfig.from_dict({**settings, "dataset": name})
    height, width = model.image_shape[:2]
    folder = name not in DATASETS and Path(name).expanduser().is_dir()  # resized to the model
    source = load_dataset(name, data, labels=cfg.labels,
                          image_size=(width, height) if folder else None)
    _check_compatible(model, source, name)
    images: Any
    labels: Any
    if split == "test" and source.X_test is not None:  # an official test set: all of it
        images, labels = source.X_test, source.y_test
    else:  # the run's own seeded split
        splits = split_dataset(source, num_training=cfg.num_training,
                               num_validation=cfg.num_validation, num_test=cfg.num_test,
                               full_test=True, seed=cfg.seed)
        if split == "val":
            return splits.val_images, splits.y_val
        images, labels = splits.test_images, splits.y_test
    n = len(labels) if num_test is None else num_test
    if not 1 <= n <= len(labels):
        raise ValueError(f"--num-test must be in 1..{len(labels)}, got {n}")
    return images[:n], labels[:n]


def _check_compatible(model, source, name):
    shape, classes = tuple(source.X_train.shape[1:]), len(source.class_names)
    if shape != tuple(model.image_shape) or classes != len(model.class_names):
        raise ValueError(
            f"the model takes {'x'.join(map(str, model.image_shape))} images of "
            f"{len(model.class_names)} classes, but {name} has {'x'.join(map(str, shape))} "
            f"images of {classes} classes; pass --dataset with the model's dataset")


__all__ = ["evaluate_model_file"]
