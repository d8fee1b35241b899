"""Random-state handling in scikit-learn's style.

``random_state`` may be None (NumPy's global RNG, so ``np.random.seed`` works
as in the assignment), an int (a fresh ``numpy.random.Generator``), or a
Generator / RandomState (used as given).
"""

from __future__ import annotations

import numbers

import numpy as np


def check_random_state(random_state):
    """Return the RNG object ``random_state`` stands for (see module docstring)."""
    if random_state is None or random_state is np.random:
        return np.random  # the module's functions draw from the global RandomState
    if isinstance(random_state, (np.random.Generator, np.random.RandomState)):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative int, got {random_state}")
        return np.random.default_rng(int(random_state))
    raise TypeError(
        "random_state must be None, an int, a numpy.random.Generator or a "
        f"numpy.random.RandomState, got {type(random_state).__name__}"
    )


def standard_normal(rng, shape):
    """Float64 standard-normal draws of ``shape`` from any supported RNG."""
    if isinstance(rng, np.random.Generator):
        return rng.standard_normal(shape)
    return rng.randn(*shape)


def sample_indices(rng, n, size):
    """``size`` indices drawn uniformly with replacement from ``range(n)``.

    For the global RNG and RandomState (and an int ``n``) this is the assignment's
    ``choice(n, size)``, drawn as ``randint(0, n, size)``: the same numbers (``choice``
    without ``p`` calls ``randint``; ``tests/test_random.py`` checks it), without
    ``choice``'s checks.
    """
    if isinstance(rng, np.random.Generator):
        return rng.integers(0, n, size)
    return rng.randint(0, n, size)


def derived_generator(rng):
    """A Generator seeded from ``rng``'s current state, without drawing from ``rng``.

    For noise that a stream needs only sometimes (dropout masks): ``rng`` then draws the same
    numbers whether or not the derived generator exists. The same state gives the same
    derived generator; the state is hashed through a ``SeedSequence`` (with a salt of its
    own, so the derived stream is not ``rng``'s own).
    """
    if rng is np.random:
        state = np.random.get_state(legacy=False)
    elif isinstance(rng, np.random.RandomState):
        state = rng.get_state(legacy=False)
    else:
        state = rng.bit_generator.state
    return np.random.default_rng(np.random.SeedSequence([_DERIVED_SALT, *_state_words(state)]))


_DERIVED_SALT = 0x6E6E646C  # "nndl"


def _state_words(state):
    """The integers of a bit generator's state dict, flattened in a fixed order."""
    if isinstance(state, dict):
        for key in sorted(state):
            yield from _state_words(state[key])
    elif isinstance(state, np.ndarray):
        yield from (int(v) for v in state.ravel())
    elif isinstance(state, (bool, int, np.integer)):
        yield int(state) & (2**128 - 1)  # SeedSequence takes non-negative integers
    elif isinstance(state, float):
        yield int(np.float64(state).view(np.uint64))


def permutation(rng, n):
    """A random permutation of ``range(n)``."""
    return rng.permutation(n)


def uniform(rng, shape):
    """Uniform [0, 1) draws of ``shape``."""
    if isinstance(rng, np.random.Generator):
        return rng.random(shape)
    return rng.random_sample(shape)
