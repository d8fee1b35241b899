"""Property: whatever configuration file or arguments a user gives, ``nndl`` ends with
exit status 0, 1 or 2, never a traceback, and writes nothing outside ``--out``.

Runs the CLI in-process (``cli.main``; an uncaught exception fails the test) on small
official-format data, from a fresh working folder per example.
"""

import contextlib
import io
import json
import math
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nndl import cli
from nndl.config import RunConfig
from tests.fakecifar import make_arrays, write_python_folder

SMALL = ["--num-training", "40", "--num-validation", "10", "--num-test", "10",
         "--num-iters", "3", "--batch-size", "8", "--no-progress"]
KEYS = sorted(RunConfig().to_dict()) + ["learning_rat", "train", "augment"]
WORDS = ["mean", "none", "sgd", "adam", "float32", "float64", "cpu", "cuda", "torch",
         "numpy", "blocks", "cosine", "true", "", "zca,mean", "nope", "../x", "1e-3"]
SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_python_folder(root / "cifar-10-batches-py", make_arrays(per_batch=20))
    return root


@pytest.fixture
def nndl_env(monkeypatch, data_root, tmp_path):
    monkeypatch.setenv("NNDL_DATA", str(data_root))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("NNDL_DEBUG", raising=False)
    monkeypatch.setenv("NNDL_CIFAR10_URL", "http://127.0.0.1:9/cifar.tar.gz")  # fails fast


def run_in_fresh_folder(argv_for):
    """``cli.main(argv_for(folder))`` from an empty folder: (status, stderr, new paths
    outside ``folder/out``)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder, before = Path(tmp), os.getcwd()
        err = io.StringIO()
        os.chdir(folder)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                try:
                    status = cli.main(argv_for(folder))
                except SystemExit as exc:  # argparse: usage errors and --help
                    status = exc.code
        finally:
            os.chdir(before)
        stray = [p for p in folder.rglob("*") if p.name != "config.toml"
                 and not p.relative_to(folder).parts[0].startswith("out")]
        return status, err.getvalue(), stray


def _assert_clean(status, stderr, stray):
    assert status in (0, 1, 2), (status, stderr)
    assert "Traceback" not in stderr
    if status == 1:  # one line, and an error nndl expected, not its catch-all for bugs
        assert len(stderr.strip().splitlines()) == 1, stderr
        assert "probably a bug" not in stderr, stderr
    assert not stray, stray


# -- TOML configuration files -------------------------------------------------------------
def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)  # a TOML basic string


scalars = st.one_of(st.booleans(), st.integers(-3, 60), st.floats(allow_nan=True),
                    st.sampled_from(WORDS))
values = st.one_of(scalars, st.lists(scalars, max_size=3))


@SETTINGS
@given(config=st.dictionaries(st.sampled_from(KEYS), values, max_size=4))
def test_any_toml_config_is_handled(nndl_env, config):
    def argv(folder):
        (folder / "config.toml").write_text(
            "".join(f"{k} = {toml_value(v)}\n" for k, v in config.items()))
        return ["train", "--config", str(folder / "config.toml"), *SMALL,
                "--out", str(folder / "out")]

    _assert_clean(*run_in_fresh_folder(argv))


# -- command-line arguments ---------------------------------------------------------------
@pytest.fixture(scope="module")
def model_and_image(data_root, tmp_path_factory):
    """A trained model file and a PNG, made once through the CLI."""
    folder = tmp_path_factory.mktemp("model")
    env = {"NNDL_DATA": str(data_root), "XDG_CACHE_HOME": str(folder / "cache")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert cli.main(["train", *SMALL, "--out", str(folder / "run")]) == 0
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 30, 30)).save(folder / "x.png")
    return str(folder / "run" / "model.npz"), str(folder / "x.png")


COMMON = ["--data", "--out"]
FLAGS = {
    "train": ["--learning-rate", "--reg", "--hidden-size", "--batch-sampler", "--optimizer",
              "--dtype", "--preprocessing", "--std", "--translate", "--dropout", "--schedule",
              "--seed", "--backend", "--device", "--num-test", "--early-stopping",
              "--label-smoothing", "--warmup-iters", "--momentum", "--step-epochs"],
    "evaluate": ["--split", "--num-test", "--tta"],
    "predict": ["--top", "--tta"],
    "visualize": [],
}
words = st.one_of(st.sampled_from(WORDS), st.integers(-2, 40).map(str),
                  st.floats(allow_nan=True).map(repr), st.sampled_from(["val", "test", "flip"]))


@st.composite
def command_lines(draw):
    """A command with "--flag value" pairs of its own flags (past argparse, into nndl)."""
    command = draw(st.sampled_from(sorted(FLAGS)))
    pairs = draw(st.lists(st.tuples(st.sampled_from(FLAGS[command] + COMMON[:1]), words),
                          max_size=3))
    if draw(st.booleans()):
        pairs.append((draw(st.sampled_from(["--flip", "--no-flip", "--full-test"])),))
    return command, [token for pair in pairs for token in pair]


@SETTINGS
@given(line=command_lines())
@pytest.mark.slow
def test_any_arguments_are_handled(nndl_env, model_and_image, line):
    command, extra = line
    model, image = model_and_image
    head = {"train": ["train", *SMALL], "evaluate": ["evaluate", model],
            "predict": ["predict", model, image], "visualize": ["visualize", model]}[command]

    def argv(folder):
        out = folder / ("out.png" if command == "visualize" else "out")
        return [*head, *extra, *(["--out", str(out)] if command != "predict" else [])]

    _assert_clean(*run_in_fresh_folder(argv))


# -- model metadata ---------------------------------------------------------------------
json_leaves = st.one_of(st.none(), st.booleans(), st.integers(-5, 5000),
                        st.floats(allow_nan=False), st.sampled_from(WORDS))
json_values = st.recursive(json_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(WORDS), inner, max_size=3)),
    max_leaves=8)
PATHS = [("format",), ("format_version",), ("architecture",), ("architecture", "input_size"),
         ("architecture", "hidden_size"), ("architecture", "output_size"),
         ("architecture", "dtype"), ("transform",), ("class_names",), ("image_shape",),
         ("architecture", "network"), ("hyperparameters",), ("history",), ("metrics",)]


def _mutate(metadata, path, value, delete):
    """``metadata`` with the key at ``path`` replaced by ``value`` (or deleted)."""
    target = metadata
    for key in path[:-1]:
        if not isinstance(target.get(key), dict):
            return metadata
        target = target[key]
    if delete:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return metadata


@SETTINGS
@given(changes=st.lists(st.tuples(st.sampled_from(PATHS), json_values, st.booleans()),
                        min_size=1, max_size=3),
       whole=st.one_of(st.none(), json_values), command=st.sampled_from(["predict", "evaluate"]))
def test_any_model_metadata_is_handled(nndl_env, model_and_image, changes, whole, command):
    import numpy as np

    model, image = model_and_image
    with np.load(model) as archive:
        arrays = dict(archive)
    metadata = json.loads(arrays["metadata.json"].tobytes())
    for path, value, delete in changes:
        metadata = _mutate(metadata, path, value, delete)
    if whole is not None and not isinstance(whole, dict):
        metadata = whole  # not even an object
    arrays["metadata.json"] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)

    def argv(folder):
        path = folder / "out-model.npz"
        np.savez(path, **arrays)
        if command == "predict":
            return ["predict", str(path), image]
        return ["evaluate", str(path), "--out", str(folder / "out")]

    _assert_clean(*run_in_fresh_folder(argv))
