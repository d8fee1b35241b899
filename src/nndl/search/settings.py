"""Search settings, importable without Optuna (the CLI builds its parser from them)."""

from __future__ import annotations

from dataclasses import dataclass

SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("auto", "none", "median", "halving", "hyperband")
DEFAULT_POPULATION = 32
#: The longest study name: what Optuna's database schema holds (in every storage, so that a
#: study can move from a journal file to a database).
MAX_STUDY_NAME = 512

#: Successive halving's reduction factor (Optuna's default): a rung keeps the top 1/4.
HALVING_REDUCTION = 4
#: The smallest search that ``--pruner auto`` prunes: ``η (2η - 1)`` = 28 for η = 4.
#: Optuna's asynchronous halving ranks a trial at a rung against the trials that reached
#: it before; until 2η have, it keeps a trial only if it beats every one of them (of 8
#: equally good trials it prunes about 5, on one noisy epoch of evidence). From η (2η - 1)
#: trials on, such best-so-far decisions are at most a 1/η share of the search, the share
#: halving means to keep; below, a search has little time to save and few completed
#: trials to choose from, so every trial runs its budget.
HALVING_FROM_TRIALS = HALVING_REDUCTION * (2 * HALVING_REDUCTION - 1)


@dataclass
class SearchSettings:
    """How to search. ``population`` None means automatic (up to 32 at once); ``pruner``
    ``"auto"`` is halving from :data:`HALVING_FROM_TRIALS` trials on, else none
    (:func:`resolve_pruner`)."""

    sampler: str = "tpe"
    pruner: str = "auto"
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
        if not 1 <= len(self.study) <= MAX_STUDY_NAME:
            raise ValueError(f"study name must have 1 to {MAX_STUDY_NAME} characters, got "
                             f"{len(self.study)}")

    @property
    def group_size(self):
        return self.population or DEFAULT_POPULATION


def resolve_pruner(settings):
    """The pruner a search of ``settings`` runs: ``settings.pruner``, with ``"auto"``
    resolved by the number of trials (halving from :data:`HALVING_FROM_TRIALS` on)."""
    if settings.pruner != "auto":
        return settings.pruner
    return "halving" if settings.trials >= HALVING_FROM_TRIALS else "none"
