"""Model files of a Network of any depth: format version 3, every layer checked, and the
first assignment's files unchanged."""

import json
import zipfile

import numpy as np
import pytest

from nndl.model_io import ModelFileError, SavedModel, load_model, save_model
from nndl.network import Network
from nndl.neural_net import TwoLayerNet
from nndl.transforms import Pipeline


def deep_model(batchnorm=True):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (60, 4, 4, 3)).astype(np.uint8)
    pipe = Pipeline(["mean"])
    pipe.fit_transform(images.reshape(60, -1).astype(np.float64))
    net = Network([48, 9, 7, 3], batchnorm=batchnorm, random_state=1)
    for name in net.params:
        if name.startswith(("gamma", "running")):
            net.params[name] += rng.random(net.params[name].shape)
    return SavedModel(net, pipe, ("a", "b", "c"), {}, {}, (4, 4, 3)), images


def metadata_of(path):
    with zipfile.ZipFile(path) as z:
        return json.loads(np.load(z.open("metadata.json.npy")).tobytes())


@pytest.mark.parametrize("batchnorm", [False, True])
def test_a_deep_network_round_trips_and_predicts_the_same(tmp_path, batchnorm):
    saved, images = deep_model(batchnorm)
    path = save_model(tmp_path / "m.npz", saved)
    loaded = load_model(path)
    assert type(loaded.net) is Network and loaded.net.sizes == (48, 9, 7, 3)
    np.testing.assert_array_equal(loaded.predict_proba_images(images),
                                  saved.predict_proba_images(images))
    meta = metadata_of(path)
    assert meta["format_version"] == 3
    assert meta["architecture"]["sizes"] == [48, 9, 7, 3]
    assert meta["architecture"]["batchnorm"] is batchnorm


def test_the_first_assignment_network_keeps_format_version_1(tmp_path):
    net = TwoLayerNet(48, 7, 3, std=0.1, random_state=1)
    path = save_model(tmp_path / "m.npz", SavedModel(net, Pipeline([]), ("a", "b", "c"),
                                                      image_shape=(4, 4, 3)))
    assert metadata_of(path)["format_version"] == 1
    assert type(load_model(path).net) is TwoLayerNet


def rewrite(path, out, change):
    """A copy of the model file at ``path`` with ``change(arrays, metadata)`` applied."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["metadata.json"].tobytes())
    change(arrays, meta)
    arrays["metadata.json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(out, **arrays)
    return out


@pytest.mark.parametrize("change,message", [
    (lambda a, m: a.__setitem__("param.running_var1", -np.ones(9)), "negative variances"),
    (lambda a, m: a.pop("param.gamma2"), "gamma2 is missing"),
    (lambda a, m: a.__setitem__("param.W2", np.ones((7, 8))), r"W2 must have shape \(7, 9\)"),
    (lambda a, m: m["architecture"].__setitem__("sizes", [48, 9, 7, 4]), "sizes"),
    (lambda a, m: a.__setitem__("param.W3", np.full((3, 7), 1e306)), "too large"),
    (lambda a, m: a.__setitem__("param.gamma2", np.full(7, 1e306)), "too large"),
])
def test_a_damaged_deep_file_is_refused_naming_what(tmp_path, change, message):
    saved, _ = deep_model()
    path = save_model(tmp_path / "m.npz", saved)
    bad = rewrite(path, tmp_path / "bad.npz", change)
    with pytest.raises(ModelFileError, match=message):
        load_model(bad)
