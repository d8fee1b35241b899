"""``FullyConnectedNet`` in ``nndl/fc_net.py``: its loss and gradients, plain, with batch
normalization and with dropout, each at two depths and two regularization strengths.

Three families of four networks (2 and 3 layers; reg 0 and a reg drawn from the seed), each
family one task: the student's ``FullyConnectedNet`` is built as the notebook builds it
(float64), the drawn parameters are put into its ``params``, and then ``loss(X, y)``,
``loss(X)`` (test mode, after that one train-mode call) and, for every parameter entry,
the loss with it moved by +-h. Three parts per family: the scores and the loss against the
reference; the gradients against the numerical gradient of the student's own loss; the
gradients against the reference. The answers are :func:`nndl.grading.fcnet_mistakes.network`
(the reference assembled from :mod:`nndl.layers`, equal to :class:`nndl.fc_net.
FullyConnectedNet`), with dropout's masks the student's own ``dropout_forward`` draws for the
net's seed when they are valid inverted-dropout masks (else the reference's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nndl import layers
from nndl._typing import NDArray, Params
from nndl.grading import wire
from nndl.grading.compare import Answer, Quantity, array, entry, items, judge, scalar
from nndl.grading.fcnet_mistakes import HINTS, MISTAKES, kink_distance, network
from nndl.grading.parts import Part, Passed, Task
from nndl.grading.verdicts import Wrong, at, describe, number

N, INPUT_SHAPE, C = 6, (2, 2), 3
D = INPUT_SHAPE[0] * INPUT_SHAPE[1]
HIDDEN = {2: [5], 3: [5, 4]}  # by depth (the number of affine layers)
H_STEP = 1e-5  # the course's centred-difference step
NUM_TOL = 1e-5  # |yours - numerical| / max(|yours| + |numerical|, NUM_FLOOR)
NUM_FLOOR = 1e-3  # below it, the numerical gradient's rounding (~1e-10) is not a difference
KINK_MARGIN = 1e-3
FAMILIES = ("plain", "batchnorm", "dropout")
MODULE = "nndl.fc_net"
PREFIX = {"plain": "fc", "batchnorm": "fc_batchnorm", "dropout": "fc_dropout"}
TITLE = {"plain": "FC net", "batchnorm": "FC net, batchnorm", "dropout": "FC net, dropout"}


@dataclass(frozen=True)
class NetConfig:
    """One network of a family: its depth, reg and drawn parameters."""

    key: str  # e.g. "d3r1"
    depth: int
    reg: float
    params: Params

    @property
    def words(self) -> str:
        return f"{self.depth} layers, reg {self.reg:.3g}"


@dataclass(frozen=True)
class NetCase:
    """The drawn data, and each family's four networks."""

    seed: int
    X: NDArray  # (N, 2, 3)
    y: NDArray
    dropout: float  # the keep probability of the dropout family
    dropout_seed: int
    configs: dict[str, list[NetConfig]]


def _draw_params(rng: np.random.Generator, depth: int, batchnorm: bool) -> Params:
    widths = [D, *HIDDEN[depth], C]
    params: Params = {}
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:]), start=1):
        params[f"W{i}"] = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
        params[f"b{i}"] = 0.1 * rng.standard_normal(fan_out)
        if batchnorm and i < depth:
            params[f"gamma{i}"] = rng.uniform(0.5, 2.0, fan_out)
            params[f"beta{i}"] = 0.5 * rng.standard_normal(fan_out)
    return params


def draw_net_case(seed: int, attempts: int = 200) -> NetCase:
    """The networks of ``seed``: the first draw of its stream that keeps every ReLU input
    away from the kink and tells every mistake apart."""
    for attempt in range(attempts):
        rng = np.random.default_rng([seed, 4, attempt])
        X, y = rng.standard_normal((N, *INPUT_SHAPE)), rng.integers(0, C, N)
        regs = (0.0, float(rng.uniform(0.5, 3.0)))
        configs = {family: [NetConfig(f"d{depth}r{r}", depth, reg,
                                      _draw_params(rng, depth, family == "batchnorm"))
                            for depth in HIDDEN for r, reg in enumerate(regs)]
                   for family in FAMILIES}
        case = NetCase(seed, X, y, float(rng.uniform(0.6, 0.85)),
                       int(rng.integers(0, 2**31 - 1)), configs)
        if _usable(case):
            return case
    raise RuntimeError(f"no usable networks in {attempts} draws of seed {seed}")


