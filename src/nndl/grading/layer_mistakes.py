"""The common mistakes in the second assignment's layers, as the layers with one step changed.

Each function here computes one part's quantities step by step (keyed as the part's
:class:`~nndl.grading.compare.Answer`) with ``mistake`` made; without a mistake it equals
:mod:`nndl.layers` and :mod:`nndl.layer_utils` (tests/grading checks it), which stay the
reference every verdict is measured against. :data:`HINTS` says what each mistake is in
words, never in code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nndl._typing import NDArray

Quantities = dict[str, Any]

#: mistake -> its hint. The parts look for them in this order.
HINTS = {
    "affine_no_bias": "the bias b is not added",
    "affine_db_averaged": "db is N times too small: it is averaged over the rows, not summed",
    "affine_dx_flat": "dx keeps the flattened shape (N, D): it takes x's own shape",
    "relu_no_mask": "the gradient flows back through units whose input was negative: the "
                    "ReLU's mask is missing",
    "relu_mask_of_dout": "the mask is taken where the upstream gradient is positive; it is "
                         "where the layer's input was",
    "bn_unbiased": "the variance is the unbiased one (divided by N - 1); batch normalization "
                   "uses the biased one (divided by N)",
    "bn_momentum_swapped": "the running averages weigh the new minibatch by momentum; the "
                           "old average is the one weighted by momentum",
    "bn_no_eps": "eps is not added to the variance before the square root",
    "bn_eps_outside": "eps is added to the standard deviation; it is added to the variance, "
                      "inside the square root",
    "bn_running_unchanged": "the running averages are not updated in bn_param",
    "bn_running_std": "running_var averages the standard deviation, not the variance",
    "bn_no_gamma_beta": "gamma and beta are not applied to the normalized values",
    "bn_test_batch": "test mode normalizes with the minibatch's own mean and variance; it "
                     "uses the running averages",
    "bn_no_mean_terms": "dx misses the terms that flow through the minibatch mean and "
                        "variance (it treats them as constants)",
    "bn_no_mean_term": "dx misses the term that flows through the minibatch mean",
    "bn_no_var_term": "dx misses the term that flows through the minibatch variance",
    "bn_no_gamma_grad": "dx is not scaled by gamma",
    "bn_dgamma_plain": "dgamma sums the upstream gradient alone; each row is weighted by its "
                       "normalized input",
    "svm_counts_correct": "the loss counts the correct class's own margin (1 per row); the "
                          "sum runs over the other classes only",
    "svm_not_averaged": "the loss and its gradient are summed over the N rows, not averaged",
    "svm_loss_not_averaged": "the loss is summed over the N rows, not averaged (as dx is)",
    "svm_dx_not_averaged": "dx is N times too large: it is not averaged over the rows as "
                           "the loss is",
    "softmax_not_averaged": "the loss and its gradient are summed over the N rows, not "
                            "averaged",
    "softmax_loss_not_averaged": "the loss is summed over the N rows, not averaged (as dx "
                                 "is)",
    "softmax_dx_not_averaged": "dx is N times too large: it is not averaged over the rows as "
                               "the loss is",
    "softmax_no_minus_one": "dx misses the -1 at each row's correct class",
    "affine_relu_no_relu": "the sandwich's ReLU is skipped: out is the affine layer's output",
    "affine_relu_no_relu_grad": "the backward pass skips the ReLU's gradient",
    "abr_relu_first": "the ReLU comes before batch normalization; the course's order is "
                      "affine, batchnorm, ReLU",
    "abr_backward_order": "the backward pass runs the layers in the forward pass's order; it "
                          "runs them in reverse (ReLU, batchnorm, affine)",
}


# -- affine and ReLU -------------------------------------------------------------------

def affine(x: NDArray, w: NDArray, b: NDArray, dout: NDArray, mistake: str = "") -> Quantities:
    """``out`` (N, M), ``dx`` (x's shape), ``dw`` (D, M), ``db`` (M,)."""
    rows = x.reshape(len(x), -1)
    out = rows @ w + (0.0 if mistake == "affine_no_bias" else b)
    dx = dout @ w.T
    db = dout.sum(axis=0) / (len(x) if mistake == "affine_db_averaged" else 1)
    return {"out": out, "dx": dx if mistake == "affine_dx_flat" else dx.reshape(x.shape),
            "dw": rows.T @ dout, "db": db}


def relu(x: NDArray, dout: NDArray, mistake: str = "") -> Quantities:
    """``out`` and ``dx``, shaped like ``x``."""
    mask = {"relu_no_mask": np.ones_like(x), "relu_mask_of_dout": dout > 0}.get(mistake, x > 0)
    return {"out": np.maximum(x, 0.0), "dx": dout * mask}


# -- batch normalization ----------------------------------------------------------------

def _stats(x: NDArray, mistake: str) -> tuple[NDArray, NDArray]:
    return x.mean(axis=0), x.var(axis=0, ddof=1 if mistake == "bn_unbiased" else 0)


def _normalize(x: NDArray, mean: NDArray, var: NDArray, eps: float, mistake: str) -> NDArray:
    if mistake == "bn_no_eps":
        return (x - mean) / np.sqrt(var)
    if mistake == "bn_eps_outside":
        return (x - mean) / (np.sqrt(var) + eps)
    return (x - mean) / np.sqrt(var + eps)


def batchnorm_train(batches: list[NDArray], gamma: NDArray, beta: NDArray,
                    bn: dict[str, Any], mistake: str = "") -> Quantities:
    """Train-mode calls on each of ``batches`` in turn, one ``bn_param`` (``momentum``,
    ``eps``, first running averages): ``out1``, ``out2``, ... and the running averages
    after the last call."""
    m, eps = bn["momentum"], bn["eps"]
    running_mean, running_var = bn["running_mean"], bn["running_var"]
    found: Quantities = {}
    for i, x in enumerate(batches, 1):
        mean, var = _stats(x, mistake)
        xhat = _normalize(x, mean, var, eps, mistake)
        found[f"out{i}"] = xhat if mistake == "bn_no_gamma_beta" else gamma * xhat + beta
        new = {"bn_momentum_swapped": 1 - m}.get(mistake, m)
        spread = np.sqrt(var) if mistake == "bn_running_std" else var
        if mistake != "bn_running_unchanged":
            running_mean = new * running_mean + (1 - new) * mean
            running_var = new * running_var + (1 - new) * spread
    return {**found, "running_mean": running_mean, "running_var": running_var}


def batchnorm_test(x: NDArray, gamma: NDArray, beta: NDArray, bn: dict[str, Any],
                   mistake: str = "") -> Quantities:
    """Test mode: ``out``, normalized by the running averages."""
    mean, var = ((x.mean(axis=0), x.var(axis=0)) if mistake == "bn_test_batch"
                 else (bn["running_mean"], bn["running_var"]))
    xhat = _normalize(x, mean, var, bn["eps"], mistake)
    return {"out": xhat if mistake == "bn_no_gamma_beta" else gamma * xhat + beta}


def batchnorm_backward(x: NDArray, gamma: NDArray, dout: NDArray, eps: float,
                       mistake: str = "") -> Quantities:
    """``dx`` (N, D), ``dgamma``, ``dbeta`` (D,) of a train-mode forward pass on ``x``."""
    mean, var = x.mean(axis=0), x.var(axis=0)
    std = np.sqrt(var + eps)
    xhat = (x - mean) / std
    dxhat = dout if mistake == "bn_no_gamma_grad" else dout * gamma
    through_mean = dxhat.mean(axis=0)
    through_var = xhat * (dxhat * xhat).mean(axis=0)
    if mistake in ("bn_no_mean_terms", "bn_no_mean_term"):
        through_mean = 0.0
    if mistake in ("bn_no_mean_terms", "bn_no_var_term"):
        through_var = 0.0
    dgamma = dout.sum(axis=0) if mistake == "bn_dgamma_plain" else (dout * xhat).sum(axis=0)
    return {"dx": (dxhat - through_mean - through_var) / std, "dgamma": dgamma,
            "dbeta": dout.sum(axis=0)}


# -- losses -----------------------------------------------------------------------------

def svm(x: NDArray, y: NDArray, mistake: str = "") -> Quantities:
    """``loss`` and ``dx`` (N, C) of the multiclass hinge loss, margin 1."""
    n, rows = len(x), np.arange(len(x))
    margins = np.maximum(0.0, x - x[rows, y][:, None] + 1.0)
    if mistake != "svm_counts_correct":
        margins[rows, y] = 0.0
    positive = (margins > 0).astype(np.float64)
    positive[rows, y] = 0.0
    dx = positive.copy()
    dx[rows, y] = -positive.sum(axis=1)
    loss_scale = 1.0 if mistake in ("svm_not_averaged", "svm_loss_not_averaged") else 1.0 / n
    dx_scale = 1.0 if mistake in ("svm_not_averaged", "svm_dx_not_averaged") else 1.0 / n
    return {"loss": float(margins.sum() * loss_scale), "dx": dx * dx_scale}


def softmax(x: NDArray, y: NDArray, mistake: str = "") -> Quantities:
    """``loss`` and ``dx`` (N, C) of the softmax cross-entropy."""
    n, rows = len(x), np.arange(len(x))
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    dx = np.exp(log_probs)
    if mistake != "softmax_no_minus_one":
        dx[rows, y] -= 1.0
    summed = ("softmax_not_averaged", "softmax_loss_not_averaged")
    loss_scale = 1.0 if mistake in summed else 1.0 / n
    dx_scale = 1.0 if mistake in ("softmax_not_averaged", "softmax_dx_not_averaged") else 1 / n
    return {"loss": float(-log_probs[rows, y].sum() * loss_scale), "dx": dx * dx_scale}


# -- sandwiches -------------------------------------------------------------------------

def affine_relu(x: NDArray, w: NDArray, b: NDArray, dout: NDArray,
                mistake: str = "") -> Quantities:
    """``out``, ``dx``, ``dw``, ``db`` of affine then ReLU."""
    a = affine(x, w, b, np.zeros((len(x), w.shape[1])))["out"]
    da = dout if mistake == "affine_relu_no_relu_grad" else dout * (a > 0)
    grads = affine(x, w, b, da)
    out = a if mistake == "affine_relu_no_relu" else np.maximum(a, 0.0)
    return {"out": out, "dx": grads["dx"], "dw": grads["dw"], "db": grads["db"]}


def affine_batchnorm_relu(x: NDArray, w: NDArray, b: NDArray, gamma: NDArray, beta: NDArray,
                          dout: NDArray, eps: float, mistake: str = "") -> Quantities:
    """``out``, ``dx``, ``dw``, ``db``, ``dgamma``, ``dbeta`` of affine, batch normalization
    (train mode) and ReLU (with ``abr_relu_first``: affine, ReLU, batch normalization; with
    ``abr_backward_order``: the backward pass through batchnorm, then the ReLU)."""
    a = affine(x, w, b, np.zeros((len(x), w.shape[1])))["out"]
    if mistake == "abr_relu_first":
        h = np.maximum(a, 0.0)
        out = batchnorm_train([h], gamma, beta, _fresh(h, eps))["out1"]
        bn = batchnorm_backward(h, gamma, dout, eps)
        grads = affine(x, w, b, bn["dx"] * (a > 0))
    elif mistake == "abr_backward_order":
        normed = batchnorm_train([a], gamma, beta, _fresh(a, eps))["out1"]
        out = np.maximum(normed, 0.0)
        bn = batchnorm_backward(a, gamma, dout, eps)
        grads = affine(x, w, b, bn["dx"] * (normed > 0))
    else:
        normed = batchnorm_train([a], gamma, beta, _fresh(a, eps))["out1"]
        out = np.maximum(normed, 0.0)
        bn = batchnorm_backward(a, gamma, dout * (normed > 0), eps)
        grads = affine(x, w, b, bn["dx"])
    return {"out": out, "dx": grads["dx"], "dw": grads["dw"], "db": grads["db"],
            "dgamma": bn["dgamma"], "dbeta": bn["dbeta"]}


def _fresh(x: NDArray, eps: float) -> dict[str, Any]:
    zeros = np.zeros(x.shape[1])
    return {"momentum": 0.9, "eps": eps, "running_mean": zeros, "running_var": zeros}
