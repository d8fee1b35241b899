"""The first assignment's parts: ``TwoLayerNet`` in ``neural_net.py``.

Parts, each its own line: the toy scores; the toy loss with regularization; each gradient
(W1, b1, W2, b2) against the numerical gradient of the student's own loss and against the
reference; the toy training run's final loss; ``predict``; and with ``--full`` the
notebook's default run on CIFAR-10, whose validation accuracy must fall in 25-32%.

Every toy task builds the student's network as the notebook does (``np.random.seed``, then
``TwoLayerNet(4, 10, 3, std=0.1)``) and then puts the drawn parameters into its ``params``,
so each part checks one function on known parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nndl.grading import wire
from nndl.grading.discovery import Target, find_module
from nndl.grading.full import BAND, DEFAULT_RUN, HIDDEN, FullDataSource
from nndl.grading.mistakes import GRADS, MISTAKES
from nndl.grading.parts import Part, Passed, Plan, Task
from nndl.grading.sandbox import Outcome
from nndl.grading.toy import TRAIN, Answers, ToyCase, answers, draw_case
from nndl.grading.variants import Variant
from nndl.grading.verdicts import (
    Verdict,
    Wrong,
    as_array,
    as_number,
    at,
    describe,
    first_hint,
    number,
    worst_abs,
    worst_relative,
)

SCORES_TOL = 1e-8  # largest |difference| of a score
LOSS_TOL = 1e-10  # |difference| of the loss (relative above 1)
GRAD_TOL = 1e-7  # the course's relative error
H_STEP = 1e-5  # the notebook's centred-difference step
TRAIN_RTOL = 1e-6  # the same run as the reference's
TRAIN_LOOSE = 0.3  # another minibatch stream: within 30% of the reference's final loss

Judge = Callable[[dict[str, Any]], Passed]

LAYOUTS = ("nndl/neural_net.py", "cs231n/classifiers/neural_net.py", "neural_net.py")


class TwoLayerNetAssignment:
    """The first assignment, checked with ``variant``'s conventions on the toy problem of
    ``seed``; ``full`` (a data source) adds the CIFAR-10 part."""

    name = "two_layer_net"

    def __init__(self, variant: Variant, seed: int = 0,
                 full: FullDataSource | None = None) -> None:
        self.variant, self.full = variant, full
        self.case = draw_case(seed, variant)
        self.answers = answers(self.case, variant)

    def locate(self, path: Path) -> Target | None:
        return find_module(path, LAYOUTS, "neural_net")

    def expected_files(self) -> str:
        return "nndl/neural_net.py (or a .py file defining TwoLayerNet)"

    def part_ids(self) -> list[str]:
        ids = [p.id for p in _Judges(self.case, self.answers, self.variant).parts()]
        return ids + (["full"] if self.full is not None else [])

    def plan(self, target: Target) -> Plan:
        tasks = _toy_tasks(target, self.case, self.variant)
        judges = _Judges(self.case, self.answers, self.variant)
        parts = judges.parts()
        if self.full is not None:
            source = self.full
            tasks.append(Task("full", _full_steps(source, self.case), ["labels"], full=True,
                              needs=("train",),
                              extra_memory_mb=lambda: source.get().float_bytes // 2**20 * 2))
            parts.append(Part("full", "CIFAR-10 default run: validation accuracy", "full",
                              _full_judge(self.full), depends=("train", "predict"),
                              full=True))
        return Plan(_setup_task(self.case, self.variant), tasks, parts,
                    annotate=judges.layout_notes)


# -- tasks --------------------------------------------------------------------------------

def _network_steps(case: ToyCase, variant: Variant) -> list[dict]:
    d, h, c = case.sizes
    steps = [wire.seed(case.init_seed),
             wire.call("net", wire.ref("module", ".TwoLayerNet"), [d, h, c], {"std": case.std},
                       label=f"TwoLayerNet({d}, {h}, {c}, std={case.std})"),
             wire.snapshot("init", wire.ref("net", ".params"))]
    for name, value in variant.to_student(case.params).items():
        steps.append(wire.put(wire.ref("net", ".params"), name, wire.array(value),
                              label=f"net.params[{name!r}] = ..."))
    return steps


def _loss_call(case: ToyCase) -> dict:
    return {"fn": wire.ref("net", ".loss"), "args": [wire.array(case.X)],
            "kwargs": {"y": wire.array(case.y), "reg": case.reg}}


def _setup_task(case: ToyCase, variant: Variant) -> Task:
    return Task("setup", _network_steps(case, variant), ["init"])


def _toy_tasks(target: Target, case: ToyCase, variant: Variant) -> list[Task]:
    net = _network_steps(case, variant)
    X = wire.array(case.X)
    loss_call = _loss_call(case)
    loss_step = wire.call("out", loss_call["fn"], loss_call["args"], loss_call["kwargs"],
                          label=f"net.loss(X, y, reg={case.reg:.4g})")
    tasks = [Task("scores", [*net, wire.call("scores", wire.ref("net", ".loss"), [X],
                                             label="net.loss(X)")], ["scores"]),
             Task("loss", [*net, loss_step], ["out"])]
    for name in GRADS:
        samples = wire.numeric("samples", wire.ref("net", ".params", name), loss_call, [0],
                               H_STEP, label=f"net.loss with {name} moved by +-{H_STEP:g}")
        tasks.append(Task(f"numeric_{name}", [*net, loss_step, samples], ["out", "samples"],
                          needs=("loss",)))
    train = wire.call("stats", wire.ref("net", ".train"), [X, wire.array(case.y), X,
                                                           wire.array(case.y)],
                      {**TRAIN, "verbose": False}, label="net.train(X, y, X, y, ...)")
    tasks.append(Task("predict", [*net, wire.call("labels", wire.ref("net", ".predict"), [X],
                                                  label="net.predict(X)")], ["labels"]))
    tasks.append(Task("train", [*net, wire.seed(case.sample_seed), train], ["stats"],
                      needs=("loss", "predict")))
    return tasks


def _full_steps(source: FullDataSource, case: ToyCase) -> Callable[[], list[dict]]:
    def steps() -> list[dict]:
        data = source.get()
        train_rows = {"$rows": [str(data.train_rows), str(data.mean)]}
        val_rows = {"$rows": [str(data.val_rows), str(data.mean)]}
        y_train, y_val = {"$npy": str(data.y_train)}, {"$npy": str(data.y_val)}
        return [wire.seed(case.init_seed),
                wire.call("net", wire.ref("module", ".TwoLayerNet"),
                          [data.input_size, HIDDEN, 10], label=f"TwoLayerNet("
                          f"{data.input_size}, {HIDDEN}, 10)"),
                wire.call("stats", wire.ref("net", ".train"),
                          [train_rows, y_train, val_rows, y_val], dict(DEFAULT_RUN),
                          label="net.train(X_train, y_train, X_val, y_val, ...)"),
                wire.call("labels", wire.ref("net", ".predict"), [val_rows],
                          label="net.predict(X_val)")]
    return steps


# -- judges -------------------------------------------------------------------------------

class _Judges:
    """The parts' judges for one drawn problem."""

    def __init__(self, case: ToyCase, ans: Answers, variant: Variant) -> None:
        self.case, self.ans, self.variant = case, ans, variant
        self.n, self.c = case.X.shape[0], case.sizes[2]

    def parts(self) -> list[Part]:
        parts = [Part("scores", "toy scores", "scores", self.scores),
                 Part("loss", "toy loss with regularization", "loss", self.loss,
                      depends=("scores",))]
        for g in GRADS:
            parts.append(Part(f"grad_{g}_numeric", f"gradient {g} (numerical, your loss)",
                              f"numeric_{g}", self._numeric_judge(g)))
            parts.append(Part(f"grad_{g}_reference", f"gradient {g} (reference)", "loss",
                              self._reference_judge(g), depends=("loss",)))
        parts.append(Part("train", "toy training: final loss", "train", self.train,
                          depends=("loss", *(f"grad_{g}_reference" for g in GRADS),
                                   "predict")))  # train's accuracy histories call predict
        parts.append(Part("predict", "predict", "predict", self.predict, depends=("scores",)))
        return parts

    def _hints(self, quantity: str, key: str) -> list[tuple[str, Any]]:
        return [(m.text(self.variant), self.ans.mistakes[m.name][key]) for m in MISTAKES
                if quantity in m.quantities]

    def scores(self, values: dict) -> Passed:
        scores = as_array(values["scores"], (self.n, self.c), "loss(X)")
        expected = self.ans.scores
        err, ix = worst_abs(scores, expected)
        if err > SCORES_TOL:
            hint = first_hint(self._hints("scores", "scores"),
                              lambda v: worst_abs(scores, v)[0] <= SCORES_TOL)
            raise Wrong(f"{at('scores', ix)} is {number(scores[ix])}, expected "
                        f"{number(expected[ix])} (largest |difference| {err:.1e} > tolerance "
                        f"{SCORES_TOL:.0e})", scores[ix], expected[ix], SCORES_TOL, hint)
        return Passed(f"largest |difference| {err:.1e} (tolerance {SCORES_TOL:.0e})", err, 0.0,
                      SCORES_TOL)

    def _loss_and_grads(self, values: dict) -> tuple[Any, Any]:
        out = values["out"]
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise Wrong(f"loss(X, y, reg) returned {describe(out)}, expected (loss, grads)")
        return out[0], out[1]

    def loss(self, values: dict) -> Passed:
        loss = as_number(self._loss_and_grads(values)[0], "the loss")
        expected = self.ans.loss
        tol = LOSS_TOL * max(1.0, abs(expected))
        err = abs(loss - expected)
        if not err <= tol:
            hint = first_hint(self._hints("loss", "loss"), lambda v: abs(loss - v) <= tol)
            raise Wrong(f"{number(loss)}, expected {number(expected)} (|difference| "
                        f"{err:.1e} > tolerance {tol:.0e})", loss, expected, tol, hint)
        return Passed(f"{number(loss)} (|difference| {err:.1e}, tolerance {tol:.0e})", loss,
                      expected, tol)

    def _gradient(self, values: dict, g: str) -> np.ndarray:
        grads = self._loss_and_grads(values)[1]
        if not isinstance(grads, dict):
            raise Wrong(f"grads is {describe(grads)}, expected a dict keyed like params")
        if g not in grads:
            raise Wrong(f"grads has no {g!r}")
        shape = self.ans.grads[g].shape
        return as_array(grads[g], shape, f"grads[{g!r}]",
                        transposed_hint=f"the gradient of {g} is transposed: it has the shape "
                        f"of {g}'s transpose")

    def _gradient_hint(self, grad: np.ndarray, g: str) -> str:
        """The mistake ``grad`` matches, among those that change ``g``'s gradient."""
        right = self.ans.grads[g]
        changed = [(hint, v) for hint, v in self._hints("grads", g)
                   if worst_relative(v, right)[0] > GRAD_TOL]
        return first_hint(changed, lambda v: worst_relative(grad, v)[0] <= GRAD_TOL)

    def _numeric_judge(self, g: str) -> Judge:
        def judge(values: dict) -> Passed:
            grad = self._gradient(values, g)
            samples = values["samples"]
            if not isinstance(samples, dict):
                raise Wrong("no numerical gradient samples came back")
            plus = np.array([as_number(v, "the loss") for v in samples.get("plus", [])])
            minus = np.array([as_number(v, "the loss") for v in samples.get("minus", [])])
            if plus.size != grad.size or minus.size != grad.size:
                raise Wrong(f"params[{g!r}] changed shape while the loss was evaluated")
            numeric = ((plus - minus) / (2 * H_STEP)).reshape(grad.shape)
            err, ix = worst_relative(grad, numeric)
            if not err <= GRAD_TOL:
                right = worst_relative(grad, self.ans.grads[g])[0] <= GRAD_TOL
                hint = ("your gradient is right (it is the reference's): your loss is what "
                        "disagrees with it" if right else self._gradient_hint(grad, g))
                raise Wrong(f"largest relative error {err:.1e} at {at(g, ix)}: your gradient "
                            f"{number(grad[ix])}, numerical {number(numeric[ix])} (tolerance "
                            f"{GRAD_TOL:.0e})", grad[ix], numeric[ix], GRAD_TOL, hint)
            return Passed(f"largest relative error {err:.1e} (tolerance {GRAD_TOL:.0e})", err,
                          0.0, GRAD_TOL)
        return judge

    def _reference_judge(self, g: str) -> Judge:
        def judge(values: dict) -> Passed:
            grad = self._gradient(values, g)
            expected = self.ans.grads[g]
            err, ix = worst_relative(grad, expected)
            if not err <= GRAD_TOL:
                raise Wrong(f"largest relative error {err:.1e} at {at(g, ix)}: yours "
                            f"{number(grad[ix])}, expected {number(expected[ix])} (tolerance "
                            f"{GRAD_TOL:.0e})", grad[ix], expected[ix], GRAD_TOL,
                            self._gradient_hint(grad, g))
            return Passed(f"largest relative error {err:.1e} (tolerance {GRAD_TOL:.0e})", err,
                          0.0, GRAD_TOL)
        return judge

    def train(self, values: dict) -> Passed:
        stats = values["stats"]
        if not isinstance(stats, dict) or "loss_history" not in stats:
            raise Wrong(f"train returned {describe(stats)}, expected a dict with "
                        "'loss_history'")
        history = stats["loss_history"]
        if isinstance(history, (list, tuple)):
            history = [as_number(v, "a loss_history entry") for v in history]
        history = np.asarray(history, dtype=np.float64).ravel() if not isinstance(
            history, wire.Opaque) else np.zeros(0)
        iters = TRAIN["num_iters"]
        if history.size != iters:
            raise Wrong(f"loss_history has {history.size} entries, expected {iters} (one per "
                        "iteration)")
        final, expected = float(history[-1]), self.ans.train_history[-1]
        rel = abs(final - expected) / abs(expected)
        said = f"final loss {number(final)}, the reference's run {number(expected)}"
        if rel <= TRAIN_RTOL:
            return Passed(f"{said} (relative difference {rel:.0e}, tolerance "
                          f"{TRAIN_RTOL:.0e})", final, expected, TRAIN_RTOL)
        strictly = f"{said}; relative difference {rel:.1e} > tolerance {TRAIN_RTOL:.0e}"
        if rel <= TRAIN_LOOSE and final < 0.5 * history[0]:
            return Passed(f"{said}: not the same run, but within {TRAIN_LOOSE:.0%} of it "
                          "(minibatches drawn otherwise than with np.random.choice?)", final,
                          expected, TRAIN_LOOSE, strictly=strictly)
        hint = ""
        if not final < history[0]:  # NaN and infinity included
            hint = ("the loss did not fall during training: check that the update moves each "
                    "parameter against its gradient, scaled by the learning rate")
        if not np.isfinite(final):
            strictly += " (the loss became NaN or infinite)"
        raise Wrong(strictly, final, expected, TRAIN_RTOL, hint)

    def predict(self, values: dict) -> Passed:
        labels = values["labels"]
        expected = self.ans.labels
        if isinstance(labels, np.ndarray) and labels.shape == (self.n, self.c):
            raise Wrong(f"predict returned {describe(labels)}, expected one label per row, "
                        f"shape ({self.n},)", hint="predict returns class scores, not the "
                        "label of the highest score")
        if isinstance(labels, np.ndarray) and labels.shape == (self.c,):
            raise Wrong(f"predict returned {describe(labels)}, expected one label per row, "
                        f"shape ({self.n},)", hint="the highest score is taken along the "
                        "wrong axis (per class instead of per row)")
        labels = as_array(labels, (self.n,), "predict(X)")
        wrong = np.flatnonzero(labels != expected)
        if wrong.size:
            i = int(wrong[0])
            hint = first_hint(self._hints("predict", "predict"),
                              lambda v: np.array_equal(labels, v))
            raise Wrong(f"{wrong.size} of {self.n} labels differ; row {i}: yours "
                        f"{labels[i]:g}, expected {expected[i]}", labels[i], int(expected[i]),
                        None, hint)
        return Passed(f"all {self.n} labels right", self.n, self.n)

    def layout_notes(self, verdicts: list[Verdict], setup: Outcome) -> list[str]:
        """A note when the student's network stores its weights in the other course's
        layout (its parts then fail on shapes)."""
        init = setup.values.get("init") if setup.ok else None
        if not isinstance(init, dict):
            return []
        shapes = {k: getattr(init.get(k), "shape", None) for k in ("W1", "W2")}
        theirs = {k: self.variant.other.shape(k, self.case.params[k].shape) for k in shapes}
        ours = {k: self.variant.shape(k, self.case.params[k].shape) for k in shapes}
        if shapes == ours or shapes != theirs:
            return []
        return [f"your TwoLayerNet stores its weights as {self.variant.other.layout}, "
                f"{self.variant.other.course}'s layout; this check uses "
                f"{self.variant.course}'s ({self.variant.layout}): check with --variant "
                f"{self.variant.other.name} if your course is {self.variant.other.course}"]


def _full_judge(source: FullDataSource) -> Judge:
    def judge(values: dict) -> Passed:
        data = source.get()
        labels = as_array(values["labels"], data.labels.shape, "predict(X_val)")
        accuracy = float(np.mean(labels == data.labels))
        low, high = BAND
        said = f"validation accuracy {accuracy:.1%}"
        if low <= accuracy <= high:
            return Passed(f"{said} (the assignment's band {low:.0%}-{high:.0%})", accuracy,
                          BAND)
        hint = ("the network barely learned: chance is 10%" if accuracy < 0.15 else "")
        raise Wrong(f"{said}, expected {low:.0%}-{high:.0%} (the assignment's default run: "
                    "about 28%)", accuracy, list(BAND), None, hint)
    return judge
