"""Every command at any depth: train, evaluate and predict a deep network with batch
normalization, and search over depths (each architecture its own population)."""

import json

import numpy as np
from optuna.trial import TrialState

from nndl.model_io import load_model
from tests.search.conftest import SMALL, nndl
from tests.search.test_search import load


def test_train_evaluate_and_predict_a_deep_network(tmp_path, search_env):
    out = tmp_path / "run"
    result = nndl("train", "--hidden-sizes", "40,30,20", "--batchnorm", "--dropout", "0.1",
                  "--optimizer", "adam", "--learning-rate", "1e-3", "--num-iters", "60",
                  *SMALL, "--no-progress", "--out", str(out), env=search_env)
    assert result.returncode == 0, result.stdout + result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["hidden_sizes"] == [40, 30, 20]
    assert metrics["config"]["batchnorm"] is True
    model = load_model(out / "model.npz")
    assert model.net.sizes == (3072, 40, 30, 20, 10) and "gamma3" in model.net.params
    evaluated = nndl("evaluate", str(out / "model.npz"), "--out", str(tmp_path / "eval"),
                     env=search_env)
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    again = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert again["accuracy"] == metrics["test_accuracy"]  # the run's own test images

    from PIL import Image
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    predicted = nndl("predict", str(out / "model.npz"), *paths, env=search_env)
    assert predicted.returncode == 0, predicted.stdout + predicted.stderr
    expected = model.predict_images(images)
    for line, label in zip(predicted.stdout.splitlines(), expected):
        assert line.split(": ")[1].split()[0] == model.class_names[label]


def test_a_search_over_depths_trains_each_architecture_as_a_population(tmp_path, search_env):
    space = tmp_path / "space.toml"
    space.write_text('[hidden_sizes]\nchoices = ["32", "32,16", "24,24,24"]\n'
                     '[learning_rate]\nchoices = [1e-3, 3e-3]\n'
                     '[batchnorm]\nchoices = [true]\n[optimizer]\nchoices = ["adam"]\n')
    out = tmp_path / "run"
    result = nndl("search", "--sampler", "grid", "--space", str(space), "--num-iters", "30",
                  *SMALL, "--no-progress", "--out", str(out), env=search_env)
    assert result.returncode == 0, result.stdout + result.stderr
    trials = load(out).trials
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)
    by_depth = {}
    for t in trials:
        by_depth.setdefault(t.params["hidden_sizes"], []).append(
            t.user_attrs["population_size"])
    assert by_depth == {"32": [2, 2], "32,16": [2, 2], "24,24,24": [2, 2]}
    best = json.loads((out / "metrics.json").read_text())["best"]
    model = load_model(out / "best" / "model.npz")
    assert len(model.net.sizes) - 2 == len(best["config"]["hidden_sizes"].split(","))
