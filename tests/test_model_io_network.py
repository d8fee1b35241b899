"""Model files of a ``Network`` of any depth: recorded as such (format version 3, which an
nndl reading version 2 refuses), read back exactly, and checked as strictly as
TwoLayerNet's (shapes from the recorded sizes, members refused unread, the overflow bound
over every layer and batch normalization); TwoLayerNet's files stay as they were."""

import json
import zipfile

import numpy as np
import pytest

from nndl._archive import check_format
from nndl.model_io import (
    FORMAT,
    ModelFileError,
    SavedModel,
    forward_bound,
    load_model,
    save_model,
)
from nndl.network import Network
from nndl.neural_net import TwoLayerNet
from nndl.transforms import Pipeline
from tests.test_deep_engine import deep_params
from tests.test_model_io import _arrays, _npy, _peak_while, _refused, _rewrite, _set, _write_zip

SIZES = [48, 9, 7, 3]


@pytest.fixture
def deep():
    """A 3-layer Network with batch normalization (trained-looking statistics) on 4x4 RGB
    images, its preprocessing fitted, and the images."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (60, 4, 4, 3)).astype(np.uint8)
    pipe = Pipeline(["mean", "standardize"])
    pipe.fit_transform(images.reshape(60, -1).astype(np.float64))
    net = Network.from_params(deep_params(SIZES, batchnorm=True, seed=3))
    return SavedModel(net, pipe, ("a", "b", "c"), {"reg": 0.1}, image_shape=(4, 4, 3)), images


def _metadata(path):
    with np.load(path) as archive:
        return json.loads(archive["metadata.json"].tobytes())


def test_a_deep_network_round_trips_exactly_as_version_3(tmp_path, deep):
    saved, images = deep
    path = save_model(tmp_path / "m.npz", saved)
    meta = _metadata(path)
    assert meta["format_version"] == 3
    assert meta["architecture"] == {"network": "nndl.network.Network", "sizes": SIZES,
                                    "batchnorm": True, "dtype": "float64", "input_size": 48,
                                    "output_size": 3}
    loaded = load_model(path)
    assert isinstance(loaded.net, Network) and loaded.net.sizes == tuple(SIZES)
    assert sorted(loaded.net.params) == sorted(saved.net.params)
    for name, value in saved.net.params.items():
        np.testing.assert_array_equal(loaded.net.params[name], value, err_msg=name)
    np.testing.assert_array_equal(loaded.predict_proba_images(images, "flip"),
                                  saved.predict_proba_images(images, "flip"))
    with zipfile.ZipFile(path) as z:
        assert all(name.endswith(".npy") for name in z.namelist())
    with pytest.raises(ModelFileError, match="format version 3 is newer than this nndl reads "
                                             r"\(2\); upgrade nndl"):  # an nndl before Network
        check_format(path, meta, ModelFileError, "model", FORMAT, 2)


def test_a_float32_network_without_batchnorm_round_trips(tmp_path):
    net = Network([12, 5, 5, 5, 2], random_state=0, dtype=np.float32)
    saved = SavedModel(net, class_names=("x", "y"), image_shape=(2, 2, 3))
    loaded = load_model(save_model(tmp_path / "m.npz", saved))
    assert loaded.net.dtype == np.float32 and not loaded.net.architecture.batchnorm
    rows = np.random.default_rng(1).integers(0, 256, (9, 2, 2, 3))
    np.testing.assert_array_equal(loaded.predict_images(rows), saved.predict_images(rows))


def test_two_layer_net_files_are_written_and_loaded_as_before(tmp_path, deep):
    _, images = deep
    net = TwoLayerNet(48, 7, 3, std=0.1, random_state=1)
    saved = SavedModel(net, deep[0].transform, ("a", "b", "c"), image_shape=(4, 4, 3))
    path = save_model(tmp_path / "m.npz", saved)
    assert _metadata(path)["format_version"] == 1
    assert _metadata(path)["architecture"] == {"input_size": 48, "hidden_size": 7,
                                               "output_size": 3, "dtype": "float64",
                                               "network": "nndl.neural_net.TwoLayerNet"}
    loaded = load_model(path)
    assert type(loaded.net) is TwoLayerNet
    np.testing.assert_array_equal(loaded.predict_images(images), saved.predict_images(images))


def _architecture(**changes):
    def edit(arrays, meta):
        meta["architecture"].update(changes)
    return edit


def _drop(key):
    def edit(arrays, meta):
        del arrays[key]
    return edit


@pytest.mark.parametrize(("edit", "message"), [
    (_architecture(sizes=[48, 9, 5, 3]), r"parameter W2 must have shape \(5, 9\), got "
                                       r"\(7, 9\)"),
    (_architecture(sizes=[48, 9, 3]), r"parameters W3, b3, beta2, gamma2, ... do not belong"),
    (_architecture(sizes=[48, 9, 7]), r"metadata key 'architecture.sizes' must be a list of "
                                      r"at least 3 positive ints from input_size to "
                                      r"output_size, got \[48, 9, 7\]"),
    (_architecture(sizes=[48, 3]), r"metadata key 'architecture.sizes' must be a list of at "
                                   r"least 3 positive ints from input_size to output_size, "
                                   r"got \[48, 3\]"),
    (_architecture(sizes=[48, 0, 7, 3]), r"metadata key 'architecture.sizes' must be a list"),
    (_architecture(sizes=None), r"metadata key 'architecture.sizes' must be a list .* got None"),
    (_architecture(sizes=[48] + [9] * 5000 + [3]),  # no 5,000 layers' shapes are made
     r"records 5001 layers but holds 3 weight matrices"),
    (_architecture(batchnorm="yes"), r"metadata key 'architecture.batchnorm' must be true or "
                                     r"false, got 'yes'"),
    (_architecture(batchnorm=False), r"parameters beta1, beta2, gamma1, gamma2, ... do not "
                                  r"belong to a network of sizes \[48, 9, 7, 3\] "
                                  r"\(batchnorm false\)"),
    (_drop("param.gamma2"), r"parameter gamma2 is missing"),
    (_drop("param.W3"), r"records 3 layers but holds 2 weight matrices"),
    (_set("param.running_mean2", np.full(7, np.nan)), r"parameter running_mean2 holds NaN"),
    (_set("param.running_var1", -np.ones(9)), r"parameter running_var1 holds negative "
                                              r"variances"),
    (_architecture(network="nndl.network.Net"), r"records network nndl.network.Net; model "
                                                r"files load nndl.neural_net.TwoLayerNet"),
], ids=["sizes-vs-W2", "fewer-sizes", "sizes-vs-names", "one-layer", "zero-width", "no-sizes",
        "many-layers", "bn-str", "bn-missing", "no-gamma2", "no-W3", "nan-mean", "negative-var",
        "other-network"])
def test_invalid_deep_model_files_are_refused(tmp_path, deep, edit, message):
    path = _rewrite(tmp_path, deep[0], edit)
    with pytest.raises(ModelFileError, match=rf"^{tmp_path / 'bad.npz'}: ({message})"):
        load_model(path)


@pytest.mark.parametrize("edit", [
    _set("param.W3", np.full((3, 7), 1e306)),  # the last layer
    _set("param.W2", np.full((7, 9), 1e306)),  # a middle one
    _set("param.gamma2", np.full(7, 1e306)),
    _set("param.beta1", np.full(9, 1e308)),
    _set("param.running_mean1", np.full(9, -1e308)),
], ids=["W3", "W2", "gamma2", "beta1", "running_mean1"])
def test_weights_overflowing_in_any_layer_are_refused(tmp_path, deep, edit):
    path = _rewrite(tmp_path, deep[0], edit)
    _refused(path, r"bad.npz: the weights are too large for float64: the scores of an image "
                   r"could reach [0-9.e+inf]+ and overflow")


def test_a_zero_running_variance_is_kept_and_bounded(tmp_path, deep):
    """running_var 0 divides by sqrt(eps): finite, so the file loads (the bound covers it);
    times a gamma of 1e305 it could not."""
    saved, images = deep
    path = _rewrite(tmp_path, saved, _set("param.running_var2", np.zeros(7)))
    assert np.isfinite(load_model(path).predict_proba_images(images)).all()
    gamma = np.full(7, 1e305)
    path = _rewrite(tmp_path, saved, lambda arrays, meta: arrays.update(
        {"param.running_var2": np.zeros(7), "param.gamma2": gamma}))
    _refused(path, r"the weights are too large for float64")


def test_the_forward_bound_bounds_every_value_of_a_deep_network(deep):
    saved, _ = deep
    rng = np.random.default_rng(1)
    for images in (rng.integers(0, 256, (300, 4, 4, 3)), np.zeros((1, 4, 4, 3)),
                   np.full((1, 4, 4, 3), 255)):
        rows = saved.transform.transform(images.reshape(len(images), -1).astype(float))
        scores = saved.net.scores(rows)
        assert np.abs(scores).max() <= forward_bound(saved) < 1e9


def test_a_deep_member_larger_than_its_layer_needs_is_refused_unread(tmp_path, deep):
    members = {k: _npy(v) for k, v in _arrays(save_model(tmp_path / "m.npz", deep[0])).items()}
    members["param.W3"] = _npy(np.zeros((8192, 1024)))  # 64 MiB of zeros, deflated
    path = _write_zip(tmp_path / "bomb.npz", members, deflated={"param.W3"})
    assert path.stat().st_size < 1 << 20
    peak = _peak_while(lambda: _refused(
        path, r"bomb.npz: parameter W3 would take 67,108,992 bytes uncompressed \(stored in "
              r"[0-9,]+\), more than a model of this architecture needs: refused unread"))
    assert peak < 1 << 20
