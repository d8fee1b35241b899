"""The assignment notebooks, executed top to bottom: on a reduced data size (fast, on a
small CIFAR-10 copy the test writes) and, marked slow, on the real CIFAR-10 at the course's
sizes. The second assignment's four notebooks take about 35 minutes at full size on a 2-core
machine, more than CI's budget: they run only with ``NNDL_FULL_NOTEBOOKS=1`` (their small
runs always do)."""

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.fakecifar import make_arrays, write_python_folder

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
NOTEBOOK = NOTEBOOKS / "two_layer_nn.ipynb"
NUMBER = r"([-+0-9.e]+|nan|inf)"


def run_notebook(name, tmp_path, monkeypatch, small=True):
    """Execute notebook ``name``; returns (all printed text, number of images shown)."""
    if small:
        write_python_folder(tmp_path / "data" / "cifar-10-batches-py",
                            make_arrays(per_batch=200))
        monkeypatch.setenv("NNDL_DATA", str(tmp_path / "data"))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        monkeypatch.setenv("NNDL_NOTEBOOK_SMALL", "1")
    else:
        monkeypatch.delenv("NNDL_NOTEBOOK_SMALL", raising=False)
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=3600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs)
    return text, sum("image/png" in o.get("data", {}) for o in outputs)


def printed(text, label):
    """Every number printed after ``label`` (a regular expression) on a line."""
    return [float(v) for v in re.findall(rf"^\s*{label}:?\s+{NUMBER}\s*$", text, re.M)]


@pytest.mark.slow
def test_notebook_runs(tmp_path, monkeypatch):
    text, images = run_notebook("two_layer_nn.ipynb", tmp_path, monkeypatch)
    assert "Final training loss:  0.01449786458776" in text
    assert "Test accuracy: " in text
    assert images == 4


# -- the second assignment ------------------------------------------------------------

def assert_layer_checks(text, count):
    """The course's layer checks printed at its tolerances: affine_forward 9.8e-10 and
    relu_forward 5e-8 from its 8-decimal values, ``count`` gradients 1e-8 or less."""
    assert printed(text, "difference")[:2] == pytest.approx([9.7698e-10, 5.0e-08], rel=1e-4)
    gradients = [v for name in ("dx", "dw", "db") for v in printed(text, f"{name} error")]
    assert len(gradients) == count and max(gradients) < 1e-7  # the course prints up to 8e-9


def network_errors(text):
    """``{parameter: [errors]}`` of the 'W1 relative error: ...' lines."""
    errors = {}
    for name, value in re.findall(rf"^(\w+) relative error: {NUMBER}$", text, re.M):
        errors.setdefault(name, []).append(float(value))
    return errors


@pytest.mark.slow
def test_fc_nets_notebook(tmp_path, monkeypatch):
    text, images = run_notebook("FC_nets.ipynb", tmp_path, monkeypatch)
    assert_layer_checks(text, 9)  # affine, relu, the sandwich, the svm and softmax losses
    assert printed(text, "loss")[:2] == pytest.approx([9.0, 2.3026], abs=2e-3)  # at chance
    errors = network_errors(text)
    # the course's TwoLayerNet check (fixed inputs): its printed W1 error at reg 0.7 is 2.5e-7
    assert sorted(errors) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    assert max(errors["W1"][:2]) == pytest.approx(2.5279e-07, rel=1e-4)
    assert max(max(v) for v in errors.values()) < 1e-4  # entry by entry, 2 inputs
    assert "(Epoch 1 / 1) train acc: " in text and "Best validation accuracy: " in text
    # both networks overfit the 50 images
    assert text.count("(Epoch 20 / 20) train acc: 1.000000") == 2
    assert images == 3


@pytest.mark.slow
def test_optimization_notebook(tmp_path, monkeypatch):
    text, images = run_notebook("Optimization.ipynb", tmp_path, monkeypatch)
    assert_layer_checks(text, 7)  # nndl.layer_tests: affine, relu, the sandwich
    # every update rule reproduces the very errors the course's notebook prints (they come
    # from the rounding of its expected values)
    assert printed(text, "next_w error") == pytest.approx(
        [8.882347033505819e-09, 1.0875186845081027e-08, 9.524687511038133e-08,
         1.1395691798535431e-07], rel=1e-6)
    assert printed(text, "velocity error") == pytest.approx([4.269287743278663e-09] * 2, rel=1e-6)
    assert printed(text, "cache error") == pytest.approx([2.6477955807156126e-09], rel=1e-6)
    assert printed(text, "a error") == pytest.approx([4.208314038113071e-09], rel=1e-6)
    assert printed(text, "v error") == pytest.approx([4.214963193114416e-09], rel=1e-6)
    for rule in ("sgd", "sgd_momentum", "sgd_nesterov_momentum", "adam", "rmsprop"):
        assert f"Optimizing with {rule}\n" in text
        assert re.search(rf"^ *{rule}: final training loss [0-9.]+, best validation", text,
                         re.M)
    assert "Validation set accuracy: " in text and "Test set accuracy: " in text
    assert images == 2


