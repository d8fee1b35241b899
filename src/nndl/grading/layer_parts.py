"""The second assignment's layer parts: each layer's forward and backward pass in
``nndl/layers.py`` and the sandwich layers of ``nndl/layer_utils.py``.

Each part is one task (its function called on the drawn inputs of
:mod:`nndl.grading.layer_cases`, a backward pass on its own forward pass's cache), run in a
batch with the others; most are judged by :func:`nndl.grading.compare.judge` against the
reference. Dropout's forward pass is judged by what it must be, not by one mask: every unit
either zeroed or scaled by 1/p, about a fraction p kept (within 5 points), and the same
mask again for the same seed; its backward pass must scale ``dout`` exactly as the forward
pass scaled ``x``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nndl.grading import wire
from nndl.grading.compare import Answer, array, entry, items, judge, scalar
from nndl.grading.layer_cases import EPS, LayerCase, layer_answers
from nndl.grading.layer_mistakes import HINTS
from nndl.grading.parts import Part, Passed, Task
from nndl.grading.verdicts import Wrong, at, number, worst_relative

LAYERS, UTILS = "nndl.layers", "nndl.layer_utils"
KEEP_TOL = 0.05  # kept fraction vs p: about 7 standard deviations on 4,800 units
SCALE_TOL = 1e-9

Read = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class _Spec:
    """One layer part: its task's steps and values, and how its values are read."""

    id: str
    title: str
    module: str
    steps: list[dict]
    returns: list[str]
    read: Read | None  # None: judged by a judge of its own
    depends: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()


def _fn(name: str) -> dict:
    return wire.ref("module", "." + name)


A = wire.array


class LayerParts:
    """The layer parts of one drawn :class:`LayerCase`."""

    def __init__(self, case: LayerCase) -> None:
        self.case = case
        self.answers = layer_answers(case)
        self.specs = _specs(case)

    def tasks(self) -> list[Task]:
        return [Task(s.id, s.steps, s.returns, needs=s.needs, module=s.module, batch=True)
                for s in self.specs]

    def parts(self) -> list[Part]:
        own = {"dropout_forward_train": self.dropout_train,
               "dropout_forward_test": self.dropout_test,
               "dropout_backward": self.dropout_backward}
        return [Part(s.id, s.title, s.id, own.get(s.id) or self._judge(s), depends=s.depends)
                for s in self.specs]

    def _judge(self, spec: _Spec) -> Callable[[dict[str, Any]], Passed]:
        answer: Answer = self.answers[spec.id]
        read = spec.read
        assert read is not None

        def judge_part(values: dict[str, Any]) -> Passed:
            return judge(read(values), answer)
        return judge_part

    # -- dropout ------------------------------------------------------------------------
    def dropout_train(self, values: dict[str, Any]) -> Passed:
        c = self.case
        x, p = c.drop_x, c.drop_p
        outs = [array(items(values[f], 2, "dropout_forward")[0], x.shape, "out")
                for f in ("f1", "f2")]
        scale = outs[0] / x
        kept = scale != 0
        fraction = float(kept.mean())
        scales = np.unique(np.round(scale[kept], 9)) if kept.any() else np.zeros(0)
        said = (f"kept {fraction:.1%} of units" + (f", scaled by {number(scales[0])}"
                                                   if scales.size == 1 else ""))
        expected = f"about p = {p:.3g} kept, each scaled by 1/p = {number(1 / p)}"
        scaled_right = bool(np.all(np.abs(scale[kept] * p - 1) <= SCALE_TOL))
        if not (scaled_right and abs(fraction - p) <= KEEP_TOL):
            raise Wrong(f"{said}; expected {expected}", fraction, p, KEEP_TOL,
                        _dropout_hint(fraction, scales, p))
        if not np.array_equal(outs[0], outs[1]):
            raise Wrong("two calls with the same seed gave different masks", hint="the seed in "
                        "dropout_param does not fix the mask: each call with a seed draws "
                        "the same one")
        return Passed(f"{said} (p = {p:.3g}), the same mask for the same seed", fraction, p,
                      KEEP_TOL)

    def dropout_test(self, values: dict[str, Any]) -> Passed:
        c = self.case
        x = c.drop_small
        out = array(items(values["f"], 2, "dropout_forward")[0], x.shape, "out")
        err, ix = worst_relative(out, x)
        if err <= 1e-12:
            return Passed("test mode returns its input unchanged", err, 0.0, 1e-12)
        hint = ""
        if np.any(out == 0):
            hint = "dropout zeroes units at test time; in test mode the layer does nothing"
        elif np.allclose(out, c.drop_p * x, rtol=1e-9):
            hint = ("the test-time output is scaled by p; inverted dropout scales while "
                    "training and leaves test-time outputs unchanged")
        elif np.allclose(out, x / c.drop_p, rtol=1e-9):
            hint = "the test-time output is scaled by 1/p; in test mode the layer does nothing"
        raise Wrong(f"test mode changed its input: {at('out', ix)} is {number(out[ix])}, "
                    f"x was {number(x[ix])}", out[ix], x[ix], 1e-12, hint)

    def dropout_backward(self, values: dict[str, Any]) -> Passed:
        c = self.case
        x, dout = c.drop_small, c.drop_dout
        out = array(items(values["f"], 2, "dropout_forward")[0], x.shape, "out")
        dx = array(values["b"], x.shape, "dx")
        expected = dout * (out / x)
        err, ix = worst_relative(dx, expected)
        if err <= 1e-9:
            return Passed(f"dx scales dout as the forward pass scaled x (largest relative "
                          f"error {err:.1e})", err, 0.0, 1e-9)
        hint = ""
        if np.allclose(dx, dout, rtol=1e-9):
            hint = "dx is dout unchanged: the mask of the forward pass is not applied"
        elif np.allclose(dx, dout * (out != 0), rtol=1e-9):
            hint = ("dx is not scaled by 1/p as the forward pass's output was: the mask "
                    "keeps or zeroes, and scales")
        raise Wrong(f"{at('dx', ix)} is {number(dx[ix])}, expected {number(expected[ix])}: "
                    "dout scaled as the forward pass scaled x", dx[ix], expected[ix], 1e-9,
                    hint)


