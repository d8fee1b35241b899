"""Search settings, importable without Optuna (the CLI builds its parser from them)."""

from __future__ import annotations

from dataclasses import dataclass

SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("none", "median", "halving", "hyperband")
DEFAULT_POPULATION = 32


@dataclass
class SearchSettings:
    """How to search. ``population`` None means automatic (up to 32 at once)."""

    sampler: str = "tpe"
    pruner: str = "halving"
    trials: int = 32
    population: int | None = None
    seed: int = 0
    num_iters: int | None = None
    study: str = "nndl"

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.pruner not in PRUNERS:
            raise ValueError(f"pruner must be one of {PRUNERS}, got {self.pruner!r}")
        if self.trials < 1:
            raise ValueError(f"trials must be >= 1, got {self.trials}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.population is not None and self.population < 1:
            raise ValueError(f"population must be >= 1, got {self.population}")

    @property
    def group_size(self):
        return self.population or DEFAULT_POPULATION
