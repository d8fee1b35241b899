"""The fused stepper: K networks of one architecture stacked, one training step for all.

A network is a list of layer sizes [D, H1, ..., C] (:mod:`nndl.architecture`): affine
layers with ReLU between them, optionally batch normalization before each ReLU and inverted
dropout after it. Each member keeps its own weights, batch-norm statistics and
hyperparameters (learning rate, L2 strength, optimizer and its state, dropout, label
smoothing); they share the minibatch. Every hidden layer's activations are one (B, K*H)
array, member k's units in columns ``k*H:(k+1)*H``, so the elementwise work (biases, batch
normalization, ReLU, dropout) runs once for all members with per-column settings. The first
layers are stacked into one (D, K*H1) matrix: the forward pass is a single (B, D) x
(D, K*H1) product and the first-layer weight gradient a single (D, B) x (B, K*H1) one; the
later layers run as batched products over the members. The same code runs on NumPy, PyTorch
and CuPy through array-API operations; on NumPy (``self.numpy``) the step also reuses work
arrays, picks labels by index instead of a one-hot, and does the two big products as BLAS
calls that fold in the scale and the update (:mod:`nndl._blas`, or split between two cores
by :mod:`nndl._halves`: the first layer's products are one small interface, ``products``).

A member trained in a population gives the same result as the same network trained alone
on the same minibatches (to rounding): the tests compare every option against the
layer-by-layer references (:mod:`nndl._layers`, the course's :class:`nndl.fc_net.FullyConnectedNet`
and the update rules of ``tests/reference.py``).

The update rules are :mod:`nndl.optim`'s cores (:data:`nndl.optim.RULES`), each applied by
:func:`apply_rule` to the contiguous block of members that use it (members are stacked in
rule order), with each member's hyperparameters repeated over its columns; plain SGD alone
runs fused into the gradient products (:func:`_sgd`). Nothing here is specific to one rule
but SGD: adding an optimizer is its core and its entry in :data:`nndl.optim.RULES`.
"""

from __future__ import annotations

import numpy as np

from nndl import _blas, _halves
from nndl._random import uniform
from nndl.architecture import BN_EPS, BN_MOMENTUM, read_architecture
from nndl.backend import NUMPY
from nndl.optim import RULES

#: dtypes whose stacked first layer is stored row by row on NumPy (see Population)
ROW_LAYOUT_DTYPES = (np.dtype(np.float64),)


