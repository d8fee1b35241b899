"""Evaluating a saved model on CIFAR-10: accuracy, per-class accuracy, confusion matrix."""

from __future__ import annotations

from nndl.data import load_cifar10
from nndl.metrics import accuracy, confusion_matrix, format_confusion
from nndl.model_io import load_model
from nndl.runs import finish_run_dir, new_run_dir
from nndl.vis_utils import plot_confusion_matrix


def evaluate_model_file(model_path, data=None, num_test=None, split="test", out=None,
                        tta=None):
    """Evaluate (``tta="flip"``: average over each image and its mirror); writes
    confusion_matrix.png/.txt to a new folder. Returns a dict with
    ``accuracy``, ``matrix``, ``text`` and ``png``."""
    model = load_model(model_path)
    cifar = load_cifar10(data)
    if split == "val":
        images, labels = cifar.X_train[49000:50000], cifar.y_train[49000:50000]
    else:
        n = len(cifar.X_test) if num_test is None else num_test
        if not 1 <= n <= len(cifar.X_test):
            raise ValueError(f"--num-test must be in 1..{len(cifar.X_test)}, got {n}")
        images, labels = cifar.X_test[:n], cifar.y_test[:n]
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