def _usable(case: NetCase) -> bool:
    for family, configs in case.configs.items():
        if any(kink_distance(c.params, case.X, family == "batchnorm") < KINK_MARGIN
               for c in configs):
            return False
        masks = reference_masks(case) if family == "dropout" else None
        if not all(a.clear() for a in family_answers(case, family, masks)):
            return False
    return True


def reference_masks(case: NetCase) -> list[NDArray]:
    """The reference's dropout masks (0 or 1/p) of each hidden layer for the net's seed."""
    param = {"mode": "train", "p": case.dropout, "seed": case.dropout_seed}
    return [layers.dropout_forward(np.ones((N, h)), dict(param))[0] for h in HIDDEN[3]]


def family_answers(case: NetCase, family: str, masks: list[NDArray] | None
                   ) -> tuple[Answer, Answer]:
    """The answers of a family's loss part (scores and loss) and gradient parts."""
    batchnorm = family == "batchnorm"
    loss, grads = Answer({}), Answer({})
    outputs: dict[str, dict[str, dict[str, Any]]] = {"": {}}
    for mistake in ("", *MISTAKES[family]):
        found = outputs.setdefault(mistake, {})
        for c in case.configs[family]:
            own = None if masks is None else masks[:c.depth - 1]
            found[c.key] = network(c.params, case.X, case.y, c.reg, batchnorm, own, mistake)
    for c in case.configs[family]:
        ref = outputs[""][c.key]
        where = f" ({c.words})"
        loss.quantities[f"{c.key}.scores"] = Quantity("scores", ref["scores"], where)
        loss.quantities[f"{c.key}.loss"] = Quantity("loss", ref["loss"], where)
        for name in c.params:
            grads.quantities[f"{c.key}.{name}"] = Quantity(name, ref[name], where)
    for mistake in MISTAKES[family]:
        for answer in (loss, grads):
            changed = {}
            for key, q in answer.quantities.items():
                config, name = key.split(".")
                value = outputs[mistake][config][name]
                if not np.array_equal(value, q.value):
                    changed[key] = value
            if changed:
                answer.mistakes[HINTS[mistake]] = changed
    return loss, grads


# -- tasks --------------------------------------------------------------------------------

def _net_kwargs(case: NetCase, family: str, reg: float) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"input_dim": D, "num_classes": C, "reg": reg,
                              "weight_scale": 5e-2, "dtype": "float64"}
    if family == "batchnorm":
        kwargs["use_batchnorm"] = True
    if family == "dropout":
        kwargs.update(dropout=case.dropout, seed=case.dropout_seed)
    return kwargs


def _call_words(config: NetConfig, kwargs: dict[str, Any]) -> str:
    extra = "".join(f", {k}={v!r}" for k, v in kwargs.items()
                    if k in ("use_batchnorm", "dropout", "seed"))
    return f"FullyConnectedNet({HIDDEN[config.depth]}, reg={config.reg:.3g}{extra})"


