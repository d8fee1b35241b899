"""Any dataset through the workflow (issue 14): train, evaluate, predict and search on
scikit-learn's digits, as the named dataset, an image folder and an .npz; the streamed
(memory-mapped, converted per minibatch) path equals the in-memory one."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from nndl.config import RunConfig, TrainOptions
from nndl.data import load_dataset
from nndl.workflow import fit, prepare_data
from tests.data.test_user_datasets import digits_uint8, write_folder
from tests.test_cli import run_nndl


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return {**os.environ, "MPLBACKEND": "Agg",
            "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture(scope="module")
def digit_sources(tmp_path_factory):
    """The first 600 digits as an image folder and as an .npz (with class names)."""
    X, y = digits_uint8()
    X, y = X[:600], y[:600]
    root = tmp_path_factory.mktemp("digits")
    names = [f"digit{d}" for d in range(10)]
    folder = write_folder(root / "folder", X, y, names)
    npz = root / "digits.npz"
    np.savez(npz, X=X, y=y, class_names=np.array(names))
    return folder, npz


@pytest.mark.slow
def test_train_on_digits_reaches_95_percent_and_evaluates_the_same(tmp_path, env):
    out = tmp_path / "run"
    result = run_nndl("train", "--dataset", "digits", "--no-progress", "--out", str(out),
                      env=env)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.95
    assert metrics["test_size"] == 359  # a stratified 20% of 1,797 images
    assert metrics["config"]["dataset"] == "digits"
    assert metrics["config"]["learning_rate_decay"] == 1.0  # no per-epoch decay off CIFAR-10
    evaluated = run_nndl("evaluate", str(out / "model.npz"), "--out", str(tmp_path / "e"),
                         env=env)
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"test accuracy: {100 * metrics['test_accuracy']:.2f}% on 359 images" \
        in evaluated.stdout  # the same seeded test split as the run's


@pytest.mark.parametrize("kind", ["folder", "npz"])
@pytest.mark.slow
def test_train_evaluate_predict_on_the_users_own_data(tmp_path, env, digit_sources, kind):
    source = digit_sources[0] if kind == "folder" else digit_sources[1]
    out = tmp_path / "run"
    result = run_nndl("train", "--dataset", str(source), "--num-iters", "600",
                      "--no-progress", "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val_accuracy"] > 0.8 and metrics["test_size"] == 120
    image = tmp_path / "seven.png"
    Image.fromarray(digits_uint8()[0][7]).save(image)  # digit 7, grayscale
    predicted = run_nndl("predict", str(out / "model.npz"), str(image), "--top", "1",
                         env=env)
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.split(": ")[1].startswith("digit7")
    evaluated = run_nndl("evaluate", str(out / "model.npz"), "--split", "val", "--out",
                         str(tmp_path / "e"), env=env)
    assert f"{100 * metrics['val_accuracy']:.2f}%" in evaluated.stdout


@pytest.mark.slow
def test_a_model_and_a_dataset_that_do_not_fit(tmp_path, env, digit_sources):
    out = tmp_path / "run"
    assert run_nndl("train", "--dataset", str(digit_sources[1]), "--num-iters", "20",
                    "--no-progress", "--out", str(out), env=env).returncode == 0
    result = run_nndl("evaluate", str(out / "model.npz"), "--dataset", "digits", "--out",
                      str(tmp_path / "e"), env=env)
    assert result.returncode == 0  # same images and classes: allowed
    other = tmp_path / "rgb.npz"
    np.savez(other, X=np.zeros((50, 8, 8, 3), np.uint8), y=np.arange(50) % 10)
    result = run_nndl("evaluate", str(out / "model.npz"), "--dataset", str(other), env=env,
                      cwd=tmp_path)
    assert result.returncode == 1 and "takes 8x8x1 images of 10 classes" in result.stderr


def test_streamed_training_equals_in_memory(monkeypatch, tmp_path, digit_sources):
    """Rows kept on disk and converted per minibatch train the same network as rows held
    in memory (same minibatches, same preprocessing up to rounding)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cfg = RunConfig(dataset=str(digit_sources[1]), dtype="float64", seed=3,
                    preprocessing="mean,standardize",
                    train=TrainOptions(num_iters=150, batch_size=50, learning_rate=0.01))
    data = load_dataset(cfg.dataset)
    in_memory = prepare_data(cfg, data)
    monkeypatch.setenv("NNDL_IN_MEMORY_BYTES", "0")
    streamed = prepare_data(cfg, data)
    assert in_memory.X_train is not None and streamed.X_train is None
    assert streamed.train_images is not None
    a, _, _ = fit(cfg, in_memory, progress=False)
    b, _, _ = fit(cfg, streamed, progress=False)
    for name in ("W1", "b1", "W2", "b2"):
        np.testing.assert_allclose(a.net.params[name], b.net.params[name], rtol=1e-7,
                                   atol=1e-10)
    np.testing.assert_allclose(in_memory.X_val, streamed.X_val, rtol=1e-9, atol=1e-9)


def _one_class_folder(path):
    (path / "only").mkdir(parents=True)
    for i in range(4):
        Image.new("L", (4, 4), 10 * i).save(path / "only" / f"{i}.png")
    return path


@pytest.mark.parametrize("make, expected", [
    (lambda p: np.savez(p, X=np.full((30, 4, 4), np.nan), y=np.arange(30) % 3),
     "X holds pixel values that are not finite float32 numbers"),
    (lambda p: np.savez(p, X=np.zeros((1, 4, 4), np.uint8), y=np.array([0])),
     "y holds one class only (0, '0'); a classifier needs at least 2"),
    (lambda p: np.savez(p, X=np.zeros((2, 4, 4), np.uint8), y=np.array([0, 1])),
     "2 images are too few to split into training, validation and test images; at least 3 "
     "are needed"),
    (lambda p: _one_class_folder(p.with_suffix("")),
     "one class folder ('only'); a classifier needs at least 2"),
], ids=["nan", "one-image", "two-images", "one-class"])
def test_bad_data_is_refused_in_one_line_before_any_run_folder(tmp_path, env, make,
                                                               expected):
    """Issue 22, item 10: refused before the run folder exists, naming the file."""
    source = tmp_path / "bad.npz"
    make(source)
    source = source if source.exists() else source.with_suffix("")
    out = tmp_path / "run"
    result = run_nndl("train", "--dataset", str(source), "--no-progress", "--out", str(out),
                      env=env)
    assert result.returncode == 1
    assert result.stderr.startswith(f"nndl train: error: {source}") and expected in \
        result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    assert not out.exists()


@pytest.mark.parametrize("value", ["garbage", "-5", "1.5"])
def test_a_bad_in_memory_limit_is_named(monkeypatch, tmp_path, digit_sources, value):
    """Issue 22, item 15: the variable is named; 0 stays valid (streams every dataset)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("NNDL_IN_MEMORY_BYTES", value)
    cfg = RunConfig(dataset=str(digit_sources[1]))
    with pytest.raises(ValueError, match=rf"^NNDL_IN_MEMORY_BYTES must be an integer >= 0 "
                                         rf"\(bytes; 0 streams every dataset from disk\), got "
                                         rf"'{value}'$"):
        prepare_data(cfg)
