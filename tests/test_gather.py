"""``_gather.RowGatherer``: ``X[idx]`` into one reused buffer or a ring, whichever its own
timings say is faster; a fake clock stands in for the machine's two states."""

import numpy as np
import pytest

from nndl._gather import RowGatherer


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
    for _ in range(3 * RowGatherer.TRIAL_EVERY):
        idx = rng.integers(0, len(X), 7)
        np.testing.assert_array_equal(gatherer(idx), X[idx])


@pytest.mark.parametrize("faster", [0, 1])
def test_keeps_the_faster_way_and_tries_the_other_briefly(faster):
    _, gatherer, _ = _gatherer([1.0, 2.0] if faster == 0 else [2.0, 1.0])
    first = 2 * RowGatherer.TRIAL  # TRIAL calls each way, then cycles ending in a trial
    ways = _ways(gatherer, first + 5 * RowGatherer.TRIAL_EVERY, np.random.default_rng(1))
    assert gatherer.use == faster
    # only the trials use the slower way: TRIAL calls in every TRIAL_EVERY
    assert (ways[first:] != faster).sum() == 5 * RowGatherer.TRIAL
    assert set(ways[: 2 * RowGatherer.TRIAL]) == {0, 1}  # both ways timed at the start


def test_follows_the_machine_when_the_faster_way_changes():
    _, gatherer, clock = _gatherer([1.0, 2.0])
    rng = np.random.default_rng(2)
    _ways(gatherer, 2 * RowGatherer.TRIAL + RowGatherer.TRIAL_EVERY, rng)
    assert gatherer.use == 0
    clock.cost = [3.0, 1.0]  # the cores stopped sharing a cache: the ring wins now
    ways = _ways(gatherer, 2 * RowGatherer.TRIAL_EVERY, rng)  # the first cycle's trial sees it
    assert gatherer.use == 1
    last_cycle = ways[-RowGatherer.TRIAL_EVERY:]
    assert (last_cycle[: -RowGatherer.TRIAL] == 1).all()
    assert (last_cycle[-RowGatherer.TRIAL:] == 0).all()


def test_one_buffer_when_a_ring_would_not_fit():
    X, gatherer, _ = _gatherer([2.0, 1.0], rows=40, cols=4, dtype=np.float64)
    gatherer.RING_BYTES = 8 * 4 * 7  # room for one batch of 7 rows only
    ways = _ways(gatherer, 50, np.random.default_rng(3))
    assert (ways == 0).all()


def test_a_batch_of_another_size_gets_new_buffers():
    X, gatherer, _ = _gatherer([1.0, 2.0])
    rng = np.random.default_rng(4)
    _ways(gatherer, 30, rng, batch=7)
    idx = rng.integers(0, len(X), 3)
    np.testing.assert_array_equal(gatherer(idx), X[idx])


def test_refuses_data_that_is_not_c_ordered():
    X = np.asfortranarray(np.ones((10, 3), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        RowGatherer(X)
