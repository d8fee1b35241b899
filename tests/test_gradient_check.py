import numpy as np

from nndl.gradient_check import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
)


def test_numerical_gradient_of_known_function_restores_x():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    before = x.copy()
    grad = eval_numerical_gradient(lambda v: float(np.sum(v**3)), x, verbose=False)
    np.testing.assert_allclose(grad, 3 * before**2, rtol=1e-8)
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_array():
    x = np.array([1.0, 2.0, 3.0])
    df = np.array([1.0, -1.0, 2.0])
    grad = eval_numerical_gradient_array(lambda v: np.sin(v), x, df)
    np.testing.assert_allclose(grad, np.cos(x) * df, rtol=1e-8)


def test_grad_check_sparse_reports_small_and_large_errors(capsys):
    x = np.random.default_rng(0).normal(size=(3, 4))
    good = grad_check_sparse(lambda v: float(np.sum(v**2)), x, 2 * x, num_checks=5,
                             rng=np.random.RandomState(0))
    bad = grad_check_sparse(lambda v: float(np.sum(v**2)), x, 3 * x, num_checks=5,
                            rng=np.random.RandomState(0))
    assert max(good) < 1e-8 and min(bad) > 0.1
    assert "relative error" in capsys.readouterr().out


def test_rel_error():
    assert rel_error(np.array([1.0]), np.array([1.0])) == 0
    assert abs(rel_error(np.array([1.0]), np.array([3.0])) - 0.5) < 1e-15
