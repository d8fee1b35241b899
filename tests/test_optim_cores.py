"""The in-place cores of ``nndl.optim`` on stacked members, each with its own
hyperparameters, against the rules' published formulas written plainly here, member by
member, with scalars: K=3 members stacked side by side in a block of columns of a larger
array (the engine's first layer) and along a leading axis (its second layer), updated in
place through views, on NumPy and on PyTorch. (The course's functions, which wrap the
cores, are checked against the course's values in ``test_course_optim.py``.)
"""

import numpy as np
import pytest

from nndl import optim

K, D, H = 3, 4, 2  # members, rows, columns per member
STEPS = 3
LR = [0.1, 0.02, 0.005]
HYPER = {  # per member; epsilon large enough that where it enters shows
    "momentum": [0.9, 0.5, 0.0],
    "decay_rate": [0.9, 0.99, 0.5],
    "beta1": [0.9, 0.8, 0.5],
    "beta2": [0.999, 0.99, 0.9],
    "epsilon": [1e-8, 1e-3, 0.1],
    "weight_decay": [0.0, 0.1, 0.5],
}


# -- the formulas, one member, scalar hyperparameters --------------------------------------
def plain_sgd(w, g, state, t, lr, h):
    return w - lr * g


def plain_momentum(w, g, state, t, lr, h):
    state["velocity"] = h["momentum"] * state["velocity"] - lr * g
    return w + state["velocity"]


def plain_nesterov(w, g, state, t, lr, h):
    """The course's form (the core computes ``w += mu * v - lr * g``)."""
    mu, v_prev = h["momentum"], state["velocity"]
    state["velocity"] = mu * v_prev - lr * g
    return w - mu * v_prev + (1 + mu) * state["velocity"]


def plain_rmsprop(w, g, state, t, lr, h):
    rho = h["decay_rate"]
    state["a"] = rho * state["a"] + (1 - rho) * g**2
    return w - lr * g / (np.sqrt(state["a"]) + h["epsilon"])


def plain_adam(w, g, state, t, lr, h, decoupled=False):
    b1, b2 = h["beta1"], h["beta2"]
    state["v"] = b1 * state["v"] + (1 - b1) * g
    state["a"] = b2 * state["a"] + (1 - b2) * g**2
    v_hat, a_hat = state["v"] / (1 - b1**t), state["a"] / (1 - b2**t)
    decay = lr * h["weight_decay"] * w if decoupled else 0
    return w - lr * v_hat / (np.sqrt(a_hat) + h["epsilon"]) - decay


def plain_adamw(w, g, state, t, lr, h):
    return plain_adam(w, g, state, t, lr, h, decoupled=True)


CASES = {  # core, its state, the hyperparameters it takes, the formula
    "sgd": (optim.sgd_update, (), (), plain_sgd),
    "momentum": (optim.momentum_update, ("velocity",), ("momentum",), plain_momentum),
    "nesterov": (optim.nesterov_update, ("velocity",), ("momentum",), plain_nesterov),
    "rmsprop": (optim.rmsprop_update, ("a",), ("decay_rate", "epsilon"), plain_rmsprop),
    "adam": (optim.adam_update, ("v", "a"), ("beta1", "beta2", "epsilon"), plain_adam),
    "adamw": (optim.adam_update, ("v", "a"), ("beta1", "beta2", "epsilon", "weight_decay"),
              plain_adamw),
}


def expected(name, w0, grads, member_of):
    """The formula run member by member: ``w0`` and ``grads[step]`` shaped like the block,
    ``member_of(k)`` the index of member k's part of it."""
    _, state_names, hyper, formula = CASES[name]
    w = w0.copy()
    for k in range(K):
        part = member_of(k)
        h = {key: HYPER[key][k] for key in hyper}
        state = {key: np.zeros_like(w[part]) for key in state_names}
        for t, g in enumerate(grads, start=1):
            w[part] = formula(w[part], g[part], state, t, LR[k], h)
    return w


# -- the arrays: NumPy or PyTorch ------------------------------------------------------------
@pytest.fixture(params=["numpy", "torch"])
def lib(request):
    if request.param == "numpy":
        return np.array, np.asarray  # a copy: the test keeps the original
    torch = pytest.importorskip("torch")
    return (lambda a: torch.from_numpy(np.array(a, dtype=np.float64))), \
        (lambda t: t.numpy())


