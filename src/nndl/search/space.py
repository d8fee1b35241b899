"""Search spaces: which RunConfig keys vary, over what range, and the grid.

A space is a dict ``name -> Dimension``; any key of :class:`nndl.config.RunConfig`
(model, data or training option) may vary. Spaces load from TOML::

    [learning_rate]
    low = 1e-4
    high = 1e-2
    log = true
    grid = [1e-3, 2e-3]          # values for the grid sampler

    [optimizer]
    choices = ["sgd", "adam"]
"""

from __future__ import annotations

from dataclasses import dataclass

from nndl.config import RunConfig, read_toml


@dataclass
class Dimension:
    """A float or int range (``low``..``high``, optionally ``log``) or ``choices``;
    ``grid`` lists the grid sampler's values (default: the choices)."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list | None = None
    grid: list | None = None
    integer: bool = False

    def __post_init__(self):
        if self.choices is None and (self.low is None or self.high is None):
            raise ValueError("a search dimension needs low and high, or choices")
        if self.choices is None and not self.low <= self.high:
            raise ValueError(f"low must be <= high, got {self.low} > {self.high}")
        if self.log and self.choices is None and self.low <= 0:
            raise ValueError("a log-scale dimension needs low > 0")

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


def default_space():
    """The assignment's dimensions at hidden size 50: learning rate (log), reg (log),
    batch size, iterations, decay and init std; the grid is the assignment's loops."""
    return {
        "learning_rate": Dimension(1e-4, 5e-3, log=True, grid=[1e-3, 1.5e-3, 2e-3]),
        "reg": Dimension(1e-3, 1.0, log=True, grid=[0.05, 0.1, 0.25]),
        "batch_size": Dimension(choices=[100, 200, 400], grid=[200]),
        "num_iters": Dimension(choices=[1000, 2000, 3000], grid=[3000]),
        "learning_rate_decay": Dimension(0.85, 1.0, grid=[0.95]),
        "std": Dimension(1e-5, 1e-3, log=True, grid=[1e-4]),
    }


def load_space(path):
    """A space from a TOML file (see the module docstring); keys are checked."""
    known = set(RunConfig().to_dict())
    space = {}
    for name, spec in read_toml(path).items():
        if name not in known:
            raise ValueError(f"{path}: unknown search dimension {name!r}")
        if not isinstance(spec, dict):
            raise ValueError(f"{path}: [{name}] must be a table with low/high or choices")
        integer = isinstance(spec.get("low"), int) and isinstance(spec.get("high"), int) \
            and not spec.get("float", False)
        space[name] = Dimension(spec.get("low"), spec.get("high"), bool(spec.get("log")),
                                spec.get("choices"), spec.get("grid"), integer)
    return space


def grid_of(space):
    return {name: dim.grid_values() for name, dim in space.items()}


def suggest_config(trial, space, base, fixed=None):
    """The RunConfig of ``trial``: ``base`` with the suggested values and ``fixed``
    overrides (e.g. ``--num-iters``) applied."""
    values = {name: dim.suggest(trial, name) for name, dim in space.items()
              if name not in (fixed or {})}
    return base.replace(**values, **(fixed or {}))
