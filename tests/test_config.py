import argparse

import pytest

from nndl.config import RunConfig
from nndl.flags import add_config_arguments, config_from_args


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return parser.parse_args(argv)


def test_flags_override_toml_override_defaults(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('learning_rate = 0.005\nhidden_size = 80\noptimizer = "adam"\n')
    cfg = config_from_args(parse("--config", str(toml), "--hidden-size", "60", "--flip"))
    assert cfg.hidden_size == 60 and cfg.train.learning_rate == 0.005
    assert cfg.train.optimizer == "adam" and cfg.augment.flip is True
    assert cfg.train.batch_size == RunConfig().train.batch_size


def test_unknown_key_and_bad_values_are_named(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("learning_rte = 0.1\n")
    with pytest.raises(ValueError, match="unknown configuration key.*learning_rte"):
        config_from_args(parse("--config", str(toml)))
    with pytest.raises(ValueError, match="batch_size must be"):
        config_from_args(parse("--batch-size", "0"))
    with pytest.raises(SystemExit):  # a choice outside the list is a usage error
        parse("--optimizer", "lbfgs")
    config = tmp_path / "o.toml"
    config.write_text('optimizer = "lbfgs"\n')
    with pytest.raises(ValueError, match="optimizer must be one of"):
        config_from_args(parse("--config", str(config)))


def test_unknown_config_keys_get_the_closest_known_ones():
    with pytest.raises(ValueError, match=r"unknown configuration key\(s\): hidden_sise \(did "
                       r"you mean hidden_size or hidden_sizes\?\), lr \(did you mean "
                       r"learning_rate\?\)"):
        RunConfig.from_dict({"lr": 0.1, "hidden_sise": 10})