def run_core(name, big, index, grads, hyper_shape, lib):
    """The core on ``big[index]`` (in place, through a view) for every step; per-member
    hyperparameters reshaped to ``hyper_shape`` with ``np.repeat``/``reshape``. Returns
    ``big`` as NumPy."""
    put, get = lib
    update, state_names, hyper, _ = CASES[name]

    def per_member(values):
        values = np.asarray(values, dtype=np.float64)
        return put(np.repeat(values, H) if hyper_shape == "columns" else
                   values.reshape(hyper_shape))

    big = put(big)
    state = [put(np.zeros(tuple(big[index].shape))) for _ in state_names]
    kwargs = {key: per_member(HYPER[key]) for key in hyper}
    for t, g in enumerate(grads, start=1):
        steps = {"t": t} if update is optim.adam_update else {}
        update(big[index], put(g), *state, learning_rate=per_member(LR), **steps, **kwargs)
    return get(big)


@pytest.mark.parametrize("name", list(CASES))
def test_a_core_updates_a_block_of_columns_member_by_member(name, lib):
    """Members side by side: columns 3 .. 3+K*H of a (D, 10) array, each member's
    hyperparameters repeated over its H columns (the engine's first layer)."""
    rng = np.random.default_rng(0)
    big = rng.normal(size=(D, 10))
    block = (slice(None), slice(3, 3 + K * H))
    grads = [rng.normal(size=(D, K * H)) for _ in range(STEPS)]
    got = run_core(name, big, block, grads, "columns", lib)
    want = expected(name, big[block], grads, lambda k: (slice(None), slice(k * H, (k + 1) * H)))
    np.testing.assert_allclose(got[block], want, rtol=1e-12, atol=1e-15)
    rest = np.ones(10, bool)
    rest[3:3 + K * H] = False
    np.testing.assert_array_equal(got[:, rest], big[:, rest])  # outside the block: untouched
    assert not np.allclose(got[block], big[block])


@pytest.mark.parametrize("name", list(CASES))
def test_a_core_updates_members_stacked_on_a_leading_axis(name, lib):
    """Members along axis 0 (slots 1..3 of 5, the engine's second layer (K, C, H)), each
    member's hyperparameters shaped (K, 1, 1)."""
    rng = np.random.default_rng(1)
    big = rng.normal(size=(5, 2, H))
    grads = [rng.normal(size=(K, 2, H)) for _ in range(STEPS)]
    got = run_core(name, big, slice(1, 1 + K), grads, (K, 1, 1), lib)
    want = expected(name, big[1:1 + K], grads, lambda k: k)
    np.testing.assert_allclose(got[1:1 + K], want, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(got[[0, 4]], big[[0, 4]])


def test_adam_adds_epsilon_after_the_bias_correction():
    """First step from zero moments with ``g`` = ``eps`` = 1e-3 everywhere: the corrected
    moments are ``g`` and ``g**2``, so the step is ``lr * g / (g + eps)`` = ``lr / 2``
    (``eps`` added before the correction would give ``lr * g / (g + eps / sqrt(1 -
    beta2))`` = ``lr / 32.6``)."""
    g = eps = 1e-3
    w, v, a = np.zeros(3), np.zeros(3), np.zeros(3)
    optim.adam_update(w, np.full(3, g), v, a, 1, 0.1, epsilon=eps)
    np.testing.assert_allclose(w, -0.05, rtol=1e-12)


def test_every_engine_rule_is_a_core_of_this_module():
    for rule in optim.RULES.values():
        assert rule.update is getattr(optim, rule.update.__name__)
        assert rule.course is None or callable(getattr(optim, rule.course))


def test_adamw_decay_is_decoupled_from_the_adaptive_step():
    """Loshchilov & Hutter's AdamW with a zero gradient: the moments stay zero, so the Adam
    step is 0 and only the decay acts, ``w *= 1 - lr * weight_decay`` each step, exactly
    as written (L2 folded into the gradient would instead be divided by ``sqrt(a_hat)``)."""
    w0 = np.array([2.0, -0.5, 1e-3])
    w, v, a = w0.copy(), np.zeros(3), np.zeros(3)
    for t in (1, 2, 3):
        optim.adam_update(w, np.zeros(3), v, a, t, 0.1, weight_decay=0.2)
    np.testing.assert_allclose(w, w0 * (1 - 0.1 * 0.2) ** 3, rtol=1e-15)
    assert not v.any() and not a.any()

