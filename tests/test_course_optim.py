"""The course's update rules (``nndl.optim``) against the values its notebook prints, with
its config keys (``velocity``, ``a``, ``v``, ``t``) and defaults.

The notebook's expected arrays are rounded to 8 decimals, so its checks print relative
errors between 1e-9 and 1e-7 that come from that rounding alone: a right rule reproduces the
printed error itself (to many digits), a rule off by more than rounding does not.
"""

import numpy as np
import pytest

from nndl import optim
from nndl.gradient_check import rel_error

N, D = 4, 5


def course_arrays():
    w = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
    dw = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)
    return w, dw


def assert_course_error(actual, expected, printed):
    """``rel_error(actual, expected)`` is the error the course's notebook printed."""
    assert rel_error(actual, expected) == pytest.approx(printed, rel=1e-6)


def linspace(a, b):
    return np.linspace(a, b, num=N * D).reshape(N, D)


VELOCITY = [[0.5406, 0.55475789, 0.56891579, 0.58307368, 0.59723158],
            [0.61138947, 0.62554737, 0.63970526, 0.65386316, 0.66802105],
            [0.68217895, 0.69633684, 0.71049474, 0.72465263, 0.73881053],
            [0.75296842, 0.76712632, 0.78128421, 0.79544211, 0.8096]]


def test_sgd_momentum_matches_the_course():
    w, dw = course_arrays()
    config = {"learning_rate": 1e-3, "velocity": linspace(0.6, 0.9)}
    next_w, config = optim.sgd_momentum(w, dw, config=config)
    expected = [[0.1406, 0.20738947, 0.27417895, 0.34096842, 0.40775789],
                [0.47454737, 0.54133684, 0.60812632, 0.67491579, 0.74170526],
                [0.80849474, 0.87528421, 0.94207368, 1.00886316, 1.07565263],
                [1.14244211, 1.20923158, 1.27602105, 1.34281053, 1.4096]]
    assert_course_error(next_w, expected, 8.882347033505819e-09)
    assert_course_error(config["velocity"], VELOCITY, 4.269287743278663e-09)


def test_sgd_nesterov_momentum_matches_the_course():
    w, dw = course_arrays()
    config = {"learning_rate": 1e-3, "velocity": linspace(0.6, 0.9)}
    next_w, config = optim.sgd_nesterov_momentum(w, dw, config=config)
    expected = [[0.08714, 0.15246105, 0.21778211, 0.28310316, 0.34842421],
                [0.41374526, 0.47906632, 0.54438737, 0.60970842, 0.67502947],
                [0.74035053, 0.80567158, 0.87099263, 0.93631368, 1.00163474],
                [1.06695579, 1.13227684, 1.19759789, 1.26291895, 1.32824]]
    assert_course_error(next_w, expected, 1.0875186845081027e-08)
    assert_course_error(config["velocity"], VELOCITY, 4.269287743278663e-09)


def test_rmsprop_matches_the_course():
    w, dw = course_arrays()
    config = {"learning_rate": 1e-2, "a": linspace(0.6, 0.9)}
    next_w, config = optim.rmsprop(w, dw, config=config)
    expected = [[-0.39223849, -0.34037513, -0.28849239, -0.23659121, -0.18467247],
                [-0.132737, -0.08078555, -0.02881884, 0.02316247, 0.07515774],
                [0.12716641, 0.17918792, 0.23122175, 0.28326742, 0.33532447],
                [0.38739248, 0.43947102, 0.49155973, 0.54365823, 0.59576619]]
    expected_a = [[0.5976, 0.6126277, 0.6277108, 0.64284931, 0.65804321],
                  [0.67329252, 0.68859723, 0.70395734, 0.71937285, 0.73484377],
                  [0.75037008, 0.7659518, 0.78158892, 0.79728144, 0.81302936],
                  [0.82883269, 0.84469141, 0.86060554, 0.87657507, 0.8926]]
    assert_course_error(next_w, expected, 9.524687511038133e-08)
    assert_course_error(config["a"], expected_a, 2.6477955807156126e-09)


