"""Learning-rate schedules against closed forms written out here, at the first iteration,
on both sides of epoch (and step) boundaries, mid-run and at the last iteration.

The closed forms:

* epoch_decay, the course's loop (``learning_rate *= decay`` after the update of every
  iteration with ``it % ipe == 0``): iteration ``it`` runs at ``decay**ceil(it / ipe)``,
  the number of decays done before it;
* step: ``decay**floor(it / span)`` with ``span = round(step_epochs * ipe)``;
* cosine (Loshchilov & Hutter's SGDR, one cycle over the run):
  ``0.5 * (1 + cos(pi * it / (T - 1)))``, from 1 at the first iteration to 0 at the last;
* one_cycle: a straight line from ``start`` at 0 to 1 at ``peak = round(0.3 * T)``, then a
  straight line down towards ``end`` at ``T``;
* linear warmup over ``W`` iterations: the base schedule times ``min(1, (it + 1) / W)``.
"""

import math

import pytest

from nndl.schedules import SCHEDULES, make_schedule

T, IPE = 50, 8  # iterations in the run, iterations per epoch
# first, both sides of the first three epoch boundaries, mid-run, last two
ITERATIONS = [0, 1, 7, 8, 9, 15, 16, 17, 24, 25, 31, 32, 33, 48, 49]


def values(name, **kwargs):
    schedule = make_schedule(name, num_iters=T, iterations_per_epoch=IPE, **kwargs)
    return [schedule(it) for it in ITERATIONS]


def course_loop_rates(decay, num_iters, ipe):
    """The rate each iteration of the course's ``TwoLayerNet.train`` runs at (base 1)."""
    rates, learning_rate = [], 1.0
    for it in range(num_iters):
        rates.append(learning_rate)
        if it % ipe == 0:
            learning_rate *= decay
    return rates


def test_epoch_decay_is_the_number_of_decays_done_before_the_iteration():
    expected = [0.9 ** math.ceil(it / IPE) for it in ITERATIONS]
    assert values("epoch_decay", decay=0.9) == pytest.approx(expected, rel=1e-15)
    # it = 0 at the base rate, 1..8 after one decay, 9..16 after two, ... 49 after seven
    assert expected[:6] == [1.0, 0.9, 0.9, 0.9, 0.9 ** 2, 0.9 ** 2]
    assert expected[-1] == 0.9 ** 7


def test_epoch_decay_equals_the_course_loop():
    schedule = make_schedule("epoch_decay", num_iters=T, iterations_per_epoch=IPE, decay=0.5)
    assert [schedule(it) for it in range(T)] == course_loop_rates(0.5, T, IPE)


@pytest.mark.parametrize("step_epochs, span", [(2, 16), (0.5, 4), (0.01, 1)])
def test_step_decays_every_span_iterations(step_epochs, span):
    expected = [0.7 ** (it // span) for it in ITERATIONS]
    got = values("step", decay=0.7, step_epochs=step_epochs)
    assert got == pytest.approx(expected, rel=1e-15)


def test_step_of_two_epochs_halves_at_iterations_16_32_and_48():
    got = dict(zip(ITERATIONS, values("step", decay=0.5, step_epochs=2)))
    assert [got[it] for it in (0, 15, 16, 31, 32, 33, 48, 49)] == [
        1, 1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]


def test_cosine_anneals_from_one_to_zero_over_the_run():
    expected = [0.5 * (1 + math.cos(math.pi * it / (T - 1))) for it in ITERATIONS]
    got = values("cosine")
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert got[0] == 1.0 and got[-1] == pytest.approx(0.0, abs=1e-15)
    assert dict(zip(ITERATIONS, got))[24] == pytest.approx(0.5 * (1 + math.cos(math.pi * 24 / 49)))


def test_cosine_of_a_one_iteration_run_is_the_base_rate():
    assert make_schedule("cosine", num_iters=1, iterations_per_epoch=1)(0) == 1.0


def test_one_cycle_rises_linearly_to_the_peak_then_falls_linearly():
    start, end, peak = 0.04, 1e-4, 15  # peak = round(0.3 * 50)
    expected = [start + (1 - start) * it / peak if it < peak
                else 1 - (1 - end) * (it - peak) / (T - peak) for it in ITERATIONS]
    got = values("one_cycle")
    assert got == pytest.approx(expected, rel=1e-12)
    assert got[0] == start and dict(zip(ITERATIONS, got))[15] == 1.0
    assert got[-1] == pytest.approx(1 - (1 - end) * 34 / 35)


def test_constant_is_the_base_rate_throughout():
    assert values("constant") == [1.0] * len(ITERATIONS)


@pytest.mark.parametrize("name", SCHEDULES)
def test_linear_warmup_scales_any_schedule_over_its_first_iterations(name):
    warmup = 10
    base, warmed = values(name), values(name, warmup_iters=warmup)
    ramp = [min(1.0, (it + 1) / warmup) for it in ITERATIONS]
    assert warmed == pytest.approx([b * r for b, r in zip(base, ramp)], rel=1e-15)
    got = dict(zip(ITERATIONS, warmed))
    assert got[0] == pytest.approx(0.1 * dict(zip(ITERATIONS, base))[0])  # 1/10 of the base
    assert got[33] == dict(zip(ITERATIONS, base))[33]  # past the warmup: the base itself


def test_no_warmup_leaves_the_schedule_as_it_is():
    assert values("cosine", warmup_iters=0) == values("cosine")


def test_an_unknown_schedule_is_named():
    with pytest.raises(ValueError, match=r"schedule must be one of .*got 'linear'"):
        make_schedule("linear", num_iters=T, iterations_per_epoch=IPE)
