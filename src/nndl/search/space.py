"""Search spaces: which RunConfig keys vary, over what range, and the grid.

A space is a dict ``name -> Dimension``; any key of :class:`nndl.config.RunConfig`
(model, data or training option) may vary, within what the key accepts
(:data:`nndl.config.PARAMS`: its kind, range and choices). Spaces load from TOML::

    [learning_rate]
    low = 1e-4
    high = 1e-2
    log = true
    grid = [1e-3, 2e-3]          # values for the grid sampler

    [optimizer]
    choices = ["sgd", "adam"]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nndl.config import PARAMS, RunConfig, read_toml

# The keys a dimension of a space file may have; ``float = true`` makes integer bounds a
# float range (as they always are for a key that takes floats only).
SPACE_KEYS = ("low", "high", "log", "choices", "grid", "float")


@dataclass
class Dimension:
    """A float or int range (``low``..``high``, optionally ``log``) or ``choices``;
    ``grid`` lists the grid sampler's values (default: the choices). Checked strictly:
    a wrong type or value is a ValueError naming the key."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list | None = None
    grid: list | None = None
    integer: bool = False

    def __post_init__(self):
        _check_flag("log", self.log)
        _check_flag("integer", self.integer)
        if self.choices is not None:
            self._check_choices()
        else:
            self._check_range()
        if self.grid is not None:
            self._check_grid()

    def _check_range(self):
        if self.low is None or self.high is None:
            raise ValueError("a search dimension needs low and high, or choices")
        for key in ("low", "high"):
            value = getattr(self, key)
            _check_number(key, value)
            if self.integer and not isinstance(value, int):
                raise ValueError(f"{key} of an integer dimension must be an integer, "
                                 f"got {value!r}")
        if not self.low < self.high:
            raise ValueError(f"low must be < high, got low = {self.low}, high = {self.high} "
                             "(to fix one value, give choices = [value])")
        if self.log and self.low <= 0:
            raise ValueError(f"log = true needs low > 0, got low = {self.low}")

    def _check_choices(self):
        if self.low is not None or self.high is not None:
            raise ValueError("give either low and high, or choices, not both")
        if self.log:
            raise ValueError("log applies to low..high ranges, not to choices")
        _check_values("choices", self.choices)

    def _check_grid(self):
        _check_values("grid", self.grid)
        for value in self.grid:
            if self.choices is not None:
                if value not in self.choices:
                    raise ValueError(f"grid value {value!r} is not one of the choices")
                continue
            _check_number("grid value", value)
            if self.integer and not isinstance(value, int):
                raise ValueError(f"grid value {value!r} of an integer dimension is not an "
                                 "integer")
            if not self.low <= value <= self.high:
                raise ValueError(f"grid value {value!r} is outside [{self.low}, {self.high}]")

    def values(self):
        """The values this dimension can give a trial that the configuration must accept:
        the bounds as suggested (int or float), the choices, the grid."""
        if self.choices is not None:
            values = list(self.choices)
        else:
            cast = int if self.integer else float
            values = [cast(self.low), cast(self.high)]
        return values + list(self.grid or [])

    def contains(self, value):
        """Whether a trial of this dimension can take ``value``."""
        if self.choices is not None:
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not float(value).is_integer():
            return False
        return self.low <= value <= self.high

    def grid_values(self):
        values = self.grid if self.grid is not None else self.choices
        if values is None:
            raise ValueError("the grid sampler needs 'grid' values for every range dimension")
        return list(values)

    def suggest(self, trial, name):
        if self.choices is not None:
            return trial.suggest_categorical(name, self.choices)
        if self.integer:
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(name, float(self.low), float(self.high), log=self.log)


def _check_flag(key, value):
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, got {value!r}")


