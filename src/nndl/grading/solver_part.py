"""The second assignment's ``Solver`` part: the notebook's sanity check that a three-layer
``FullyConnectedNet`` overfits 50 images.

The 50 images (3 x 8 x 8, random values and labels drawn from the seed) are both the
training and the validation set, so the parameters the Solver keeps (the best validation
accuracy's) are those that fit them best. The student's network (``[100, 100]``, weight
scale 0.1) is trained with the plain ``sgd`` of their ``nndl/optim.py`` (learning rate 0.1,
batches of 25, 20 epochs: nndl's reference reaches 100% on every seed tried) by their own
Solver, ``utils/solver.py`` or ``nndl/solver.py`` when the submission has one (the course
ships it with the starter code); a submission without one is trained by nndl check's own
minimal loop of the course's Solver (``_solver_loop.py``, loaded in the child from its file:
the child never imports nndl), and the part says so. It passes when the trained network
classifies at least 90% of the images right.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nndl._typing import NDArray
from nndl.grading import wire
from nndl.grading.compare import array
from nndl.grading.parts import Part, Passed, Task
from nndl.grading.verdicts import Wrong

LOOP = Path(__file__).with_name("_solver_loop.py")
#: Where a submission's own Solver is looked for, in order.
SOLVERS = ("utils/solver.py", "nndl/solver.py")
IMAGES, IMAGE_SHAPE, CLASSES, HIDDEN = 50, (3, 8, 8), 10, [100, 100]
RUN = {"update_rule": "sgd", "optim_config": {"learning_rate": 0.1}, "lr_decay": 1.0,
       "batch_size": 25, "num_epochs": 20, "print_every": 1000, "verbose": False}
WEIGHT_SCALE = 0.1
PASS_ACCURACY = 0.9


@dataclass(frozen=True)
class OverfitCase:
    seed: int
    X: NDArray
    y: NDArray
    init_seed: int


def draw_overfit_case(seed: int) -> OverfitCase:
    rng = np.random.default_rng([seed, 5])
    X = rng.standard_normal((IMAGES, *IMAGE_SHAPE))
    return OverfitCase(seed, X, rng.integers(0, CLASSES, IMAGES),
                       int(rng.integers(0, 2**31 - 1)))


def solver_source(root: Path) -> str:
    """The submission's Solver file (relative), or "" when it has none."""
    return next((s for s in SOLVERS if (root / s).is_file()), "")


class SolverPart:
    """The overfitting part of one drawn :class:`OverfitCase`, with the Solver of
    ``source`` (a submission's file, or "" for nndl check's loop)."""

    def __init__(self, case: OverfitCase, source: str) -> None:
        self.case, self.source = case, source

    @property
    def used(self) -> str:
        return (f"your {self.source}" if self.source else "nndl check's minimal Solver loop: "
                "the submission has no utils/solver.py")

    def task(self) -> Task:
        c = self.case
        X = wire.array(c.X)
        data = {"X_train": X, "y_train": wire.array(c.y), "X_val": X, "y_val": wire.array(c.y)}
        solver = (wire.load("solvers", module=self.source[:-3].replace("/", "."),
                            label=f"import {self.source}") if self.source
                  else wire.load("solvers", file=str(LOOP), label="nndl check's Solver loop"))
        net_words = f"FullyConnectedNet({HIDDEN}, weight_scale={WEIGHT_SCALE})"
        steps = [wire.seed(c.init_seed), wire.let("data", data),
                 wire.call("net", wire.ref("module", ".FullyConnectedNet"), [HIDDEN],
                           {"input_dim": int(np.prod(IMAGE_SHAPE)), "num_classes": CLASSES,
                            "weight_scale": WEIGHT_SCALE, "dtype": "float64"},
                           label=net_words),
                 solver,
                 wire.call("solver", wire.ref("solvers", ".Solver"),
                           [wire.ref("net"), wire.ref("data")], dict(RUN),
                           label="Solver(model, small_data, update_rule='sgd', ...)"),
                 wire.call("trained", wire.ref("solver", ".train"), label="solver.train()"),
                 wire.call("scores", wire.ref("net", ".loss"), [X],
                           label="model.loss(X) after training")]
        return Task("solver", steps, ["scores"], needs=("fc",), module="nndl.fc_net",
                    batch=True)

    def part(self) -> Part:
        return Part("solver", "Solver: overfitting 50 images", "solver", self.judge,
                    depends=("fc_grads_reference", "sgd"))

    def judge(self, values: dict[str, Any]) -> Passed:
        scores = array(values["scores"], (IMAGES, CLASSES), "model.loss(X) after training")
        accuracy = float(np.mean(np.argmax(scores, axis=1) == self.case.y))
        said = (f"training accuracy {accuracy:.0%} on the 50 images after "
                f"{RUN['num_epochs']} epochs ({self.used})")
        if accuracy >= PASS_ACCURACY:
            return Passed(said, accuracy, 1.0, PASS_ACCURACY)
        hint = ("the scores became NaN or infinite during training"
                if not np.all(np.isfinite(scores)) else "")
        raise Wrong(f"{said}; expected at least {PASS_ACCURACY:.0%} (nndl's reference reaches "
                    "100%)", accuracy, 1.0, PASS_ACCURACY, hint)
