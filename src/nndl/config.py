"""One flat run configuration: model, data and training options.

Its fields are the flags of ``nndl train`` (``learning_rate`` -> ``--learning-rate``)
and the keys of its TOML config files; precedence is defaults < config file <
flags given on the command line.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, fields

from nndl._validation import check_float, check_int
from nndl.training import TrainOptions

_MODEL_DATA_HELP = {
    "hidden_size": "hidden units H",
    "std": "initial weight scale: W = std * N(0, 1)",
    "dtype": "float64 (the assignment's) or float32 (faster)",
    "seed": "random seed for initialization, minibatches and augmentation",
    "data": "CIFAR-10 location (default: $NNDL_DATA, else the user cache; downloaded if absent)",
    "num_training": "training images (the first N of the 50,000)",
    "num_validation": "validation images (the N after the training ones)",
    "num_test": "test images (the first N of the 10,000)",
    "full_test": "use all 10,000 test images",
    "preprocessing": "comma-separated transforms fit on the training split: mean, "
                     "standardize, pca, zca (or none)",
    "flip": "augmentation: random horizontal flips",
    "translate": "augmentation: random translations of up to N pixels (0 = off)",
}
_TRAIN_HELP = {
    "learning_rate": "base learning rate",
    "learning_rate_decay": "per-epoch multiplier (schedule epoch_decay)",
    "reg": "L2 strength: loss += 0.5 * reg * (|W1|^2 + |W2|^2)",
    "num_iters": "training iterations (minibatches)",
    "batch_size": "minibatch size",
    "optimizer": "sgd | momentum | nesterov | adam | adamw",
    "momentum": "momentum coefficient (momentum, nesterov)",
    "weight_decay": "decoupled weight decay (adamw)",
    "schedule": "epoch_decay | step | cosine | one_cycle | constant",
    "step_epochs": "epochs between decays (schedule step)",
    "warmup_iters": "linear learning-rate warmup iterations",
    "batch_sampler": "replacement (the assignment's) | shuffle (epoch permutations)",
    "dropout": "probability of dropping a hidden unit while training",
    "label_smoothing": "label smoothing of the cross-entropy targets",
    "early_stopping": "stop after N epochs without a better validation accuracy and "
                      "restore the best weights (0 = off)",
    "backend": "array backend for plain SGD: numpy | torch | cupy | auto",
    "device": "cpu or cuda (a GPU through torch or cupy; with the numpy backend, "
              "cuda picks whichever is installed)",
}


@dataclass
class RunConfig:
    """Everything a training run needs. Defaults: the assignment's best configuration
    (hidden 50, learning rate 1e-3, reg 0.1, batch 200, per-epoch decay 0.95)."""

    hidden_size: int = 50
    std: float = 1e-4
    dtype: str = "float64"
    seed: int = 0
    data: str | None = None
    num_training: int = 49000
    num_validation: int = 1000
    num_test: int = 1000
    full_test: bool = False
    preprocessing: str = "mean"
    flip: bool = False
    translate: int = 0
    train: TrainOptions = field(default_factory=lambda: TrainOptions(
        learning_rate=1e-3, reg=0.1, num_iters=3000))

    def __post_init__(self):
        check_int("hidden_size", self.hidden_size)
        check_float("std", self.std)
        check_int("seed", self.seed, minimum=0)
        check_int("translate", self.translate, minimum=0)
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if isinstance(self.train, dict):
            self.train = TrainOptions(**self.train)

    @property
    def preprocessing_steps(self):
        names = [s.strip() for s in self.preprocessing.split(",") if s.strip()]
        return [] if names == ["none"] else names

    def to_dict(self):
        flat = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "train"}
        flat.update(self.train.to_dict())
        return flat

    @classmethod
    def from_dict(cls, values):
        """Build from flat keys (model, data and training options mixed)."""
        train_keys = {f.name for f in fields(TrainOptions)}
        own_keys = {f.name for f in fields(cls)} - {"train"}
        unknown = set(values) - train_keys - own_keys
        if unknown:
            raise ValueError(f"unknown configuration key(s): {', '.join(sorted(unknown))}")
        base = cls()
        train = {**base.train.to_dict(), **{k: v for k, v in values.items() if k in train_keys}}
        own = {k: v for k, v in values.items() if k in own_keys}
        return cls(**own, train=TrainOptions(**train))

    def replace(self, **changes):
        return RunConfig.from_dict({**self.to_dict(), **changes})


def _all_fields():
    for f in fields(RunConfig):
        if f.name != "train":
            yield f.name, f, _MODEL_DATA_HELP[f.name]
    for f in fields(TrainOptions):
        yield f.name, f, _TRAIN_HELP[f.name]


def add_config_arguments(parser):
    """One ``--flag`` per configuration field (defaults left as None = not given)."""
    defaults = RunConfig().to_dict()
    for name, _, text in _all_fields():
        flag = "--" + name.replace("_", "-")
        default = defaults[name]
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=f"{text} (default: {default})")
        else:
            kind = {int: int, float: float}.get(type(default), str)
            parser.add_argument(flag, type=kind, default=None, metavar=name.upper(),
                                help=f"{text} (default: {default})")
    parser.add_argument("--config", metavar="TOML",
                        help="read options from a TOML file (flags override it)")


def config_from_args(args, base=None):
    """Defaults (or ``base``) < the ``--config`` TOML file < flags given."""
    values = (base or RunConfig()).to_dict()
    if getattr(args, "config", None):
        values.update(read_toml(args.config))
    for name, _, _ in _all_fields():
        given = getattr(args, name, None)
        if given is not None:
            values[name] = given
    return RunConfig.from_dict(values)


def read_toml(path):
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {path}: {exc}") from exc
    return data


__all__ = ["RunConfig", "add_config_arguments", "config_from_args"]
