"""K two-layer networks trained in lockstep on one minibatch stream.

Members share the input size, hidden size, classes, batch size and the
minibatches; each has its own initial scale ``std``, learning rate, per-epoch
decay and L2 strength, applied elementwise. Their first layers are stacked
into one (K*H, D) matrix, so the forward pass is a single (B, D) x (D, K*H)
product and the first-layer weight gradient a single (K*H, B) x (B, D) one;
the small second layers run as one batched product. The algorithm is the
assignment's SGD (see :mod:`nndl.training`): a member gives the same result
as the same network trained alone on the same minibatch indices.

Members can leave early (pruned, diverged): they are frozen and dropped from
the stacked arrays, so the remaining ones stop paying for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nndl._validation import check_float
from nndl.backend import NUMPY
from nndl.neural_net import TwoLayerNet
from nndl.training import _iterations, _MinibatchSampler, iterations_per_epoch


@dataclass
class Member:
    """One member's hyperparameters; ``seed`` drives its initialization
    (the same draws as ``TwoLayerNet(..., std, random_state=seed)``)."""

    learning_rate: float
    reg: float = 0.0
    learning_rate_decay: float = 0.95
    std: float = 1e-4
    seed: int = 0

    def __post_init__(self):
        check_float("learning_rate", self.learning_rate)
        check_float("reg", self.reg)
        check_float("learning_rate_decay", self.learning_rate_decay, 0.0, 1.0)
        check_float("std", self.std)


@dataclass
class MemberResult:
    """What became of a member: its network (frozen at the end or when it left),
    histories like ``TwoLayerNet.train``'s, and why it stopped early, if it did."""

    net: TwoLayerNet
    history: dict
    state: str = "complete"  # complete | pruned | diverged
    reason: str = ""


