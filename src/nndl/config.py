"""The typed configuration: training options, augmentation, and the whole run.

:class:`TrainOptions` is every knob of the training loop, :class:`Augmentation` the one
augmentation spec that data preparation, the loop and the search all read, and
:class:`RunConfig` a whole run (model + data + augmentation + training). Their fields are
the flags of ``nndl train`` (``learning_rate`` -> ``--learning-rate``, built by
:mod:`nndl.flags`) and the keys of its TOML files; precedence is defaults < config file <
flags given on the command line (:func:`merge_config`).

The fields are the one table of parameters: each is declared once, as ``name: type =
param(default, help, low=..., high=..., choices=..., shared=...)``
(:class:`nndl._params.Param`), and :data:`PARAMS` lists them all, flat. The
``__post_init__`` checks, the flags and their ``--help``, the TOML keys, the search
space's checks (:mod:`nndl.search.space`), the scikit-learn estimator's validation and
docstring (:mod:`nndl.sklearn`) and the README's parameter table all read it.

How to add a parameter: add one field to :class:`TrainOptions` (an option of the training
loop), :class:`Augmentation` (a random change to training images) or :class:`RunConfig`
(model or data), written with :func:`param`: its annotation (``int``, ``float``, ``str``,
``bool``, ``X | None``) is its type, and ``low``/``high`` (``low_open``/``high_open`` to
exclude an end), ``choices`` or a ``check`` function its constraints (a key of another
kind, a list of sizes say, adds ``parse``: its flag's text -> value, and ``accepts``: what
it takes, in words); ``shared="data"`` or ``"population"`` when configurations must agree
on it to share prepared data or to train as one population. It then is a flag of ``nndl
train`` and ``nndl search``, a TOML key, a searchable dimension, checked on every
construction, and listed in the README's table (regenerate it with ``python -m
nndl.flags``; a test compares them). Then use it
(``cfg.train.name`` in the loop, ...); a :class:`TrainOptions` field is also a parameter of
:class:`nndl.sklearn.TwoLayerNetClassifier` (add it to its ``__init__``: a test says so).

:func:`population_key` is the one rule for which configurations can train together as one
population (one minibatch stream, stacked networks): the search and the loop both use it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from nndl._params import Param, check_params, param, params_of
from nndl._typing import NDArray, PathLike, RandomState
from nndl._validation import check_float, check_int, closest_names, parse_image_size
from nndl.backend import BACKENDS, resolve_backend
from nndl.optim import RULES
from nndl.sampling import SAMPLERS
from nndl.schedules import SCHEDULES
from nndl.transforms import random_flip, random_translate

#: nndl's own update-rule names (``--optimizer``): the keys of :data:`nndl.optim.RULES`. The
#: course's functions of the second assignment (also :mod:`nndl.optim`) are named
#: differently: sgd_momentum, sgd_nesterov_momentum, ...
OPTIMIZERS = tuple(RULES)


def _device(name, value):
    if value not in ("cpu", "cuda") and not value.startswith("cuda:"):
        raise ValueError(f"{name} must be cpu or cuda[:N], got {value!r}")


def _image_size(name, value):
    parse_image_size(value)  # its message names the "image size"


def parse_hidden_sizes(text: str) -> tuple[int, ...]:
    """``"500,500,500"`` -> (500, 500, 500); ValueError unless each width is an int >= 1."""
    parts = [part.strip() for part in str(text).split(",")]
    try:
        sizes = tuple(int(part) for part in parts)
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise ValueError(f"hidden_sizes must be comma-separated widths >= 1, e.g. 500,500,500, "
                         f"got {text!r}")
    return sizes


def _hidden_sizes(name, value):
    parse_hidden_sizes(value)


def _std(name, value):
    """A float >= 0 or "auto"."""
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f"{name} must be a number >= 0 or 'auto', got {value!r}")
    else:
        check_float(name, value, 0.0)


def _parse_std(text):
    return text if text == "auto" else float(text)


def _count_or_fraction(name, value):
    """An int >= 1 (a count of images) or a float in (0, 1) (a fraction of them)."""
    if isinstance(value, float):
        check_float(name, value, 0.0, 1.0, exclusive_min=True, exclusive_max=True)
    else:
        check_int(name, value)


@dataclass
class TrainOptions:
    """Every knob of the training loop. The defaults are the assignment's ``train``.

    ``num_iters``, ``batch_size``, ``batch_sampler``, ``backend`` and ``device`` describe the
    minibatch stream and where it runs (:data:`SHARED_TRAIN_FIELDS`): networks that train as
    one population share them. Every other option may differ from member to member.
    """

    learning_rate: float = param(1e-3, "base learning rate", low=0)
    learning_rate_decay: float = param(0.95, "per-epoch multiplier (schedule epoch_decay)",
                                       low=0, high=1)
    reg: float = param(1e-5, "L2 strength: loss += 0.5 * reg * (|W1|^2 + |W2|^2)", low=0)
    num_iters: int = param(100, "training iterations (minibatches)", low=1,
                           shared="population")
    batch_size: int = param(200, "minibatch size", low=1, shared="population")
    optimizer: str = param("sgd", "update rule", choices=OPTIMIZERS)
    momentum: float = param(0.9, "momentum coefficient (momentum, nesterov)", low=0, high=1,
                            high_open=True)
    weight_decay: float = param(0.0, "decoupled weight decay (adamw)", low=0)
    schedule: str = param("epoch_decay", "learning-rate schedule", choices=SCHEDULES)
    step_epochs: float = param(10.0, "epochs between decays (schedule step)", low=0,
                               low_open=True)
    warmup_iters: int = param(0, "linear learning-rate warmup iterations", low=0)
    batch_sampler: str = param("replacement", "replacement (the assignment's), shuffle "
                               "(epoch permutations) or blocks (contiguous blocks, no gather)",
                               choices=SAMPLERS, shared="population")
    dropout: float = param(0.0, "probability of dropping a hidden unit while training", low=0,
                           high=1, high_open=True)
    label_smoothing: float = param(0.0, "label smoothing of the cross-entropy targets", low=0,
                                   high=1, high_open=True)
    early_stopping: int = param(0, "stop after N epochs without a better validation accuracy "
                                "and restore the best weights (0 = off)", low=0)
    backend: str = param("numpy", "array backend", choices=BACKENDS, shared="population")
    device: str = param("cpu", "cpu or cuda (a GPU through torch or cupy; with the numpy "
                        "backend, cuda picks whichever is installed)", check=_device,
                        accepts='"cpu", "cuda" or "cuda:N"',
                        shared="population")

    def __post_init__(self):
        check_params(self)
        if (self.backend, self.device) != ("numpy", "cpu"):
            resolve_backend(self.backend, self.device)  # fail now, before any data is loaded

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> TrainOptions:
        return TrainOptions(**{**self.to_dict(), **changes})


#: The options of the loop that networks training as one population share (the minibatch
#: stream and where it runs): those declared ``shared="population"``.
SHARED_TRAIN_FIELDS = tuple(n for n, p in params_of(TrainOptions).items()
                            if p.shared == "population")


@dataclass(frozen=True)
class Augmentation:
    """Random changes to each training image (N, H, W, C), drawn per minibatch and per image,
    applied in field order before flattening and preprocessing. An augmentation is one
    field here (with its help text) and one function in :mod:`nndl.transforms`."""

    flip: bool = param(False, "augmentation: random horizontal flips")
    translate: int = param(0, "augmentation: random translations of up to N pixels (0 = off)",
                           low=0)

    def __post_init__(self):
        check_params(self)

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

    hidden_size: int = param(50, "hidden units H (one hidden layer)", low=1,
                             shared="population")
    hidden_sizes: str | None = param(
        None, "widths of several hidden layers, comma-separated, e.g. 500,500,500 (default: "
        "one layer of hidden_size)", check=_hidden_sizes, accepts='"H1,H2,..." or None',
        shared="population")
    batchnorm: bool = param(False, "batch normalization before each hidden layer's ReLU",
                            shared="population")
    std: float | str | None = param(
        None, "initial weight scale: W = std * N(0, 1), or auto (He: sqrt(2 / fan-in) per "
        "layer); default 1e-4 (the assignment's) for one hidden layer without batchnorm, "
        "else auto", check=_std, parse=_parse_std, accepts='float >= 0, "auto" or None')
    dtype: str = param("float64", "float64 (the assignment's) or float32 (faster)",
                       choices=("float32", "float64"), shared="data")
    seed: int = param(0, "random seed for initialization, minibatches and augmentation",
                      low=0)
    dataset: str = param("cifar10", "a dataset name (cifar10, cifar100, mnist, fashion-mnist, "
                         "digits) or the path of an image folder or .npz file", shared="data")
    data: str | None = param(None, "data root where named datasets are looked for and "
                             "downloaded (default: $NNDL_DATA, else the user cache)",
                             shared="data")
    labels: str = param("fine", "cifar100's labels: fine (100 classes) or coarse (20)",
                        choices=("fine", "coarse"), shared="data")
    image_size: str | None = param(None, "resize an image folder's images to WxH, e.g. 32x32 "
                                   "(default: their own size, which they must share)",
                                   check=_image_size, accepts='"WxH" or None',
                                   shared="data")
    num_training: int | None = param(None, "training images (default: all but the validation "
                                     "ones; cifar10: the assignment's first 49,000)", low=1,
                                     shared="data")
    num_validation: int | float | None = param(
        None, "validation images, or a fraction of the training ones (default: cifar10 the "
        "1,000 after the training ones; others a stratified 1,000 or 10%, whichever is fewer)",
        check=_count_or_fraction, accepts="int >= 1, float in (0, 1) or None", shared="data")
    num_test: int | None = param(None, "test images (default: cifar10 the assignment's first "
                                 "1,000; others the whole official test set, or a stratified "
                                 "20% where there is none)", low=1, shared="data")
    full_test: bool = param(False, "use the whole test set (cifar10: all 10,000)",
                            shared="data")
    preprocessing: str = param("mean", "comma-separated transforms fit on the training split: "
                               "mean, standardize, pca, zca (or none)", shared="data")
    augment: Augmentation = field(default_factory=Augmentation)
    train: TrainOptions = field(default_factory=lambda: TrainOptions(
        learning_rate=1e-3, reg=0.1, num_iters=3000))

    def __post_init__(self):
        check_params(self)
        if self.hidden_sizes is not None:  # normalized; hidden_size is the first width
            widths = parse_hidden_sizes(self.hidden_sizes)
            self.hidden_sizes = ",".join(map(str, widths))
            self.hidden_size = widths[0]
        for name, kind in (("augment", Augmentation), ("train", TrainOptions)):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, kind(**value))
            elif not isinstance(value, kind):
                raise TypeError(f"{name} must be a {kind.__name__} or a table, got {value!r}")

    @property
    def hidden_widths(self) -> tuple[int, ...]:
        """The hidden layers' widths: ``hidden_sizes``, else one layer of ``hidden_size``."""
        if self.hidden_sizes is None:
            return (self.hidden_size,)
        return parse_hidden_sizes(self.hidden_sizes)

    @property
    def first_assignment_network(self) -> bool:
        """One hidden layer without batch normalization: the first assignment's
        :class:`nndl.neural_net.TwoLayerNet`."""
        return len(self.hidden_widths) == 1 and not self.batchnorm

    @property
    def init_std(self) -> float | str:
        """``std`` resolved: 1e-4 for the first assignment's network, else ``"auto"``."""
        if self.std is not None:
            return self.std
        return 1e-4 if self.first_assignment_network else "auto"

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


