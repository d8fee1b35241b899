"""Failures end in one line with the work kept (issue 12): Ctrl-C and divergence in
``nndl train``, run folders claimed atomically, files that honor the umask, strict
configuration types, empty splits, and the CLI's one error boundary."""

import errno
import json
import multiprocessing
import os
import signal
import stat

import numpy as np
import pytest

from nndl import cli
from nndl.config import RunConfig
from nndl.model_io import load_model
from nndl.neural_net import TwoLayerNet
from nndl.runs import INCOMPLETE, new_run_dir, write_json
from tests.fakecifar import fake_cifar_env
from tests.fulldisk import FailingWrite, fill, small_tmpfs
from tests.signalling import STOPS, TRAINING_STEPS, NndlProcess, needs_posix_signals, stop_signals
from tests.test_cli import run_nndl

SMALL = ["--num-training", "300", "--num-validation", "50", "--num-test", "50",
         "--no-progress"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return fake_cifar_env(tmp_path_factory, per_batch=80)


def _one_line_error(result, *needles):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


# -- 1. Ctrl-C, SIGTERM and SIGHUP during nndl train keep the weights reached, the history
# and a report (issue 22, item 5: SIGTERM lost everything) ---------------------------------
@needs_posix_signals
@pytest.mark.parametrize("name", stop_signals())
def test_a_stop_signal_during_train_keeps_model_history_and_partial_report(tmp_path, env,
                                                                           name):
    pytest.importorskip("tqdm")  # its progress bar is the marker that training runs
    code, status, words = STOPS[name]
    out = tmp_path / "run"
    proc = NndlProcess("train", *SMALL[:-1], "--num-iters", "10000000", "--out", str(out),
                       env=env)
    proc.wait_for(TRAINING_STEPS)  # the progress bar has counted steps: training runs
    proc.send(getattr(signal, name))
    assert proc.finish() == code, proc.stderr
    line = proc.last_line()
    assert line == f"nndl train: {words}; what the run reached is in {out}", proc.stderr
    assert "Traceback" not in proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == status and (out / INCOMPLETE).exists()
    assert metrics["kind"] == "train" and metrics["config"]["num_iters"] == 10_000_000
    assert metrics.get("signal") == (None if name == "SIGINT" else name)
    assert 0 < metrics["iterations_done"] < 10_000_000
    assert 0 <= metrics["val_accuracy"] <= 1 and metrics["test_size"] == 50
    model = load_model(out / "model.npz")
    assert len(model.history["loss_history"]) == metrics["iterations_done"]
    assert np.isfinite(model.net.params["W1"]).all()
    for png in ("loss.png", "accuracy.png", "weights.png"):
        assert (out / png).stat().st_size > 0
    stopped = "Interrupted (Ctrl-C)" if name == "SIGINT" else f"Terminated ({name})"
    assert f"{stopped} after {metrics['iterations_done']} of 10000000 " \
        "iterations" in (out / "report.html").read_text()


# -- 2. a diverging run: one line naming iteration and learning rate, histories kept ---------
def test_diverging_train_is_one_line_and_keeps_history(tmp_path, env):
    out = tmp_path / "run"
    result = run_nndl("train", *SMALL, "--learning-rate", "1e9", "--num-iters", "50",
                      "--out", str(out), env=env)
    _one_line_error(result, "training diverged", "at iteration", "learning rate", str(out))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and "at iteration" in metrics["error"]
    assert 0 < metrics["iterations_done"] <= 50
    assert (out / "loss.png").stat().st_size > 0 and not (out / "model.npz").exists()
    assert "Training diverged" in (out / "report.html").read_text()


# -- 5. two processes never get the same run folder -----------------------------------------
def _claim(barrier, out, results):
    barrier.wait()
    try:
        results.put(str(new_run_dir(out)))
    except FileExistsError:
        results.put(None)


@pytest.mark.parametrize("exists", [False, True], ids=["new", "empty-existing"])
def test_two_processes_never_share_a_run_folder(tmp_path, exists):
    ctx = multiprocessing.get_context("fork")
    for attempt in range(6):
        out = tmp_path / f"run{attempt}"
        if exists:
            out.mkdir()
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_claim, args=(barrier, out, results)) for _ in range(2)]
        for p in procs:
            p.start()
        got = sorted([results.get(timeout=30), results.get(timeout=30)], key=bool)
        for p in procs:
            p.join()
        assert got[0] is None and got[1] == str(out), got