class Population:
    """Stacked parameters and per-member settings of the active members.

    The first layers are kept transposed and scaled: columns ``k*H:(k+1)*H`` of ``V``
    (D, K*H1) times ``scale`` (K*H1,) are member k's ``W1.T``. For plain SGD the scale
    absorbs weight decay, so decay never sweeps the big matrix, and the learning rate is
    folded into the small gradients before the big product; for the other rules the
    scale stays 1 and the product is the plain gradient. ``scale`` is float64 whatever the
    dtype: a float32 factor ``1 - lr * reg`` would round to 1 for ``lr * reg`` below 6e-8
    (the assignment's default 1e-3 x 1e-5 included) and drop W1's weight decay.

    ``p`` holds the stacked parameters by name: ``V``; per hidden layer l, ``b<l>`` (and
    ``gamma<l>``, ``beta<l>``) as (K*H<l>,) vectors, ``W<l>`` (K, H<l>, H<l-1>) from the
    second layer on; the last layer's ``W<L>`` (K, C, H<L-1>) and ``b<L>`` (K, C).
    ``stats`` holds the batch-norm running statistics (K*H<l>,).

    ``V`` is C-ordered, except for the dtypes of :data:`ROW_LAYOUT_DTYPES` on NumPy, where
    it is the transpose of a C-ordered (K*H, D) array: the two big products then run as
    ``X @ W.T`` and ``W += dhidden.T @ X``. Measured with OpenBLAS on an AMD EPYC (2
    threads, hidden 50, batch 200, D 3,072), float64 forward + gradient products take
    1.53 ms that way against 1.74 ms column-wise, and float32 0.93 ms against 0.78 ms.
    The layout changes rounding only (the products sum the same terms).

    Parameters
    ----------
    params : list of dict
        Per member the parameters of one architecture (:mod:`nndl.architecture`) as NumPy
        arrays (the assignment's layout); copied onto ``backend``.
    options : list
        Per member an object with ``optimizer``, ``momentum``, ``weight_decay``,
        ``dropout`` and ``label_smoothing`` (a :class:`nndl.config.TrainOptions`).
    dtype : float32 or float64
    backend : nndl.backend.Backend
    noise_rng : RNG for dropout masks (NumPy draws, then moved to the backend).
    """

    def __init__(self, params, options, dtype=np.float32, backend=NUMPY, noise_rng=None):
        if len(params) != len(options) or not params:
            raise ValueError("a population needs one options object per member, and a member")
        self.bk, self.xp, self.dtype = backend, backend.xp, np.dtype(dtype)
        self.numpy = backend.name == "numpy"
        # reductions of the step: NumPy's ufunc methods skip np.max's / np.sum's wrappers
        self._max, self._sum = (np.maximum.reduce, np.add.reduce) if self.numpy else \
            (self.xp.max, self.xp.sum)
        order = sorted(range(len(params)), key=lambda i: _RULE_ORDER[options[i].optimizer])
        params = [params[i] for i in order]
        self.arch = read_architecture(params[0])
        self.L, self.batchnorm = self.arch.num_layers, self.arch.batchnorm
        self.widths = self.arch.sizes[1:-1]  # H<l> of hidden layer l = 1 .. L-1
        self.H, self.C = self.widths[0], self.arch.sizes[-1]
        self.rows = self.numpy and self.dtype in ROW_LAYOUT_DTYPES  # V's layout
        self.p, self.stats, self.width = self._stack(params)
        self.scale = self.bk.asarray(np.ones(len(params) * self.H), np.float64)
        self.eye = self._put(np.eye(self.C))
        self.active = order  # member index of each stacked slot
        self.hp = {k: np.array([getattr(options[i], k) for i in order]) for k in
                   ("optimizer", "dropout", "label_smoothing", *RULE_OPTIONS)}
        self.noise_rng = noise_rng
        self.state = {}  # optimizer state: name -> stacked arrays shaped like the parameters
        self.t = 0  # steps taken (for the rules that count them: Adam's bias correction)
        self._buffers, self._scale_min = {}, 1.0
        self._halves = None  # the first layer's products split between two cores (use_halves)
        self._one_call = _OneCall(self)
        self._regroup()

    # -- layout ---------------------------------------------------------------------
    def _put(self, a):
        return self.bk.asarray(np.asarray(a), self.dtype)

    def _stack(self, params):
        """(stacked parameters, stacked statistics, name -> H of a per-column array or 0 of
        a per-member one) from the members' parameter dicts."""
        put, L = self._put, self.L
        W1 = np.concatenate([p["W1"] for p in params])  # (K*H, D)
        stacked = {"V": put(W1).T if self.rows else put(np.ascontiguousarray(W1.T))}
        width, stats = {"V": self.H}, {}
        for layer in range(1, L + 1):
            if layer > 1:
                stacked[f"W{layer}"] = put(np.stack([p[f"W{layer}"] for p in params]))
                width[f"W{layer}"] = 0
            if layer == L:
                stacked[f"b{L}"], width[f"b{L}"] = put(np.stack([p[f"b{L}"] for p in params])), 0
                continue
            names = ("b", "gamma", "beta") if self.batchnorm else ("b",)
            for name in names:
                stacked[f"{name}{layer}"] = put(np.concatenate([p[f"{name}{layer}"]
                                                                for p in params]))
                width[f"{name}{layer}"] = self.widths[layer - 1]
            for name in ("running_mean", "running_var") if self.batchnorm else ():
                stats[f"{name}{layer}"] = put(np.concatenate([p[f"{name}{layer}"]
                                                              for p in params]))
                width[f"{name}{layer}"] = self.widths[layer - 1]
        return stacked, stats, width

    def _regroup(self):
        """Contiguous slot ranges per update rule, and what this step needs to compute."""
        names = list(self.hp["optimizer"])
        self.K = len(self.active)  # members stacked now
        self.V = self.p["V"]  # the stacked first layer (D, K*H1), updated in place
        self.groups, self._views = [], {}  # (_views: blocks of the parameters by slots)
        for name in dict.fromkeys(names):
            first = names.index(name)
            self.groups.append((name, slice(first, first + names.count(name))))
        self.sgd_slots = next((sl for name, sl in self.groups if name == "sgd"), slice(0, 0))
        self.all_sgd = self.sgd_slots == slice(0, self.K)
        self.any_dropout = bool(np.any(self.hp["dropout"] > 0))
        self.any_smoothing = bool(np.any(self.hp["label_smoothing"] > 0))
        # one plain-SGD network on NumPy: its first layer's products fold in the scale and
        # the update (_OneCall), or split between two cores (use_halves)
        self.lone_sgd = self.numpy and self.K == 1 and self.all_sgd
        self._drop_cols = {H: np.repeat(self.hp["dropout"], H) for H in set(self.widths)}
        self._drop_scale = {H: self._put(np.repeat(1 / (1 - self.hp["dropout"]), H))
                            for H in set(self.widths)}

    def cols(self, slots, H=None):
        """The columns of a per-column array (``V``'s by default) of a slot range."""
        H = self.H if H is None else H
        return slice(slots.start * H, slots.stop * H)

    def member_params(self, slot):
        """Member ``slot``'s parameters as NumPy arrays in the assignment's layout."""
        self._wait()
        get, out = self.bk.to_numpy, {}
        for name, a in {**self.p, **self.stats}.items():
            H = self.width[name]
            if name == "V":
                c = self.cols(slice(slot, slot + 1))
                out["W1"] = (get(a[:, c]) * get(self.scale[c])).T.astype(self.dtype, order="C")
            else:
                out[name] = get(a[slot * H:(slot + 1) * H] if H else a[slot]).copy()
        return out

    def keep(self, slots):
        """Drop every stacked slot not in ``slots`` (a sorted list)."""
        error = self.close()  # the split (one member only) ends with the stack it was made for
        if error is not None:
            raise error
        xp = self.xp
        slots_x = self.bk.asarray(np.array(slots, np.int64))
        by_width = {}

        def cols_of(H):
            if H not in by_width:
                cols = np.concatenate([np.arange(s * H, (s + 1) * H) for s in slots]) \
                    if slots else np.zeros(0, dtype=np.int64)
                by_width[H] = self.bk.asarray(cols)
            return by_width[H]

        def take(name, a):
            H = self.width[name]
            if not H:
                return xp.take(a, slots_x, axis=0)
            if self.rows and a.ndim == 2:  # the rows of the C-ordered array under V
                return xp.take(a.T, cols_of(H), axis=0).T
            a = xp.take(a, cols_of(H), axis=a.ndim - 1)
            return np.ascontiguousarray(a) if self.numpy else a  # take() on axis 1: F-order

        self.p = {name: take(name, a) for name, a in self.p.items()}
        self.stats = {name: take(name, a) for name, a in self.stats.items()}
        self.scale = take("V", self.scale)
        for arrays in self.state.values():
            for name, a in arrays.items():
                arrays[name] = take(name, a)
        self.active = [self.active[s] for s in slots]
        self.hp = {k: v[slots] for k, v in self.hp.items()}
        self._buffers = {}
        self._regroup()

    # -- forward --------------------------------------------------------------------
    def _buffer(self, name, shape):
        """A reusable NumPy work array (None on other backends: they allocate)."""
        if not self.numpy:
            return None
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape:
            buf = self._buffers[name] = np.empty(shape, dtype=self.dtype)
        return buf

    def _matmul(self, a, b, name):
        """``a @ b`` for 2-D, or stacked 3-D with one leading axis, into a reused buffer."""
        out = self._buffer(name, (*a.shape[:-1], b.shape[-1]))
        return a @ b if out is None else np.matmul(a, b, out=out)

    def _first_layer(self, X, products):
        """Pre-activations (B, K*H1) of the first layer: ``X @ V * scale + b1``, in a reused
        buffer on NumPy; ``products`` (NumPy, one member) does the product."""
        if not self.numpy:
            return X @ self.V * self._scale() + self.p["b1"]
        n = X.shape[0] if X is not None else products.batch_rows()
        a = self._buffer("a1", (n, self.V.shape[1]))
        if products is not None:  # one member, one scale: BLAS applies it
            products.forward(a, float(self.scale[0]))
        elif self.K == 1:
            _blas.gemm(a, X, self.V, float(self.scale[0]))
        else:
            _blas.gemm(a, X, self.V)
            a *= self.scale
        a += self.p["b1"]
        return a

    def _per_member(self, hidden):
        """(B, K*H) -> (K, B, H) view."""
        if self.numpy:  # the methods skip the array API's wrappers
            return hidden.reshape(hidden.shape[0], self.K, -1).transpose(1, 0, 2)
        xp = self.xp
        return xp.permute_dims(xp.reshape(hidden, (hidden.shape[0], self.K, -1)), (1, 0, 2))

    def _affine(self, hidden, layer):
        """Pre-activations (B, K*H<layer>) of hidden layer ``layer`` >= 2 from the previous
        layer's activations ``hidden`` (B, K*H<layer-1>): a batched product per member."""
        xp, W = self.xp, self.p[f"W{layer}"]  # (K, H<l>, H<l-1>)
        n, H = hidden.shape[0], W.shape[1]
        hk, WT = self._per_member(hidden), xp.permute_dims(W, (0, 2, 1))
        if not self.numpy:
            a = xp.reshape(xp.permute_dims(hk @ WT, (1, 0, 2)), (n, self.K * H))
        else:
            out = self._buffer(f"a{layer}", (n, self.K, H))
            np.matmul(hk, WT, out=out.transpose(1, 0, 2))
            a = out.reshape(n, self.K * H)
        a += self.p[f"b{layer}"]
        return a

    def _hidden_layers(self, X, train, products=None):
        """Activations (B, K*H<l>) of every hidden layer for rows ``X`` (B, D), each with
        what its backward pass needs: ``(activations, batch-norm cache)``. ``train``:
        batch statistics (updating the running ones) and dropout, else running statistics."""
        layers = []
        a = self._first_layer(X, products)
        for layer in range(1, self.L):
            if layer > 1:
                a = self._affine(layers[-1][0], layer)
            cache = None
            if self.batchnorm:
                a, cache = self._normalize(a, layer, train)
            h = self._relu(a)
            if train and self.any_dropout:
                h = h * self._dropout_mask(h.shape[0], self.widths[layer - 1])
            layers.append((h, cache))
        return layers

    def _relu(self, a):
        if self.numpy:
            return np.maximum(a, 0, out=a)
        return self.xp.where(a > 0, a, self.xp.zeros_like(a[:1]))

    def _normalize(self, a, layer, train):
        """Batch normalization of ``a`` (B, K*H) per column; with ``train`` from the batch's
        statistics (folded into the running ones), else from the running ones. Returns the
        result and the cache of :meth:`_normalize_backward` ((x_hat, 1/std) or None)."""
        xp, p = self.xp, self.p
        gamma, beta = p[f"gamma{layer}"], p[f"beta{layer}"]
        mean_name, var_name = f"running_mean{layer}", f"running_var{layer}"
        if not train:
            inv_std = 1 / xp.sqrt(self.stats[var_name] + BN_EPS)
            return (a - self.stats[mean_name]) * (inv_std * gamma) + beta, None
        mean = self._sum(a, axis=0) / a.shape[0]
        a = a - mean
        var = self._sum(a * a, axis=0) / a.shape[0]
        self.stats[mean_name] = BN_MOMENTUM * self.stats[mean_name] + (1 - BN_MOMENTUM) * mean
        self.stats[var_name] = BN_MOMENTUM * self.stats[var_name] + (1 - BN_MOMENTUM) * var
        inv_std = 1 / xp.sqrt(var + BN_EPS)
        x_hat = a * inv_std
        return x_hat * gamma + beta, (x_hat, inv_std)

    def _normalize_backward(self, dout, layer, cache, grads):
        """Gradient (B, K*H) through batch normalization of ``dout``; records
        ``gamma<layer>``'s and ``beta<layer>``'s gradients in ``grads``."""
        x_hat, inv_std = cache
        n = dout.shape[0]
        grads[f"beta{layer}"] = self._sum(dout, axis=0)
        grads[f"gamma{layer}"] = self._sum(dout * x_hat, axis=0)
        dx_hat = dout * self.p[f"gamma{layer}"]
        return (inv_std / n) * (n * dx_hat - self._sum(dx_hat, axis=0)
                                - x_hat * self._sum(dx_hat * x_hat, axis=0))

    def scores(self, X):
        """Scores (K, N, C) of every active member for rows X (N, D); no dropout, batch
        normalization from the running statistics."""
        self._wait()
        xp, L = self.xp, self.L
        hk = self._per_member(self._hidden_layers(X, train=False)[-1][0])
        return hk @ xp.permute_dims(self.p[f"W{L}"], (0, 2, 1)) + self.p[f"b{L}"][:, None, :]

    def scores_and_layer_stats(self, X, rows=1000):
        """:meth:`scores` of rows X (N, D) and, from the same forward pass, each layer's
        statistics per active member; reads the parameters, changes nothing.

        Returns ``(scores (K, N, C), act_mean (K, L), act_std (K, L), weight_norm (K, L))``,
        the last three NumPy float64. Column l-1 is layer l: ``act_mean`` and ``act_std``
        are the mean and (population) standard deviation of its outputs over the first
        ``rows`` rows of X and the member's units: the activations of a hidden layer (after
        batch normalization, ReLU; no dropout), the scores (with the bias, before the
        softmax) of the last. ``weight_norm`` is the Frobenius norm of ``W<l>``, of the
        first layer through the scale (W1 = (V * scale).T).
        """
        self._wait()
        xp, L, n = self.xp, self.L, min(rows, X.shape[0])
        hidden = [h for h, _ in self._hidden_layers(X, train=False)]
        hk = self._per_member(hidden[-1])
        scores = hk @ xp.permute_dims(self.p[f"W{L}"], (0, 2, 1)) + self.p[f"b{L}"][:, None, :]
        outputs = [self._per_member(h[:n]) for h in hidden] + [scores[:, :n, :]]  # (K, n, H)
        get = self.bk.to_numpy
        mean = np.stack([get(xp.mean(o, axis=(1, 2))) for o in outputs], axis=1)
        std = np.stack([get(xp.std(o, axis=(1, 2))) for o in outputs], axis=1)
        return scores, mean.astype(np.float64), std.astype(np.float64), self._layer_norms()

    def _layer_norms(self):
        """Frobenius norm of each layer's weights per member: NumPy (K, L) float64."""
        xp, K, get = self.xp, self.K, self.bk.to_numpy
        col_sq = np.einsum("ij,ij->j", self.V, self.V) if self.numpy else \
            xp.sum(self.V * self.V, axis=0)  # (K*H1,) sums of squares of W1's rows
        sq = [get(col_sq).astype(np.float64) * get(self.scale) ** 2]
        sq += [get(xp.sum(xp.reshape(W * W, (K, -1)), axis=1)).astype(np.float64)
               for W in (self.p[f"W{layer}"] for layer in range(2, self.L + 1))]
        sq[0] = sq[0].reshape(K, -1).sum(axis=1)
        return np.sqrt(np.stack(sq, axis=1))

    # -- one step ---------------------------------------------------------------------
    def step(self, X, y, lr, reg):
        """One update of every member on rows X (B, D) and labels y (B,) — or target
        distributions y (B, C), e.g. for distillation — (backend arrays), with per-member
        learning rates ``lr`` and L2 strengths ``reg`` (NumPy (K,)). Returns each member's
        loss (NumPy (K,) float64) before the step."""
        products = None
        if self.lone_sgd:
            products = self._one_call
            products.X = X
        return self._step(X, y, lr, reg, products)

    def _step(self, X, y, lr, reg, products):
        """:meth:`step`; ``products`` (one plain-SGD member on NumPy: :class:`_OneCall` or
        :class:`nndl._halves.Halves`) does the first layer's two large products, else None."""
        xp, L, p = self.xp, self.L, self.p
        n = y.shape[0]
        layers = self._hidden_layers(X, train=True, products=products)
        hk = self._per_member(layers[-1][0])  # (K, B, H<L-1>)
        scores = self._scores_classes_first(hk)  # (K, C, B)
        scores += p[f"b{L}"][:, :, None]
        scores -= self._max(scores, axis=1, keepdims=True)
        probs = xp.exp(scores) if not self.numpy else \
            np.exp(scores, out=self._buffer("probs", scores.shape))
        total = self._sum(probs, axis=1, keepdims=True)  # (K, 1, B)
        probs /= total
        data_loss = self._subtract_targets(probs, scores, xp.log(total), y)
        losses = self.bk.to_numpy(data_loss).astype(np.float64) / n + \
            0.5 * reg * self._weight_norms(products)
        # d loss / d scores, times lr for the SGD members (their step, not their gradient)
        dscores = probs
        dscores *= self._grad_scale(lr, n)
        grads = {f"W{L}": self._matmul(dscores, hk, f"dW{L}"),
                 f"b{L}": self._sum(dscores, axis=2)}
        dhidden = self._hidden_grad(dscores)  # (B, K*H<L-1>)
        for layer in range(L - 1, 0, -1):
            da = self._hidden_backward(dhidden, layer, layers[layer - 1], grads)
            if layer > 1:
                dhidden = self._affine_backward(da, layer, layers[layer - 2][0], grads)
        self._first_layer_step(X, da, lr, reg, grads, products)
        self.t += 1
        for name, slots in self.groups:
            if name == "sgd":
                _sgd(self, slots, grads, lr[slots], reg[slots])
            else:
                apply_rule(self, name, slots, grads, lr[slots], reg[slots])
        return losses

    def _hidden_backward(self, dhidden, layer, cached, grads):
        """The gradient (B, K*H) of hidden layer ``layer``'s pre-activations from that of
        its activations ``dhidden``, through dropout, ReLU and batch normalization;
        records its bias's gradient (and batch normalization's) in ``grads``."""
        xp = self.xp
        hidden, bn_cache = cached
        if self.numpy:
            np.multiply(dhidden, hidden > 0, out=dhidden)  # ReLU (and dropped units)
        else:
            dhidden = xp.where(hidden > 0, dhidden, xp.zeros_like(dhidden[:1]))
        if self.any_dropout:
            dhidden = dhidden * self._drop_scale[self.widths[layer - 1]]
        if bn_cache is not None:
            dhidden = self._normalize_backward(dhidden, layer, bn_cache, grads)
        grads[f"b{layer}"] = self._ones(dhidden.shape[0]) @ dhidden  # column sums, one call
        return dhidden

    def _affine_backward(self, da, layer, hidden, grads):
        """Layer ``layer`` >= 2 backwards: records ``W<layer>``'s gradient (K, H<l>, H<l-1>)
        from ``da`` (B, K*H<l>) and the previous activations ``hidden`` (B, K*H<l-1>);
        returns the gradient (B, K*H<l-1>) of those activations."""
        dak = self._per_member(da)  # (K, B, H<l>)
        grads[f"W{layer}"] = self._matmul(self.xp.permute_dims(dak, (0, 2, 1)),
                                          self._per_member(hidden), f"dW{layer}")
        return self._to_hidden(dak @ self.p[f"W{layer}"] if not self.numpy else None,
                               dak, self.p[f"W{layer}"], f"dh{layer - 1}")

    def _first_layer_step(self, X, da, lr, reg, grads, products):
        """The first layer's weight gradient from ``da`` (B, K*H1): fused into ``V`` for
        plain SGD on NumPy, else recorded in ``grads["V"]``. SGD's weight decay goes into
        the scale of its columns first: ``V`` holds W1.T / scale (the new scale), so the
        gradient step divides by it."""
        self._shrink_scale(lr, reg)
        if products is not None:  # V -= X.T @ da / scale, inside the product
            products.backward(da, float(-1.0 / self.scale[0]))
        elif self.all_sgd and self.numpy:
            da /= self.scale
            _blas.add_product(self.V, X, da, -1.0)
        else:
            da /= self._scale()
            grads["V"] = self._first_layer_grad(X, da)

    def use_halves(self, X, batch_size):
        """From now on split the lone SGD step's first-layer products between two cores
        (:mod:`nndl._halves`) for minibatches of rows of ``X`` (N, D) (C-ordered NumPy, this
        population's dtype), taken by :meth:`step_rows`, where that pays; returns whether it
        does. :meth:`close` ends it."""
        if self.lone_sgd and _halves.worth_splitting(X, self.V, batch_size):
            self._halves = _halves.Halves(X, self.V, batch_size)
        return self._halves is not None

    def step_rows(self, idx, y, lr, reg):
        """:meth:`step` on the rows ``idx`` (an int index array (B,)) of the ``X`` given to
        :meth:`use_halves`, with labels ``y`` (B,)."""
        self._halves.select(idx)
        return self._step(None, y, lr, reg, self._halves)

    def close(self):
        """End the split of :meth:`use_halves`: its worker thread stops after its jobs and
        BLAS gets its threads back. Returns what is left to raise (the worker's error, or
        Ctrl-C pressed meanwhile: :meth:`nndl._halves.Halves.close`) for the caller to raise
        when it is ready, or None; a no-op without a split."""
        if self._halves is None:
            return None
        halves, self._halves = self._halves, None
        return halves.close()

    def _wait(self):
        """Until the split's worker has finished updating its half of ``V``."""
        if self._halves is not None:
            self._halves.wait()

    def _v_written(self):
        """``V`` was written outside a step (after :meth:`_wait`): the split's sums of
        squares of its halves follow."""
        if self._halves is not None:
            self._halves.refresh_norms()

    def _scores_classes_first(self, hk):
        """Scores (K, C, B) of the last hidden activations ``hk`` (K, B, H), without biases.

        The class axis sits in the middle so that the softmax reductions run along
        contiguous rows of B values instead of over C values per row. NumPy's stacked
        product is computed as ``hk @ W.T`` (K, B, C) and then transposed: measured,
        twice as fast as ``W @ hk.T`` for 32 members (119 against 247 us), 5 against 9
        us for one.
        """
        xp, W = self.xp, self.p[f"W{self.L}"]
        if not self.numpy:
            return W @ xp.permute_dims(hk, (0, 2, 1))
        K, n, C, dt = self.K, hk.shape[1], self.C, self.dtype
        WT, by_row, out = self._cached("scores", (K, n), lambda: (
            np.empty((K, W.shape[2], C), dt), np.empty((K, n, C), dt), np.empty((K, C, n), dt)))
        np.copyto(WT, W.transpose(0, 2, 1))
        np.copyto(out, np.matmul(hk, WT, out=by_row).transpose(0, 2, 1))
        return out

    def _hidden_grad(self, dscores):
        """``dscores`` (K, C, B) back through the last layer: (B, K*H<L-1>)."""
        xp, W = self.xp, self.p[f"W{self.L}"]
        dscores_t = xp.permute_dims(dscores, (0, 2, 1))
        return self._to_hidden(dscores_t @ W if not self.numpy else None, dscores_t, W,
                               f"dh{self.L - 1}")

    def _to_hidden(self, product, d, W, name):
        """``d @ W`` ((K, B, n) @ (K, n, H)) as (B, K*H), each member's block of columns:
        ``product`` computed already (other backends), or on NumPy written straight into
        that layout (no copy)."""
        xp, (K, n, H) = self.xp, (d.shape[0], d.shape[1], W.shape[2])
        if product is not None:
            return xp.reshape(xp.permute_dims(product, (1, 0, 2)), (n, K * H))
        out = self._buffer(name, (n, K, H))
        np.matmul(d, W, out=out.transpose(1, 0, 2))
        return out.reshape(n, K * H)

    def _shrink_scale(self, lr, reg):
        """Multiply the SGD members' scales by ``1 - lr * reg`` (weight decay of W1)."""
        if self.all_sgd and self.K == 1:
            self._shrink_scale_by(float(1 - lr[0] * reg[0]), slice(0, self.H))
            return
        sgd = self.sgd_slots
        shrink = 1 - lr[sgd] * reg[sgd]
        for slot in np.flatnonzero(shrink == 0) + sgd.start:
            self._restart_scale(self.cols(slice(slot, slot + 1)))
        shrink[shrink == 0] = 1.0
        self._member_view(self.scale)[sgd] *= self.bk.asarray(shrink.reshape(-1, 1), np.float64)

    def _shrink_scale_by(self, shrink, cols):
        """One member's (or one rule's) scale times the float ``shrink``."""
        if shrink == 0.0:
            self._restart_scale(cols)
        else:
            self.scale[cols] *= shrink

    def _restart_scale(self, cols):
        """``lr * reg = 1``: weight decay zeroes W1, so its columns restart as ``V = 0``,
        ``scale = 1`` (a scale of 0 could not be divided by in the gradient step)."""
        self._wait()
        self.V[:, cols] = 0
        self.scale[cols] = 1.0
        self._v_written()

    def _scale(self):
        """``scale`` in the dtype of the step, for products with the other arrays (NumPy
        casts in place by itself; other libraries would promote the step to float64)."""
        return self.scale if self.numpy else self.bk.asarray(self.scale, self.dtype)

    def _first_layer_grad(self, X, dhidden):
        """``X.T @ dhidden`` (D, K*H), laid out as ``V`` is."""
        xp = self.xp
        if self.rows:
            return self._matmul(xp.permute_dims(dhidden, (1, 0)), X, "grad").T
        return self._matmul(xp.permute_dims(X, (1, 0)), dhidden, "grad")

    def _subtract_targets(self, probs, scores, log_total, y):
        """Turn ``probs`` (K, C, B) into ``probs - targets`` in place; return each member's
        summed cross-entropy (backend (K,)) from ``scores`` shifted by their maximum and
        ``log_total`` (K, 1, B), the log of each column's sum of exponentials."""
        xp, K, n = self.xp, self.K, probs.shape[2]
        if self.numpy and y.ndim == 1 and not self.any_smoothing:  # labels: index, no one-hot
            at = self._label_positions(y, probs.shape)
            data = log_total.reshape(K, n).sum(axis=1) - scores.reshape(-1)[at].reshape(
                K, n).sum(axis=1)
            probs.reshape(-1)[at] -= 1
            return data
        targets = self._targets(y)  # (C, B) or (K, C, B)
        probs -= targets
        return xp.sum(xp.reshape(targets * (log_total - scores), (K, -1)), axis=1)

    def _label_positions(self, y, shape):
        """Flat positions (K*B,) of entry (k, y[b], b) in a C-order (K, C, B) array
        (labels of any integer dtype: ``y * B`` in int64, never in uint8)."""
        K, C, n = shape
        base = self._cached("positions", (K, n), lambda: (
            np.arange(K)[:, None] * (C * n) + np.arange(n)[None, :]))
        return (base + y.astype(np.int64, copy=False) * n).reshape(-1)

    def _ones(self, n):
        """A backend vector of ``n`` ones (cached)."""
        return self._cached("ones", n, lambda: self._put(np.ones(n)))

    def _grad_scale(self, lr, n):
        """Per-member factor (K, 1, 1) of d loss / d scores (a float for one member):
        ``lr / n`` for SGD members, ``1 / n`` for the others."""
        if self.K == 1:
            return float(lr[0] / n) if self.all_sgd else 1 / n
        scale = lr / n if self.all_sgd else np.full(self.K, 1 / n)
        if not self.all_sgd:
            scale[self.sgd_slots] *= lr[self.sgd_slots]
        return self._put(scale.reshape(-1, 1, 1))

    def _cached(self, name, key, make):
        """A small array kept while ``key`` (a shape, a length) stays the same."""
        hit = self._buffers.get(name)
        if hit is None or hit[0] != key:
            hit = self._buffers[name] = (key, make())
        return hit[1]

    def _member_view(self, a):
        """(K*H,) -> (K, H) view, so per-member values broadcast over their columns."""
        return self.xp.reshape(a, (self.K, -1))

    def _targets(self, y):
        """Target distributions, classes first: (C, B) shared, or (K, C, B) with
        per-member smoothing; ``y`` holds labels (B,) or distributions (B, C)."""
        xp = self.xp
        targets = xp.take(self.eye, y, axis=1) if y.ndim == 1 else xp.permute_dims(y, (1, 0))
        if not self.any_smoothing or y.ndim != 1:  # soft targets replace smoothing
            return targets
        eps = self._put(self.hp["label_smoothing"])[:, None, None]
        return targets[None, :, :] * (1 - eps) + eps / self.C

    def _weight_norms(self, products=None):
        """Sum of |W<l>|^2 over the layers, per member (NumPy (K,) float64), without a
        (D, K*H) temporary on NumPy; ``products`` (one member) gives |V|^2."""
        xp, K = self.xp, self.K
        later = [self.p[f"W{layer}"] for layer in range(2, self.L + 1)]
        if self.numpy and K == 1:
            v_norm = (products or self._one_call).v_norm()
            return np.array([v_norm * float(self.scale[0]) ** 2 +
                             sum(_blas.sq_norm(W) for W in later)])
        col_sq = np.einsum("ij,ij->j", self.V, self.V) if self.numpy else \
            xp.sum(self.V * self.V, axis=0)
        norms = xp.sum(self._member_view(col_sq * self.scale * self.scale), axis=1)
        for W in later:
            norms = norms + xp.sum(xp.reshape(W * W, (K, -1)), axis=1)
        return self.bk.to_numpy(norms).astype(np.float64)

    def _dropout_mask(self, n, H):
        """Inverted-dropout mask (B, K*H): kept units scaled by 1/(1-p) of their member."""
        keep = uniform(self.noise_rng, (n, self.K * H)) >= self._drop_cols[H]
        return self._put(keep) * self._drop_scale[H]


