import json
import zipfile

import numpy as np
import pytest

from nndl.model_io import FORMAT_VERSION, ModelFileError, SavedModel, load_model, save_model
from nndl.neural_net import TwoLayerNet
from nndl.transforms import Pipeline


@pytest.fixture
def model():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (60, 4, 4, 3)).astype(np.uint8)
    pipe = Pipeline(["mean", "standardize"])
    pipe.fit_transform(images.reshape(60, -1).astype(np.float64))
    net = TwoLayerNet(48, 7, 3, std=0.1, random_state=1)
    return SavedModel(net, pipe, ("a", "b", "c"), {"reg": 0.1}, {"loss_history": [1.0, 0.5]},
                      (4, 4, 3)), images


def test_round_trip_predicts_exactly_the_same(tmp_path, model):
    saved, images = model
    path = save_model(tmp_path / "m.npz", saved)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba_images(images),
                                  saved.predict_proba_images(images))
    assert loaded.class_names == ("a", "b", "c") and loaded.image_shape == (4, 4, 3)
    assert loaded.hyperparameters == {"reg": 0.1}
    assert loaded.history["loss_history"] == [1.0, 0.5]
    assert loaded.transform.names == ["mean", "standardize"]
    with zipfile.ZipFile(path) as z:  # nothing pickled: every member is a plain .npy
        assert all(name.endswith(".npy") for name in z.namelist())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_newer_format_version_is_refused(tmp_path, model):
    saved, _ = model
    path = save_model(tmp_path / "m.npz", saved)
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(arrays["metadata.json"].tobytes())
    meta["format_version"] = FORMAT_VERSION + 1
    arrays["metadata.json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "new.npz", **arrays)
    with pytest.raises(ModelFileError, match="newer than this nndl reads"):
        load_model(tmp_path / "new.npz")


def test_damaged_or_foreign_files(tmp_path, model):
    saved, _ = model
    path = save_model(tmp_path / "m.npz", saved)
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[:300])
    with pytest.raises(ModelFileError, match="cut.npz: damaged"):
        load_model(tmp_path / "cut.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ModelFileError, match="not an nndl model file"):
        load_model(tmp_path / "other.npz")
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "missing.npz")


def test_wrong_image_shape_is_named(model):
    saved, _ = model
    with pytest.raises(ValueError, match=r"images must have shape \(N, 4, 4, 3\)"):
        saved.predict_images(np.zeros((2, 32, 32, 3)))


def test_flip_tta_averages_an_image_and_its_mirror(model):
    saved, images = model
    mirrored = images[:, :, ::-1]
    tta = saved.predict_proba_images(images, tta="flip")
    expected = (saved.predict_proba_images(images) + saved.predict_proba_images(mirrored)) / 2
    np.testing.assert_allclose(tta, expected, rtol=1e-12)
    assert not np.allclose(tta, saved.predict_proba_images(images))
    # the average is mirror-invariant, so both orientations get the same prediction
    np.testing.assert_array_equal(saved.predict_images(images, tta="flip"),
                                  saved.predict_images(mirrored, tta="flip"))
    with pytest.raises(ValueError, match="tta must be one of"):
        saved.predict_images(images, tta="rotate")
