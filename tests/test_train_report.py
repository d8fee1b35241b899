"""What a train run's report and metrics say: the settings the run used (not None), each
class's accuracy and the confusion matrix, flip test-time averaging only where mirrored
images keep their class."""

import json
import re
import warnings
from html import unescape

import numpy as np
import pytest

from nndl.config import RunConfig, TrainOptions
from nndl.data.catalog import DATASETS

pytest.importorskip("sklearn")  # the digits dataset


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A short train run on scikit-learn's digits (1,797 images, no official test set)."""
    from nndl.workflow import run_train

    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(cache))
        cfg = RunConfig(dataset="digits", std=1e-2, train=TrainOptions(
            learning_rate=0.1, reg=1e-4, num_iters=60, batch_size=100))
        folder, metrics = run_train(cfg, out=tmp_path_factory.mktemp("runs") / "digits",
                                    progress=False)
    return folder, metrics


def table_rows(page, first_header):
    """The body rows (lists of cell texts) of the table whose first header is
    ``first_header``."""
    tables = re.findall(r"<table[^>]*><thead><tr>(.*?)</tr></thead><tbody>(.*?)</tbody>",
                        page, re.S)
    for head, body in tables:
        if unescape(re.sub(r"<[^>]+>", "", head.split("</th>")[0])) == first_header:
            return [[unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(
                r"<td[^>]*>(.*?)</td>", row)] for row in re.findall(r"<tr>(.*?)</tr>", body)]
    raise AssertionError(f"no table starting with {first_header!r}")


def test_configuration_shows_the_split_sizes_used_not_none(digits_run):
    folder, metrics = digits_run
    config = dict(table_rows((folder / "report.html").read_text(), "option"))
    sizes = [int(config[k].split()[0].replace(",", "")) for k in
             ("num_training", "num_validation", "num_test")]
    assert sum(sizes) == 1797  # scikit-learn's digits, every image in one split
    assert sizes[1:] == [metrics["val_size"], metrics["test_size"]] == [144, 359]
    assert config["num_training"] == "1,294 (default)"
    assert config["image_size"] == "8x8 (the images' own)"
    assert "None" not in config.values()


