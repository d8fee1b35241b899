"""``nndl evaluate`` and ``nndl predict`` on a model file holding a 3-layer ``Network`` with
batch normalization: both score exactly as ``Network.predict`` on the same rows."""

import json

import numpy as np
import pytest

from nndl.cli import main
from nndl.model_io import SavedModel, save_model
from nndl.network import Network
from nndl.transforms import Pipeline
from tests.fakecifar import NAMES, expected_images, make_arrays, write_python_folder

PER_BATCH = 40  # fake CIFAR-10: 200 training images, 40 test images


@pytest.fixture
def deep_model(tmp_path, monkeypatch):
    """A 3-layer Network with batch normalization trained on fake CIFAR-10's training rows
    (mean-subtracted), saved; the test images, their labels and the model."""
    batches = make_arrays(per_batch=PER_BATCH, seed=2)
    write_python_folder(tmp_path / "data" / "cifar-10-batches-py", batches)
    monkeypatch.setenv("NNDL_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    rows = np.concatenate([b[0] for b in batches[:5]]).astype(np.float64)
    labels = np.concatenate([b[1] for b in batches[:5]])
    pipe = Pipeline(["mean"])
    X = pipe.fit_transform(expected_images(rows).reshape(len(rows), -1))
    net = Network([3072, 16, 12, 10], batchnorm=True, random_state=0)
    net.train(X, labels, num_iters=30, batch_size=50, learning_rate=1e-3, optimizer="adam")
    model = SavedModel(net, pipe, tuple(n.decode() for n in NAMES), image_shape=(32, 32, 3))
    path = save_model(tmp_path / "deep.npz", model)
    return path, net, pipe, expected_images(batches[5][0]), np.asarray(batches[5][1])


def test_evaluate_scores_a_deep_network_as_network_predict(tmp_path, deep_model, capsys):
    path, net, pipe, images, labels = deep_model
    expected = net.predict(pipe.transform(images.reshape(len(images), -1).astype(float)))
    assert len(set(expected)) > 1  # more than one class: the comparison tells something
    out = tmp_path / "eval"
    assert main(["evaluate", str(path), "--dataset", "cifar10", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_images"] == PER_BATCH
    assert metrics["accuracy"] == np.mean(expected == labels)
    correct = [int(np.sum((labels == c) & (expected == c))) for c in range(10)]
    assert [c["correct"] for c in metrics["per_class_accuracy"]] == correct
    assert f"on {PER_BATCH} images" in capsys.readouterr().out


def test_predict_ranks_as_network_predict_proba(tmp_path, deep_model, capsys):
    from PIL import Image

    path, net, pipe, images, _ = deep_model
    files = []
    for i, image in enumerate(images[:8]):
        files.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(files[-1])  # lossless: the same pixels come back
    assert main(["predict", str(path), *files, "--top", "2"]) == 0
    probs = net.predict_proba(pipe.transform(images[:8].reshape(8, -1).astype(float)))
    names = [n.decode() for n in NAMES]
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8
    for file, line, row in zip(files, lines, probs):
        first, second = np.argsort(row)[::-1][:2]
        assert line == (f"{file}: {names[first]} {row[first]:.3f}, "
                        f"{names[second]} {row[second]:.3f}")
    assert [line.split(": ")[1].split()[0] for line in lines] == \
        [names[k] for k in net.predict(pipe.transform(images[:8].reshape(8, -1).astype(float)))]
