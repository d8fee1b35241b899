"""The typed configuration: training options, augmentation, and the whole run.

:class:`TrainOptions` is every knob of the training loop, :class:`Augmentation` the one
augmentation spec that data preparation, the loop and the search all read, and
:class:`RunConfig` a whole run (model + data + augmentation + training). Their fields are
the flags of ``nndl train`` (``learning_rate`` -> ``--learning-rate``) and the keys of its
TOML files; precedence is defaults < config file < flags given on the command line. Each
field's help text is its ``metadata["help"]``.

:func:`population_key` is the one rule for which configurations can train together as one
population (one minibatch stream, stacked networks): the search and the loop both use it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from nndl._typing import NDArray, RandomState
from nndl._validation import (
    annotation_kinds,
    check_field_types,
    check_float,
    check_int,
    closest_names,
)
from nndl.backend import BACKENDS, resolve_backend
from nndl.data.imagefolder import parse_image_size
from nndl.optim import RULES
from nndl.sampling import SAMPLERS
from nndl.schedules import SCHEDULES
from nndl.transforms import random_flip, random_translate

#: nndl's own update-rule names (``--optimizer``): the keys of :data:`nndl.optim.RULES`. The
#: course's functions of the second assignment (also :mod:`nndl.optim`) are named
#: differently: sgd_momentum, sgd_nesterov_momentum, ...
OPTIMIZERS = tuple(RULES)


def _opt(default, text, choices=None):
    return field(default=default, metadata={"help": text, "choices": choices})


@dataclass
class TrainOptions:
    """Every knob of the training loop. The defaults are the assignment's ``train``.

    ``num_iters``, ``batch_size``, ``batch_sampler``, ``backend`` and ``device`` describe the
    minibatch stream and where it runs (:data:`SHARED_TRAIN_FIELDS`): networks that train as
    one population share them. Every other option may differ from member to member.
    """

    learning_rate: float = _opt(1e-3, "base learning rate")
    learning_rate_decay: float = _opt(0.95, "per-epoch multiplier (schedule epoch_decay)")
    reg: float = _opt(1e-5, "L2 strength: loss += 0.5 * reg * (|W1|^2 + |W2|^2)")
    num_iters: int = _opt(100, "training iterations (minibatches)")
    batch_size: int = _opt(200, "minibatch size")
    optimizer: str = _opt("sgd", "update rule", OPTIMIZERS)
    momentum: float = _opt(0.9, "momentum coefficient (momentum, nesterov)")
    weight_decay: float = _opt(0.0, "decoupled weight decay (adamw)")
    schedule: str = _opt("epoch_decay", "learning-rate schedule", SCHEDULES)
    step_epochs: float = _opt(10.0, "epochs between decays (schedule step)")
    warmup_iters: int = _opt(0, "linear learning-rate warmup iterations")
    batch_sampler: str = _opt("replacement", "replacement (the assignment's), shuffle "
                              "(epoch permutations) or blocks (contiguous blocks, no gather)",
                              SAMPLERS)
    dropout: float = _opt(0.0, "probability of dropping a hidden unit while training")
    label_smoothing: float = _opt(0.0, "label smoothing of the cross-entropy targets")
    early_stopping: int = _opt(0, "stop after N epochs without a better validation accuracy "
                               "and restore the best weights (0 = off)")
    backend: str = _opt("numpy", "array backend", BACKENDS)
    device: str = _opt("cpu", "cpu or cuda (a GPU through torch or cupy; with the numpy "
                       "backend, cuda picks whichever is installed)")

    def __post_init__(self):
        check_field_types(self)
        check_float("learning_rate", self.learning_rate)
        check_float("learning_rate_decay", self.learning_rate_decay, 0.0, 1.0)
        check_float("reg", self.reg)
        check_int("num_iters", self.num_iters)
        check_int("batch_size", self.batch_size)
        check_float("momentum", self.momentum, 0.0, 1.0, exclusive_max=True)
        check_float("weight_decay", self.weight_decay)
        check_float("step_epochs", self.step_epochs, 1e-9)
        check_int("warmup_iters", self.warmup_iters, minimum=0)
        check_float("dropout", self.dropout, 0.0, 1.0, exclusive_max=True)
        check_float("label_smoothing", self.label_smoothing, 0.0, 1.0, exclusive_max=True)
        check_int("early_stopping", self.early_stopping, minimum=0)
        for name, allowed in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                              ("batch_sampler", SAMPLERS), ("backend", BACKENDS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be cpu or cuda[:N], got {self.device!r}")
        if (self.backend, self.device) != ("numpy", "cpu"):
            resolve_backend(self.backend, self.device)  # fail now, before any data is loaded

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> TrainOptions:
        return TrainOptions(**{**self.to_dict(), **changes})


SHARED_TRAIN_FIELDS = ("num_iters", "batch_size", "batch_sampler", "backend", "device")


@dataclass(frozen=True)
class Augmentation:
    """Random changes to each training image (N, H, W, C), drawn per minibatch and per image,
    applied in field order before flattening and preprocessing. An augmentation is one
    field here (with its help text) and one function in :mod:`nndl.transforms`."""

    flip: bool = _opt(False, "augmentation: random horizontal flips")
    translate: int = _opt(0, "augmentation: random translations of up to N pixels (0 = off)")

    def __post_init__(self):
        check_field_types(self)
        check_int("translate", self.translate, minimum=0)

    @property
    def active(self) -> bool:
        """True when any augmentation is on (training then needs the images)."""
        return any(getattr(self, f.name) for f in fields(self))

    def apply(self, images: NDArray, rng: RandomState) -> NDArray:
        """Augmented copies of ``images`` (N, H, W, C); draws from ``rng``."""
        if self.flip:
            images = random_flip(images, rng)
        if self.translate:
            images = random_translate(images, rng, self.translate)
        return images


@dataclass
class RunConfig:
    """Everything a training run needs. Defaults: the assignment's best configuration
    (hidden 50, learning rate 1e-3, reg 0.1, batch 200, per-epoch decay 0.95)."""

    hidden_size: int = _opt(50, "hidden units H")
    std: float = _opt(1e-4, "initial weight scale: W = std * N(0, 1)")
    dtype: str = _opt("float64", "float64 (the assignment's) or float32 (faster)",
                      ("float32", "float64"))
    seed: int = _opt(0, "random seed for initialization, minibatches and augmentation")
    dataset: str = _opt("cifar10", "a dataset name (cifar10, cifar100, mnist, fashion-mnist, "
                        "digits) or the path of an image folder or .npz file")
    data: str | None = _opt(None, "data root where named datasets are looked for and "
                            "downloaded (default: $NNDL_DATA, else the user cache)")
    labels: str = _opt("fine", "cifar100's labels: fine (100 classes) or coarse (20)",
                       ("fine", "coarse"))
    image_size: str | None = _opt(None, "resize an image folder's images to WxH, e.g. 32x32 "
                                  "(default: their own size, which they must share)")
    num_training: int | None = _opt(None, "training images (default: all but the validation "
                                    "ones; cifar10: the assignment's first 49,000)")
    num_validation: int | float | None = _opt(
        None, "validation images, or a fraction of the training ones (default: cifar10 the "
        "1,000 after the training ones; others a stratified 1,000 or 10%, whichever is fewer)")
    num_test: int | None = _opt(None, "test images (default: cifar10 the assignment's first "
                                "1,000; others the whole official test set, or a stratified "
                                "20% where there is none)")
    full_test: bool = _opt(False, "use the whole test set (cifar10: all 10,000)")
    preprocessing: str = _opt("mean", "comma-separated transforms fit on the training split: "
                              "mean, standardize, pca, zca (or none)")
    augment: Augmentation = field(default_factory=Augmentation)
    train: TrainOptions = field(default_factory=lambda: TrainOptions(
        learning_rate=1e-3, reg=0.1, num_iters=3000))

    def __post_init__(self):
        check_field_types(self)
        check_int("hidden_size", self.hidden_size)
        check_float("std", self.std)
        check_int("seed", self.seed, minimum=0)
        for name in ("num_training", "num_validation", "num_test"):
            value = getattr(self, name)  # training needs validation rows to score
            if value is not None and not isinstance(value, float):
                check_int(name, value)
        if isinstance(self.num_validation, float):
            check_float("num_validation", self.num_validation, 1e-9, 1.0, exclusive_max=True)
        image_size(self)  # a malformed WxH fails now
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        for name, kind in (("augment", Augmentation), ("train", TrainOptions)):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, kind(**value))
            elif not isinstance(value, kind):
                raise TypeError(f"{name} must be a {kind.__name__} or a table, got {value!r}")

    @property
    def preprocessing_steps(self) -> list[str]:
        names = [s.strip() for s in self.preprocessing.split(",") if s.strip()]
        return [] if names == ["none"] else names

    def to_dict(self) -> dict[str, Any]:
        """Flat keys: model and data fields, augmentation fields, training options."""
        flat = {f.name: getattr(self, f.name) for f in _own_fields()}
        flat.update(asdict(self.augment))
        flat.update(self.train.to_dict())
        return flat

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        """Build from flat keys (as :meth:`to_dict` writes them); unknown keys are an error."""
        groups = _key_groups()
        unknown = set(values) - set().union(*groups.values())
        if unknown:
            known = sorted(set().union(*groups.values()))
            hints = [f"{key} (did you mean {' or '.join(close)}?)" if close else key
                     for key in sorted(unknown) for close in [closest_names(key, known)]]
            raise ValueError(f"unknown configuration key(s): {', '.join(hints)}")
        base = cls()
        pick = lambda group: {k: v for k, v in values.items() if k in groups[group]}  # noqa: E731
        return cls(**pick("own"), augment=Augmentation(**{**asdict(base.augment),
                                                          **pick("augment")}),
                   train=TrainOptions(**{**base.train.to_dict(), **pick("train")}))

    def replace(self, **changes: Any) -> RunConfig:
        return RunConfig.from_dict({**self.to_dict(), **changes})


def image_size(cfg: RunConfig) -> tuple[int, int] | None:
    """``cfg.image_size`` ("WxH") as (width, height), or None."""
    return None if cfg.image_size is None else parse_image_size(cfg.image_size)


DATA_FIELDS = ("dataset", "data", "labels", "image_size", "num_training", "num_validation",
               "num_test", "full_test", "preprocessing", "dtype", "augment")


def data_key(cfg: RunConfig) -> tuple:
    """Configurations with equal keys use the same prepared data."""
    return tuple(getattr(cfg, k) for k in DATA_FIELDS)


def population_key(cfg: RunConfig) -> tuple:
    """The one rule for training together: configurations with equal keys can share one
    population (one minibatch stream, stacked networks) — same hidden size, data and
    augmentation settings, and the shared fields of the loop (:data:`SHARED_TRAIN_FIELDS`).
    Optimizers, schedules, learning rates, reg, dropout, label smoothing, early stopping
    and initial scales may all differ."""
    return (cfg.hidden_size, *data_key(cfg),
            *(getattr(cfg.train, k) for k in SHARED_TRAIN_FIELDS))


def _own_fields():
    return [f for f in fields(RunConfig) if f.name not in ("augment", "train")]


def _key_groups():
    return {"own": {f.name for f in _own_fields()},
            "augment": {f.name for f in fields(Augmentation)},
            "train": {f.name for f in fields(TrainOptions)}}


def _all_fields(base=None):
    """(name, default, field) of every flat configuration key; defaults from ``base``."""
    defaults = (base or RunConfig()).to_dict()
    for f in [*_own_fields(), *fields(Augmentation), *fields(TrainOptions)]:
        yield f.name, defaults[f.name], f


def add_config_arguments(parser: argparse.ArgumentParser, base: RunConfig | None = None
                         ) -> None:
    """One ``--flag`` per configuration field (defaults left as None = not given; the
    help shows ``base``'s value, the command's own defaults)."""
    for name, default, f in _all_fields(base):
        flag = "--" + name.replace("_", "-")
        text, choices = f.metadata["help"], f.metadata["choices"]
        if "(default" not in text:
            text += f" (default: {default})"
        text = text.replace("%", "%%")  # argparse formats help with %
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=text)
        elif choices:
            parser.add_argument(flag, choices=choices, default=None, help=text)
        else:
            parser.add_argument(flag, type=_flag_type(f), default=None, metavar=name.upper(),
                                help=text)
    parser.add_argument("--config", metavar="TOML",
                        help="read options from a TOML file (flags override it)")


def _flag_type(f):
    """The argparse type of a field from its annotation: int, float, a number (int or
    float: ``--num-validation 500`` or ``0.1``), or str."""
    kinds = set(annotation_kinds(f)) - {"None"}
    if kinds == {"int", "float"}:
        return _number
    return {"int": int, "float": float}.get(next(iter(kinds)) if len(kinds) == 1 else "", str)


def _number(text):
    try:
        return int(text)
    except ValueError:
        return float(text)


#: Defaults that differ on datasets other than CIFAR-10. The assignment's per-epoch decay
#: of 0.95 suits CIFAR-10's 245-iteration epochs; a small dataset's epochs are a few
#: iterations long, and the same decay would stop its training within a few hundred.
OTHER_DATASET_DEFAULTS = {"learning_rate_decay": 1.0}


def config_from_args(args: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    """Defaults (or ``base``) < the ``--config`` TOML file < flags given; on a dataset
    other than CIFAR-10, :data:`OTHER_DATASET_DEFAULTS` replace defaults nobody chose."""
    values = (base or RunConfig()).to_dict()
    from_file = read_toml(args.config) if getattr(args, "config", None) else {}
    values.update(from_file)
    chosen = set(from_file)
    for name, _, _ in _all_fields():
        given = getattr(args, name, None)
        if given is not None:
            values[name] = given
            chosen.add(name)
            from_file.pop(name, None)
    if values.get("dataset") != "cifar10":
        defaults = RunConfig().to_dict()
        values.update({k: v for k, v in OTHER_DATASET_DEFAULTS.items()
                       if k not in chosen and values[k] == defaults[k]})
    try:
        return RunConfig.from_dict(values)
    except (TypeError, ValueError) as exc:
        key = str(exc).split(" ", 1)[0]  # the checks' messages start with the key
        if key in from_file or (from_file and key == "unknown"):
            raise type(exc)(f"config file {args.config}: {exc}") from None
        raise


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


__all__ = ["Augmentation", "RunConfig", "SHARED_TRAIN_FIELDS", "TrainOptions",
           "add_config_arguments", "config_from_args", "data_key", "image_size",
           "population_key"]
