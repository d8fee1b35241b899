"""Memory is checked before it is allocated (issue 22, item 4): runs that cannot fit are
refused in one line before any folder or large array, and the estimates behind the
refusals are upper bounds of what the runs really allocate (measured with tracemalloc,
which sees every NumPy allocation)."""

import json
import os
import tracemalloc

import numpy as np
import pytest

from nndl import _memory
from nndl.cli import main
from nndl.config import Augmentation, RunConfig, TrainOptions
from nndl.data import load_dataset
from nndl.metrics import confusion_matrix
from nndl.neural_net import TwoLayerNet
from nndl.training import Member, train_members, training_memory
from nndl.vis_utils import plot_confusion_matrix
from nndl.workflow import _split, fit, network_metrics, prepare_data, run_memory

MiB = 1 << 20


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv(_memory.LIMIT_ENV, raising=False)
    return tmp_path / "cache"


def _npz(path, n, shape, classes, seed=0):
    rng = np.random.default_rng(seed)
    np.savez(path, X=rng.integers(0, 256, (n, *shape), dtype=np.uint8),
             y=np.arange(n) % classes)
    return str(path)


def _peak(run):
    """The most memory ``run()`` held at once beyond what was held before it (bytes)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


# -- the estimates bound what runs allocate ------------------------------------------------
RUNS = {  # name: (classes, image shape, RunConfig settings, TrainOptions settings)
    "sgd": (10, (16, 16, 3), {"hidden_size": 1000}, {}),
    "sgd-float32": (10, (16, 16, 3), {"hidden_size": 1000, "dtype": "float32"}, {}),
    "adam": (10, (16, 16, 3), {"hidden_size": 1000}, {"optimizer": "adam"}),
    "momentum-float32": (10, (16, 16, 3), {"hidden_size": 1000, "dtype": "float32"},
                         {"optimizer": "momentum"}),
    "big-batch": (10, (16, 16, 3), {"hidden_size": 10}, {"batch_size": 8000}),
    "pca": (10, (16, 16, 3), {"hidden_size": 50, "preprocessing": "pca"}, {}),
    "standardize": (10, (16, 16, 3), {"hidden_size": 50, "preprocessing": "standardize"}, {}),
    "flip": (10, (16, 16, 3), {"hidden_size": 200, "augment": Augmentation(flip=True)}, {}),
    "500-classes": (500, (8, 8, 3), {"hidden_size": 50}, {}),
}


@pytest.mark.parametrize("name", list(RUNS))
def test_a_runs_estimate_bounds_its_measured_peak_within_a_factor_of_two(tmp_path, cache,
                                                                        name):
    classes, shape, settings, train = RUNS[name]
    path = _npz(tmp_path / "d.npz", 3000, shape, classes)
    cfg = RunConfig(dataset=path, **settings,
                    train=TrainOptions(num_iters=3, **{"batch_size": 100, **train}))
    data = load_dataset(path)
    estimate = run_memory(cfg, _split(cfg, data), data.num_classes)

    def run():  # what nndl train computes, and the plot of the confusion matrix
        prepared = prepare_data(cfg, data)
        model, _, seconds = fit(cfg, prepared, progress=False)
        network_metrics(model, prepared, seconds, cfg)
        matrix = confusion_matrix(prepared.y_test, model.net._predict(prepared.X_test),
                                  classes)
        plot_confusion_matrix(matrix, data.class_names, tmp_path / "matrix.png")

    plot_confusion_matrix(np.eye(2, dtype=int), ["a", "b"], tmp_path / "warm.png")  # imports

    peak = _peak(run)
    assert peak <= estimate.total <= 2 * peak + MiB, (peak / MiB, estimate.summary())


def test_a_populations_estimate_bounds_its_measured_peak(tmp_path):
    """Eight networks trained together, half of them with Adam (the costlier rule counts)."""
    D, H, C, B, K = 768, 300, 10, 100, 8
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(600, D)), np.arange(600) % C
    estimate = training_memory(D, H, C, B, np.float64, K, ("sgd", "adam"), val_rows=100)

    def run():
        nets = [TwoLayerNet(D, H, C, random_state=k) for k in range(K)]
        members = [Member(net.params, TrainOptions(num_iters=3, batch_size=B,
                                                   optimizer="adam" if k % 2 else "sgd"))
                   for k, net in enumerate(nets)]
        train_members(members, X, y, X[:100], y[:100], rng=np.random.default_rng(0))

    peak = _peak(run)
    assert peak <= estimate.total <= 2 * peak, (peak / MiB, estimate.summary())


def test_a_deep_populations_estimate_bounds_its_measured_peak():
    """Four networks of three hidden layers with batch normalization, half of them Adam."""
    from nndl.architecture import Architecture, init_params

    D, widths, C, B, K = 768, (300, 200, 100), 10, 100, 4
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(600, D)), np.arange(600) % C
    estimate = training_memory(D, widths, C, B, np.float64, K, ("sgd", "adam"), val_rows=100)

    def run():
        arch = Architecture((D, *widths, C), batchnorm=True)
        members = [Member(init_params(arch, "auto", np.random.default_rng(k)),
                          TrainOptions(num_iters=3, batch_size=B,
                                       optimizer="adam" if k % 2 else "sgd"))
                   for k in range(K)]
        train_members(members, X, y, X[:100], y[:100], rng=np.random.default_rng(0))

    peak = _peak(run)
    assert peak <= estimate.total <= 2 * peak, (peak / MiB, estimate.summary())


def test_the_parts_are_counted_in_closed_form():
    """One network, D 3,072, H 1,000,000 (the issue's --hidden-size), C 10, batch 200."""
    D, H, C, B = 3072, 10**6, 10, 200
    params = H * D + H + C * H + C
    estimate = training_memory(D, H, C, B, np.float64)
    assert estimate.parts["weights"] == 3 * params * 8 + params * 8  # ~98 GB
    assert "optimizer state" not in estimate.parts  # SGD folds its update into the product
    assert estimate.parts["class matrices"] == C * C * 16
    assert estimate.total > 100 * 2**30
    adam = training_memory(D, H, C, B, np.float32, optimizers=("adam",))
    assert adam.parts["optimizer state"] == 6 * params * 4  # two moments and four more


# -- refusals: one line, before any folder or large allocation ----------------------------
def _image_folder(root):
    from PIL import Image

    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (6, 6), (40 * i, 0, 0)).save(root / cls / f"{i}.png")
    return str(root)