class Population:
    """Stacked parameters of the active members, on any array backend.

    The first layers are kept transposed and scaled: column block k of
    ``V`` (D, K*H) times ``scale`` (K*H,) is member k's ``W1.T``; the scale
    absorbs weight decay, so decay never sweeps the big matrix. ``b1`` (K*H,),
    ``W2`` (K, C, H), ``b2`` (K, C). Only array-API operations are used, so
    the same code runs on NumPy, PyTorch and CuPy arrays; on NumPy the large
    products write into preallocated buffers.
    """

    def __init__(self, params, dtype=np.float32, backend=NUMPY):
        """``params``: one dict per member with ``W1`` (H, D), ``b1``, ``W2`` (C, H), ``b2``
        (NumPy arrays, the assignment's layout), copied onto ``backend``."""
        self.bk, self.xp = backend, backend.xp
        self.dtype = np.dtype(dtype)
        K = len(params)
        self.H, self.C = params[0]["W1"].shape[0], params[0]["W2"].shape[0]
        put = lambda a: backend.asarray(a, self.dtype)  # noqa: E731
        self.V = put(np.ascontiguousarray(np.concatenate([p["W1"] for p in params]).T))
        self.scale = put(np.ones(K * self.H))
        self.b1 = put(np.concatenate([p["b1"] for p in params]))
        self.W2 = put(np.stack([p["W2"] for p in params]))
        self.b2 = put(np.stack([p["b2"] for p in params]))
        self.eye = put(np.eye(self.C))
        self.active = list(range(K))  # member index of each stacked slot
        self._buffers = {}
        self._scale_min = 1.0  # a lower bound of min(scale), tracked on the host

    @classmethod
    def from_members(cls, members, input_size, hidden_size, num_classes, dtype=np.float32,
                     backend=NUMPY):
        """Fresh members, each initialized like ``TwoLayerNet(..., std, random_state=seed)``."""
        nets = [TwoLayerNet(input_size, hidden_size, num_classes, std=m.std,
                            random_state=m.seed, dtype=dtype) for m in members]
        return cls([n.params for n in nets], dtype, backend)

    @property
    def K(self):
        return len(self.active)

    def gather(self, X, idx):
        """Rows ``idx`` of the backend array X (into a reused buffer on NumPy)."""
        if self.bk.name == "numpy":
            return np.take(X, idx, axis=0, out=self._buffer("batch", (len(idx), X.shape[1])))
        return self.xp.take(X, self.bk.asarray(idx), axis=0)

    def member_params(self, slot):
        """Member ``slot``'s parameters as NumPy arrays in the assignment's layout."""
        h = slice(slot * self.H, (slot + 1) * self.H)
        get = self.bk.to_numpy
        return {"W1": np.ascontiguousarray((get(self.V[:, h]) * get(self.scale[h])).T),
                "b1": get(self.b1[h]).copy(), "W2": get(self.W2[slot]).copy(),
                "b2": get(self.b2[slot]).copy()}

    def keep(self, slots):
        """Drop every stacked slot not in ``slots``."""
        cols = (np.concatenate([np.arange(s * self.H, (s + 1) * self.H) for s in slots])
                if slots else np.zeros(0, dtype=np.int64))
        xp = self.xp
        cols_x = self.bk.asarray(cols)
        slots_x = self.bk.asarray(np.array(slots, dtype=np.int64))
        self.V = xp.take(self.V, cols_x, axis=1)
        if self.bk.name == "numpy":  # take() on axis 1 leaves a non-C-ordered array
            self.V = np.ascontiguousarray(self.V)
        self.scale, self.b1 = xp.take(self.scale, cols_x), xp.take(self.b1, cols_x)
        self.W2, self.b2 = xp.take(self.W2, slots_x, axis=0), xp.take(self.b2, slots_x, axis=0)
        self.active = [self.active[s] for s in slots]
        self._buffers = {}

    def gather_labels(self, y, idx):
        return y[idx] if self.bk.name == "numpy" else self.xp.take(y, self.bk.asarray(idx))

    def _buffer(self, name, shape):
        """A reusable NumPy work array (None on other backends: they allocate)."""
        if self.bk.name != "numpy":
            return None
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape:
            buf = self._buffers[name] = np.empty(shape, dtype=self.dtype)
        return buf

    def _matmul(self, a, b, name):
        out = self._buffer(name, (a.shape[0], b.shape[1]))
        return a @ b if out is None else np.matmul(a, b, out=out)

    def _hidden(self, X):
        hidden = self._matmul(X, self.V, "hidden")
        hidden *= self.scale
        hidden += self.b1
        return self.xp.maximum(hidden, self.xp.zeros_like(hidden[:1])) \
            if self.bk.name != "numpy" else np.maximum(hidden, 0, out=hidden)  # (N, K*H)

    def scores(self, X):
        """Scores (K, N, C) of every active member for rows X (N, D)."""
        xp = self.xp
        hidden = xp.permute_dims(xp.reshape(self._hidden(X), (X.shape[0], self.K, self.H)),
                                 (1, 0, 2))
        return hidden @ xp.permute_dims(self.W2, (0, 2, 1)) + self.b2[:, None, :]

    def step(self, X, y, lr, reg):
        """One SGD step on rows X (B, D) and labels y (B,) — or target distributions
        y (B, C), e.g. for distillation — (backend arrays) with per-member learning
        rates ``lr`` and L2 strengths ``reg`` (NumPy (K,)); returns the losses (NumPy
        (K,)) before the step.

        ``W <- W * (1 - lr * reg) - lr * dW_data``: the learning rate is folded into
        the small (B, K*H) hidden gradient before the big product, and the decay
        into ``scale``.
        """
        xp, bk, numpy_backend = self.xp, self.bk, self.bk.name == "numpy"
        n, K, H = X.shape[0], self.K, self.H
        hidden_flat = self._hidden(X)
        hidden = xp.permute_dims(xp.reshape(hidden_flat, (n, K, H)), (1, 0, 2))  # (K, B, H)
        scores = hidden @ xp.permute_dims(self.W2, (0, 2, 1)) + self.b2[:, None, :]
        scores = scores - xp.max(scores, axis=2, keepdims=True)  # (K, B, C)
        log_probs = scores - xp.log(xp.sum(xp.exp(scores), axis=2, keepdims=True))
        onehot = xp.take(self.eye, y, axis=0) if y.ndim == 1 else y  # (B, C) targets
        reg_x, lr_x = bk.asarray(reg, self.dtype), bk.asarray(lr, self.dtype)
        if numpy_backend:  # no (D, K*H) temporary
            col_sq = np.einsum("ij,ij->j", self.V, self.V)
        else:
            col_sq = xp.sum(self.V * self.V, axis=0)
        w1_sq = xp.sum(xp.reshape(col_sq * self.scale * self.scale, (K, H)), axis=1)
        w2_sq = xp.sum(xp.reshape(self.W2 * self.W2, (K, -1)), axis=1)
        losses = (-xp.sum(xp.sum(log_probs * onehot, axis=2), axis=1) / n
                  + 0.5 * reg_x * (w1_sq + w2_sq))
        dscores = (xp.exp(log_probs) - onehot) * (lr_x / n)[:, None, None]  # lr * dL/dscores
        step_W2 = xp.permute_dims(dscores, (0, 2, 1)) @ hidden
        dhidden = xp.reshape(xp.permute_dims(dscores @ self.W2, (1, 0, 2)), (n, K * H))
        shrink = 1 - lr_x * reg_x
        shrink_cols = xp.reshape(xp.broadcast_to(shrink[:, None], (K, H)), (K * H,))
        self.scale *= shrink_cols
        self.W2 *= shrink[:, None, None]
        self.b2 -= xp.sum(dscores, axis=1)
        self.W2 -= step_W2
        if numpy_backend:
            np.multiply(dhidden, hidden_flat > 0, out=dhidden)
        else:
            dhidden = xp.where(hidden_flat > 0, dhidden, xp.zeros_like(dhidden[:1]))
        self.b1 -= xp.sum(dhidden, axis=0)
        dhidden /= self.scale  # V absorbs the step in unscaled units
        self.V -= self._matmul(xp.permute_dims(X, (1, 0)), dhidden, "grad")
        self._scale_min *= float(np.min(1 - np.asarray(lr) * np.asarray(reg))) if K else 1.0
        if self._scale_min < 1e-2:  # fold the scale back before it loses precision
            self.V *= self.scale
            self.scale = xp.ones_like(self.scale)
            self._scale_min = 1.0
        return bk.to_numpy(losses).astype(np.float64)


