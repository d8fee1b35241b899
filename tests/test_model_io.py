import json
import re
import zipfile

import numpy as np
import pytest

from nndl.model_io import FORMAT_VERSION, ModelFileError, SavedModel, load_model, save_model
from nndl.neural_net import TwoLayerNet
from nndl.transforms import Pipeline, make_transform


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


def _rewrite(tmp_path, saved, edit):
    """Save ``saved``, let ``edit(arrays, metadata)`` damage it, write it as bad.npz."""
    path = save_model(tmp_path / "m.npz", saved)
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(arrays["metadata.json"].tobytes())
    replaced = edit(arrays, meta)
    meta = meta if replaced is None else replaced
    arrays["metadata.json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "bad.npz", **arrays)
    return tmp_path / "bad.npz"


def _set(key, value):
    def edit(arrays, meta):
        arrays[key] = value
    return edit


def _float32_with_W1(value):
    def edit(arrays, meta):  # finite in float64, infinite once cast to the model's float32
        meta["architecture"]["dtype"] = "float32"
        arrays["param.W1"] = value
    return edit


def _drop(key):
    def edit(arrays, meta):
        del arrays[key]
    return edit


def _meta(**changes):
    def edit(arrays, meta):
        meta.update(changes)
        for key in [k for k, v in changes.items() if v is None]:
            del meta[key]
    return edit


@pytest.mark.parametrize(("edit", "message"), [
    (_set("param.W1", np.full((7, 48), np.nan)), r"parameter W1 holds NaN or infinite values"),
    (_set("param.b2", np.array([0.0, np.inf, 0.0])), r"parameter b2 holds NaN or infinite"),
    (_set("param.W2", np.zeros((3, 7), "U1")), r"parameter W2 must hold real numbers"),
    (_float32_with_W1(np.full((7, 48), 1e300)), r"parameter W1 holds NaN or infinite"),
    (_set("transform.0.mean_", np.zeros(1)),
     r"transform 0 \(mean\): mean_ must have shape \(48,\), got \(1,\)"),
    (_set("transform.1.scale_", np.full(48, np.nan)),
     r"transform 1 \(standardize\): scale_ holds NaN or infinite values"),
    (_drop("transform.0.mean_"),
     r"transform 0 \(mean\): arrays must be \['mean_'\], got \[\]"),
    (_set("transform.0.extra", np.zeros(48)),
     r"transform 0 \(mean\): arrays must be \['mean_'\], got \['extra', 'mean_'\]"),
    (lambda arrays, meta: [],  # metadata that is a JSON list
     r"metadata must be a JSON object, got list"),
    (_meta(architecture=None), r"metadata key 'architecture' is missing"),
    (_meta(architecture={"input_size": 48, "hidden_size": 7, "output_size": 3}),
     r"metadata key 'architecture.dtype' is missing"),
    (_meta(architecture={"input_size": "48", "hidden_size": 7, "output_size": 3,
                         "dtype": "float64"}),
     r"metadata key 'architecture.input_size' must be a positive int, got '48'"),
    (_meta(class_names=["a", "b"]),
     r"metadata key 'class_names' must be a list of 3 names \(one per output\), "
     r"got \['a', 'b'\]"),
    (_meta(class_names="abc"),
     r"metadata key 'class_names' must be a list of 3 names .* got 'abc'"),
    (_meta(class_names=["a", "b", "a"]),  # two outputs of one name: which is "a"?
     r"metadata key 'class_names' must be a list of 3 names .* got \['a', 'b', 'a'\]"),
    (_meta(transform=["mean", "rotate"]),
     r"metadata key 'transform' must be a list of names among \('mean', 'standardize', "
     r"'pca', 'zca'\), got \['mean', 'rotate'\]"),
    (_meta(transform="mean"), r"metadata key 'transform' must be a list of names .* got 'mean'"),
    (_meta(image_shape=[4, 4]), r"metadata key 'image_shape' must be 3 positive ints"),
    (_meta(image_shape=[8, 8, 3]),
     r"transform 0 \(mean\): mean_ must have shape \(192,\), got \(48,\)"),
    (_meta(hyperparameters=[1, 2]), r"metadata key 'hyperparameters' must be a JSON object"),
    (_meta(input_range=[16, 0]), r"metadata key 'input_range' must be null or \[low, high\]"),
    (_meta(input_range=[0, "16"]), r"metadata key 'input_range' must be null or \[low, high\]"),
    (_meta(input_range={"low": 0}), r"metadata key 'input_range' must be null or \[low, hi"),
], ids=["nan-W1", "inf-b2", "text-W2", "float32-overflow", "mean-shape-1", "nan-scale", "no-arrays",
        "extra-array", "list", "no-architecture", "no-dtype", "str-size", "few-names",
        "names-str", "names-repeated", "unknown-transform", "transform-str", "short-image-shape",
        "image-shape-vs-D", "hyper-list", "range-reversed", "range-str", "range-object"])
def test_invalid_model_files_are_refused_naming_file_and_problem(tmp_path, model, edit, message):
    path = _rewrite(tmp_path, model[0], edit)
    with pytest.raises(ModelFileError, match=rf"^{tmp_path / 'bad.npz'}: {message}"):
        load_model(path)


def test_no_transform_image_shape_must_match_input_size(tmp_path):
    saved = SavedModel(TwoLayerNet(12, 5, 2, random_state=0), Pipeline(), ("x", "y"),
                       image_shape=(2, 2, 3))
    path = _rewrite(tmp_path, saved, _meta(image_shape=[2, 2, 1]))
    with pytest.raises(ModelFileError, match=r"image_shape \[2, 2, 1\] gives rows of 4 values "
                                             r"but the network takes 12"):
        load_model(path)


def test_pca_model_round_trip_and_component_shape(tmp_path):
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(40, 12))
    pipe = Pipeline([make_transform("pca", n_components=5)])
    pipe.fit_transform(rows)
    saved = SavedModel(TwoLayerNet(5, 4, 2, random_state=0), pipe, ("x", "y"),
                       image_shape=(2, 2, 3))
    loaded = load_model(save_model(tmp_path / "m.npz", saved))
    images = rng.integers(0, 256, (3, 2, 2, 3))
    np.testing.assert_array_equal(loaded.predict_proba_images(images),
                                  saved.predict_proba_images(images))
    path = _rewrite(tmp_path, saved, _set("transform.0.components_", np.zeros((5, 11))))
    with pytest.raises(ModelFileError, match=r"transform 0 \(pca\): components_ must have "
                                             r"shape \(5, 12\), got \(5, 11\)"):
        load_model(path)