def _check_number(key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {value!r}")


def _check_values(key, values):
    """``values`` is a non-empty list of numbers, strings or booleans (what Optuna stores)."""
    if not isinstance(values, list) or not values:
        raise ValueError(f"{key} must be a non-empty list, got {values!r}")
    for value in values:
        if not isinstance(value, (bool, int, float, str)):
            raise ValueError(f"{key} holds {value!r}: only numbers, strings and booleans")


def default_space():
    """The assignment's hyperparameters at hidden size 50, over ranges where they train:
    learning rate (log), reg (log), batch size, decay and init std. The grid
    (``--sampler grid``) is the assignment's loops: learning rate 1e-3, 1.5e-3, 2e-3 by
    reg 0.05, 0.1, 0.25 at batch 200, decay 0.95, std 1e-4 (3,000 iterations, the base's).

    Chosen from a survey of the previous default space (40 draws of the random sampler on
    CIFAR-10, README "Search"), not from the searches it is judged on; of its draws, 4 of 40
    reached 50% validation, 4 diverged and 18 stalled below 47%:

    - the learning rate runs from 5e-4 to 3e-3: every draw from 4.5e-3 diverged, and of the
      19 below 5e-4, 16 stalled below 47% and none reached 50% (median 45.0%, against
      49.2% between 5e-4 and 3e-3);
    - the iterations are not searched: they are a budget, not a setting to tune (medians
      43.1% at 1,000, 46.6% at 2,000, 48.5% at 3,000 iterations: shorter runs only spent
      trials on worse results); the base configuration's ``num_iters`` (3,000, or
      ``--num-iters``) applies to every trial;
    - reg, decay and std keep the wide ranges the assignment's values sit in: none of
      their values alone diverged or stalled.
    """
    return {
        "learning_rate": Dimension(5e-4, 3e-3, log=True, grid=[1e-3, 1.5e-3, 2e-3]),
        "reg": Dimension(1e-3, 1.0, log=True, grid=[0.05, 0.1, 0.25]),
        "batch_size": Dimension(choices=[100, 200, 400], grid=[200]),
        "learning_rate_decay": Dimension(0.85, 1.0, grid=[0.95]),
        "std": Dimension(1e-5, 1e-3, log=True, grid=[1e-4]),
    }


def base_point(space, base):
    """The values of ``base`` (a RunConfig) for the dimensions of ``space``, when each lies
    in its dimension (within low..high, or one of the choices); else None. A random or
    TPE search runs this point first (Optuna's ``enqueue_trial``): it starts from the
    configuration it would train without searching."""
    values = {**base.to_dict(), "std": base.init_std}  # std's default, resolved
    point = {name: values[name] for name in space}
    return point if all(space[name].contains(v) for name, v in point.items()) else None


def load_space(path):
    """A space from a TOML file (see the module docstring). Every mistake is a ValueError
    naming the file, the dimension and the key: unknown names and keys, wrong types
    (``log = "false"``), infinite or reversed bounds, values the option does not take."""
    space = {}
    for name, spec in read_toml(path).items():
        if name not in PARAMS:
            raise ValueError(f"{path}: unknown search dimension {name!r}")
        if not isinstance(spec, dict):
            raise ValueError(f"{path}: [{name}] must be a table with low/high or choices")
        try:
            space[name] = _dimension(name, spec)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: [{name}] {exc}") from None
    return space


def _dimension(name, spec):
    """The Dimension of one ``[name]`` table, its values checked as ``name`` values: by the
    key's :class:`nndl._params.Param` (kind, range, choices), then as a whole configuration
    (backend and device together). A range over a key of choices is refused."""
    unknown = sorted(set(spec) - set(SPACE_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(map(repr, unknown))}; a dimension takes "
                         f"{', '.join(SPACE_KEYS)}")
    p = PARAMS[name]
    if p.choices is not None and ("low" in spec or "high" in spec):
        raise ValueError(f"{name} takes one of {p.choices}: give choices, not low and high")
    as_float = spec.get("float", False)
    _check_flag("float", as_float)
    integer = "int" in p.kinds and not as_float and all(
        isinstance(spec.get(k), int) and not isinstance(spec.get(k), bool)
        for k in ("low", "high"))
    dim = Dimension(spec.get("low"), spec.get("high"), spec.get("log", False),
                    spec.get("choices"), spec.get("grid"), integer)
    for value in dim.values():  # a range's ends suffice: each key's range is an interval
        p.validate(value)  # raises naming the key and the value
        RunConfig().replace(**{name: value})
    return dim


def grid_of(space):
    return {name: dim.grid_values() for name, dim in space.items()}


def largest_config(space, base):
    """The configuration of ``space`` that needs the most memory: ``base`` with the largest
    hidden size, batch size and number of training images the space can give, its
    costliest optimizer (:data:`nndl.training.OPTIMIZER_MATRICES`) and float64 if it may
    be chosen (what :func:`nndl.workflow.check_memory` checks before a search)."""
    from nndl.training import OPTIMIZER_MATRICES

    values = {name: space[name].values() for name in space}
    largest = {name: max(v for v in values[name] if isinstance(v, int | float))
               for name in ("hidden_size", "batch_size", "num_training") if name in values}
    if "optimizer" in values:
        largest["optimizer"] = max(values["optimizer"], key=OPTIMIZER_MATRICES.__getitem__)
    if "float64" in values.get("dtype", ()):
        largest["dtype"] = "float64"
    return base.replace(**largest)


def grid_size(space):
    """The number of points of the grid of ``space``."""
    size = 1
    for values in grid_of(space).values():
        size *= len(values)
    return size


def space_to_json(space):
    """``space`` as plain data (what a study and metrics.json store)."""
    return {name: vars(dim) for name, dim in space.items()}


def suggest_config(trial, space, base, fixed=None):
    """The RunConfig of ``trial``: ``base`` with the suggested values and ``fixed``
    overrides (e.g. ``--num-iters``) applied."""
    values = {name: dim.suggest(trial, name) for name, dim in space.items()
              if name not in (fixed or {})}
    return base.replace(**values, **(fixed or {}))