def test_adam_matches_the_course():
    w, dw = course_arrays()
    config = {"learning_rate": 1e-2, "v": linspace(0.6, 0.9), "a": linspace(0.7, 0.5), "t": 5}
    next_w, config = optim.adam(w, dw, config=config)
    expected = [[-0.40094747, -0.34836187, -0.29577703, -0.24319299, -0.19060977],
                [-0.1380274, -0.08544591, -0.03286534, 0.01971428, 0.0722929],
                [0.1248705, 0.17744702, 0.23002243, 0.28259667, 0.33516969],
                [0.38774145, 0.44031188, 0.49288093, 0.54544852, 0.59801459]]
    expected_a = [[0.69966, 0.68908382, 0.67851319, 0.66794809, 0.65738853],
                  [0.64683452, 0.63628604, 0.6257431, 0.61520571, 0.60467385],
                  [0.59414753, 0.58362676, 0.57311152, 0.56260183, 0.55209767],
                  [0.54159906, 0.53110598, 0.52061845, 0.51013645, 0.49966]]
    expected_v = [[0.48, 0.49947368, 0.51894737, 0.53842105, 0.55789474],
                  [0.57736842, 0.59684211, 0.61631579, 0.63578947, 0.65526316],
                  [0.67473684, 0.69421053, 0.71368421, 0.73315789, 0.75263158],
                  [0.77210526, 0.79157895, 0.81105263, 0.83052632, 0.85]]
    assert_course_error(next_w, expected, 1.1395691798535431e-07)
    assert_course_error(config["a"], expected_a, 4.208314038113071e-09)
    assert_course_error(config["v"], expected_v, 4.214963193114416e-09)
    assert config["t"] == 6  # incremented before the bias correction


def test_sgd_updates_in_place_with_the_default_rate():
    w, dw = np.array([1.0, 2.0]), np.array([10.0, -10.0])
    next_w, config = optim.sgd(w, dw)
    assert next_w is w and config == {"learning_rate": 1e-2}
    np.testing.assert_allclose(w, [0.9, 2.1])


def test_defaults_and_first_step_state():
    w, dw = np.array([1.0, -1.0]), np.array([0.5, -2.0])
    _, config = optim.sgd_momentum(w.copy(), dw)
    assert (config["learning_rate"], config["momentum"]) == (1e-2, 0.9)
    np.testing.assert_allclose(config["velocity"], -1e-2 * dw)  # from zero velocity
    _, config = optim.sgd_nesterov_momentum(w.copy(), dw)
    assert (config["learning_rate"], config["momentum"]) == (1e-2, 0.9)
    next_w, config = optim.rmsprop(w.copy(), dw)
    assert (config["learning_rate"], config["decay_rate"], config["epsilon"]) == (1e-2, 0.99, 1e-8)
    # a = 0.01 * dw**2, so the first step is lr * dw / (0.1 * |dw|) = 0.1 * sign(dw)
    np.testing.assert_allclose(next_w, w - 0.1 * np.sign(dw), rtol=1e-6)
    next_w, config = optim.adam(w.copy(), dw)
    assert (config["learning_rate"], config["beta1"], config["beta2"], config["epsilon"]) == (
        1e-3, 0.9, 0.999, 1e-8)
    # the bias-corrected first step is lr * sign(dw), whatever the gradient's size
    np.testing.assert_allclose(next_w, w - 1e-3 * np.sign(dw), rtol=1e-7)
    assert config["t"] == 1


def test_nesterov_is_momentum_evaluated_ahead():
    """Nesterov's step is the momentum step plus ``momentum * (v - v_prev)``."""
    w, dw = course_arrays()
    v = linspace(0.6, 0.9)
    classic, _ = optim.sgd_momentum(w, dw, {"learning_rate": 1e-3, "velocity": v})
    ahead, config = optim.sgd_nesterov_momentum(w, dw, {"learning_rate": 1e-3, "velocity": v})
    np.testing.assert_allclose(ahead, classic + 0.9 * (config["velocity"] - v), rtol=1e-12)


@pytest.mark.parametrize("rule", ["sgd", "sgd_momentum", "sgd_nesterov_momentum", "rmsprop",
                                  "adam"])
def test_a_rule_minimizes_a_quadratic(rule):
    w, config = np.array([3.0, -2.0]), {"learning_rate": 0.05}
    for _ in range(500):
        w, config = getattr(optim, rule)(w, 2 * w, config)
    assert np.abs(w).max() < 0.05
