"""Untrusted code: a submission that hangs, crashes, eats memory, fails to import, lacks a
function or uses the network fails only its own parts, with what happened and the
student's own traceback lines; nndl's process never imports it."""

import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from nndl.grading import Session, Settings
from nndl.grading.sandbox import isolation

from .conftest import C147, STUDENT_FILE, own_failures, plant, verdict

PREDICT = "    def predict(self, X):\n"
LOSS = "    def loss(self, X, y=None, reg=0.0):\n"
TRAIN_LOOP = "        for it in np.arange(num_iters):\n"


def failing(result):
    return {v.part for v in result.verdicts if not v.passed}


@pytest.mark.slow
def test_a_hanging_predict_times_out_alone(quick_session, tmp_path):
    started = time.monotonic()
    result = quick_session.grade(plant(tmp_path, (PREDICT, PREDICT + "        while True:\n"
                                                  "            pass\n")))
    assert own_failures(result) == {"predict"}
    v = verdict(result, "predict")
    assert v.kind == "timeout" and v.message == "timed out after 4 s"
    assert failing(result) == {"predict", "train"}  # train's histories call predict...
    train = verdict(result, "train")
    assert train.because == ["predict"] and train.kind == "not_run"  # ...so it is not run
    assert train.message == ("not run: part 'predict' timed out after 4 s, and this part "
                             "calls the same code")
    assert time.monotonic() - started < 60


@pytest.mark.slow
def test_a_hanging_loss_is_waited_for_once(quick_session, tmp_path):
    """The numerical-gradient and training tasks call the loss that hung: they are not run."""
    started = time.monotonic()
    result = quick_session.grade(plant(tmp_path, (LOSS, LOSS + "        if y is not None:\n"
                                                  "            while True:\n"
                                                  "                pass\n")))
    assert verdict(result, "scores").passed and verdict(result, "predict").passed
    assert verdict(result, "loss").kind == "timeout"
    numeric = verdict(result, "grad_W1_numeric")
    assert numeric.kind == "not_run" and "part 'loss' timed out after 4 s" in numeric.message
    assert verdict(result, "train").kind == "not_run"
    assert time.monotonic() - started < 4 * 3 + 20  # one wait, not six


def test_a_crash_fails_its_parts_with_the_signal(session, tmp_path):
    result = session.grade(plant(tmp_path, (LOSS, LOSS + "        if y is not None:\n"
                                            "            import ctypes\n"
                                            "            ctypes.string_at(0)\n")),
                           only={"scores", "loss", "predict"})
    assert verdict(result, "scores").passed and verdict(result, "predict").passed
    loss = verdict(result, "loss")
    assert loss.kind == "crash" and "SIGSEGV" in loss.message


def test_an_exception_shows_the_students_traceback_lines_only(session, tmp_path):
    result = session.grade(plant(tmp_path, (TRAIN_LOOP, "        raise RuntimeError('my "
                                            "bug')\n" + TRAIN_LOOP)))
    assert own_failures(result) == {"train"}
    v = verdict(result, "train")
    assert v.kind == "exception"
    assert v.message == "net.train(X, y, X, y, ...): RuntimeError: my bug"
    assert v.traceback[0].startswith(f'File "{STUDENT_FILE}", line ')
    assert v.traceback[0].endswith(", in train")
    assert v.traceback[1].strip() == "raise RuntimeError('my bug')"
    assert not any("_child" in line or "nndl/grading" in line for line in v.traceback)


def test_a_memory_hog_fails_its_part_with_the_limit(tmp_path):
    hog = (PREDICT, PREDICT + "        kept = [np.ones(2 * 10**7) for _ in range(200)]\n")
    with Session(Settings(timeout=30, memory_mb=512)) as s:
        result = s.grade(plant(tmp_path, hog))
    assert own_failures(result) == {"predict"}
    v = verdict(result, "predict")
    assert v.kind == "memory" and v.message.startswith(
        "net.predict(X): ran out of memory (limit 512 MB): ")
    assert "Unable to allocate" in v.message  # NumPy's own words


def test_an_import_error_fails_every_part_with_its_line(session, tmp_path):
    result = session.grade(plant(tmp_path, ("import numpy as np\n",
                                            "import numpy as np\nimport numpyy\n")))
    assert len(result.verdicts) == 12 and result.passed_count == 0
    for v in result.verdicts:
        assert v.kind == "import"
        assert v.message == "ModuleNotFoundError: No module named 'numpyy'"
        assert v.traceback[-1].strip() == "import numpyy"


def test_a_hanging_import_is_waited_for_once(quick_session, tmp_path):
    started = time.monotonic()
    result = quick_session.grade(plant(tmp_path, ("import numpy as np\n", "import numpy as "
                                                  "np\nwhile True:\n    pass\n")))
    assert {v.kind for v in result.verdicts} == {"timeout"}
    assert {v.message for v in result.verdicts} == {
        "timed out after 4 s (importing the submission and building its network)"}
    assert time.monotonic() - started < 4 + 20


def test_a_missing_method_fails_its_part_by_name(session, tmp_path):
    result = session.grade(plant(tmp_path, ("def predict(self, X):", "def predikt(self, X):")))
    v = verdict(result, "predict")
    assert v.kind == "missing" and v.message == "TwoLayerNet defines no 'predict'"
    assert own_failures(result) == {"predict"}