def _dropout_hint(fraction: float, scales: np.ndarray, p: float) -> str:
    """The mistake a dropout forward pass's kept fraction and scale show."""
    one_scale = float(scales[0]) if scales.size == 1 else None
    if fraction == 1.0:
        return "no unit was dropped in train mode"
    if abs(fraction - (1 - p)) <= KEEP_TOL:
        return ("units are kept with probability 1 - p: p is used as the probability of "
                "dropping a unit (the older starter code's meaning); the course's p is the "
                "probability of keeping one")
    if one_scale is not None and abs(one_scale - 1) <= SCALE_TOL:
        return ("the kept units are not scaled by 1/p: the course's dropout is inverted "
                "(scaled while training, unchanged at test time)")
    if one_scale is not None and abs(one_scale - p) <= SCALE_TOL:
        return "the kept units are multiplied by p; inverted dropout divides them by p"
    return ""


# -- the parts' steps ------------------------------------------------------------------

def _call(name: str, fn: str, args: list, label: str) -> dict:
    return wire.call(name, _fn(fn), args, label=label)


def _pair(value: Any, what: str, shape: tuple[int, ...]) -> Any:
    """``out`` of a forward pass's ``(out, cache)``."""
    return array(items(value, 2, what)[0], shape, "out")


def _grads(value: Any, what: str, shapes: dict[str, tuple[int, ...]],
           hints: dict[str, dict] | None = None) -> dict[str, Any]:
    got = items(value, len(shapes), what)
    return {name: array(v, shape, name, (hints or {}).get(name))
            for (name, shape), v in zip(shapes.items(), got)}


