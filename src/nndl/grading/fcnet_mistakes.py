"""``FullyConnectedNet``'s loss and gradients, and its common mistakes, as the network with one
step changed.

:func:`network` is the course's ``{affine - [batchnorm] - relu - [dropout]} x (L - 1) -
affine - softmax`` assembled from :mod:`nndl.layers`, given the dropout masks, with
``mistake`` made in how the layers are put together (their order, the modes, the
regularization). Without a mistake it equals :class:`nndl.fc_net.FullyConnectedNet`
(tests/grading checks it for every configuration the checker uses); it gives the answers,
so that dropout may be checked with the student's own masks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nndl import layers
from nndl._typing import NDArray

HINTS = {
    "fc_reg_no_half": "regularization counted as reg * sum(W**2); the course's "
                      "FullyConnectedNet uses 0.5 * reg * sum(W**2)",
    "fc_no_reg": "the loss has no regularization term",
    "fc_reg_grad_missing": "the regularization term's gradient is missing from the weights' "
                           "gradients",
    "fc_reg_last_only": "the regularization covers only the last layer's weights (each "
                        "layer's W counts)",
    "fc_reg_skips_last": "the regularization leaves out the last layer's weights",
    "fc_reg_gamma": "the regularization includes batch normalization's gamma; it covers the "
                    "weights W only",
    "fc_relu_on_scores": "a ReLU follows the last affine layer; the scores come straight "
                         "from it",
    "fc_bn_after_relu": "batch normalization comes after the ReLU; the course's order is "
                        "affine, batchnorm, ReLU",
    "fc_no_dropout_in_train": "dropout is not applied while training (in loss(X, y))",
    "fc_no_dropout_backward": "the backward pass skips dropout's backward pass: the gradient "
                              "is not masked as the forward pass's values were",
    "fc_scores_train_mode": "loss(X) without y runs in train mode; it scores in test mode "
                            "(batch normalization by its running averages, no dropout)",
}

#: The mistakes each family of configurations looks for, in order.
#: The forward pass's mistakes first, then those of the gradients alone (a gradient that is
#: wrong where the loss is right is named as such), then the loss's.
MISTAKES = {
    "plain": ("fc_relu_on_scores", "fc_reg_grad_missing", "fc_reg_no_half", "fc_no_reg",
              "fc_reg_last_only", "fc_reg_skips_last"),
    "batchnorm": ("fc_relu_on_scores", "fc_bn_after_relu", "fc_scores_train_mode",
                  "fc_reg_grad_missing", "fc_reg_no_half", "fc_no_reg", "fc_reg_last_only",
                  "fc_reg_skips_last", "fc_reg_gamma"),
    "dropout": ("fc_relu_on_scores", "fc_no_dropout_in_train", "fc_scores_train_mode",
                "fc_no_dropout_backward", "fc_reg_grad_missing", "fc_reg_no_half",
                "fc_no_reg", "fc_reg_last_only", "fc_reg_skips_last"),
}


def network(params: dict[str, NDArray], X: NDArray, y: NDArray, reg: float,
            batchnorm: bool = False, masks: list[NDArray] | None = None,
            mistake: str = "") -> dict[str, Any]:
    """``loss``, the gradient of every parameter (keyed like ``params``) and ``scores``:
    what ``loss(X)`` gives after that one train-mode call (running averages updated from
    zeros with the default momentum 0.9). ``masks`` (0 or 1/p, one per hidden layer) are
    the dropout masks; None: no dropout."""
    depth = sum(1 for k in params if k.startswith("W"))
    bn_params: list[dict[str, Any]] = [{"mode": "train"} for _ in range(depth - 1)]
    train_masks = None if mistake == "fc_no_dropout_in_train" else masks
    scores, caches = _forward(params, X, depth, batchnorm, bn_params, train_masks, mistake)
    loss, dscores = layers.softmax_loss(scores, y)
    grads = _backward(dscores, caches, depth, batchnorm, mistake)
    loss += _regularize(params, grads, reg, mistake)
    if mistake != "fc_scores_train_mode":
        for bn_param in bn_params:
            bn_param["mode"] = "test"
        scores = _forward(params, X, depth, batchnorm, bn_params, None, mistake)[0]
    return {"loss": float(loss), "scores": scores, **grads}


def _forward(params: dict[str, NDArray], X: NDArray, depth: int, batchnorm: bool,
             bn_params: list[dict[str, Any]], masks: list[NDArray] | None,
             mistake: str) -> tuple[NDArray, list]:
    hidden = X
    caches: list[tuple[Any, Any, Any, Any]] = []
    for i in range(1, depth):
        a, fc = layers.affine_forward(hidden, params[f"W{i}"], params[f"b{i}"])
        bn_cache = None
        after_relu = mistake == "fc_bn_after_relu"
        if batchnorm and not after_relu:
            a, bn_cache = layers.batchnorm_forward(a, params[f"gamma{i}"], params[f"beta{i}"],
                                                   bn_params[i - 1])
        hidden, relu = layers.relu_forward(a)
        if batchnorm and after_relu:
            hidden, bn_cache = layers.batchnorm_forward(hidden, params[f"gamma{i}"],
                                                        params[f"beta{i}"], bn_params[i - 1])
        mask = None if masks is None else masks[i - 1]
        if mask is not None:
            hidden = hidden * mask
        caches.append((fc, bn_cache, relu, mask))
    scores, fc = layers.affine_forward(hidden, params[f"W{depth}"], params[f"b{depth}"])
    last = None
    if mistake == "fc_relu_on_scores":
        scores, last = layers.relu_forward(scores)
    caches.append((fc, None, last, None))
    return scores, caches


def _backward(dscores: NDArray, caches: list, depth: int, batchnorm: bool,
              mistake: str) -> dict[str, NDArray]:
    grads: dict[str, NDArray] = {}
    fc, _, last, _ = caches[-1]
    if last is not None:
        dscores = layers.relu_backward(dscores, last)
    dhidden, grads[f"W{depth}"], grads[f"b{depth}"] = layers.affine_backward(dscores, fc)
    for i in range(depth - 1, 0, -1):
        fc, bn_cache, relu, mask = caches[i - 1]
        if mask is not None and mistake != "fc_no_dropout_backward":
            dhidden = dhidden * mask
        if batchnorm and mistake == "fc_bn_after_relu":
            dhidden, grads[f"gamma{i}"], grads[f"beta{i}"] = layers.batchnorm_backward(
                dhidden, bn_cache)
        da = layers.relu_backward(dhidden, relu)
        if batchnorm and mistake != "fc_bn_after_relu":
            da, grads[f"gamma{i}"], grads[f"beta{i}"] = layers.batchnorm_backward(da, bn_cache)
        dhidden, grads[f"W{i}"], grads[f"b{i}"] = layers.affine_backward(da, fc)
    return grads


def _regularize(params: dict[str, NDArray], grads: dict[str, NDArray], reg: float,
                mistake: str) -> float:
    """The regularization loss; its gradient is added to ``grads``."""
    if mistake == "fc_no_reg":
        return 0.0
    depth = sum(1 for k in params if k.startswith("W"))
    names = [f"W{i}" for i in range(1, depth + 1)]
    if mistake == "fc_reg_last_only":
        names = names[-1:]
    elif mistake == "fc_reg_skips_last":
        names = names[:-1]
    elif mistake == "fc_reg_gamma":
        names += [k for k in params if k.startswith("gamma")]
    coefficient = reg if mistake == "fc_reg_no_half" else 0.5 * reg
    if mistake != "fc_reg_grad_missing":
        for name in names:
            grads[name] = grads[name] + 2 * coefficient * params[name]
    return coefficient * sum(float(np.sum(params[n] ** 2)) for n in names)


def kink_distance(params: dict[str, NDArray], X: NDArray, batchnorm: bool) -> float:
    """How close any ReLU's input comes to 0 in the train-mode forward pass (a numerical
    gradient that steps over the kink is meaningless)."""
    depth = sum(1 for k in params if k.startswith("W"))
    bn_params: list[dict[str, Any]] = [{"mode": "train"} for _ in range(depth - 1)]
    caches = _forward(params, X, depth, batchnorm, bn_params, None, "")[1]
    return min(float(np.min(np.abs(relu))) for _, _, relu, _ in caches[:-1])