@pytest.mark.parametrize(("case", "flags", "part"), [
    ("hidden", ["--hidden-size", "1000000"], "weights"),
    ("deep", ["--hidden-sizes", "60000,60000,60000", "--batchnorm"], "weights"),
    ("batch", ["--batch-size", "100000000"], "activations"),
    ("labels", [], "class matrices"),
    ("image-size", ["--image-size", "100000x100000"], "decoded images"),
])
def test_train_is_refused_before_its_folder_and_before_allocating(tmp_path, cache, capsys,
                                                                   case, flags, part):
    """The issue: --hidden-size 1000000 and --image-size 100000x100000 were OOM-killed
    (24 GB) leaving a folder "running"; --batch-size 100000000 and a label of 10**7 in an
    .npz ended in "MemoryError ... (probably a bug in nndl)". (The label here is 10**5:
    the same path, 100,001 classes, at a size the .npz reader decodes in a moment.)"""
    if case == "labels":
        y = np.arange(300) % 3
        y[5] = 10**5
        np.savez(tmp_path / "d.npz", X=np.zeros((300, 4, 4, 3), np.uint8), y=y)
        dataset = str(tmp_path / "d.npz")
    elif case == "image-size":
        dataset = _image_folder(tmp_path / "folder")
    else:
        dataset = _npz(tmp_path / "d.npz", 300, (16, 16, 3), 3)
    out = tmp_path / "run"
    args = ["train", "--dataset", dataset, *flags, "--num-iters", "5", "--no-progress",
            "--out", str(out), "--max-memory", "8G"]
    peak = _peak(lambda: pytest.fail("exit 0") if main(args) == 0 else None)
    err = capsys.readouterr().err
    assert err.startswith("nndl train: error: this run needs about ") or \
        err.startswith("nndl train: error: --image-size 100000x100000 needs about "), err
    assert err.count("\n") == 1 and "probably a bug" not in err
    assert f"{part} " in err and "but 8.0 GiB is available (--max-memory)" in err
    assert not out.exists() and not (tmp_path / "runs").exists()
    assert peak < 200 * MiB  # refused from the sizes, not by running out
    if case == "image-size":  # refused before a single image was decoded
        assert not list(cache.glob("decoded/folder/*/X_train.npy"))


def test_without_max_memory_the_limit_is_what_the_system_leaves(tmp_path, cache, capsys,
                                                                monkeypatch):
    monkeypatch.setattr(_memory, "cgroup_available", lambda: None)
    monkeypatch.setattr(_memory, "system_available", lambda: 3 * 2**30)
    dataset = _npz(tmp_path / "d.npz", 300, (16, 16, 3), 3)
    assert main(["train", "--dataset", dataset, "--hidden-size", "1000000", "--out",
                 str(tmp_path / "run")]) == 1
    assert "but 3.0 GiB is available (the system's available memory)" in \
        capsys.readouterr().err
    assert os.environ.get(_memory.LIMIT_ENV) is None  # --max-memory does not leak


