"""Learning-rate schedules: ``schedule(it) -> multiplier`` of the base rate.

Every schedule is built from the run's length (``num_iters``) and epoch length
(``iterations_per_epoch``), so the same name means the same shape at any scale.
"""

from __future__ import annotations

import math

from nndl._typing import Schedule

SCHEDULES = ("epoch_decay", "step", "cosine", "one_cycle", "constant")


def epoch_decay(decay: float, iterations_per_epoch: int) -> Schedule:
    """The assignment's rule: the rate is multiplied by ``decay`` after the update
    of every iteration ``it`` with ``it % iterations_per_epoch == 0`` (it = 0 included).

    Iteration 0 therefore runs at the base rate, iterations 1..ipe at ``decay``,
    the next epoch at ``decay**2``, and so on.
    """

    def schedule(it: int) -> float:
        return 1.0 if it == 0 else decay ** ((it - 1) // iterations_per_epoch + 1)

    return schedule


def step_decay(decay: float, step_epochs: float, iterations_per_epoch: int) -> Schedule:
    """Multiply by ``decay`` every ``step_epochs`` epochs."""
    span = max(1, round(step_epochs * iterations_per_epoch))
    return lambda it: decay ** (it // span)


def cosine(num_iters: int, final_fraction: float = 0.0) -> Schedule:
    """Cosine annealing from 1 to ``final_fraction`` over the run."""

    def schedule(it: int) -> float:
        progress = min(it / max(num_iters - 1, 1), 1.0)
        return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))

    return schedule


def one_cycle(num_iters: int, peak_fraction: float = 0.3, start: float = 0.04,
              end: float = 1e-4) -> Schedule:
    """Smith's one-cycle: linear rise from ``start`` to 1 over ``peak_fraction`` of the
    run, then linear fall to ``end``."""
    peak = max(1, round(peak_fraction * num_iters))

    def schedule(it: int) -> float:
        if it < peak:
            return start + (1 - start) * it / peak
        return 1 - (1 - end) * min((it - peak) / max(num_iters - peak, 1), 1.0)

    return schedule


def with_warmup(schedule: Schedule, warmup_iters: int) -> Schedule:
    """Linear warmup over the first ``warmup_iters`` iterations, then ``schedule``."""
    if warmup_iters <= 0:
        return schedule
    return lambda it: schedule(it) * min(1.0, (it + 1) / warmup_iters)


def make_schedule(name: str, *, num_iters: int, iterations_per_epoch: int, decay: float = 0.95,
                  step_epochs: float = 10, warmup_iters: int = 0) -> Schedule:
    """The schedule called ``name`` (one of :data:`SCHEDULES`), with optional warmup."""
    if name == "epoch_decay":
        base = epoch_decay(decay, iterations_per_epoch)
    elif name == "step":
        base = step_decay(decay, step_epochs, iterations_per_epoch)
    elif name == "cosine":
        base = cosine(num_iters)
    elif name == "one_cycle":
        base = one_cycle(num_iters)
    elif name == "constant":
        base = lambda it: 1.0  # noqa: E731
    else:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {name!r}")
    return with_warmup(base, warmup_iters)