@pytest.mark.parametrize(("command", "edit", "message"), [
    ("predict", _set("param.W1", np.full((7, 48), np.nan)), "parameter W1 holds NaN"),
    ("predict", _meta(class_names=["a"]), "metadata key 'class_names'"),
    ("predict", _set("param.W1", np.full((7, 48), 1e306)), "too large for float64"),
    ("evaluate", _set("param.W1", np.full((7, 48), 1e306)), "too large for float64"),
    ("evaluate", lambda arrays, meta: [], "metadata must be a JSON object"),
    ("evaluate", _meta(architecture=None), "metadata key 'architecture' is missing"),
    ("visualize", _set("transform.0.mean_", np.zeros(1)), r"mean_ must have shape \(48,\)"),
])
def test_cli_reports_a_bad_model_in_one_line(tmp_path, model, command, edit, message):
    from PIL import Image

    from tests.test_cli import run_nndl

    path = _rewrite(tmp_path, model[0], edit)
    Image.new("RGB", (4, 4)).save(tmp_path / "x.png")
    extra = {"predict": [str(tmp_path / "x.png")], "evaluate": ["--data", str(tmp_path / "none"),
                                                               "--out", str(tmp_path / "ev")]}
    before = sorted(tmp_path.iterdir())
    result = run_nndl(command, str(path), *extra.get(command, []))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"nndl {command}: error: {path}: ")
    assert result.stderr.count("\n") == 1 and re.search(message, result.stderr)
    assert sorted(tmp_path.iterdir()) == before  # nothing written


