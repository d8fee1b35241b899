import json

import numpy as np
import pytest

from nndl.config import Augmentation, RunConfig, TrainOptions
from nndl.neural_net import TwoLayerNet
from nndl.recipes import RECIPES, Recipe, get_recipe
from nndl.training import distillation_targets, train_network
from nndl.workflow import run_train
from tests.fakecifar import make_arrays, write_python_folder


def test_distillation_targets():
    scores = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    y = np.array([1, 2])
    targets = distillation_targets(scores, y, temperature=1.0, weight=0.5)
    np.testing.assert_allclose(targets.sum(axis=1), 1)
    p = np.exp(2) / (np.exp(2) + 2)
    np.testing.assert_allclose(targets[0], [0.5 * p, 0.5 * (1 - p) / 2 + 0.5, 0.5 * (1 - p) / 2])
    np.testing.assert_allclose(distillation_targets(scores, y, weight=0.0), np.eye(3)[y])
    with pytest.raises(ValueError, match="weight must be"):
        distillation_targets(scores, y, weight=1.5)


def test_one_hot_targets_train_exactly_like_labels(blobs):
    X, y, Xv, yv = blobs
    options = TrainOptions(learning_rate=0.05, reg=0.01, num_iters=30, batch_size=32)
    nets = [TwoLayerNet(8, 6, 3, std=0.1, random_state=1) for _ in range(2)]
    train_network(nets[0].params, X, y, Xv, yv, options, rng=np.random.default_rng(3))
    train_network(nets[1].params, X, y, Xv, yv, options, rng=np.random.default_rng(3),
                  soft_targets=np.eye(3)[y])
    for name in nets[0].params:
        np.testing.assert_allclose(nets[1].params[name], nets[0].params[name], rtol=1e-12)


def test_recipes_are_one_hidden_layer_and_full_test():
    for name in RECIPES:
        recipe = get_recipe(name)
        assert recipe.config.full_test and recipe.config.hidden_size >= 50
    assert get_recipe("h50-best").config.hidden_size == 50
    with pytest.raises(ValueError, match="recipe must be one of"):
        get_recipe("nope")


def test_recipe_with_teacher_runs_and_records_everything(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_python_folder(tmp_path / "data" / "cifar-10-batches-py", make_arrays(per_batch=200))
    small = dict(data=str(tmp_path / "data"), num_training=800, num_validation=200,
                 full_test=True, preprocessing="standardize",
                 augment=Augmentation(flip=True, translate=2),
                 std=1e-2, dtype="float32")
    recipe = Recipe("tiny", "a test recipe",
                    RunConfig(hidden_size=5, **small, train=TrainOptions(
                        learning_rate=0.05, num_iters=30, schedule="one_cycle")),
                    teacher=RunConfig(hidden_size=20, **small, train=TrainOptions(
                        learning_rate=0.05, num_iters=30)))
    folder, metrics = run_train(recipe.config, out=tmp_path / "run", progress=False,
                                recipe=recipe)
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved["recipe"] == "tiny" and saved["teacher"]["hidden_size"] == 20
    assert saved["hidden_size"] == 5 and saved["test_size"] == 200
    assert saved["total_seconds"] >= saved["train_seconds"]