def test_a_missing_class_fails_every_part_by_name(session, tmp_path):
    result = session.grade(plant(tmp_path, ("class TwoLayerNet(", "class TwoLayerNetwork(")),
                           only={"scores", "loss"})
    assert {v.message for v in result.verdicts} == {
        "nndl/neural_net.py defines no 'TwoLayerNet'"}


def test_a_folder_without_the_assignment_fails_by_name(session, tmp_path):
    result = session.grade(tmp_path)
    (v,) = result.verdicts
    assert v.part == "files" and v.kind == "missing"
    assert v.message == ("no file to check: expected nndl/neural_net.py (or a .py file "
                         "defining TwoLayerNet); nndl/layers.py, nndl/layer_utils.py, "
                         "nndl/optim.py, nndl/fc_net.py (the second assignment)")
    plant(tmp_path, name="alice")  # a folder of submissions, given by mistake
    (v,) = session.grade(tmp_path).verdicts
    assert v.message.endswith(f"; its folders hold submissions: check them with 'nndl check "
                              f"{tmp_path}/*'")


def test_prints_and_stray_files_change_nothing(session, tmp_path):
    noisy = (LOSS, LOSS + "        print('x' * 10000)\n"
             "        open('results.json', 'w').write('{\"score\": 100}')\n")
    result = session.grade(plant(tmp_path, noisy), only={"loss"})
    assert result.passed
    assert not (tmp_path / "submission" / "results.json").exists()  # its cwd was scratch


def test_the_students_own_nndl_package_is_the_one_imported(session, tmp_path):
    """It shadows the installed nndl, also without an __init__.py; relative imports work."""
    sub = plant(tmp_path, ("import numpy as np\n", "import numpy as np\nimport os\nimport "
                           "nndl\nfrom .helpers import relu\nassert os.path.dirname("
                           "nndl.__path__[0]) == os.path.dirname(os.path.dirname(__file__)), "
                           "nndl.__path__\n"),
                ("a1 = np.maximum(0, h1)", "a1 = relu(h1)"))
    (sub / "nndl" / "helpers.py").write_text("import numpy as np\n\n\ndef relu(x):\n"
                                             "    return np.maximum(0, x)\n")
    assert session.grade(sub, only={"scores"}).passed
    (sub / "nndl" / "__init__.py").unlink()
    assert session.grade(sub, only={"scores"}).passed


def test_a_single_file_is_a_submission(session, tmp_path):
    single = tmp_path / "my_solution.py"
    single.write_text((C147 / STUDENT_FILE).read_text())
    assert session.grade(single, only={"loss"}).passed
    # a file inside its package folder is loaded as that package's module
    assert session.grade(C147 / STUDENT_FILE, only={"loss"}).passed


def test_nndls_process_never_imports_the_submission(session, tmp_path):
    sub = plant(tmp_path)
    session.grade(sub, only={"scores"})
    assert not [name for name, module in list(sys.modules.items())
                if str(sub) in str(getattr(module, "__file__", None) or "")]


@pytest.mark.skipif(not isolation().network_blocked, reason=isolation().note)
def test_the_submission_has_no_network(session, tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        call = (PREDICT, PREDICT + "        import socket\n        try:\n"
                f"            socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
                "        except OSError:\n            pass\n")
        result = session.grade(plant(tmp_path, call), only={"predict"})
    finally:
        stop.set()
        thread.join()
        server.close()
    assert result.passed
    assert accepted == []
    # the same code outside the checker reaches the server: the test can see a connection
    with socket.create_server(("127.0.0.1", 0)) as check:
        socket.create_connection(check.getsockname(), timeout=2).close()


def _sleeper(marks):
    """A loss that records its process id (as the machine sees it) in ``marks``, then
    sleeps forever (no CPU time: only a wall-clock limit ends it)."""
    return (LOSS, LOSS + "        import os, time\n"
            f"        open(os.path.join({str(marks)!r}, os.readlink('/proc/self')), 'w')"
            ".close()\n        while True:\n            time.sleep(0.05)\n")


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def _wait_for(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_stops_a_batch_and_its_children_at_once(tmp_path):
    """SIGINT while two submissions sleep in their loss: nndl exits with 130 well before the
    time limit, and the children are gone."""
    marks = tmp_path / "marks"
    marks.mkdir()
    subs = [plant(tmp_path, _sleeper(marks), name=n) for n in ("alice", "bob")]
    proc = subprocess.Popen([sys.executable, "-m", "nndl", "check", *map(str, subs),
                             "--jobs", "2", "--timeout", "120", "--out", str(tmp_path / "o")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for(lambda: len(list(marks.iterdir())) == 2, 60), "never started"
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 130 and "nndl check: interrupted" in err, err
    assert time.monotonic() - started < 30
    pids = [int(p.name) for p in marks.iterdir()]
    assert _wait_for(lambda: not any(_alive(p) for p in pids), 10), pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.slow
def test_a_child_does_not_outlive_its_limit_when_nndl_is_killed(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    sub = plant(tmp_path, _sleeper(marks))
    proc = subprocess.Popen([sys.executable, "-m", "nndl", "check", str(sub), "--timeout",
                             "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert _wait_for(lambda: any(marks.iterdir()), 60), "never started"
    proc.kill()
    proc.wait()
    (pid,) = [int(p.name) for p in marks.iterdir()]
    assert _wait_for(lambda: not _alive(pid), 2 + 5 + 10), "the child outlived its limit"
