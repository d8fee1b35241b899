"""nndl._random: the assignment's draws, exactly."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nndl import _random


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 100_000), size=st.integers(0, 500))
def test_sample_indices_draws_what_choice_draws(seed, n, size):
    """The assignment draws minibatches with ``np.random.choice(N, batch_size)``; nndl
    draws them with ``randint``, which must give the same numbers and leave the RNG in the
    same state."""
    ours, theirs = np.random.RandomState(seed), np.random.RandomState(seed)
    for _ in range(3):
        got, expected = _random.sample_indices(ours, n, size), theirs.choice(n, size)
        assert got.dtype == expected.dtype and np.array_equal(got, expected)
    assert ours.random_sample() == theirs.random_sample()


def test_sample_indices_from_the_global_rng_is_np_random_choice():
    np.random.seed(7)
    got = [_random.sample_indices(_random.check_random_state(None), 49_000, 200)
           for _ in range(3)]
    np.random.seed(7)
    expected = [np.random.choice(49_000, 200) for _ in range(3)]
    assert all(np.array_equal(g, e) for g, e in zip(got, expected))