def _own_params() -> dict[str, Param]:
    return params_of(RunConfig)


#: The keys of the prepared data (those declared ``shared="data"``, and the augmentation).
DATA_FIELDS = (*(n for n, p in _own_params().items() if p.shared == "data"), "augment")

#: Every configuration key's :class:`nndl._params.Param`, flat, in flag order: the model
#: and data keys, the augmentation's, the training options'.
PARAMS: dict[str, Param] = {**_own_params(), **params_of(Augmentation),
                            **params_of(TrainOptions)}


def data_key(cfg: RunConfig) -> tuple:
    """Configurations with equal keys use the same prepared data."""
    return tuple(getattr(cfg, k) for k in DATA_FIELDS)


def population_key(cfg: RunConfig) -> tuple:
    """The one rule for training together: configurations with equal keys can share one
    population (one minibatch stream, stacked networks) — same hidden size, data and
    augmentation settings, and the shared fields of the loop (:data:`SHARED_TRAIN_FIELDS`).
    Optimizers, schedules, learning rates, reg, dropout, label smoothing, early stopping
    and initial scales may all differ."""
    own = [k for k, p in _own_params().items() if p.shared == "population"]
    return (*(getattr(cfg, k) for k in own), *data_key(cfg),
            *(getattr(cfg.train, k) for k in SHARED_TRAIN_FIELDS))