def _specs(c: LayerCase) -> list[_Spec]:
    x, w, b, dout = A(c.x), A(c.w), A(c.b), A(c.dout)
    n, m, d = c.x.shape[0], c.w.shape[1], c.w.shape[0]
    affine_fwd = _call("fwd", "affine_forward", [x, w, b], "affine_forward(x, w, b)")
    relu_fwd = _call("fwd", "relu_forward", [A(c.relu_x)], "relu_forward(x)")
    affine_shapes = {"dx": c.x.shape, "dw": c.w.shape, "db": c.b.shape}
    flat = {"dx": {(n, d): HINTS["affine_dx_flat"]}}
    specs = [
        _Spec("affine_forward", "affine_forward", LAYERS, [affine_fwd], ["fwd"],
              lambda v: {"out": _pair(v["fwd"], "affine_forward", (n, m))}),
        _Spec("affine_backward", "affine_backward", LAYERS,
              [affine_fwd, _call("bwd", "affine_backward", [dout, wire.ref("fwd", 1)],
                                 "affine_backward(dout, cache)")], ["bwd"],
              lambda v: _grads(v["bwd"], "affine_backward", affine_shapes, flat),
              depends=("affine_forward",), needs=("affine_forward",)),
        _Spec("relu_forward", "relu_forward", LAYERS, [relu_fwd], ["fwd"],
              lambda v: {"out": _pair(v["fwd"], "relu_forward", c.relu_x.shape)}),
        _Spec("relu_backward", "relu_backward", LAYERS,
              [relu_fwd, _call("bwd", "relu_backward", [A(c.relu_dout), wire.ref("fwd", 1)],
                               "relu_backward(dout, cache)")], ["bwd"],
              lambda v: {"dx": array(v["bwd"], c.relu_x.shape, "dx")},
              depends=("relu_forward",), needs=("relu_forward",)),
        *_batchnorm_specs(c), *_dropout_specs(c), *_loss_specs(c), *_sandwich_specs(c)]
    return specs


def _bn_param(mode: str, **entries: Any) -> dict:
    return {"mode": mode, **{k: A(v) if isinstance(v, np.ndarray) else v
                             for k, v in entries.items()}}


def _batchnorm_specs(c: LayerCase) -> list[_Spec]:
    gamma, beta = A(c.gamma), A(c.beta)
    shape = c.bn_batches[0].shape
    calls = [_call(f"f{i}", "batchnorm_forward", [A(xb), gamma, beta, wire.ref("bn")],
                   f"batchnorm_forward(x{i}, gamma, beta, bn_param) in train mode")
             for i, xb in enumerate(c.bn_batches, 1)]

    def read_train(v: dict[str, Any]) -> dict[str, Any]:
        found = {f"out{i}": _pair(v[f"f{i}"], "batchnorm_forward", shape) for i in (1, 2)}
        for key in ("running_mean", "running_var"):
            found[key] = array(entry(v["bn"], key, "bn_param"), c.gamma.shape,
                               f"bn_param[{key!r}]")
        return found

    bn_fwd = [wire.let("bn", _bn_param("train", eps=EPS)),
              _call("fwd", "batchnorm_forward", [A(c.bn_batches[0]), gamma, beta,
                                                 wire.ref("bn")],
                    "batchnorm_forward(x, gamma, beta, bn_param) in train mode")]
    grad_shapes = {"dx": shape, "dgamma": c.gamma.shape, "dbeta": c.gamma.shape}

    def backward(name: str) -> _Spec:
        step = _call("bwd", name, [A(c.bn_dout), wire.ref("fwd", 1)], f"{name}(dout, cache)")
        return _Spec(name, name, LAYERS, [*bn_fwd, step], ["bwd"],
                     lambda v: _grads(v["bwd"], name, grad_shapes),
                     depends=("batchnorm_forward_train",), needs=("batchnorm_forward_train",))

    test_param = _bn_param("test", eps=EPS, running_mean=c.running_mean,
                           running_var=c.running_var)
    test_call = _call("f", "batchnorm_forward", [A(c.bn_test_x), gamma, beta, wire.ref("bn")],
                      "batchnorm_forward(x, gamma, beta, bn_param) in test mode")
    return [
        _Spec("batchnorm_forward_train", "batchnorm_forward, train mode (running averages)",
              LAYERS, [wire.let("bn", _bn_param("train", **c.bn_param())), *calls],
              ["f1", "f2", "bn"], read_train),
        _Spec("batchnorm_forward_test", "batchnorm_forward, test mode", LAYERS,
              [wire.let("bn", test_param), test_call], ["f"],
              lambda v: {"out": _pair(v["f"], "batchnorm_forward", c.bn_test_x.shape)}),
        backward("batchnorm_backward"), backward("batchnorm_backward_alt")]