class _OneCall:
    """The first layer's two large products as single BLAS calls on the gathered minibatch
    ``X`` (B, D) (set before each step), for one plain-SGD member (the interface
    :class:`nndl._halves.Halves` shares)."""

    def __init__(self, pop):
        self.pop, self.X = pop, None

    def batch_rows(self):
        return self.X.shape[0]

    def forward(self, hidden, alpha):
        return _blas.gemm(hidden, self.X, self.pop.V, alpha)

    def v_norm(self):
        """|V|^2 (a float): one BLAS dot over a contiguous view."""
        pop = self.pop
        return _blas.sq_norm(pop.V.T if pop.rows else pop.V)

    def backward(self, dhidden, alpha):
        _blas.add_product(self.pop.V, self.X, dhidden, alpha)


# -- update rules on the contiguous members `slots`: nndl.optim's cores, SGD fused --------
def _views(pop, slots):
    """name -> (parameter, its block's index, the block: a view) of each stacked parameter
    for a slot range; kept until members leave (the parameters are updated in place)."""
    key = (slots.start, slots.stop)
    views = pop._views.get(key)
    if views is None:
        views = pop._views[key] = {}
        for name, param in pop.p.items():
            H = pop.width[name]
            if name == "V":
                index = (slice(None), pop.cols(slots))
            else:
                index = pop.cols(slots, H) if H else slots
            views[name] = (param, index, param[index])
    return views


