"""What ``--resume`` does with the flags it is given.

A resumed study keeps its own space, base configuration and settings (stored in it). Of
the options the caller chose, :data:`RESUME_APPLIES` take effect; every other one must
equal the study's value: it would change what a trial means, and the finished trials
would no longer compare with the new ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from nndl.config import RunConfig
from nndl.search.settings import SearchSettings, resolve_pruner
from nndl.search.space import grid_size, space_to_json

#: The settings that ``--resume`` applies when given: the trials the study should have in
#: all, and how many train at once.
RESUME_APPLIES = ("trials", "population")


@dataclass
class Requested:
    """What a resume was asked for: a space, base and settings, of which the names in
    ``given`` were chosen (the rest are defaults, not requests)."""

    space: dict
    base: RunConfig
    settings: SearchSettings
    given: Iterable[str] = ()


def resume_settings(requested, space, base, stored):
    """``stored`` (the study's settings) with the changes ``requested`` that apply
    (:data:`RESUME_APPLIES`); a ValueError naming the flag and the stored value for any
    other requested value that differs from the study's (``space``, ``base``, ``stored``)."""
    given = set(requested.given)
    for name in sorted(given - set(RESUME_APPLIES)):
        if name in space and name in requested.base.to_dict():
            raise ValueError(f"--resume: {_flag(name)} would fix {name}, which this study "
                             "searches; a resumed study keeps its space")
        mine, theirs = _requested_and_stored(name, requested, space, base, stored)
        if mine != theirs:
            shown = "" if name == "space" else f" {mine}"
            raise ValueError(f"--resume: {_flag(name)}{shown} differs from this study's "
                             f"{name} {_show(theirs)}; a resumed study keeps what its trials "
                             "mean (only --trials, --population, --workers and --storage-wait "
                             "apply): leave the flag "
                             "out, or start a new search")
    changes = {n: getattr(requested.settings, n) for n in RESUME_APPLIES if n in given}
    settings = replace(stored, **changes)
    if settings.sampler == "grid":
        settings.trials = min(settings.trials, grid_size(space))
    return settings


def _requested_and_stored(name, requested, space, base, stored):
    if name == "space":
        return space_to_json(requested.space), space_to_json(space)
    if name == "pruner":  # "auto" resolves by the number of trials the study will have
        trials = requested.settings.trials if "trials" in requested.given else stored.trials
        return resolve_pruner(replace(requested.settings, trials=trials)), stored.pruner
    if name in ("sampler", "seed"):
        return getattr(requested.settings, name), getattr(stored, name)
    return requested.base.to_dict()[name], base.to_dict()[name]


def _flag(name):
    return {"seed": "--seed-search"}.get(name, "--" + name.replace("_", "-"))


def _show(value):
    return f"({', '.join(value)})" if isinstance(value, dict) else str(value)