def family_steps(case: NetCase, family: str) -> tuple[list[dict], list[str]]:
    """The family task's steps and the values it sends back."""
    X, y = wire.array(case.X), wire.array(case.y)
    steps: list[dict] = []
    returns: list[str] = []
    for c in case.configs[family]:
        net = f"net_{c.key}"
        kwargs = _net_kwargs(case, family, c.reg)
        words = _call_words(c, kwargs)
        steps.append(wire.call(net, wire.ref("module", ".FullyConnectedNet"),
                               [HIDDEN[c.depth]], kwargs, label=words))
        steps += [wire.put(wire.ref(net, ".params"), name, wire.array(value),
                           label=f"net.params[{name!r}] = ...")
                  for name, value in c.params.items()]
        fn = wire.ref(net, ".loss")
        loss = {"fn": fn, "args": [X], "kwargs": {"y": y}}
        steps += [wire.call(f"out_{c.key}", fn, [X], {"y": y}, label=f"{words}.loss(X, y)"),
                  wire.call(f"scores_{c.key}", fn, [X], label=f"{words}.loss(X)")]
        steps += [wire.numeric(f"num_{c.key}_{name}", wire.ref(net, ".params", name), loss,
                               [0], H_STEP, label=f"{words}.loss(X, y) with {name} moved by "
                               f"+-{H_STEP:g}") for name in c.params]
        returns += [f"out_{c.key}", f"scores_{c.key}",
                    *(f"num_{c.key}_{name}" for name in c.params)]
    if family == "dropout":
        param = {"mode": "train", "p": case.dropout, "seed": case.dropout_seed}
        steps.append(wire.load("layers", module="nndl.layers"))
        for i, h in enumerate(HIDDEN[3]):
            steps += [wire.let(f"dp{i}", param),
                      wire.call(f"mask_{i}", wire.ref("layers", ".dropout_forward"),
                                [wire.array(np.ones((N, h))), wire.ref(f"dp{i}")],
                                label="dropout_forward(ones, dropout_param) with the net's "
                                "seed")]
            returns.append(f"mask_{i}")
    return steps, returns


# -- parts --------------------------------------------------------------------------------

LAYER_DEPENDS = {
    "plain": (("affine_forward", "relu_forward", "affine_relu_forward", "softmax_loss"),
              ("affine_backward", "relu_backward", "affine_relu_backward")),
    "batchnorm": (("batchnorm_forward_train", "batchnorm_forward_test",
                   "affine_batchnorm_relu_forward"),
                  ("batchnorm_backward", "affine_batchnorm_relu_backward")),
    "dropout": (("dropout_forward_train", "dropout_forward_test"), ("dropout_backward",)),
}