def test_input_range_maps_pixels_and_round_trips(tmp_path, model):
    saved, images = model
    ranged = SavedModel(saved.net, saved.transform, saved.class_names, image_shape=(4, 4, 3),
                        input_range=(-1, 1))
    # pixels 0-255 arrive at the network as -1..1: 0 -> -1, 255 -> 1, linearly between
    rows = images.reshape(60, -1) / 127.5 - 1
    np.testing.assert_allclose(ranged.predict_proba_images(images),
                               saved.net.predict_proba(saved.transform.transform(rows)),
                               rtol=1e-12)
    path = save_model(tmp_path / "ranged.npz", ranged)
    loaded = load_model(path)
    assert loaded.input_range == (-1.0, 1.0)
    np.testing.assert_array_equal(loaded.predict_proba_images(images),
                                  ranged.predict_proba_images(images))
    with np.load(path) as archive:  # an nndl too old to apply the range refuses the file
        assert json.loads(archive["metadata.json"].tobytes())["format_version"] == 2


def test_files_without_an_input_range_stay_version_1_and_load_as_pixels(tmp_path, model):
    saved, images = model
    path = save_model(tmp_path / "m.npz", saved)
    with np.load(path) as archive:
        meta = json.loads(archive["metadata.json"].tobytes())
    assert meta["format_version"] == 1 and "input_range" not in meta
    loaded = load_model(path)
    assert loaded.input_range is None
    rows = saved.transform.transform(images.reshape(60, -1).astype(np.float64))
    np.testing.assert_allclose(loaded.predict_proba_images(images),
                               saved.net.predict_proba(rows), rtol=1e-12)


@pytest.mark.parametrize("bad", [(1, 1), (0, np.inf), [0, 1, 2], "0,1"])
def test_a_bad_input_range_is_named(model, bad):
    saved, _ = model
    with pytest.raises(ValueError, match="input_range must be"):
        SavedModel(saved.net, saved.transform, image_shape=(4, 4, 3), input_range=bad)


def test_a_junk_file_is_refused_without_advice_to_unpickle_it(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_text("junk")
    with pytest.raises(ModelFileError, match="not a NumPy .npz archive") as caught:
        load_model(junk)
    assert "pickle" not in str(caught.value)


# -- files that validate but mislead (issue 22, item 11) ------------------------------------
def _arrays(path):
    with np.load(path) as archive:
        return {k: archive[k] for k in archive.files}


def _npy(array=None, header_shape=None, dtype="<f8"):
    """The bytes of a .npy member: ``array``'s, or a header claiming ``header_shape`` with
    no data behind it."""
    import io

    buf = io.BytesIO()
    if array is not None:
        np.save(buf, array)
        return buf.getvalue()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False,
                                               "shape": header_shape})
    return buf.getvalue() + bytes(64)


def _write_zip(path, members, deflated=()):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name + ".npy", data, compress_type=zipfile.ZIP_DEFLATED
                       if name in deflated else zipfile.ZIP_STORED)
    return path


def _refused(path, message):
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def _peak_while(run):
    import tracemalloc

    tracemalloc.start()
    try:
        run()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_weights_whose_forward_pass_overflows_are_refused(tmp_path, model):
    """Weights of 1e300 are finite, but the scores of CIFAR-10's 3,072 pixels overflowed:
    'truck nan', rc 0, and evaluate scored 14.84%. (Here, 48 inputs: 1e306.)"""
    saved, images = model
    path = _rewrite(tmp_path, saved, _set("param.W1", np.full((7, 48), 1e306)))
    with pytest.raises(ModelFileError, match=r"bad.npz: the weights are too large for "
                                             r"float64: the scores of an image could reach "
                                             r"inf and overflow"):
        load_model(path)
    path = _rewrite(tmp_path, saved, _set("transform.1.scale_", np.zeros(48)))
    with pytest.raises(ModelFileError, match="too large for float64"):  # divides by zero
        load_model(path)


