"""The second assignment's checks (``nndl.layer_checks``), the course's printing helpers
(``nndl.layer_tests``) and the whole-array relative error they are measured by."""

import numpy as np
import pytest

from nndl import layer_checks
from nndl.fc_net import FullyConnectedNet
from nndl.gradient_check import norm_rel_error, rel_error


def test_norm_rel_error_by_hand():
    assert norm_rel_error([3.0, 4.0], [0.0, 0.0]) == 1.0  # 5 / (5 + 0)
    assert norm_rel_error([1.0, 0.0], [1.0, 0.0]) == 0.0
    assert norm_rel_error(np.zeros(3), np.zeros(3)) == 0.0
    # one entry near 0 off by 1e-12: the entry-by-entry error would be 1e-4, the array's
    # is 1e-12 / 2
    assert norm_rel_error([1.0, 0.0], [1.0, 1e-12]) == pytest.approx(0.5e-12)


@pytest.mark.slow
def test_course_checks_are_deterministic_and_leave_the_global_rng_alone():
    np.random.seed(5)
    state = np.random.get_state()
    first = [(r.check, r.value) for r in layer_checks.run_course_checks()]
    after = np.random.get_state()
    assert all(np.array_equal(a, b) for a, b in zip(state, after))
    assert first == [(r.check, r.value) for r in layer_checks.run_course_checks()]


def test_hidden_biases_of_a_batchnorm_net_have_no_gradient():
    """Why the table measures them absolutely: batch normalization removes any shift, so
    the loss does not depend on the biases before it."""
    np.random.seed(0)
    model = FullyConnectedNet([6, 7], input_dim=5, num_classes=3, use_batchnorm=True,
                              weight_scale=0.3, dtype=np.float64)
    _, grads = model.loss(np.random.randn(8, 5), np.random.randint(3, size=8))
    assert np.abs(grads["b1"]).max() < 1e-14 and np.abs(grads["b2"]).max() < 1e-14
    assert np.abs(grads["b3"]).max() > 1e-3  # the output layer's bias is not normalized


def test_update_rule_checks_reproduce_the_courses_printed_errors():
    """The course's expected arrays are rounded: a right rule reproduces the very errors
    its notebook prints."""
    printed = {"sgd_momentum": 8.882347033505819e-09, "rmsprop": 9.524687511038133e-08,
               "adam": 1.1395691798535431e-07}
    for name, error in printed.items():
        pairs = layer_checks.update_rule_check(name)
        assert rel_error(*pairs["next_w"]) == pytest.approx(error, rel=1e-6)


def test_layer_tests_star_import_and_printed_errors(capsys):
    namespace = {}
    exec("from nndl.layer_tests import *", namespace)
    names = ["affine_forward_test", "affine_backward_test", "relu_forward_test",
             "relu_backward_test", "affine_relu_test", "fc_net_test"]
    assert set(names) <= set(namespace)
    np.random.seed(0)
    assert namespace["affine_forward_test"]()["out"] < 1e-9
    assert namespace["relu_forward_test"]()["out"] == pytest.approx(4.999999798022158e-08,
                                                                    rel=1e-9)
    for name in ("affine_backward_test", "relu_backward_test", "affine_relu_test"):
        errors = namespace[name]()
        assert errors and max(errors.values()) < 1e-8, name
    errors = namespace["fc_net_test"]()
    assert sorted(errors) == [0, 3.14]
    assert sorted(errors[3.14]) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    assert max(errors[3.14].values()) < 1e-5  # the course's own printouts reach 1e-5
    out = capsys.readouterr().out
    assert "difference: 9.76984" in out and "dx error: " in out and "db error: " in out
    assert "Running check with reg = 3.14" in out and "W1 relative error: " in out
    assert "Initial loss: " in out
