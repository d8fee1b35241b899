"""The first assignment's toy-model checks, as data: each a row (check, value, tolerance,
pass), and the table that prints such rows.

Used by ``nndl gradcheck`` and by ``nndl reproduce``'s first section, with the second
assignment's checks of :mod:`nndl.layer_checks`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nndl.gradient_check import eval_numerical_gradient, rel_error
from nndl.neural_net import TwoLayerNet

TOY_SCORES = np.array([
    [-1.07260209, 0.05083871, -0.87253915],
    [-2.02778743, -0.10832494, -1.52641362],
    [-0.74225908, 0.15259725, -0.39578548],
    [-0.38172726, 0.10835902, -0.17328274],
    [-0.64417314, -0.18886813, -0.41106892],
])
TOY_LOSS = 1.071696123862817
TOY_FINAL_TRAIN_LOSS = 0.014497864587765886


@dataclass
class CheckResult:
    check: str
    value: float
    tolerance: float

    @property
    def passed(self):
        return bool(self.value < self.tolerance)


def toy_model():
    """``np.random.seed(0); TwoLayerNet(4, 10, 3, std=1e-1)`` — the assignment's toy net."""
    np.random.seed(0)
    return TwoLayerNet(4, 10, 3, std=1e-1)


def toy_data():
    """``np.random.seed(1); X = 10 * randn(5, 4)``; ``y = [0, 1, 2, 2, 1]``."""
    np.random.seed(1)
    return 10 * np.random.randn(5, 4), np.array([0, 1, 2, 2, 1])


def run_toy_checks():
    """All of the assignment's toy checks; returns a list of :class:`CheckResult`.

    The global RNG is saved and restored, so calling this changes no caller's state.
    """
    state = np.random.get_state()
    try:
        net = toy_model()
        X, y = toy_data()
        results = [
            CheckResult("toy scores: summed |difference|",
                        float(np.abs(net.loss(X) - TOY_SCORES).sum()), 1e-7),
            CheckResult("toy loss (reg=0.05): |difference|",
                        abs(net.loss(X, y, reg=0.05)[0] - TOY_LOSS), 1e-12),
        ]
        _, grads = net.loss(X, y, reg=0.05)
        for name in ("W2", "b2", "W1", "b1"):
            numeric = eval_numerical_gradient(lambda _: net.loss(X, y, reg=0.05)[0],
                                              net.params[name], verbose=False)
            results.append(CheckResult(f"toy gradient {name}: max relative error",
                                       rel_error(numeric, grads[name]), 1e-8))
        net = toy_model()
        stats = net.train(X, y, X, y, learning_rate=1e-1, reg=5e-6, num_iters=100)
        results.append(CheckResult("toy final training loss: |difference|",
                                   abs(stats["loss_history"][-1] - TOY_FINAL_TRAIN_LOSS), 1e-10))
        return results
    finally:
        np.random.set_state(state)


def format_table(results):
    """A plain-text table of check results."""
    width = max(len(r.check) for r in results)
    lines = [f"{'check':<{width}}  {'value':>10}  {'tolerance':>9}  pass"]
    for r in results:
        lines.append(f"{r.check:<{width}}  {r.value:>10.3e}  {r.tolerance:>9.0e}  "
                     f"{'yes' if r.passed else 'NO'}")
    return "\n".join(lines)
