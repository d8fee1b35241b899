"""Search spaces: files are checked strictly (every mistake is one error naming its place);
the default space and the base configuration's point in a space."""

import pytest

from nndl.config import RunConfig
from nndl.search.space import Dimension, base_point, default_space, grid_of, load_space
from tests.search.conftest import SMALL, nndl


def space_file(tmp_path, text):
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("body, words", [
    ("low = 1e-4\nhigh = inf\nlog = true", ["[learning_rate]", "high", "inf"]),
    ("low = nan\nhigh = 1e-2", ["[learning_rate]", "low", "nan"]),
    ("low = 1e-2\nhigh = 1e-4", ["[learning_rate]", "low", "high"]),
    ("low = 0.0\nhigh = 1e-2\nlog = true", ["[learning_rate]", "log", "low > 0"]),
    ('low = 1e-4\nhigh = 1e-2\nlog = "false"', ["[learning_rate]", "log", "'false'"]),
    ('low = 1e-4\nhigh = 1e-2\nfloat = "yes"', ["[learning_rate]", "float", "'yes'"]),
    ("low = 1e-4\nhigh = 1e-2\nlgo = true", ["[learning_rate]", "'lgo'"]),
    ('low = "1e-4"\nhigh = 1e-2', ["[learning_rate]", "low", "'1e-4'"]),
    ("low = true\nhigh = 1e-2", ["[learning_rate]", "low", "True"]),
    ("choices = []", ["[learning_rate]", "choices"]),
    ("choices = 0.1", ["[learning_rate]", "choices"]),
    ("low = 1e-4\nhigh = 1e-2\nchoices = [1e-3]", ["[learning_rate]", "choices", "low"]),
    ("low = 1e-4\nhigh = 1e-2\ngrid = [1.0]", ["[learning_rate]", "grid", "1.0"]),
    ("choices = [1e-3]\nlog = true", ["[learning_rate]", "log", "choices"]),
    ("low = -1.0\nhigh = 1e-2", ["[learning_rate]", "learning_rate", "-1.0"]),
])
def test_bad_float_dimension_is_one_error_naming_dimension_and_key(tmp_path, body, words):
    assert_refused(space_file(tmp_path, f"[learning_rate]\n{body}\n"), words)


def assert_refused(path, words):
    """Loading the space file ``path`` is one ValueError naming it and every word."""
    with pytest.raises(ValueError) as info:
        load_space(path)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("body, words", [
    ("low = 10\nhigh = 100.5", ["[hidden_size]", "hidden_size must be an int", "10.0"]),
    ('choices = [10, "big"]', ["[hidden_size]", "hidden_size", "'big'"]),
    ("low = 10\nhigh = 100\ngrid = [20.5]", ["[hidden_size]", "grid", "20.5"]),
])
def test_int_dimension_takes_only_integers(tmp_path, body, words):
    assert_refused(space_file(tmp_path, f"[hidden_size]\n{body}\n"), words)


def test_good_space_loads_with_its_types(tmp_path):
    path = space_file(tmp_path, "[learning_rate]\nlow = 1e-4\nhigh = 1e-2\nlog = false\n"
                      "grid = [1e-3]\n[hidden_size]\nlow = 10\nhigh = 100\nlog = true\n"
                      '[optimizer]\nchoices = ["sgd", "adam"]\n'
                      "[reg]\nlow = 1\nhigh = 2\nfloat = true\n")
    space = load_space(path)
    assert space["learning_rate"] == Dimension(1e-4, 1e-2, log=False, grid=[1e-3])
    assert space["hidden_size"] == Dimension(10, 100, log=True, integer=True)
    assert space["optimizer"] == Dimension(choices=["sgd", "adam"])
    assert space["reg"] == Dimension(1, 2, integer=False)


def test_infinite_bound_is_one_line_on_the_command_line(tmp_path, search_env):
    path = space_file(tmp_path, "[learning_rate]\nlow = 1e-4\nhigh = inf\nlog = true\n")
    out = tmp_path / "run"
    result = nndl("search", "--space", str(path), "--trials", "2", "--num-iters", "20", *SMALL,
                  "--out", str(out), env=search_env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("nndl search: error: ") and "high" in result.stderr
    assert not out.exists()


def test_default_space_searches_trainable_ranges_and_keeps_the_assignments_grid():
    space = default_space()
    lr = space["learning_rate"]
    assert (lr.low, lr.high, lr.log) == (5e-4, 3e-3, True)  # SGD diverged from ~4e-3
    assert "num_iters" not in space  # a budget: the base's 3,000 for every trial
    assert RunConfig().train.num_iters == 3000
    assert grid_of(space) == {"learning_rate": [1e-3, 1.5e-3, 2e-3], "reg": [0.05, 0.1, 0.25],
                              "batch_size": [200], "learning_rate_decay": [0.95],
                              "std": [1e-4]}


def test_base_point_is_the_base_values_only_when_all_lie_in_the_space():
    space = {"learning_rate": Dimension(5e-4, 3e-3, log=True),
             "batch_size": Dimension(choices=[100, 400])}
    base = RunConfig().replace(learning_rate=2e-3, batch_size=100)
    assert base_point(space, base) == {"learning_rate": 2e-3, "batch_size": 100}
    assert base_point(space, base.replace(batch_size=200)) is None  # not a choice
    assert base_point(space, base.replace(learning_rate=4e-3)) is None  # above high
    hidden = {"hidden_size": Dimension(20, 60, integer=True)}
    assert base_point(hidden, RunConfig().replace(hidden_size=50)) == {"hidden_size": 50}
    assert base_point(hidden, RunConfig().replace(hidden_size=64)) is None


@pytest.mark.parametrize("name, body, words", [
    ("momentum", "low = 0.5\nhigh = 1.0", ["[momentum]", "momentum must be in [0.0, 1.0)",
                                           "1.0"]),
    ("dropout", "choices = [0.0, 1.0]", ["[dropout]", "dropout must be in [0.0, 1.0)"]),
    ("step_epochs", "low = 0.0\nhigh = 5.0", ["[step_epochs]", "(0.0, inf]", "0.0"]),
    ("labels", 'choices = ["fine", "medium"]', ["[labels]", "labels must be one of",
                                                "'medium'"]),
    ("optimizer", "low = 1\nhigh = 3", ["[optimizer]", "optimizer takes one of", "choices"]),
    ("warmup_iters", "low = -5\nhigh = 10", ["[warmup_iters]", "warmup_iters must be an int "
                                                               ">= 0", "-5"]),
])
def test_a_dimension_outside_what_its_key_accepts_is_refused_by_name(tmp_path, name, body,
                                                                    words):
    """The bounds are the table's (nndl.config.PARAMS): [0, 1) for momentum and dropout,
    above 0 for step_epochs, fine or coarse for labels, a name for optimizer."""
    assert_refused(space_file(tmp_path, f"[{name}]\n{body}\n"), words)


def test_integer_bounds_over_a_float_key_are_a_float_range(tmp_path):
    """learning_rate takes floats: low = 0, high = 1 is the interval, not the ints 0 and 1;
    hidden_size takes ints: its integer bounds stay an integer dimension."""
    space = load_space(space_file(tmp_path, "[learning_rate]\nlow = 0\nhigh = 1\n"
                                  "[hidden_size]\nlow = 10\nhigh = 20\n"))
    assert space["learning_rate"] == Dimension(0, 1, integer=False)
    assert space["hidden_size"] == Dimension(10, 20, integer=True)
