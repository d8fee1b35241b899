"""The table of parameters (nndl.config.PARAMS): each key declared once, and every check,
flag and grouping reads it."""

import argparse
import subprocess
import sys
from dataclasses import dataclass

import pytest

from nndl._params import Param, check_params, param, params_of
from nndl.config import (
    DATA_FIELDS,
    PARAMS,
    SHARED_TRAIN_FIELDS,
    RunConfig,
    TrainOptions,
    population_key,
)
from nndl.flags import add_config_arguments


def test_import_nndl_loads_no_data_package():
    """The core (nndl, its config) needs no data code: nndl.data stays unloaded."""
    code = ("import nndl, sys; "
            "assert not any(m.startswith('nndl.data') for m in sys.modules), "
            "sorted(m for m in sys.modules if m.startswith('nndl.data'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("changes, error, words", [
    (dict(momentum=1.0), ValueError, "momentum must be in [0.0, 1.0), got 1.0"),
    (dict(dropout=-0.1), ValueError, "dropout must be in [0.0, 1.0), got -0.1"),
    (dict(step_epochs=0.0), ValueError, "step_epochs must be in (0.0, inf], got 0.0"),
    (dict(learning_rate_decay=1.5), ValueError, "learning_rate_decay must be in [0.0, 1.0]"),
    (dict(warmup_iters=-1), ValueError, "warmup_iters must be an int >= 0, got -1"),
    (dict(hidden_size=0), ValueError, "hidden_size must be an int >= 1, got 0"),
    (dict(num_validation=1.0), ValueError, "num_validation must be in (0.0, 1.0), got 1.0"),
    (dict(num_validation=0), ValueError, "num_validation must be an int >= 1, got 0"),
    (dict(labels="medium"), ValueError, "labels must be one of ('fine', 'coarse')"),
    (dict(dtype="float16"), ValueError, "dtype must be one of ('float32', 'float64')"),
    (dict(device="gpu"), ValueError, "device must be cpu or cuda[:N], got 'gpu'"),
    (dict(image_size="32"), ValueError, "image size must be WIDTHxHEIGHT"),
    (dict(translate=True), TypeError, "translate must be an integer, got True"),
    (dict(batch_size=2.0), TypeError, "batch_size must be an integer, got 2.0"),
])
def test_each_key_is_checked_by_its_param(changes, error, words):
    with pytest.raises(error) as info:
        RunConfig().replace(**changes)
    assert words in str(info.value)


def test_values_at_the_closed_ends_are_accepted():
    cfg = RunConfig().replace(momentum=0.0, learning_rate_decay=1.0, step_epochs=1e-6,
                              num_validation=0.5, labels="coarse", image_size="8x8",
                              device="cpu", warmup_iters=0, std=0.0)
    assert (cfg.train.momentum, cfg.num_validation, cfg.image_size) == (0.0, 0.5, "8x8")


def test_the_groupings_are_the_keys_declared_shared():
    """The minibatch stream's options and the prepared data's keys, as the loop and the
    search have always grouped them."""
    assert SHARED_TRAIN_FIELDS == ("num_iters", "batch_size", "batch_sampler", "backend",
                                   "device")
    assert set(DATA_FIELDS) == {"dataset", "data", "labels", "image_size", "num_training",
                                "num_validation", "num_test", "full_test", "preprocessing",
                                "dtype", "augment"}
    base = RunConfig()
    same = [dict(learning_rate=0.1), dict(optimizer="adam"), dict(std=0.1), dict(seed=3)]
    other = [dict(hidden_size=10), dict(batch_size=100), dict(dataset="digits"),
             dict(flip=True), dict(num_iters=7)]
    assert all(population_key(base.replace(**c)) == population_key(base) for c in same)
    assert all(population_key(base.replace(**c)) != population_key(base) for c in other)


def test_every_key_is_one_flag_with_the_tables_choices_and_help():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    actions = {a.dest: a for a in parser._actions}
    assert set(PARAMS) | {"help", "config"} == set(actions)
    for name, p in PARAMS.items():
        action = actions[name]
        assert action.option_strings[0] == "--" + name.replace("_", "-")
        assert action.help.startswith(p.help.replace("%", "%%"))
        assert tuple(action.choices or ()) == (p.choices or ())
        assert isinstance(action, argparse.BooleanOptionalAction) == (p.kinds == ("bool",))


def test_every_training_option_has_a_param_and_the_estimator_reads_them_all():
    assert set(params_of(TrainOptions)) == set(TrainOptions().to_dict())
    assert set(PARAMS) == set(RunConfig().to_dict())


@dataclass
class _Toy:
    """A configuration of one declaration per key, as a new parameter is added."""

    rate: float = param(0.5, "a rate", low=0, high=1, high_open=True)
    count: int | None = param(None, "a count", low=1)
    mode: str = param("a", "a mode", choices=("a", "b"))

    def __post_init__(self):
        check_params(self)


def test_a_new_key_is_one_declaration():
    table = params_of(_Toy)
    assert list(table) == ["rate", "count", "mode"]
    assert table["count"].kinds == ("int", "None")
    assert [p.describe() for p in table.values()] == ["float in [0, 1)", "int >= 1 or None",
                                                     '{"a", "b"}']
    assert _Toy(rate=0.0, count=None, mode="b").mode == "b"
    for bad, words in ((dict(rate=1.0), "rate must be in [0.0, 1.0)"),
                       (dict(count=0), "count must be an int >= 1"),
                       (dict(mode="c"), "mode must be one of ('a', 'b')")):
        with pytest.raises(ValueError, match=words.replace("(", r"\(").replace("[", r"\[")
                           .replace(")", r"\)")):
            _Toy(**bad)


def test_a_param_refuses_an_unknown_grouping():
    with pytest.raises(ValueError, match="shared must be one of"):
        Param("x", shared="stream")


def test_a_key_of_another_kind_parses_its_flag_with_its_own_function():
    """A key such as a list of sizes declares how its flag's text becomes its value."""
    from nndl.flags import _add_flag

    def sizes(text):
        return tuple(int(t) for t in text.split(","))

    parser = argparse.ArgumentParser()
    p = Param("layer sizes", parse=sizes, name="hidden_sizes", kinds=("tuple",))
    _add_flag(parser, p, (50,))
    assert parser.parse_args(["--hidden-sizes", "100,50"]).hidden_sizes == (100, 50)
