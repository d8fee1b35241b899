"""The first assignment's toy problem, drawn at check time from a seed, and the answers.

The shapes are the notebook's (5 rows of 4 features, 10 hidden units, 3 classes, weights of
scale 0.1, inputs of scale 10); the numbers are drawn from ``--seed``, so that nothing can be
copied from a printed answer, and the same seed draws the same problem. Biases are drawn
non-zero (a missing bias shows), and a draw is kept only when it is unambiguous: no hidden
pre-activation within 1e-3 of the ReLU's kink (a numerical gradient never steps over it),
no two class scores within 1e-6 of each other (``predict`` has one answer), and every
mistake of :mod:`nndl.grading.mistakes` changes what it changes by far more than the
tolerance (and the rest not at all), so each hint is certain.

The answers (:class:`Answers`) are nndl's reference, :class:`nndl.neural_net.TwoLayerNet`,
in the student's layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nndl._typing import NDArray, Params
from nndl.gradient_check import rel_error
from nndl.grading.mistakes import GRADS, MISTAKES, mistaken_outputs, network
from nndl.grading.variants import Variant
from nndl.neural_net import TwoLayerNet

N, D, H, C = 5, 4, 10, 3
STD = 0.1
KINK_MARGIN = 1e-3
#: How far a mistake's output must be from the reference's for its hint to be certain.
CLEAR = {"scores": 1e-5, "loss": 1e-7, "grads": 1e-4}
#: The notebook's toy training run.
TRAIN: dict[str, Any] = {"learning_rate": 1e-1, "learning_rate_decay": 0.95, "reg": 5e-6,
                         "num_iters": 100, "batch_size": 200}


@dataclass(frozen=True)
class ToyCase:
    """One drawn problem: parameters (reference layout), data, reg, and the seeds the
    child gives NumPy's global RNG before building the network and before training."""

    seed: int
    params: Params
    X: NDArray
    y: NDArray
    reg: float
    init_seed: int
    sample_seed: int
    sizes: tuple[int, int, int] = (D, H, C)
    std: float = STD


@dataclass
class Answers:
    """The reference's outputs on a :class:`ToyCase`, in the student's layout, and each
    mistake's (``mistakes[name][quantity]``)."""

    scores: NDArray
    loss: float
    grads: Params
    labels: NDArray
    train_history: list[float]
    mistakes: dict[str, dict] = field(default_factory=dict)


def draw_case(seed: int, variant: Variant, attempts: int = 1000) -> ToyCase:
    """The problem of ``seed``: the first unambiguous draw of its stream."""
    for attempt in range(attempts):
        rng = np.random.default_rng([seed, attempt])
        params = {"W1": STD * rng.standard_normal((H, D)), "b1": STD * rng.standard_normal(H),
                  "W2": STD * rng.standard_normal((C, H)), "b2": STD * rng.standard_normal(C)}
        X = 10.0 * rng.standard_normal((N, D))
        y = rng.integers(0, C, N)
        reg = float(rng.uniform(0.05, 0.5))
        seeds = rng.integers(0, 2**31 - 1, 2)
        case = ToyCase(seed, params, X, y, reg, int(seeds[0]), int(seeds[1]))
        if unambiguous(case, variant):
            return case
    raise RuntimeError(f"no unambiguous toy problem in {attempts} draws of seed {seed}")


def unambiguous(case: ToyCase, variant: Variant) -> bool:
    """Whether ``case`` keeps clear of the ReLU's kink and of ties, and tells every mistake
    apart from the reference."""
    p = case.params
    a1 = case.X @ p["W1"].T + p["b1"]
    if np.min(np.abs(a1)) < KINK_MARGIN:
        return False
    scores = np.sort(np.maximum(a1, 0) @ p["W2"].T + p["b2"], axis=1)
    if np.min(scores[:, -1] - scores[:, -2]) < 1e-6:
        return False
    coef, other = variant.coefficient(case.reg), variant.other.coefficient(case.reg)
    reference = network(p, case.X, case.y, coef, other)
    for mistake in MISTAKES:
        wrong = network(p, case.X, case.y, coef, other, mistake.name)
        distances = [(q, _distance(q, wrong, reference)) for q in CLEAR
                     if q in mistake.quantities]
        if any(0 < d < CLEAR[q] for q, d in distances) or not any(d > 0 for _, d in distances):
            return False
    return True


def _distance(quantity: str, wrong: dict, right: dict) -> float:
    """How far a mistake moves ``quantity``: 0 when not at all; for gradients the smallest
    relative error among those it changes."""
    if quantity == "scores":
        return float(np.max(np.abs(wrong["scores"] - right["scores"])))
    if quantity == "loss":
        return abs(wrong["loss"] - right["loss"])
    changed = [rel_error(wrong[g], right[g]) for g in GRADS
               if not np.array_equal(wrong[g], right[g])]
    return min(changed, default=0.0)


def answers(case: ToyCase, variant: Variant) -> Answers:
    """The reference's outputs on ``case`` (student layout) and every mistake's."""
    reg = variant.reference_reg(case.reg)
    net = TwoLayerNet.from_params({k: v.copy() for k, v in case.params.items()})
    scores = np.asarray(net.loss(case.X))
    loss, grads = net.loss(case.X, case.y, reg=reg)
    trained = TwoLayerNet.from_params({k: v.copy() for k, v in case.params.items()},
                                      random_state=np.random.RandomState(case.sample_seed))
    train = {**TRAIN, "reg": variant.reference_reg(TRAIN["reg"])}
    history = trained.train(case.X, case.y, case.X, case.y, **train)["loss_history"]
    mistakes = {name: {**outputs, **variant.to_student({g: outputs[g] for g in GRADS})}
                for name, outputs in mistaken_outputs(case.params, case.X, case.y, case.reg,
                                                      variant).items()}
    return Answers(scores, float(loss), variant.to_student(grads), net.predict(case.X),
                   [float(v) for v in history], mistakes)