@pytest.mark.slow
def test_batch_normalization_notebook(tmp_path, monkeypatch):
    text, images = run_notebook("Batch-Normalization.ipynb", tmp_path, monkeypatch)
    means = re.search(r"nontrivial gamma, beta\)\n  means:  \[([^\]]+)\]\n  stds:  \[([^\]]+)\]",
                      text)
    assert [float(v) for v in means.group(1).split()] == pytest.approx([11, 12, 13], abs=1e-6)
    assert [float(v) for v in means.group(2).split()] == pytest.approx([1, 2, 3], abs=1e-6)
    gradients = [v for n in ("dx", "dgamma", "dbeta") for v in printed(text, f"{n} error")]
    assert len(gradients) == 3 and max(gradients) < 1e-8
    differences = [v for n in ("dx", "dgamma", "dbeta") for v in printed(text, f"{n} difference")]
    assert len(differences) == 3 and max(differences) < 1e-10  # batchnorm_backward_alt
    assert re.search(r"^speedup: [0-9.]+x$", text, re.M)
    errors = network_errors(text)
    assert sorted(errors) == ["W1", "W2", "W3", "b1", "b2", "b3", "beta1", "beta2", "gamma1",
                              "gamma2"]
    # the output layer and batch normalization's own parameters check at the course's 1e-8
    # level; W1 and W2, behind a normalization of 2 inputs, only to about 1e-3 (the course:
    # "on the order of 1e-4")
    assert max(errors["W3"] + errors["b3"] + errors["gamma1"] + errors["beta1"]) < 1e-6
    assert text.count("Running weight scale") == 3 and "(Epoch 2 / 2) train acc" in text
    assert len(re.findall(r"^weight scale .* with batch normalization$", text, re.M)) == 3
    assert images == 2


@pytest.mark.slow
def test_dropout_notebook(tmp_path, monkeypatch):
    text, images = run_notebook("Dropout.ipynb", tmp_path, monkeypatch)
    zeroed = printed(text, "Fraction of train-time output set to zero")
    assert zeroed == pytest.approx([0.7, 0.4, 0.25], abs=0.01)  # p keeps, 1 - p drops
    assert printed(text, "Fraction of test-time output set to zero") == [0, 0, 0]
    inputs, means = printed(text, "Mean of input"), printed(text, "Mean of train-time output")
    assert means == pytest.approx(inputs, rel=0.01)  # inverted dropout keeps the mean
    assert printed(text, "dx relative error")[0] < 1e-9
    errors = network_errors(text)
    assert sorted(errors) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    assert all(len(v) == 3 for v in errors.values()) and max(map(max, errors.values())) < 1e-4
    assert text.count("(Iteration 1 / 2) loss") == 2  # the two regularization runs
    assert "dropout 0.6: final training accuracy" in text
    assert "Validation set accuracy: " in text
    assert images == 1


# -- whole-data runs ------------------------------------------------------------------

def two_layer_results(text):
    """200 hidden units for 10 epochs pass the course's 50%; both nets overfit 50 images."""
    assert printed(text, "Best validation accuracy")[0] >= 0.50
    assert text.count("(Epoch 20 / 20) train acc: 1.000000") == 2


def optimization_results(text):
    """Every rule beats plain SGD's training loss; the 4-layer net passes 50%."""
    losses = dict(re.findall(r"^ *(\w+): final training loss ([0-9.]+)", text, re.M))
    assert all(float(losses[rule]) < float(losses["sgd"]) for rule in
               ("sgd_momentum", "sgd_nesterov_momentum", "rmsprop", "adam"))
    assert printed(text, "Validation set accuracy")[0] >= 0.50


def batchnorm_results(text):
    """At the small weight scales the plain 8-layer net stays at chance (10%) while the
    batch-normalized one learns (the course's weight-scale experiment)."""
    rows = re.findall(r"^weight scale (\S+): best training accuracy ([0-9.]+) without, "
                      r"([0-9.]+) with", text, re.M)
    assert len(rows) == 20
    small = [(float(plain), float(bn)) for scale, plain, bn in rows if float(scale) < 1e-3]
    assert len(small) == 5 and all(plain < 0.15 and bn > 0.2 for plain, bn in small)


def final_results(text):
    """The final model (4 x 600, batch normalization, dropout) passes 55% validation."""
    assert printed(text, "Validation set accuracy")[0] >= 0.55


FULL_RESULTS = {"FC_nets.ipynb": two_layer_results, "Optimization.ipynb": optimization_results,
                "Batch-Normalization.ipynb": batchnorm_results, "Dropout.ipynb": final_results}


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(not os.environ.get("NNDL_FULL_NOTEBOOKS"),
                    reason="35 minutes on 2 cores: set NNDL_FULL_NOTEBOOKS=1 to run them")
@pytest.mark.parametrize("name", FULL_RESULTS)
def test_notebooks_reach_the_courses_results_on_cifar10(name, tmp_path, monkeypatch,
                                                        real_cifar10_root):
    text, _ = run_notebook(name, tmp_path, monkeypatch, small=False)
    assert "X_train: (49000, 3, 32, 32)" in text
    FULL_RESULTS[name](text)