def test_a_search_counts_its_population_and_workers(tmp_path, cache, capsys):
    """One network of hidden 20,000 fits in 2 GiB; 8 at once in each of 2 workers do not."""
    dataset = _npz(tmp_path / "d.npz", 300, (16, 16, 3), 3)
    cfg = RunConfig(dataset=dataset, hidden_size=20000, dtype="float32")
    data = load_dataset(dataset)
    one = run_memory(cfg, _split(cfg, data), 3).total
    assert one < 2 * 2**30 < 16 * one
    out = tmp_path / "search"
    status = main(["search", "--dataset", dataset, "--hidden-size", "20000", "--population",
                   "8", "--workers", "2", "--trials", "16", "--out", str(out),
                   "--max-memory", "2G", "--no-progress"])
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1
    assert err.startswith("nndl search: error: this search (8 trials at once in each of 2 "
                          "workers) needs about "), err
    assert not out.exists()


def test_reproduce_is_refused_before_its_folder(tmp_path, cache, capsys, monkeypatch):
    from tests.fakecifar import fake_cifar_env

    class Factory:  # fake_cifar_env's tmp_path_factory
        def mktemp(self, name):
            (tmp_path / name).mkdir()
            return tmp_path / name

    monkeypatch.setenv("NNDL_DATA", fake_cifar_env(Factory(), per_batch=200)["NNDL_DATA"])
    out = tmp_path / "repro"
    assert main(["reproduce", "--quick", "--out", str(out), "--max-memory", "1M",
                 "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nndl reproduce: error: nndl reproduce needs about "), err
    assert not out.exists()


def test_evaluate_and_predict_check_what_they_will_hold(tmp_path, cache, capsys):
    from PIL import Image

    from nndl.model_io import SavedModel, save_model

    model = save_model(tmp_path / "m.npz", SavedModel(TwoLayerNet(48, 20, 3, random_state=0),
                                                      class_names=("0", "1", "2"),
                                                      image_shape=(4, 4, 3)))
    dataset = _npz(tmp_path / "d.npz", 3000, (4, 4, 3), 3)
    Image.new("RGB", (4, 4)).save(tmp_path / "x.png")
    out = tmp_path / "eval"
    assert main(["evaluate", str(model), "--dataset", dataset, "--out", str(out),
                 "--max-memory", "10M"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"nndl evaluate: error: evaluating {model} on 600 images needs "
                          "about "), err
    assert "lower --num-test" in err and not out.exists()
    assert main(["predict", str(model), str(tmp_path / "x.png"), "--max-memory", "1K"]) == 1
    assert capsys.readouterr().err.startswith(f"nndl predict: error: loading {model} needs ")
    assert main(["predict", str(model), str(tmp_path / "x.png"), "--max-memory", "1M"]) == 0


def test_the_estimator_refuses_with_the_numbers(monkeypatch):
    from nndl.sklearn import TwoLayerNetClassifier

    monkeypatch.setenv(_memory.LIMIT_ENV, "1G")
    X, y = np.zeros((20, 3072)), np.arange(20) % 2
    with pytest.raises(MemoryError, match=r"^TwoLayerNetClassifier on 20 rows of 3,072 "
                                          r"features needs about .* GiB \(.*weights"):
        _peak(lambda: TwoLayerNetClassifier(hidden_size=10**6).fit(X, y))
    with pytest.raises(MemoryError, match="but 1.0 GiB is available"):
        TwoLayerNetClassifier(hidden_size=10**6).partial_fit(X, y, classes=[0, 1])


def test_an_unforeseen_memory_error_is_one_line_not_a_bug(monkeypatch, capsys):
    import nndl.checks

    def run_toy_checks():
        raise MemoryError("Unable to allocate 74.5 TiB for an array with shape "
                          "(10000001, 10000001) and data type float64")

    monkeypatch.setattr(nndl.checks, "run_toy_checks", run_toy_checks)
    assert main(["gradcheck"]) == 1
    err = capsys.readouterr().err
    assert err == ("nndl gradcheck: error: out of memory (Unable to allocate 74.5 TiB for an "
                   "array with shape (10000001, 10000001) and data type float64); lower the "
                   "sizes (e.g. --hidden-size, --batch-size, --num-training) or free "
                   "memory\n")


# -- the limit --------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("8G", 8 * 2**30), ("8GB", 8 * 2**30), ("8gib", 8 * 2**30), ("512M", 512 * 2**20),
    ("1.5T", 3 * 2**39), ("1000000", 10**6), (" 64k ", 64 * 1024), (4096, 4096)])
def test_sizes_parse(text, expected):
    assert _memory.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "x", "8X", "-1G", "0", "1e400", "G", True])
def test_bad_sizes_name_the_flag(text):
    with pytest.raises(ValueError, match="--max-memory must be"):
        _memory.parse_size(text)


def test_a_bad_max_memory_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--max-memory", "lots"])
    assert exit_.value.code == 2
    assert "argument --max-memory: invalid size value: 'lots'" in capsys.readouterr().err