def train_population(members, X, y, X_val, y_val, *, hidden_size, num_iters, batch_size,
                     stream_seed=0, dtype=np.float32, on_epoch=None, progress=False,
                     backend=NUMPY, schedule=None, batch_transform=None, soft_targets=None):
    """Train ``members`` in lockstep; returns one :class:`MemberResult` per member.

    Parameters
    ----------
    members : list of Member
    X : ndarray (N, D); y : int ndarray (N,); X_val, y_val : the validation rows
    hidden_size, num_iters, batch_size : shared by all members
    stream_seed : int
        Seed of the minibatch index stream, ``numpy.random.default_rng(stream_seed)``:
        the same indices as ``train_network(..., rng=default_rng(stream_seed))``.
    on_epoch : callable ``(member_index, epoch, val_acc) -> str | None``
        Called for every active member after each epoch's bookkeeping; returning a
        reason (e.g. "pruned by the pruner") makes the member leave as pruned.
    backend : nndl.backend.Backend
        Where to compute (NumPy by default; PyTorch or CuPy, CPU or GPU).
    schedule : callable ``it -> multiplier`` or None
        A learning-rate schedule shared by all members (see :mod:`nndl.schedules`);
        None means each member's per-epoch decay.
    soft_targets : ndarray (N, C) or None
        Target distributions of the training rows (distillation) instead of ``y``.
    batch_transform : callable ``(images, rng) -> rows`` or None
        Augmentation and preprocessing of each minibatch (shared by the members);
        X then holds the raw images. Its random draws come from the stream's RNG.
    """
    num_classes = int(max(y.max(), y_val.max())) + 1
    input_size = X.shape[1] if batch_transform is None else \
        batch_transform(X[:1], np.random.default_rng(0)).shape[1]
    pop = Population.from_members(members, input_size, hidden_size, num_classes, dtype,
                                  backend)
    stream = np.random.default_rng(stream_seed)
    X_dev = backend.asarray(X, dtype) if batch_transform is None else X
    y_dev = backend.asarray(y)
    targets_dev = None if soft_targets is None else backend.asarray(soft_targets, dtype)
    X_val_dev = backend.asarray(X_val, dtype)
    ipe = iterations_per_epoch(len(X), batch_size)
    sample = _MinibatchSampler("replacement", stream, len(X), batch_size)
    histories = [{"loss_history": [], "train_acc_history": [], "val_acc_history": [],
                  "epoch_iterations": []} for _ in members]
    results = [None] * len(members)
    base_lr = np.array([m.learning_rate for m in members], dtype=np.float64)
    decay = np.array([m.learning_rate_decay for m in members], dtype=np.float64)
    reg = np.array([m.reg for m in members], dtype=np.float64)

    def leave(slot_reasons):
        for slot, (state, reason) in slot_reasons.items():
            i = pop.active[slot]
            net = TwoLayerNet.from_params(pop.member_params(slot))
            results[i] = MemberResult(net, histories[i], state, reason)
        pop.keep([s for s in range(pop.K) if s not in slot_reasons])

    iterations = _iterations(num_iters, progress)
    with np.errstate(over="ignore", invalid="ignore"):
        for it in iterations:
            if pop.K == 0:
                break
            idx = sample()
            if batch_transform is None:
                Xb = pop.gather(X_dev, idx)
            else:
                Xb = backend.asarray(batch_transform(X[idx], stream), dtype)
            yb = pop.gather_labels(y_dev if soft_targets is None else targets_dev, idx)
            members_now = np.array(pop.active)
            if schedule is None:
                epochs_done = 0 if it == 0 else (it - 1) // ipe + 1
                lr = base_lr[members_now] * decay[members_now] ** epochs_done
            else:
                lr = base_lr[members_now] * schedule(it)
            losses = pop.step(Xb, yb, lr, reg[members_now])
            gone = {}
            for slot, loss in enumerate(losses):
                histories[pop.active[slot]]["loss_history"].append(float(loss))
                if not math.isfinite(loss):
                    gone[slot] = ("diverged", f"loss became {loss} at iteration {it} (learning "
                                  f"rate {lr[slot]:.3g}); try a smaller learning_rate")
            if it % ipe == 0:
                train_pred = backend.to_numpy(backend.xp.argmax(pop.scores(Xb), axis=2))
                val_pred = backend.to_numpy(backend.xp.argmax(pop.scores(X_val_dev), axis=2))
                for slot in range(pop.K):
                    if slot in gone:
                        continue
                    i = pop.active[slot]
                    h = histories[i]
                    h["train_acc_history"].append(float((train_pred[slot] == y[idx]).mean()))
                    h["val_acc_history"].append(float((val_pred[slot] == y_val).mean()))
                    h["epoch_iterations"].append(it)
                    reason = on_epoch(i, len(h["val_acc_history"]) - 1,
                                      h["val_acc_history"][-1]) if on_epoch else None
                    if reason:
                        gone[slot] = ("pruned", reason)
            if gone:
                leave(gone)
    leave({slot: ("complete", "") for slot in range(pop.K)})
    return results


__all__ = ["Member", "MemberResult", "Population", "train_population"]