class NetParts:
    """The three families' parts for one :class:`NetCase`."""

    def __init__(self, case: NetCase) -> None:
        self.case = case
        self._answers: dict[tuple[str, bytes], tuple[Answer, Answer]] = {}

    def tasks(self) -> list[Task]:
        tasks = []
        for family in FAMILIES:
            steps, returns = family_steps(self.case, family)
            forward, backward = LAYER_DEPENDS[family]
            needs = (*LAYER_DEPENDS["plain"][0], *forward) if family != "plain" else forward
            tasks.append(Task(PREFIX[family], steps, returns, module=MODULE, batch=True,
                              needs=needs + backward))
        return tasks

    def parts(self) -> list[Part]:
        parts = []
        for family in FAMILIES:
            prefix, title = PREFIX[family], TITLE[family]
            forward, backward = LAYER_DEPENDS[family]
            plain = family == "plain"
            base = () if plain else ("fc_loss",)
            base_numeric = () if plain else ("fc_grads_numeric",)
            base_grads = () if plain else ("fc_grads_reference",)
            parts += [
                Part(f"{prefix}_loss", f"{title}: scores and loss", prefix,
                     self._loss_judge(family), depends=(*base, *forward)),
                Part(f"{prefix}_grads_numeric", f"{title}: gradients (numerical, your loss)",
                     prefix, self._numeric_judge(family),
                     depends=(*base_numeric, *forward, *backward)),
                Part(f"{prefix}_grads_reference", f"{title}: gradients (reference)", prefix,
                     self._reference_judge(family),
                     depends=(f"{prefix}_loss", *base_grads, *forward, *backward))]
        return parts

    def answers(self, family: str, values: dict[str, Any]) -> tuple[Answer, Answer]:
        """The family's answers, with the student's dropout masks when they are valid."""
        masks = self._masks(values) if family == "dropout" else None
        key = (family, b"" if masks is None else b"".join(m.tobytes() for m in masks))
        if key not in self._answers:
            self._answers[key] = family_answers(self.case, family, masks)
        return self._answers[key]

    def _masks(self, values: dict[str, Any]) -> list[NDArray]:
        """The student's masks when each is 0 or 1/p everywhere; else the reference's."""
        p = self.case.dropout
        theirs = []
        for i, h in enumerate(HIDDEN[3]):
            out = values.get(f"mask_{i}")
            mask = out[0] if isinstance(out, (tuple, list)) and out else None
            if not (isinstance(mask, np.ndarray) and mask.shape == (N, h) and np.all(
                    (mask == 0) | (np.abs(mask * p - 1) <= 1e-12))):
                return reference_masks(self.case)
            theirs.append(mask.astype(np.float64))
        return theirs

    def _loss_judge(self, family: str) -> Callable[[dict[str, Any]], Passed]:
        def judge_loss(values: dict[str, Any]) -> Passed:
            theirs: dict[str, Any] = {}
            for c in self.case.configs[family]:
                loss, _ = _loss_and_grads(values, c)
                theirs[f"{c.key}.scores"] = array(values[f"scores_{c.key}"], (N, C),
                                                  "loss(X)")
                theirs[f"{c.key}.loss"] = scalar(loss, "the loss")
            return judge(theirs, self.answers(family, values)[0])
        return judge_loss

    def _their_grads(self, family: str, values: dict[str, Any]) -> dict[str, NDArray]:
        theirs = {}
        for c in self.case.configs[family]:
            grads = _loss_and_grads(values, c)[1]
            for name, value in c.params.items():
                found = entry(grads, name, f"grads ({c.words})",
                              "grads holds a gradient for every entry of params")
                theirs[f"{c.key}.{name}"] = array(found, value.shape, f"grads[{name!r}]")
        return theirs

    def _reference_judge(self, family: str) -> Callable[[dict[str, Any]], Passed]:
        def judge_grads(values: dict[str, Any]) -> Passed:
            return judge(self._their_grads(family, values), self.answers(family, values)[1])
        return judge_grads

    def _numeric_judge(self, family: str) -> Callable[[dict[str, Any]], Passed]:
        def judge_numeric(values: dict[str, Any]) -> Passed:
            theirs = self._their_grads(family, values)
            worst = 0.0
            for c in self.case.configs[family]:
                for name in c.params:
                    key = f"{c.key}.{name}"
                    grad = theirs[key]
                    numeric = _numeric(values[f"num_{key.replace('.', '_')}"], grad.shape, c)
                    err = np.abs(grad - numeric) / np.maximum(np.abs(grad) + np.abs(numeric),
                                                              NUM_FLOOR)
                    err = np.where(np.isnan(err), np.inf, err)
                    ix = tuple(int(i) for i in np.unravel_index(int(np.argmax(err)),
                                                                err.shape))
                    if err[ix] > NUM_TOL:
                        raise Wrong(
                            f"error {err[ix]:.1e} at {at(name, ix)} ({c.words}): your "
                            f"gradient {number(grad[ix])}, numerical {number(numeric[ix])} "
                            f"(tolerance {NUM_TOL:.0e})", grad[ix], numeric[ix], NUM_TOL,
                            self._numeric_hint(family, values, theirs))
                    worst = max(worst, float(err[ix]))
            return Passed(f"largest error {worst:.1e} (tolerance {NUM_TOL:.0e})", worst, 0.0,
                          NUM_TOL)
        return judge_numeric

    def _numeric_hint(self, family: str, values: dict[str, Any],
                      theirs: dict[str, NDArray]) -> str:
        try:
            judge(theirs, self.answers(family, values)[1])
        except Wrong as wrong:
            return wrong.hint
        return ("your gradients are right (they are the reference's): your loss is what "
                "disagrees with them")


def _loss_and_grads(values: dict[str, Any], c: NetConfig) -> tuple[Any, Any]:
    loss, grads = items(values[f"out_{c.key}"], 2, f"loss(X, y) ({c.words})")
    if not isinstance(grads, dict):
        raise Wrong(f"grads ({c.words}) is {describe(grads)}, expected a dict keyed like "
                    "params")
    return loss, grads


def _numeric(samples: Any, shape: tuple[int, ...], c: NetConfig) -> NDArray:
    """The centred differences of the loss samples the child sent."""
    if not isinstance(samples, dict):
        raise Wrong("no numerical gradient samples came back")
    plus = np.array([scalar(v, "the loss") for v in samples.get("plus", [])])
    minus = np.array([scalar(v, "the loss") for v in samples.get("minus", [])])
    size = int(np.prod(shape))
    if plus.size != size or minus.size != size:
        raise Wrong(f"a parameter changed shape while the loss was evaluated ({c.words})")
    return ((plus - minus) / (2 * H_STEP)).reshape(shape)