def test_per_class_accuracy_and_confusion_matrix_of_the_test_images(digits_run):
    folder, metrics = digits_run
    page = (folder / "report.html").read_text()
    rows = table_rows(page, "class")
    assert [r[0] for r in rows] == [str(d) for d in range(10)]
    images, correct = (np.array([int(r[i]) for r in rows]) for i in (1, 2))
    assert images.sum() == 359 and set(images) <= {35, 36, 37}  # a stratified 20%: ~36 each
    assert correct.sum() / images.sum() == pytest.approx(metrics["test_accuracy"])
    assert [r[3] for r in rows] == [f"{100 * c / n:.1f}%" for c, n in zip(correct, images)]
    assert "Confusion matrix of the test images" in page
    counts = (folder / "confusion_matrix.txt").read_text().splitlines()[1:]
    assert [sum(int(v) for v in line.split()[1:-1]) for line in counts] == list(images)
    assert (folder / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"


def test_no_flip_tta_for_digits(digits_run):
    folder, metrics = digits_run
    assert not [k for k in metrics if "flip_tta" in k]
    saved = json.loads((folder / "metrics.json").read_text())
    assert not [k for k in saved if "flip_tta" in k]
    assert "flip TTA" not in (folder / "report.html").read_text()


def test_evaluate_warns_when_asked_to_flip_digits(digits_run, tmp_path, monkeypatch):
    from nndl.evaluation import evaluate_model_file

    folder, _ = digits_run
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder.parent.parent / "cache"))
    with pytest.warns(UserWarning, match="--tta flip on digits"):
        flipped = evaluate_model_file(folder / "model.npz", tta="flip", out=tmp_path / "e1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning without flips
        plain = evaluate_model_file(folder / "model.npz", out=tmp_path / "e2")
    assert 0 <= flipped["accuracy"] <= 1 and 0 <= plain["accuracy"] <= 1


@pytest.mark.parametrize(("dataset", "allowed"), [
    ("cifar10", True), ("cifar100", True), ("mnist", False), ("fashion-mnist", False),
    ("digits", False), ("path/to/my_letters", False), ("letters.npz", False)])
def test_flip_flag_per_dataset(dataset, allowed):
    from nndl.data.catalog import flips_keep_class

    assert flips_keep_class(dataset) is allowed


def test_every_catalog_entry_decides_on_flips():
    flagged = {n for n, spec in DATASETS.items() if getattr(spec, "flips_keep_class", None)}
    assert flagged == {"cifar10", "cifar100"}


def test_predict_warns_in_one_line_when_asked_to_flip_digits(digits_run, tmp_path):
    from PIL import Image

    from tests.test_cli import run_nndl

    folder, _ = digits_run
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(tmp_path / "digit.png")
    flipped = run_nndl("predict", str(folder / "model.npz"), str(tmp_path / "digit.png"),
                       "--tta", "flip", cwd=tmp_path)
    assert flipped.returncode == 0, flipped.stderr
    assert flipped.stderr.splitlines() == [
        "nndl predict: warning: --tta flip on digits: nndl does not know that a mirrored "
        "image of this dataset keeps its class (a mirrored digit can be another digit); "
        "flip-averaged results may mislead"]
    plain = run_nndl("predict", str(folder / "model.npz"), str(tmp_path / "digit.png"),
                     cwd=tmp_path)
    assert plain.returncode == 0 and plain.stderr == ""


@pytest.fixture(scope="module")
def deep_digits_run(tmp_path_factory):
    """Two hidden layers with batch normalization on digits: 1,294 training rows in batches
    of 100 are 13 iterations an epoch, so the last of 40 iterations is a scored epoch's."""
    from nndl.workflow import run_train

    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(cache))
        cfg = RunConfig(dataset="digits", hidden_sizes="16,8", batchnorm=True,
                        train=TrainOptions(learning_rate=0.05, reg=1e-3, num_iters=40,
                                           batch_size=100))
        folder, metrics = run_train(cfg, out=tmp_path_factory.mktemp("runs") / "deep",
                                    progress=False)
    return folder, metrics


@pytest.mark.parametrize("run", ["digits_run", "deep_digits_run"])
def test_layers_plot_and_last_epoch_table_at_any_depth(run, request):
    from nndl.model_io import load_model

    folder, _ = request.getfixturevalue(run)
    page = (folder / "report.html").read_text()
    assert (folder / "layers.png").read_bytes()[:4] == b"\x89PNG"
    assert '<h2 id="layers">Layers</h2>' in page and "Frobenius norm of its weights" in page
    rows = table_rows(page, "layer")
    params = load_model(folder / "model.npz").net.params
    count = sum(1 for k in params if k.startswith("W"))
    assert count == (2 if run == "digits_run" else 3)
    assert [r[:2] for r in rows] == [[str(i), "activations"] for i in range(1, count)] \
        + [[str(count), "scores"]]
    if run == "deep_digits_run":  # the last scored epoch is the last step: the saved weights
        norms = [float(r[4]) for r in rows]
        want = [np.sqrt((params[f"W{i}"].astype(np.float64) ** 2).sum())
                for i in range(1, count + 1)]
        np.testing.assert_allclose(norms, want, rtol=5e-4)  # printed to 4 digits
    assert all(float(r[3]) >= 0 for r in rows)
    # the first layer's weights (W1) still draw at any depth
    assert (folder / "weights.png").read_bytes()[:4] == b"\x89PNG" and "W1 as images" in page


def test_a_history_without_layer_stats_adds_no_layers_section(tmp_path):
    from nndl.report import Report
    from nndl.workflow import _layer_section

    report = Report("old")
    for history in ({"loss_history": [0.5]}, {"layer_stats": []}):
        _layer_section(report, tmp_path, history)
    assert report.parts == [] and not (tmp_path / "layers.png").exists()