def _own_fields():
    return [f for f in fields(RunConfig) if f.name not in ("augment", "train")]


def _key_groups():
    return {"own": {f.name for f in _own_fields()},
            "augment": {f.name for f in fields(Augmentation)},
            "train": {f.name for f in fields(TrainOptions)}}


#: Defaults that differ on datasets other than CIFAR-10. The assignment's per-epoch decay
#: of 0.95 suits CIFAR-10's 245-iteration epochs; a small dataset's epochs are a few
#: iterations long, and the same decay would stop its training within a few hundred.
OTHER_DATASET_DEFAULTS = {"learning_rate_decay": 1.0}


def merge_config(base: RunConfig | None = None, from_file: Mapping[str, Any] | None = None,
                 given: Mapping[str, Any] | None = None, source: str = "") -> RunConfig:
    """Defaults (or ``base``) < ``from_file`` (the keys of the TOML file ``source``) <
    ``given`` (flags given on the command line); on a dataset other than CIFAR-10,
    :data:`OTHER_DATASET_DEFAULTS` replace defaults nobody chose. An error in a key that
    came from the file names the file."""
    values = (base or RunConfig()).to_dict()
    from_file, given = dict(from_file or {}), dict(given or {})
    values.update(from_file)
    values.update(given)
    chosen = set(from_file) | set(given)
    for name in given:
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
            raise type(exc)(f"config file {source}: {exc}") from None
        raise


def read_toml(path: PathLike) -> dict[str, Any]:
    """The keys of the TOML file ``path``; a missing or malformed file is one error naming
    it."""
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


__all__ = ["Augmentation", "PARAMS", "RunConfig", "SHARED_TRAIN_FIELDS", "TrainOptions",
           "data_key", "image_size", "merge_config", "population_key", "read_toml"]
