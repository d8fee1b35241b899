"""``_gather.RowGatherer``: ``X[idx]`` into one reused buffer or a ring, whichever its own
timings say is faster; a fake clock stands in for the machine's two states."""

import numpy as np
import pytest

from nndl._gather import RowGatherer

T, EVERY = RowGatherer.TRIAL, RowGatherer.TRIAL_EVERY


class _Clock:
    """Seconds in which a gather into the one buffer takes ``cost[0]``, into the ring
    ``cost[1]`` (the gatherer reads the clock before and after each gather)."""

    def __init__(self, cost):
        self.cost, self.now, self.reads, self.gatherer = list(cost), 0.0, 0, None

    def __call__(self):
        self.reads += 1
        if self.reads % 2 == 0:
            self.now += self.cost[self.gatherer.way]
        return self.now


def _gatherer(cost, rows=50, cols=6, dtype=np.float32):
    X = np.arange(rows * cols, dtype=dtype).reshape(rows, cols)
    clock = _Clock(cost)
    gatherer = RowGatherer(X, clock=clock)
    clock.gatherer = gatherer
    return X, gatherer, clock


def _ways(gatherer, calls, rng, batch=7):
    ways = []
    for _ in range(calls):
        gatherer(rng.integers(0, len(gatherer.X), batch))
        ways.append(gatherer.way)
    return np.array(ways)


@pytest.mark.parametrize("cost", [(1.0, 2.0), (2.0, 1.0)], ids=["one-faster", "ring-faster"])
def test_rows_are_x_at_idx_whichever_buffer(cost):
    X, gatherer, _ = _gatherer(cost)
    rng = np.random.default_rng(0)
    for _ in range(3 * EVERY):
        idx = rng.integers(0, len(X), 7)
        np.testing.assert_array_equal(gatherer(idx), X[idx])


def test_first_the_one_buffer_then_the_ring_are_timed():
    _, gatherer, _ = _gatherer([1.0, 2.0])
    ways = _ways(gatherer, 2 * T, np.random.default_rng(2))
    assert list(ways) == [0] * T + [1] * T


@pytest.mark.parametrize("faster", [0, 1])
def test_keeps_the_faster_way_and_tries_the_other_briefly(faster):
    _, gatherer, _ = _gatherer([1.0, 2.0] if faster == 0 else [2.0, 1.0])
    first = 2 * T  # TRIAL calls each way, then cycles ending in a trial
    ways = _ways(gatherer, first + 5 * EVERY, np.random.default_rng(1))
    assert gatherer.use == faster
    # only the trials use the slower way: TRIAL calls in every TRIAL_EVERY
    assert (ways[first:] != faster).sum() == 5 * T


@pytest.mark.parametrize(("ring_cost", "use"), [(0.95, 0), (0.85, 1), (1.05, 0)])
def test_the_ring_has_to_win_by_the_margin(ring_cost, use):
    _, gatherer, _ = _gatherer([1.0, ring_cost])
    _ways(gatherer, 2 * T + 1, np.random.default_rng(1))
    assert gatherer.use == use


@pytest.mark.parametrize(("before", "after", "use"), [([1.0, 2.0], [3.0, 1.0], 1),
                                                      ([2.0, 1.0], [1.0, 3.0], 0)])
def test_follows_the_machine_when_the_faster_way_changes(before, after, use):
    _, gatherer, clock = _gatherer(before)
    rng = np.random.default_rng(2)
    _ways(gatherer, 2 * T + EVERY, rng)
    assert gatherer.use == 1 - use
    clock.cost = after  # e.g. the cores stopped sharing a cache: the ring wins now
    ways = _ways(gatherer, 2 * EVERY, rng)  # the first cycle's trial sees it
    assert gatherer.use == use
    last_cycle = ways[-EVERY:]
    assert (last_cycle[:-T] == use).all()
    assert (last_cycle[-T:] == 1 - use).all()


def test_ring_rows_stay_valid_for_a_whole_turn_of_the_ring():
    X, gatherer, _ = _gatherer([2.0, 1.0])
    rng = np.random.default_rng(4)
    _ways(gatherer, 2 * T + 1, rng)
    assert gatherer.use == 1
    kept = []
    for _ in range(RowGatherer.RING):
        idx = rng.integers(0, len(X), 7)
        kept.append((gatherer(idx), X[idx]))
        assert gatherer.way == 1
    for rows, expected in kept:
        np.testing.assert_array_equal(rows, expected)
    assert len({rows.ctypes.data for rows, _ in kept}) == RowGatherer.RING


def test_one_buffer_when_a_ring_would_not_fit():
    X, gatherer, _ = _gatherer([2.0, 1.0], rows=40, cols=4, dtype=np.float64)
    gatherer.RING_BYTES = 8 * 4 * 7  # room for one batch of 7 rows only
    ways = _ways(gatherer, 50, np.random.default_rng(3))
    assert (ways == 0).all()


def test_a_batch_of_another_size_starts_its_own_trials():
    X, gatherer, _ = _gatherer([2.0, 1.0])
    rng = np.random.default_rng(5)
    _ways(gatherer, 2 * T + 1, rng)
    assert gatherer.use == 1
    idx = rng.integers(0, len(X), 3)
    np.testing.assert_array_equal(gatherer(idx), X[idx])
    ways = _ways(gatherer, 2 * T - 1, rng, batch=3)
    assert list(ways) == [0] * (T - 1) + [1] * T


def test_refuses_data_that_is_not_c_ordered():
    X = np.asfortranarray(np.ones((10, 3), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        RowGatherer(X)