def test_the_environment_variable_overrides_and_is_checked(monkeypatch):
    monkeypatch.setenv(_memory.LIMIT_ENV, "3G")
    assert _memory.memory_limit() == (3 * 2**30, "--max-memory")
    monkeypatch.setenv(_memory.LIMIT_ENV, "plenty")
    with pytest.raises(ValueError, match=r"\$NNDL_MAX_MEMORY must be a size"):
        _memory.memory_limit()


def test_system_available_reads_meminfo(tmp_path):
    (tmp_path / "meminfo").write_text("MemTotal: 24683772 kB\nMemFree: 100 kB\n"
                                      "MemAvailable:   24142820 kB\n")
    assert _memory.system_available(tmp_path / "meminfo") == 24142820 * 1024
    assert _memory.system_available(tmp_path / "missing") is None


def _cgroup(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def test_cgroup_v2_limit_less_usage_plus_reclaimable_cache_smallest_of_the_ancestors(
        tmp_path):
    sysfs = tmp_path / "sys"
    _cgroup(sysfs, {"cgroup.controllers": "memory"})
    _cgroup(sysfs / "user", {"memory.max": str(8 * 2**30), "memory.current": str(2**30),
                             "memory.stat": "anon 5\ninactive_file 1024\n"})
    _cgroup(sysfs / "user" / "job", {"memory.max": "max", "memory.current": "5",
                                     "memory.stat": "inactive_file 7\n"})
    (tmp_path / "cgroup").write_text("0::/user/job\n")
    assert _memory.cgroup_available(tmp_path / "cgroup", sysfs) == 7 * 2**30 + 1024
    _cgroup(sysfs / "user" / "job", {"memory.max": str(2**30), "memory.current": str(2**29)})
    assert _memory.cgroup_available(tmp_path / "cgroup", sysfs) == 2**29 + 7


def test_cgroup_v1_and_a_container_that_sees_its_own_as_the_root(tmp_path):
    sysfs = tmp_path / "sys"
    unlimited = str(9223372036854771712)  # what v1 writes for no limit
    _cgroup(sysfs / "memory", {"memory.limit_in_bytes": str(4 * 2**30),
                               "memory.usage_in_bytes": str(3 * 2**30),
                               "memory.stat": "cache 9\ntotal_inactive_file 100\n"})
    (tmp_path / "cgroup").write_text("4:memory:/process_api/abc\n1:cpu:/\n")
    assert _memory.cgroup_available(tmp_path / "cgroup", sysfs) == 2**30 + 100
    _cgroup(sysfs / "memory", {"memory.limit_in_bytes": unlimited})
    assert _memory.cgroup_available(tmp_path / "cgroup", sysfs) is None
    (tmp_path / "cgroup").write_text("1:cpu:/\n")  # no memory controller
    assert _memory.cgroup_available(tmp_path / "cgroup", sysfs) is None


def test_the_refusal_names_the_largest_parts(monkeypatch):
    monkeypatch.setenv(_memory.LIMIT_ENV, "1M")
    estimate = _memory.Estimate().add("weights", 3 * 2**30).add("activations", 2**29) \
        .add("data", 10).add("preprocessing", 5)
    with pytest.raises(_memory.MemoryLimitError) as caught:
        _memory.check_fits(estimate, "this run", "lower --hidden-size")
    assert str(caught.value) == (
        "this run needs about 3.5 GiB (weights 3.0 GiB, activations 512.0 MiB, data 10 B, "
        "...) of memory, but 1.0 MiB is available (--max-memory); lower --hidden-size, or "
        "set --max-memory ($NNDL_MAX_MEMORY) if more is free")
    assert json.dumps(estimate.parts)  # plain ints


def test_a_recipes_wider_teacher_is_checked_too(tmp_path, cache, capsys):
    from nndl.recipes import get_recipe

    dataset = _npz(tmp_path / "d.npz", 300, (16, 16, 3), 3)
    recipe = get_recipe("h50-distilled")  # a 50-unit student of a 1,000-unit teacher
    student = recipe.config.replace(dataset=dataset)
    teacher = student.replace(hidden_size=recipe.teacher.hidden_size,
                              **recipe.teacher.train.to_dict())
    data = load_dataset(dataset)
    needs = [run_memory(c, _split(c, data), 3).total for c in (student, teacher)]
    assert needs[0] < 20 * MiB < needs[1]
    out = tmp_path / "run"
    assert main(["train", "--recipe", "h50-distilled", "--dataset", dataset, "--out", str(out),
                 "--max-memory", "20M", "--no-progress"]) == 1
    assert capsys.readouterr().err.startswith("nndl train: error: this recipe's teacher "
                                              "needs about ")
    assert not out.exists()