def test_a_folder_with_files_is_refused(tmp_path):
    (tmp_path / "x.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        new_run_dir(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


# -- 6. run files honor the umask --------------------------------------------------------
def test_run_files_honor_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "metrics.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary left


# -- 7, 12. configuration types are strict ------------------------------------------------
@pytest.mark.parametrize(("line", "key"), [
    ('flip = "false"', "flip"),
    ('full_test = "no"', "full_test"),
    ('preprocessing = ["mean"]', "preprocessing"),
    ("data = 5", "data"),
    ("num_iters = 10.0", "num_iters"),
    ('learning_rate = "1e-3"', "learning_rate"),
    ("seed = true", "seed"),
    ("[train]\nreg = 0.1", "train"),
])
def test_config_file_values_of_the_wrong_type_are_one_line(tmp_path, env, line, key):
    config = tmp_path / "c.toml"
    config.write_text(line + "\n")
    result = run_nndl("train", "--config", str(config), *SMALL, env=env, cwd=tmp_path)
    _one_line_error(result, f"config file {config}", key)
    assert list(tmp_path.iterdir()) == [config]  # no run folder was created


def test_typed_config_refuses_coercion():
    with pytest.raises(TypeError, match="flip must be true or false, got 'false'"):
        RunConfig.from_dict({"flip": "false"})
    with pytest.raises(TypeError, match="data must be a string or none, got 5"):
        RunConfig(data=5)
    assert RunConfig.from_dict({"flip": True, "data": None}).augment.flip is True


# -- 17. empty splits -------------------------------------------------------------------
def test_no_validation_images_is_a_clear_error(tmp_path, env):
    result = run_nndl("train", *SMALL, "--num-validation", "0", env=env, cwd=tmp_path)
    _one_line_error(result, "num_validation must be an int >= 1, got 0")


def test_training_on_no_rows_names_the_argument():
    net = TwoLayerNet(4, 3, 2, random_state=0)
    X, y = np.ones((5, 4)), np.zeros(5, dtype=int)
    with pytest.raises(ValueError, match="X must hold at least one row"):
        net.train(np.ones((0, 4)), np.zeros(0, dtype=int), X, y)
    with pytest.raises(ValueError, match="X_val must hold at least one row"):
        net.train(X, y, np.ones((0, 4)), np.zeros(0, dtype=int))


# -- the error boundary ---------------------------------------------------------------------
def _raise(exc):
    def command(args):
        raise exc
    return command


def test_an_unexpected_error_is_one_line_pointing_at_debug(monkeypatch, capsys):
    monkeypatch.setattr(cli, "cmd_gradcheck", _raise(KeyError("architecture")))
    monkeypatch.delenv("NNDL_DEBUG", raising=False)
    assert cli.main(["gradcheck"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "KeyError: 'architecture'" in err and "NNDL_DEBUG=1" in err
    monkeypatch.setenv("NNDL_DEBUG", "1")
    with pytest.raises(KeyError):
        cli.main(["gradcheck"])


def test_a_missing_extra_names_the_install_command(monkeypatch, capsys):
    missing = ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib")
    monkeypatch.setattr(cli, "cmd_gradcheck", _raise(missing))
    monkeypatch.delenv("NNDL_DEBUG", raising=False)
    assert cli.main(["gradcheck"]) == 1
    assert "pip install 'nndl[all]'" in capsys.readouterr().err


def test_a_missing_optional_dependency_fails_before_any_work(monkeypatch, capsys, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NNDL_DEBUG", raising=False)
    assert cli.main(["train", "--num-iters", "1"]) == 1
    err = capsys.readouterr().err
    assert "needs matplotlib" in err and "pip install 'nndl[all]'" in err
    assert list(tmp_path.iterdir()) == []  # no run folder


# -- issue 22, item 14: a full disk at any write of a run: nothing left behind before the run
# is recorded, after that a folder whose status says what happened ---------------------------
def _train_in_process(env, monkeypatch, out, **settings):
    from nndl.workflow import run_train

    for key in ("NNDL_DATA", "XDG_CACHE_HOME", "MPLBACKEND"):
        monkeypatch.setenv(key, env[key])
    cfg = RunConfig(num_training=300, num_validation=50, num_test=50, **settings)
    return run_train(cfg.replace(num_iters=2), out=out, progress=False)


@pytest.mark.slow
def test_a_full_disk_at_any_write_of_train_leaves_nothing_or_a_failed_folder(
        tmp_path, env, monkeypatch):
    disk = tmp_path / "disk"
    disk.mkdir()
    counter = FailingWrite(disk).install(monkeypatch)
    _train_in_process(env, monkeypatch, disk / "whole")  # counts the writes of a whole run
    writes = counter.count
    monkeypatch.undo()
    assert writes >= 8
    left_nothing, completed = [], []
    for k in range(1, writes + 1):
        out = disk / f"k{k}" / "run"
        FailingWrite(out.parent, fail_at=k).install(monkeypatch)
        try:
            _train_in_process(env, monkeypatch, out)
        except OSError as exc:
            failure = exc
        else:
            failure = None
        monkeypatch.undo()
        if failure is None:  # the last metrics.json: written again in the marker's reserve
            completed.append(k)
            assert json.loads((out / "metrics.json").read_text())["status"] == "complete"
            assert not (out / INCOMPLETE).exists()
            continue
        assert failure.errno == errno.ENOSPC
        if not out.parent.exists():  # the start failed: not even the parent folder stays
            left_nothing.append(k)
            continue
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["status"] == "failed", (k, metrics["status"])
        assert "No space left on device" in metrics["error"]
        assert failure.run_folder == out
    # the claim's marker, its copy from the recorder and the first metrics.json
    assert left_nothing == [1, 2, 3] and completed == [writes]


@pytest.mark.parametrize("leave_kib", [0, 8, 64, 68, 72, 128])
def test_train_on_a_nearly_full_disk_is_one_line_and_leaves_no_running_folder(
        tmp_path, env, leave_kib):
    with small_tmpfs(tmp_path / "disk", size=4 << 20) as disk:
        filler = fill(disk, leave_kib << 10)
        out = disk / "new" / "run"
        result = run_nndl("train", *SMALL, "--num-iters", "2", "--out", str(out), env=env)
        _one_line_error(result, "No space left on device")
        if out.exists():  # training started: the folder says what happened
            metrics = json.loads((out / "metrics.json").read_text())
            assert metrics["status"] == "failed", metrics["status"]
            assert str(out) in result.stderr
        else:
            assert sorted(disk.iterdir()) == [filler]


# -- issue 22, item 6: outputs never overwrite inputs or other files ------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory, env):
    """A trained run folder (its model.npz and metrics.json) to point outputs at."""
    folder = tmp_path_factory.mktemp("trained") / "run"
    result = run_nndl("train", *SMALL, "--num-iters", "2", "--out", str(folder), env=env)
    assert result.returncode == 0, result.stderr
    return folder


def _digests(folder):
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.mark.parametrize(("out", "force", "message"), [
    ("model.npz", False, "is the model file visualize reads"),
    ("model.npz", True, "is the model file visualize reads"),
    ("./model.npz", True, "is the model file visualize reads"),
    ("metrics.json", False, "must name a .png file"),
    ("metrics.json", True, "must name a .png file"),
    ("loss.png", False, "exists; pass --force to replace it"),
    ("no/such/folder/w.png", False, "is in a folder that does not exist: no/such/folder"),
])
def test_visualize_never_writes_over_its_model_or_other_files(trained, env, out, force,
                                                              message):
    before = _digests(trained)
    result = run_nndl("visualize", "model.npz", "--out", out, *["--force"] * force, env=env,
                      cwd=trained)
    _one_line_error(result, f"nndl visualize: error: --out {out} ", message)
    assert _digests(trained) == before and not (trained / "no").exists()


def test_visualize_replaces_a_png_with_force_only_and_its_default_output_too(
        tmp_path, trained, env):
    import shutil

    model = shutil.copy(trained / "model.npz", tmp_path / "m.npz")
    link = tmp_path / "link.png"
    link.symlink_to(model)  # another name for the model: refused too
    result = run_nndl("visualize", str(model), "--out", str(link), "--force", env=env)
    _one_line_error(result, "is the model file visualize reads")
    assert run_nndl("visualize", str(model), env=env).returncode == 0
    default = tmp_path / "m_weights.png"
    first = default.read_bytes()
    default.write_bytes(b"mine")
    result = run_nndl("visualize", str(model), env=env)
    _one_line_error(result, f"--out {default} exists; pass --force to replace it")
    assert default.read_bytes() == b"mine"
    result = run_nndl("visualize", str(model), "--force", env=env)
    assert result.returncode == 0 and default.read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.png", "m.npz",
                                                          "m_weights.png"]


@pytest.mark.parametrize("command", ["evaluate", "train"])
def test_a_run_folder_is_never_made_over_a_file(trained, env, command):
    before = _digests(trained)
    args = ["model.npz"] if command == "evaluate" else [*SMALL, "--num-iters", "2"]
    result = run_nndl(command, *args, "--out", "model.npz", env=env, cwd=trained)
    _one_line_error(result, "--out model.npz is a file, not a folder")
    assert _digests(trained) == before


def test_an_output_file_that_appears_meanwhile_is_kept(tmp_path):
    """Without --force the file is published by a hard link: another process's file written
    between the check and the publishing (forced here, inside the block) stays."""
    from nndl._atomic import atomic_path

    final = tmp_path / "w.png"
    with pytest.raises(FileExistsError, match="appeared meanwhile; it is kept"):
        with atomic_path(final, overwrite=False) as tmp:
            tmp.write_bytes(b"ours")
            final.write_bytes(b"theirs")
    assert final.read_bytes() == b"theirs" and list(tmp_path.iterdir()) == [final]


@pytest.mark.parametrize("failing_write", [1, 2, 3])
def test_a_full_disk_at_the_start_of_evaluate_leaves_nothing(tmp_path, trained, env,
                                                             monkeypatch, failing_write):
    from nndl.evaluation import evaluate_model_file

    for key in ("NNDL_DATA", "XDG_CACHE_HOME", "MPLBACKEND"):
        monkeypatch.setenv(key, env[key])
    disk = tmp_path / "disk"
    disk.mkdir()
    FailingWrite(disk, fail_at=failing_write).install(monkeypatch)
    with pytest.raises(OSError, match="No space left on device"):
        evaluate_model_file(trained / "model.npz", out=disk / "new" / "eval")
    assert list(disk.iterdir()) == []


def test_a_signal_while_the_folder_is_claimed_stops_the_run_it_records(tmp_path,
                                                                      monkeypatch):
    """SIGTERM sent (for real) while the folder is claimed, before metrics.json exists: it
    waits until the folder records the run, which then says 'terminated'."""
    from nndl import runs
    from nndl._stops import Terminated, stop_signals_like_ctrl_c

    claim = runs._claim

    def claim_then_signal(folder):
        claimed = claim(folder)
        os.kill(os.getpid(), signal.SIGTERM)
        return claimed

    monkeypatch.setattr(runs, "_claim", claim_then_signal)
    ran = []
    with stop_signals_like_ctrl_c(), pytest.raises(Terminated) as stop:
        with runs.recorded_run(tmp_path / "run", "train", {"a": 1}):
            ran.append(True)
    assert ran == [] and stop.value.exit_status == 143
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "terminated" and metrics["signal"] == "SIGTERM"
    assert metrics["kind"] == "train" and metrics["config"] == {"a": 1}
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
