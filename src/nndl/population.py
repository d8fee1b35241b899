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
    """Stacked parameters of the active members.

    The first layers are kept transposed and scaled: column block k of
    ``V`` (D, K*H) times ``scale`` (K*H,) is member k's ``W1.T``; the scale
    absorbs weight decay, so decay never sweeps the big matrix. ``b1`` (K*H,),
    ``W2`` (K, C, H), ``b2`` (K, C).
    """

    def __init__(self, members, input_size, hidden_size, num_classes, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        self.H = hidden_size
        nets = [TwoLayerNet(input_size, hidden_size, num_classes, std=m.std,
                            random_state=m.seed, dtype=self.dtype) for m in members]
        self.V = np.ascontiguousarray(np.concatenate([n.params["W1"] for n in nets]).T)
        self.scale = np.ones(len(members) * hidden_size, dtype=self.dtype)
        self.b1 = np.zeros(len(members) * hidden_size, dtype=self.dtype)
        self.W2 = np.stack([n.params["W2"] for n in nets])
        self.b2 = np.zeros((len(members), num_classes), dtype=self.dtype)
        self.active = list(range(len(members)))  # member index of each stacked slot

    @property
    def K(self):
        return len(self.active)

    def member_params(self, slot):
        h = slice(slot * self.H, (slot + 1) * self.H)
        return {"W1": (self.V[:, h] * self.scale[h]).T.copy(), "b1": self.b1[h].copy(),
                "W2": self.W2[slot].copy(), "b2": self.b2[slot].copy()}

    def keep(self, slots):
        """Drop every stacked slot not in ``slots``."""
        cols = (np.concatenate([np.arange(s * self.H, (s + 1) * self.H) for s in slots])
                if slots else np.zeros(0, dtype=np.int64))
        self.V, self.scale, self.b1 = self.V[:, cols], self.scale[cols], self.b1[cols]
        self.W2, self.b2 = self.W2[slots], self.b2[slots]
        self.active = [self.active[s] for s in slots]

    def _hidden(self, X):
        hidden = X @ self.V
        hidden *= self.scale
        hidden += self.b1
        return np.maximum(hidden, 0, out=hidden)  # (N, K*H)

    def scores(self, X):
        """Scores (K, N, C) of every active member for rows X (N, D)."""
        hidden = self._hidden(X).reshape(len(X), self.K, self.H).transpose(1, 0, 2)
        return hidden @ self.W2.transpose(0, 2, 1) + self.b2[:, None, :]

    def step(self, X, y, lr, reg):
        """One SGD step on rows X (B, D), labels y (B,) with per-member learning rates
        ``lr`` (K,) and L2 strengths ``reg`` (K,); returns the losses (K,) before it.

        ``W <- W * (1 - lr * reg) - lr * dW_data``: the learning rate is folded into
        the small (B, K*H) hidden gradient before the big product, and the decay
        into ``scale``.
        """
        n, K, H = len(X), self.K, self.H
        dtype = self.dtype
        hidden_flat = self._hidden(X)
        hidden = hidden_flat.reshape(n, K, H).transpose(1, 0, 2)  # (K, B, H)
        scores = hidden @ self.W2.transpose(0, 2, 1) + self.b2[:, None, :]  # (K, B, C)
        scores -= scores.max(axis=2, keepdims=True)
        log_probs = scores - np.log(np.exp(scores).sum(axis=2, keepdims=True))
        rows = np.arange(n)
        col_sq = np.einsum("ij,ij->j", self.V, self.V) * self.scale**2
        w1_sq = col_sq.reshape(K, H).sum(axis=1)
        w2_sq = np.einsum("kch,kch->k", self.W2, self.W2)
        losses = -log_probs[:, rows, y].sum(axis=1) / n + 0.5 * reg * (w1_sq + w2_sq)
        dscores = np.exp(log_probs)
        dscores[:, rows, y] -= 1
        dscores *= (lr / n).astype(dtype)[:, None, None]  # lr * dL/dscores
        step_W2 = dscores.transpose(0, 2, 1) @ hidden
        dhidden = (dscores @ self.W2).transpose(1, 0, 2).reshape(n, K * H)
        dhidden *= hidden_flat > 0
        shrink = (1 - lr * reg).astype(dtype)
        self.scale *= np.repeat(shrink, H)
        self.W2 *= shrink[:, None, None]
        self.b1 -= dhidden.sum(axis=0)
        self.b2 -= dscores.sum(axis=1)
        self.W2 -= step_W2
        dhidden /= self.scale  # V absorbs the step in unscaled units
        self.V -= X.T @ dhidden
        if self.scale.min() < 1e-2:  # fold the scale back before it loses precision
            self.V *= self.scale
            self.scale[:] = 1
        return losses


def train_population(members, X, y, X_val, y_val, *, hidden_size, num_iters, batch_size,
                     stream_seed=0, dtype=np.float32, on_epoch=None, progress=False):
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
    """
    X = np.asarray(X, dtype=dtype)
    X_val = np.asarray(X_val, dtype=dtype)
    num_classes = int(max(y.max(), y_val.max())) + 1
    pop = Population(members, X.shape[1], hidden_size, num_classes, dtype)
    ipe = iterations_per_epoch(len(X), batch_size)
    sample = _MinibatchSampler("replacement", np.random.default_rng(stream_seed), len(X),
                               batch_size)
    histories = [{"loss_history": [], "train_acc_history": [], "val_acc_history": [],
                  "epoch_iterations": []} for _ in members]
    results = [None] * len(members)
    base_lr = np.array([m.learning_rate for m in members], dtype=np.float64)
    decay = np.array([m.learning_rate_decay for m in members], dtype=np.float64)
    reg = np.array([m.reg for m in members], dtype=np.float64)

    def leave(slot_reasons):
        for slot, (state, reason) in slot_reasons.items():
            i = pop.active[slot]
            net = _member_net(pop, slot, X.shape[1], hidden_size, num_classes, dtype)
            results[i] = MemberResult(net, histories[i], state, reason)
        pop.keep([s for s in range(pop.K) if s not in slot_reasons])

    iterations = _iterations(num_iters, progress)
    with np.errstate(over="ignore", invalid="ignore"):
        for it in iterations:
            if pop.K == 0:
                break
            idx = sample()
            Xb, yb = X[idx], y[idx]
            members_now = np.array(pop.active)
            epochs_done = 0 if it == 0 else (it - 1) // ipe + 1
            lr = base_lr[members_now] * decay[members_now] ** epochs_done
            losses = pop.step(Xb, yb, lr, reg[members_now])
            gone = {}
            for slot, loss in enumerate(losses):
                histories[pop.active[slot]]["loss_history"].append(float(loss))
                if not math.isfinite(loss):
                    gone[slot] = ("diverged", f"loss became {loss} at iteration {it} (learning "
                                  f"rate {lr[slot]:.3g}); try a smaller learning_rate")
            if it % ipe == 0:
                train_pred = pop.scores(Xb).argmax(axis=2)
                val_pred = pop.scores(X_val).argmax(axis=2)
                for slot in range(pop.K):
                    if slot in gone:
                        continue
                    i = pop.active[slot]
                    h = histories[i]
                    h["train_acc_history"].append(float((train_pred[slot] == yb).mean()))
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


def _member_net(pop, slot, input_size, hidden_size, num_classes, dtype):
    net = TwoLayerNet(input_size, hidden_size, num_classes, random_state=0, dtype=dtype)
    net.params = pop.member_params(slot)
    return net




__all__ = ["Member", "MemberResult", "Population", "train_population"]