def _grad_blocks(pop, slots, grads):
    """name -> the block of ``grads[name]`` for a slot range (the whole array for all)."""
    if slots.start == 0 and slots.stop == pop.K:
        return grads
    return {name: grads[name][index] for name, (_, index, _) in _views(pop, slots).items()
            if name in grads}


def _is_weight(name):
    """Whether L2 applies to the stacked parameter ``name`` (the weight matrices)."""
    return name == "V" or name.startswith("W")


def _per_param(pop, values, name):
    """Per-member ``values`` (NumPy (k,)) shaped to broadcast over parameter ``name``'s block
    (a plain float when they are all the same, one member's included: the same float32
    product, without building an array)."""
    if len(values) == 1 or np.all(values == values[0]):
        return float(values[0])
    H = pop.width[name]
    if H:
        return pop._put(np.repeat(values, H))
    return pop._put(np.reshape(values, (-1,) + (1,) * (pop.p[name].ndim - 1)))


def _sgd(pop, slots, grads, lr, reg):
    """``W <- W * (1 - lr * reg) - lr * dW_data``; ``grads`` already hold lr * dW_data, and
    the first layer's decay went into ``scale`` before its gradient product."""
    decay = lr * reg  # W1's part is already in scale (Population._first_layer_step)
    blocks = _grad_blocks(pop, slots, grads)
    for name, (_, _, block) in _views(pop, slots).items():
        if name not in blocks:  # V: Population._step added it inside the product
            continue
        g = blocks[name]
        if name != "V" and _is_weight(name):
            # the decay goes into the step (a float32 factor 1 - lr * reg could round to 1)
            g += _per_param(pop, decay, name) * block
        block -= g
    _fold_scale(pop, 1.0 - float(decay.max(initial=0.0)), pop.cols(slots))


