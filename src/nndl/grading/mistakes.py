"""The common mistakes of the first assignment, as the reference with one step changed.

A hint is given only when the student's value matches what the network computes with that
one mistake made (within the part's tolerance): the hint names the mistake, never the code.
:func:`network` is the two-layer network's arithmetic written step by step (reference
layout: ``W1`` (H, D), ``W2`` (C, H); ``loss = data loss + coef * sum(W**2)``) so that one
step can be changed; without a mistake it equals :class:`nndl.neural_net.TwoLayerNet`
(tests/grading checks it), which stays the reference every verdict is measured against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nndl._typing import NDArray
from nndl.grading.variants import Variant

GRADS = ("W1", "b1", "W2", "b2")


@dataclass(frozen=True)
class Mistake:
    """One mistake: its ``name``, the quantities it is looked for in (``scores``, ``loss``,
    ``grads``, ``predict``) and its ``hint`` (``{...}`` filled from the variant)."""

    name: str
    quantities: frozenset[str]
    hint: str

    def text(self, variant: Variant) -> str:
        return self.hint.format(course=variant.course, regularization=variant.regularization,
                                other=variant.other.regularization,
                                other_course=variant.other.course,
                                other_name=variant.other.name,
                                factor="twice" if variant.half else "half")


def _m(name: str, quantities: str, hint: str) -> Mistake:
    return Mistake(name, frozenset(quantities.split()), hint)


#: In the order hints are looked for, the first match being the hint: the forward pass's
#: mistakes, then those of the gradients alone (a gradient that is wrong where the loss is
#: right is named as such), then the loss's (whose gradients follow it).
MISTAKES = (
    _m("no_relu", "scores loss grads predict", "the hidden layer has no ReLU"),
    _m("probabilities", "scores", "the scores are softmax probabilities; loss(X) returns the "
       "raw class scores, before any softmax"),
    _m("relu_on_scores", "scores loss", "a ReLU is applied to the class scores; only "
       "the hidden layer has one"),
    _m("no_b1", "scores loss grads predict", "the first layer's bias b1 is not added"),
    _m("no_b2", "scores loss grads predict", "the second layer's bias b2 is not added"),
    _m("grads_not_averaged", "grads", "the gradients are N times too large: the data loss's "
       "gradient is not averaged over the minibatch"),
    _m("no_relu_mask", "grads", "the ReLU's gradient mask is missing: gradient flows back "
       "through hidden units that were inactive"),
    _m("no_minus_one", "grads", "the softmax gradient misses the -1 at each row's correct "
       "class"),
    _m("no_reg_grad", "grads", "the regularization term's gradient is missing"),
    _m("reg_grad_other", "grads", "the regularization gradient is {factor} what "
       "{regularization} gives"),
    _m("bias_grad_averaged", "grads", "the bias gradient is N times too small: it is averaged "
       "over the rows a second time"),
    _m("other_convention", "loss grads", "regularization counted as {other}; {course} uses "
       "{regularization} (for {other_course}'s convention, check with --variant {other_name})"),
    _m("no_reg", "loss grads", "the loss has no regularization term"),
    _m("reg_W1_only", "loss grads", "the regularization term leaves out W2"),
    _m("reg_W2_only", "loss grads", "the regularization term leaves out W1"),
    _m("reg_biases", "loss grads", "the regularization term includes the biases; it covers "
       "the weights only"),
    _m("reg_norm", "loss", "the regularization uses each weight matrix's norm, not the sum of "
       "its squared entries"),
    _m("summed", "loss", "the data loss is summed over the minibatch, not averaged: N times "
       "too large"),
)


def network(params: dict[str, NDArray], X: NDArray, y: NDArray, coef: float,
            other_coef: float, mistake: str = "") -> dict[str, NDArray | float]:
    """Scores (N, C), loss and gradients (reference layout) with ``mistake`` made.

    ``coef`` multiplies ``sum(W1**2) + sum(W2**2)`` in the loss; ``other_coef`` is the other
    course's (for ``other_convention`` and ``reg_grad_other``).
    """
    W1, b1, W2, b2 = (params[k] for k in GRADS)
    n = len(X)
    a1 = X @ W1.T + (0.0 if mistake == "no_b1" else b1)
    h = a1 if mistake == "no_relu" else np.maximum(a1, 0.0)
    scores = h @ W2.T + (0.0 if mistake == "no_b2" else b2)
    if mistake == "relu_on_scores":
        scores = np.maximum(scores, 0.0)
    probs = _softmax(scores)
    rows = np.arange(n)
    data_loss = -np.sum(np.log(probs[rows, y]))
    data_loss = data_loss if mistake == "summed" else data_loss / n

    c = other_coef if mistake == "other_convention" else coef
    weights = {"reg_W1_only": (W1,), "reg_W2_only": (W2,),
               "reg_biases": (W1, W2, b1, b2)}.get(mistake, (W1, W2))
    if mistake == "no_reg":
        reg_loss = 0.0
    elif mistake == "reg_norm":
        reg_loss = c * sum(float(np.linalg.norm(w)) for w in weights)
    else:
        reg_loss = c * sum(float(np.sum(w * w)) for w in weights)

    dscores = probs.copy()
    if mistake != "no_minus_one":
        dscores[rows, y] -= 1
    if mistake not in ("summed", "grads_not_averaged"):
        dscores /= n
    dh = dscores @ W2
    da1 = dh if mistake in ("no_relu_mask", "no_relu") else dh * (a1 > 0)
    grads = {"W1": da1.T @ X, "b1": da1.sum(axis=0), "W2": dscores.T @ h,
             "b2": dscores.sum(axis=0)}
    if mistake == "bias_grad_averaged":
        grads["b1"], grads["b2"] = grads["b1"] / n, grads["b2"] / n
    grad_c = {"no_reg_grad": 0.0, "no_reg": 0.0,
              "reg_grad_other": other_coef}.get(mistake, c)
    for name, w in (("W1", W1), ("W2", W2), ("b1", b1), ("b2", b2)):
        if any(w is v for v in weights) and mistake != "reg_norm":
            grads[name] = grads[name] + 2.0 * grad_c * w
    shown = _softmax(scores) if mistake == "probabilities" else scores
    return {"scores": shown, "loss": float(data_loss + reg_loss), **grads,
            "predict": np.argmax(scores, axis=1)}


def _softmax(scores: NDArray) -> NDArray:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def mistaken_outputs(params: dict[str, NDArray], X: NDArray, y: NDArray, reg: float,
                     variant: Variant) -> dict[str, dict]:
    """Every mistake's outputs on one input, keyed by mistake name."""
    coef, other = variant.coefficient(reg), variant.other.coefficient(reg)
    return {m.name: network(params, X, y, coef, other, m.name) for m in MISTAKES}