def _dropout_specs(c: LayerCase) -> list[_Spec]:
    train = _bn_param("train", p=c.drop_p, seed=c.drop_seed)
    calls = [_call(f, "dropout_forward", [A(c.drop_x), wire.ref("dp")],
                   "dropout_forward(x, dropout_param) in train mode") for f in ("f1", "f2")]
    small = _call("f", "dropout_forward", [A(c.drop_small), wire.ref("dp")],
                  "dropout_forward(x, dropout_param)")
    backward = _call("b", "dropout_backward", [A(c.drop_dout), wire.ref("f", 1)],
                     "dropout_backward(dout, cache)")
    return [
        _Spec("dropout_forward_train", "dropout_forward, train mode (p keeps a unit)", LAYERS,
              [wire.let("dp", train), *calls], ["f1", "f2"], None),
        _Spec("dropout_forward_test", "dropout_forward, test mode", LAYERS,
              [wire.let("dp", _bn_param("test", p=c.drop_p)), small], ["f"], None),
        _Spec("dropout_backward", "dropout_backward", LAYERS,
              [wire.let("dp", train), small, backward], ["f", "b"], None,
              depends=("dropout_forward_train",), needs=("dropout_forward_train",))]


def _loss_specs(c: LayerCase) -> list[_Spec]:
    def spec(name: str) -> _Spec:
        def read(v: dict[str, Any]) -> dict[str, Any]:
            loss, dx = items(v["r"], 2, name)
            return {"loss": scalar(loss, "the loss"), "dx": array(dx, c.scores.shape, "dx")}
        return _Spec(name, name, LAYERS, [_call("r", name, [A(c.scores), A(c.labels)],
                                                f"{name}(x, y)")], ["r"], read)
    return [spec("svm_loss"), spec("softmax_loss")]


def _sandwich_specs(c: LayerCase) -> list[_Spec]:
    x, w, b = A(c.x), A(c.w), A(c.b)
    n, m = c.x.shape[0], c.w.shape[1]
    relu_fwd = _call("f", "affine_relu_forward", [x, w, b], "affine_relu_forward(x, w, b)")
    relu_bwd = _call("b", "affine_relu_backward", [A(c.dout), wire.ref("f", 1)],
                     "affine_relu_backward(dout, cache)")
    bn_args = [A(c.abr_x), A(c.abr_w), b, A(c.gamma), A(c.beta), wire.ref("bn")]
    bn_fwd = [wire.let("bn", {"mode": "train"}),
              _call("f", "affine_batchnorm_relu_forward", bn_args,
                    "affine_batchnorm_relu_forward(x, w, b, gamma, beta, bn_param)")]
    bn_bwd = _call("b", "affine_batchnorm_relu_backward", [A(c.abr_dout), wire.ref("f", 1)],
                   "affine_batchnorm_relu_backward(dout, cache)")
    bn_shapes = {"dx": c.abr_x.shape, "dw": c.abr_w.shape, "db": c.b.shape,
                 "dgamma": c.gamma.shape, "dbeta": c.gamma.shape}
    bn_forward = ("affine_forward", "batchnorm_forward_train", "relu_forward")
    bn_backward = ("affine_backward", "batchnorm_backward", "relu_backward")
    return [
        _Spec("affine_relu_forward", "affine_relu_forward", UTILS, [relu_fwd], ["f"],
              lambda v: {"out": _pair(v["f"], "affine_relu_forward", (n, m))},
              depends=("affine_forward", "relu_forward"), needs=("affine_forward",
                                                                 "relu_forward")),
        _Spec("affine_relu_backward", "affine_relu_backward", UTILS, [relu_fwd, relu_bwd],
              ["b"], lambda v: _grads(v["b"], "affine_relu_backward",
                                      {"dx": c.x.shape, "dw": c.w.shape, "db": c.b.shape}),
              depends=("affine_relu_forward", "affine_backward", "relu_backward"),
              needs=("affine_relu_forward", "affine_backward", "relu_backward")),
        _Spec("affine_batchnorm_relu_forward", "affine_batchnorm_relu_forward", UTILS, bn_fwd,
              ["f"], lambda v: {"out": _pair(v["f"], "affine_batchnorm_relu_forward",
                                             (c.abr_x.shape[0], m))},
              depends=bn_forward, needs=bn_forward),
        _Spec("affine_batchnorm_relu_backward", "affine_batchnorm_relu_backward", UTILS,
              [*bn_fwd, bn_bwd], ["b"],
              lambda v: _grads(v["b"], "affine_batchnorm_relu_backward", bn_shapes),
              depends=("affine_batchnorm_relu_forward", *bn_backward),
              needs=("affine_batchnorm_relu_forward", *bn_backward))]