def _fold_scale(pop, shrink, c):
    """Track the smallest SGD scale (``shrink``: this step's smallest factor) and fold the
    scales of columns ``c`` back into ``V`` before they lose precision."""
    pop._scale_min *= shrink
    if pop._scale_min < 1e-2:
        pop._wait()
        pop.V[:, c] *= pop.scale[c]
        pop.scale[c] = pop.xp.ones_like(pop.scale[c])
        pop._v_written()
        pop._scale_min = 1.0


def _full_grads(pop, slots, grads, reg):
    """name -> (the parameter's block, its index, the block's gradient including the L2
    term, added in place: ``grads`` are the step's work arrays)."""
    out = {}
    blocks = _grad_blocks(pop, slots, grads)
    for name, (_, index, block) in _views(pop, slots).items():
        g = blocks[name]
        if _is_weight(name):
            g += _per_param(pop, reg, name) * block
        out[name] = (block, index, g)
    return out


def _state(pop, key, name):
    """Optimizer state ``key`` for parameter ``name``, zeros shaped like it at first."""
    arrays = pop.state.setdefault(key, {})
    if name not in arrays:
        arrays[name] = pop.xp.zeros_like(pop.p[name])
    return arrays[name]


def apply_rule(pop, name, slots, grads, lr, reg):
    """The rule ``name`` of :data:`nndl.optim.RULES` on members ``slots``, in place on the
    blocks (views) of their parameters and state; ``lr``, ``reg``: NumPy (k,)."""
    rule = RULES[name]
    options = {key: pop.hp[key][slots] for key in rule.options}
    steps = {"t": pop.t} if rule.counts_steps else {}
    for param_name, (block, index, g) in _full_grads(pop, slots, grads, reg).items():
        state = [_state(pop, key, param_name)[index] for key in rule.state]
        hyper = {key: _per_param(pop, values, param_name) for key, values in options.items()}
        rule.update(block, g, *state, learning_rate=_per_param(pop, lr, param_name),
                    **steps, **hyper)


#: the per-member options the rules take (fields of TrainOptions), kept in Population.hp
RULE_OPTIONS = tuple(dict.fromkeys(key for rule in RULES.values() for key in rule.options))
_RULE_ORDER = {name: i for i, name in enumerate(RULES)}

__all__ = ["Population", "apply_rule"]
