"""The course's ``nndl/layer_tests.py``: the first checks of its second assignment as
functions, which its optimization notebook runs after ``from nndl.layer_tests import *``
(to re-check the layers copied over from the first notebook).

Each function draws its random inputs from NumPy's global generator (as the course's do),
prints what it checks and the course's relative errors (:func:`~nndl.gradient_check.rel_error`,
the largest entry by entry), and returns those errors by name. The checks themselves are
:mod:`nndl.layer_checks`'s, the ones ``nndl gradcheck`` reports.
"""

from __future__ import annotations

from nndl import layer_checks
from nndl.gradient_check import rel_error

__all__ = ["affine_forward_test", "affine_backward_test", "relu_forward_test",
           "relu_backward_test", "affine_relu_test", "fc_net_test"]


def _report(pairs: layer_checks.Pairs, label: str = "{} error") -> dict[str, float]:
    """Print ``label`` filled with each name, then its relative error; return the errors."""
    errors = {name: rel_error(*pair) for name, pair in pairs.items()}
    for name, error in errors.items():
        print(f"{label.format(name)}: {error}")
    return errors


def affine_forward_test() -> dict[str, float]:
    """``affine_forward`` on the course's fixed inputs against its expected output."""
    print("If affine_forward is working, the difference should be less than 1e-9:")
    return _report(layer_checks.affine_forward_check(), "difference")


def affine_backward_test() -> dict[str, float]:
    """``affine_backward`` against the numerical gradients, on random inputs."""
    print("If affine_backward is working, the errors should be less than 1e-9:")
    return _report(layer_checks.affine_backward_check())


def relu_forward_test() -> dict[str, float]:
    """``relu_forward`` on the course's fixed input against its expected output."""
    print("If relu_forward is working, the difference should be around 1e-8 (the expected "
          "values are rounded to 8 decimals):")
    return _report(layer_checks.relu_forward_check(), "difference")


def relu_backward_test() -> dict[str, float]:
    """``relu_backward`` against the numerical gradient, on random inputs."""
    print("If relu_backward is working, the error should be less than 1e-9:")
    return _report(layer_checks.relu_backward_check())


def affine_relu_test() -> dict[str, float]:
    """``affine_relu_forward``/``affine_relu_backward`` against the numerical gradients."""
    print("If affine_relu_forward and affine_relu_backward are working, the errors should be "
          "less than 1e-9:")
    return _report(layer_checks.affine_relu_check())


def fc_net_test() -> dict[float, dict[str, float]]:
    """A three-layer ``FullyConnectedNet([20, 30])`` (float64, weight scale 5e-2, 2 random
    inputs of 15 values, 10 classes) against the numerical gradients, at reg 0 and 3.14.
    Returns each reg's errors by parameter name. (Errors up to about 1e-5 come from
    gradient entries near 0, where a centred difference is precise only in absolute
    terms.)"""
    errors = {}
    for reg in (0, 3.14):
        print(f"Running check with reg = {reg}")
        loss, pairs = layer_checks.network_check([20, 30], reg=reg)
        print(f"Initial loss: {loss}")
        errors[reg] = _report(pairs, "{} relative error")
    return errors