def test_the_forward_bound_bounds_every_score(model):
    from nndl.model_io import forward_bound

    saved, _ = model
    rng = np.random.default_rng(1)
    for images in (rng.integers(0, 256, (200, 4, 4, 3)), np.zeros((1, 4, 4, 3)),
                   np.full((1, 4, 4, 3), 255)):
        rows = saved.transform.transform(images.reshape(len(images), -1).astype(float))
        scores = saved.net.loss(rows)
        assert np.abs(scores).max() <= forward_bound(saved) < 1e6


def test_a_member_larger_than_the_architecture_needs_is_refused_unread(tmp_path, model):
    """A 3 MB file with a 2 GB deflated member took 2 GB and 10.7 s before it was refused."""
    arrays = _arrays(save_model(tmp_path / "m.npz", model[0]))
    members = {k: _npy(v) for k, v in arrays.items()}
    members["param.W1"] = _npy(np.zeros((8192, 1024)))  # 64 MiB of zeros, deflated
    path = _write_zip(tmp_path / "bomb.npz", members, deflated={"param.W1"})
    assert path.stat().st_size < 1 << 20
    peak = _peak_while(lambda: _refused(
        path, r"bomb.npz: parameter W1 would take 67,108,992 bytes uncompressed \(stored in "
              r"[0-9,]+\), more than a model of this architecture needs: refused unread"))
    assert peak < 1 << 20


def test_a_member_compressed_far_beyond_what_nndl_writes_is_refused_unread(tmp_path):
    """The architecture may claim what the member holds: a 1,000:1 member is still no file
    nndl wrote (it stores its members uncompressed)."""
    saved = SavedModel(TwoLayerNet(1024, 1024, 2, random_state=0), class_names=("a", "b"),
                       image_shape=(32, 32, 1))
    saved.net.params["W1"][:] = 0
    path = save_model(tmp_path / "m.npz", saved)
    assert load_model(path).net.params["W1"].shape == (1024, 1024)  # stored: fine
    members = {k: _npy(v) for k, v in _arrays(path).items()}
    packed = _write_zip(tmp_path / "packed.npz", members, deflated={"param.W1"})
    assert packed.stat().st_size < path.stat().st_size / 100
    with pytest.raises(ModelFileError, match=r"parameter W1 would take 8,388,736 bytes "
                                             r"uncompressed \(stored in [0-9,]+\)"):
        load_model(packed)


def test_an_npy_header_of_a_huge_shape_is_refused_without_allocating(tmp_path, model):
    """A header of (10**6, 10**6) was a MemoryError "bug"."""
    members = {k: _npy(v) for k, v in _arrays(save_model(tmp_path / "m.npz",
                                                          model[0])).items()}
    members["param.W1"] = _npy(header_shape=(10**6, 10**6))
    path = _write_zip(tmp_path / "huge.npz", members)
    with pytest.raises(ModelFileError, match=r"parameter W1 must have shape \(7, 48\), got "
                                             r"\(1000000, 1000000\)"):
        load_model(path)
    meta = json.loads(_arrays(tmp_path / "m.npz")["metadata.json"].tobytes())
    meta.update(architecture={"input_size": 10**6, "hidden_size": 10**6, "output_size": 3,
                              "dtype": "float64"}, image_shape=[1000, 1000, 1], transform=[])
    members["metadata.json"] = _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))
    path = _write_zip(tmp_path / "huge.npz", members)  # the header agrees with the metadata
    peak = _peak_while(lambda: _refused(
        path, r"huge.npz: damaged or not an nndl model file \(parameter W1: 64 bytes of data "
              r"where its header says 8,000,000,000,000\)"))
    assert peak < 1 << 20


