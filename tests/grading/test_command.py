"""``nndl check`` as a user runs it: exit status, the table, --json, --gradescope with a
teacher's weights, and a batch's summary (with a hanging submission, in parallel)."""

import csv
import json
import os
import re
import subprocess
import sys

import pytest

from .conftest import C147, plant

PART_IDS = ["scores", "loss", "grad_W1_numeric", "grad_W1_reference", "grad_b1_numeric",
            "grad_b1_reference", "grad_W2_numeric", "grad_W2_reference", "grad_b2_numeric",
            "grad_b2_reference", "train", "predict"]


def check(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "nndl", "check", *map(str, args)],
                          capture_output=True, text=True, timeout=600, cwd=cwd,
                          env={**os.environ, "NNDL_DEBUG": ""})


def test_a_right_submission_exits_0_with_its_table():
    result = check(C147)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("nndl check: C147 conventions (W1 (H, D), W2 (C, H), 0.5 * reg "
                               "* sum(W**2)), seed 0; network ")
    assert sum(line.startswith("  pass  ") for line in lines) == 12
    assert lines[-1] == "12 of 12 parts pass"


def test_a_wrong_submission_exits_1_with_where_and_why(tmp_path):
    result = check(plant(tmp_path, ("dh1 = da1 * (h1 > 0)", "dh1 = da1")))
    assert result.returncode == 1
    out = result.stdout
    assert "  FAIL  gradient W1 (reference)" in out
    assert "hint: the ReLU's gradient mask is missing" in out
    assert "np.maximum" not in out and "def " not in out  # values, never code
    # and training, whose run differs once the gradients do
    assert "after: gradient W1 (reference) and gradient b1 (reference) failed" in out
    assert out.splitlines()[-1] == "7 of 12 parts pass"


def test_usage_errors_exit_2(tmp_path):
    weights = tmp_path / "weights.toml"
    weights.write_text("scores = 2\ngrad_W1_refrence = 1\n")
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    cases = [
        ((tmp_path / "nowhere",), "no such file or folder"),
        ((text,), f"{text}: not a Python file (.py) or a folder"),
        ((C147, C147, "--gradescope", tmp_path / "r.json"), "give one PATH"),
        ((C147, "--budget", "10"), "add --full"),
        ((C147, "--timeout", "0"), "--timeout must be > 0"),
        ((C147, "--variant", "cs213n"), "did you mean 'cs231n'?"),
        ((C147, "--weights", weights), "no part 'grad_W1_refrence'; did you mean "
         "grad_W1_reference"),
    ]
    for args, words in cases:
        result = check(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("usage: nndl check ") and words in result.stderr, (
            args, result.stderr)


def test_json_holds_every_verdict(tmp_path):
    result = check(plant(tmp_path, ("+ reg * W2", "")), "--json", "--seed", "3")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["seed"] == 3 and document["variant"] == "c147" and not document["passed"]
    (submission,) = document["submissions"]
    verdicts = {v["part"]: v for v in submission["verdicts"]}
    assert list(verdicts) == PART_IDS
    wrong = verdicts["grad_W2_reference"]
    assert wrong["status"] == "fail" and wrong["tolerance"] == 1e-7
    assert wrong["value"] != wrong["expected"] and "gradient is missing" in wrong["hint"]


def test_gradescope_results_use_the_teachers_weights_and_ignore_the_students_own(tmp_path):
    out = tmp_path / "results" / "results.json"
    forged = ("    def loss(self, X, y=None, reg=0.0):\n", "    def loss(self, X, y=None, "
              "reg=0.0):\n        import os\n        os.makedirs(" + repr(str(out.parent)) +
              ", exist_ok=True)\n        open(" + repr(str(out)) + ", 'w').write("
              "'{\"score\": 1000}')\n")
    sub = plant(tmp_path, forged, ("dh1 = da1 * (h1 > 0)", "dh1 = da1"))
    weights = tmp_path / "weights.toml"
    weights.write_text("[weights]\nscores = 2\ngrad_W1_reference = 3\npredict = 0.5\n")
    result = check(sub, "--gradescope", out, "--weights", weights)
    assert result.returncode == 1 and f"wrote {out}" in result.stdout
    document = json.loads(out.read_text())
    tests = {t["name"]: t for t in document["tests"]}
    assert len(tests) == 12
    assert tests["toy scores"] == {**tests["toy scores"], "score": 2.0, "max_score": 2.0,
                                   "status": "passed"}
    assert tests["gradient W1 (reference)"]["score"] == 0.0
    assert tests["gradient W1 (reference)"]["max_score"] == 3.0
    assert "ReLU's gradient mask" in tests["gradient W1 (reference)"]["output"]
    assert tests["predict"]["max_score"] == 0.5
    passed = sum(t["max_score"] for t in document["tests"] if t["status"] == "passed")
    assert document["score"] == passed == 2.0 + 0.5 + 1.0 * 5  # 4 gradients and train fail


@pytest.mark.slow
def test_a_batch_with_a_hanging_submission_finishes_with_its_summary(tmp_path):
    good = plant(tmp_path, name="alice")
    hangs = plant(tmp_path, ("import numpy as np\n", "import numpy as np\nwhile True:\n"
                             "    pass\n"), name="bob")
    wrong = plant(tmp_path, ("np.argmax(scores, axis=1)", "np.argmax(scores, axis=0)"),
                  name="carol")
    out = tmp_path / "summary"
    result = check(good, hangs, wrong, "--jobs", "2", "--timeout", "4", "--out", out)
    assert result.returncode == 1, result.stderr
    assert "[3/3] " in result.stderr
    with open(out / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["submission"] for r in rows] == [str(good), str(hangs), str(wrong)]
    assert list(rows[0])[5:] == PART_IDS
    assert [r["passed"] for r in rows] == ["12", "0", "10"]
    assert {rows[1][p] for p in PART_IDS} == {"timeout"}
    assert rows[2]["predict"] == "fail" and rows[2]["scores"] == "pass"
    page = (out / "summary.html").read_text()
    assert all(str(p) in page for p in (good, hangs, wrong))
    assert len(json.loads((out / "results.json").read_text())["submissions"]) == 3
    assert re.search(rf"{hangs} +0/12  failing: every part \(timeout\)\n", result.stdout)
    assert "1 of 3 submissions pass every part" in result.stdout


def test_the_readmes_weights_file_is_one_nndl_check_reads(tmp_path):
    from pathlib import Path

    from nndl.grading.output import read_weights

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = re.search(r"```toml\n(\[weights\]\n.*?)```", readme, re.S).group(1)
    (tmp_path / "weights.toml").write_text(block)
    weights = read_weights(tmp_path / "weights.toml", PART_IDS)
    assert weights == {"scores": 1.0, "loss": 2.0, "grad_W1_reference": 2.0, "train": 2.0}


def test_full_without_data_fails_before_grading(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "NNDL_DEBUG": ""}
    result = subprocess.run([sys.executable, "-m", "nndl", "check", str(C147), "--full",
                             "--data", str(tmp_path / "empty")], capture_output=True,
                            text=True, timeout=600, env={**env, "NNDL_MIRROR_CIFAR10":
                                                         "http://127.0.0.1:9/"})
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("nndl check: error: ") and "\n" == result.stderr[-1:]
    assert len(result.stderr.splitlines()) == 1