@pytest.mark.parametrize("depth", [40, 100_000])
def test_metadata_nested_too_deep_is_refused(tmp_path, model, depth):
    """100,000 levels were a RecursionError without the file's name."""
    def edit(arrays, meta):
        arrays["metadata.json"] = None  # replaced below

    path = _rewrite(tmp_path, model[0], edit)
    arrays = _arrays(tmp_path / "m.npz")
    meta = json.loads(arrays["metadata.json"].tobytes())
    text = json.dumps(meta)[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
    arrays["metadata.json"] = np.frombuffer(text.encode(), np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match=rf"^{path}: metadata nests deeper than 32 "
                                             r"levels: not an nndl model file$"):
        load_model(path)


@pytest.mark.parametrize("shape", [[2, 2, 12], [4, 4, 0], [1, 48, 1]])
def test_image_shape_takes_one_or_three_channels(tmp_path, model, shape):
    """image_shape [16, 16, 12] was accepted: nndl reads images as grayscale or RGB."""
    path = _rewrite(tmp_path, model[0], _meta(image_shape=shape))
    if shape[2] == 1:  # grayscale, 48 values: the transform's 48 fit
        assert load_model(path).image_shape == tuple(shape)
        return
    with pytest.raises(ModelFileError, match=r"metadata key 'image_shape' must be 3 positive "
                                             r"ints \(height, width, channels\), with 1 or 3 "
                                             rf"channels, got \[{shape[0]}, {shape[1]}"):
        load_model(path)
    with pytest.raises(ValueError, match=r"image_shape must be \(height, width, channels\), "
                                         r"positive ints with 1 or 3 channels"):
        SavedModel(model[0].net, image_shape=tuple(shape))


def test_a_model_that_would_not_fit_in_memory_is_refused(tmp_path, model, monkeypatch):
    path = save_model(tmp_path / "m.npz", model[0])
    monkeypatch.setenv("NNDL_MAX_MEMORY", "1K")
    with pytest.raises(MemoryError, match=rf"^loading {path} needs about [0-9.]+ KiB \(model "
                                          r"arrays"):
        load_model(path)


_PAUSED_WRITER = """
import sys
import numpy as np
from nndl.model_io import SavedModel, save_model
from nndl.neural_net import TwoLayerNet

def paused(f, **arrays):  # half an archive written, then wait to be killed
    f.write(b"PK\\x03\\x04 half an archive")
    f.flush()
    print("writing", flush=True)
    sys.stdin.read()

np.savez = paused
save_model(sys.argv[1], SavedModel(TwoLayerNet(4, 3, 2, random_state=0), class_names=("a", "b"),
                                   image_shape=(2, 2, 1)))
"""


def test_a_write_killed_midway_leaves_a_temporary_file_the_next_write_removes(tmp_path):
    """``.model.npz.<hex>.tmp`` stayed for good after a kill during the write."""
    import signal
    import subprocess
    import sys

    saved = SavedModel(TwoLayerNet(4, 3, 2, random_state=1), class_names=("a", "b"),
                       image_shape=(2, 2, 1))
    path = tmp_path / "m.npz"
    writer = subprocess.Popen([sys.executable, "-c", _PAUSED_WRITER, str(path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert writer.stdout.readline() == b"writing\n"  # the barrier: mid-write now
        (tmp,) = tmp_path.glob(".m.npz.*.tmp")
        save_model(path, saved)  # a writer still running keeps its temporary file
        assert tmp.exists() and load_model(path).net.params["b1"].shape == (3,)
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(timeout=60) == -signal.SIGKILL
    finally:
        writer.kill()
        writer.wait()
    assert tmp.exists()  # what a SIGKILL leaves
    save_model(path, saved)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


# -- which TwoLayerNet: the first assignment's (W1 (H, D)), never the course's (W1 (D, H)) --

def _metadata(path):
    with np.load(path) as archive:
        return json.loads(archive["metadata.json"].tobytes())


def test_model_files_record_the_first_assignments_network(tmp_path, model):
    path = save_model(tmp_path / "m.npz", model[0])
    assert _metadata(path)["architecture"]["network"] == "nndl.neural_net.TwoLayerNet"


def test_files_from_before_the_network_was_recorded_load_as_before(tmp_path, model):
    saved, images = model

    def drop_network(arrays, meta):
        del meta["architecture"]["network"]

    path = _rewrite(tmp_path, saved, drop_network)
    np.testing.assert_array_equal(load_model(path).predict_images(images),
                                  saved.predict_images(images))


def test_a_file_recording_the_courses_two_layer_net_is_refused(tmp_path, model):
    """Its W1 would be (D, H): read as the first assignment's (H, D) it would predict from
    transposed weights (or, square, silently wrong)."""
    path = _rewrite(tmp_path, model[0], lambda arrays, meta: meta["architecture"].update(
        network="nndl.fc_net.TwoLayerNet"))
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert str(info.value) == (f"{path}: records network nndl.fc_net.TwoLayerNet; model files "
                               "load nndl.neural_net.TwoLayerNet and nndl.network.Network "
                               "(W1 (H, D)) only")


def test_saving_the_courses_networks_as_model_files_is_refused(tmp_path, model):
    from nndl.fc_net import FullyConnectedNet
    from nndl.fc_net import TwoLayerNet as CourseTwoLayerNet

    for net in (CourseTwoLayerNet(input_dim=48, hidden_dims=7, num_classes=3),
                FullyConnectedNet([7, 7], input_dim=48, num_classes=3)):
        saved = SavedModel(net, model[0].transform, ("a", "b", "c"), image_shape=(4, 4, 3))
        with pytest.raises(TypeError) as info:
            save_model(tmp_path / "m.npz", saved)
        message = str(info.value)
        assert "\n" not in message and f"nndl.fc_net.{type(net).__name__}" in message
        assert message.startswith("model files hold nndl.neural_net.TwoLayerNet or "
                                  "nndl.network.Network (W1 (H, D))")
        assert "checkpoint_name" in message
    assert list(tmp_path.iterdir()) == []


def test_each_reader_names_the_other_for_the_others_file(tmp_path, model):
    """A Solver checkpoint (the course's networks) given to load_model, and a model file
    (the first assignment's network) given to load_checkpoint: each refused in one line
    that names the reader to use."""
    from nndl.fc_net import TwoLayerNet as CourseTwoLayerNet
    from nndl.solver import CheckpointError, Solver, load_checkpoint

    rng = np.random.default_rng(0)
    data = {"X_train": rng.normal(size=(20, 48)), "y_train": rng.integers(0, 3, 20),
            "X_val": rng.normal(size=(10, 48)), "y_val": rng.integers(0, 3, 10)}
    net = CourseTwoLayerNet(input_dim=48, hidden_dims=7, num_classes=3)
    Solver(net, data, num_epochs=1, batch_size=10, checkpoint_name=tmp_path / "c",
           verbose=False).train()
    checkpoint = tmp_path / "c_epoch_1.npz"
    with pytest.raises(ModelFileError) as info:
        load_model(checkpoint)
    assert str(info.value) == (f"{checkpoint}: not an nndl model file but a Solver checkpoint "
                               "(model nndl.fc_net.TwoLayerNet): read it with "
                               "nndl.solver.load_checkpoint")
    model_file = save_model(tmp_path / "m.npz", model[0])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(model_file)
    assert str(info.value) == (f"{model_file}: not a Solver checkpoint but an nndl model file "
                               "(network nndl.neural_net.TwoLayerNet): read it with "
                               "nndl.model_io.load_model")
