"""The second assignment's checks: each layer, sandwich layer, loss, update rule and network
of :mod:`nndl.layers`, :mod:`nndl.layer_utils`, :mod:`nndl.optim` and :mod:`nndl.fc_net`
against the course notebooks' expected values or centred-difference gradients.

Each ``*_check`` function runs one of the course notebooks' checks, on the inputs the
notebook uses (random ones drawn from NumPy's global generator, as the notebook draws them),
and returns what it compares: ``{name: (reference, computed)}``, the reference being the
course's value or the numerical gradient. The functions look the layers up in their modules
when they run, so a patched layer is the one checked.

:mod:`nndl.layer_tests` prints these comparisons as the course's notebooks do (its
entry-by-entry :func:`~nndl.gradient_check.rel_error`). :func:`run_course_checks` runs them
all from a fixed seed and gives the rows of ``nndl gradcheck`` and ``nndl reproduce``'s
report, measuring gradients by :func:`~nndl.gradient_check.norm_rel_error` (the relative
error of the whole array: the entry-by-entry maximum reaches 1e-5 on right gradients
whenever an entry is near 0) on networks scaled to keep their gradients well away from 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nndl import fc_net, layer_utils, layers, optim
from nndl._typing import NDArray
from nndl.checks import CheckResult
from nndl.gradient_check import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    norm_rel_error,
    rel_error,
)

#: ``{name: (reference, computed)}``: what one check compares.
Pairs = dict[str, tuple[Any, Any]]

#: What the values of :func:`run_course_checks`'s rows are, in one paragraph.
MEASURES = ("Gradient rows (dx, dw, ... and the networks'): the relative error of each whole "
            "array, ||numerical - analytic|| / (||numerical|| + ||analytic||), centred "
            "differences at h = 1e-5, the largest over the arrays named (a hidden bias before "
            "batch normalization, whose true gradient is 0, by its largest absolute "
            "difference). The other rows: the course's relative error, the largest entry by "
            "entry (or the |difference| a row names), against the course's values (rounded "
            "to 8 decimals) or what the row names.")
#: The seed :func:`run_course_checks` starts NumPy's global generator from.
SEED = 231
#: Tolerances. A centred-difference gradient (h = 1e-5, float64) agrees with a right one to
#: about 1e-8 in relative norm (deep networks with L2 regularization, whose loss is larger,
#: to a few times that). The course's expected values are rounded to 8 decimals, so
#: comparisons with them carry the error of that rounding (its notebooks print 9.8e-10 for
#: affine_forward, 5e-8 for relu_forward, up to 1.1e-7 for the update rules).
GRADIENT_TOL = 1e-8
NETWORK_TOL = 1e-7
COURSE_VALUE_TOL = {"affine_forward": 1e-9, "relu_forward": 1e-7, "update rule": 1e-6,
                    "scores": 1e-6, "loss": 1e-10}
#: batch normalization's output std falls short of gamma by about eps / (2 var) (eps 1e-5)
BATCHNORM_FORWARD_TOL = 1e-7
#: dropout's kept fraction and mean on 250,000 units drift by about 1e-3 (sampling)
DROPOUT_FORWARD_TOL = 1e-2

# -- the course notebooks' expected values ---------------------------------------------
AFFINE_OUT = np.array([[1.49834967, 1.70660132, 1.91485297],
                       [3.25553199, 3.5141327, 3.77273342]])
RELU_OUT = np.array([[0.0, 0.0, 0.0, 0.0],
                     [0.0, 0.0, 0.04545455, 0.13636364],
                     [0.22727273, 0.31818182, 0.40909091, 0.5]])
TWO_LAYER_SCORES = np.array([
    [11.53165108, 12.2917344, 13.05181771, 13.81190102, 14.57198434, 15.33206765, 16.09215096],
    [12.05769098, 12.74614105, 13.43459113, 14.1230412, 14.81149128, 15.49994135, 16.18839143],
    [12.58373087, 13.20054771, 13.81736455, 14.43418138, 15.05099822, 15.66781506, 16.2846319]])
TWO_LAYER_LOSS, TWO_LAYER_REG_LOSS = 3.4702243556, 26.5948426952
VELOCITY = np.array([[0.5406, 0.55475789, 0.56891579, 0.58307368, 0.59723158],
                     [0.61138947, 0.62554737, 0.63970526, 0.65386316, 0.66802105],
                     [0.68217895, 0.69633684, 0.71049474, 0.72465263, 0.73881053],
                     [0.75296842, 0.76712632, 0.78128421, 0.79544211, 0.8096]])
#: For each rule: its config (arrays as ``linspace`` bounds over the (4, 5) grid) and the
#: expected next ``w`` and state.
UPDATE_RULE_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "sgd_momentum": ({"learning_rate": 1e-3, "velocity": (0.6, 0.9)}, {
        "next_w": [[0.1406, 0.20738947, 0.27417895, 0.34096842, 0.40775789],
                   [0.47454737, 0.54133684, 0.60812632, 0.67491579, 0.74170526],
                   [0.80849474, 0.87528421, 0.94207368, 1.00886316, 1.07565263],
                   [1.14244211, 1.20923158, 1.27602105, 1.34281053, 1.4096]],
        "velocity": VELOCITY}),
    "sgd_nesterov_momentum": ({"learning_rate": 1e-3, "velocity": (0.6, 0.9)}, {
        "next_w": [[0.08714, 0.15246105, 0.21778211, 0.28310316, 0.34842421],
                   [0.41374526, 0.47906632, 0.54438737, 0.60970842, 0.67502947],
                   [0.74035053, 0.80567158, 0.87099263, 0.93631368, 1.00163474],
                   [1.06695579, 1.13227684, 1.19759789, 1.26291895, 1.32824]],
        "velocity": VELOCITY}),
    "rmsprop": ({"learning_rate": 1e-2, "a": (0.6, 0.9)}, {
        "next_w": [[-0.39223849, -0.34037513, -0.28849239, -0.23659121, -0.18467247],
                   [-0.132737, -0.08078555, -0.02881884, 0.02316247, 0.07515774],
                   [0.12716641, 0.17918792, 0.23122175, 0.28326742, 0.33532447],
                   [0.38739248, 0.43947102, 0.49155973, 0.54365823, 0.59576619]],
        "a": [[0.5976, 0.6126277, 0.6277108, 0.64284931, 0.65804321],
              [0.67329252, 0.68859723, 0.70395734, 0.71937285, 0.73484377],
              [0.75037008, 0.7659518, 0.78158892, 0.79728144, 0.81302936],
              [0.82883269, 0.84469141, 0.86060554, 0.87657507, 0.8926]]}),
    "adam": ({"learning_rate": 1e-2, "v": (0.6, 0.9), "a": (0.7, 0.5), "t": 5}, {
        "next_w": [[-0.40094747, -0.34836187, -0.29577703, -0.24319299, -0.19060977],
                   [-0.1380274, -0.08544591, -0.03286534, 0.01971428, 0.0722929],
                   [0.1248705, 0.17744702, 0.23002243, 0.28259667, 0.33516969],
                   [0.38774145, 0.44031188, 0.49288093, 0.54544852, 0.59801459]],
        "a": [[0.69966, 0.68908382, 0.67851319, 0.66794809, 0.65738853],
              [0.64683452, 0.63628604, 0.6257431, 0.61520571, 0.60467385],
              [0.59414753, 0.58362676, 0.57311152, 0.56260183, 0.55209767],
              [0.54159906, 0.53110598, 0.52061845, 0.51013645, 0.49966]],
        "v": [[0.48, 0.49947368, 0.51894737, 0.53842105, 0.55789474],
              [0.57736842, 0.59684211, 0.61631579, 0.63578947, 0.65526316],
              [0.67473684, 0.69421053, 0.71368421, 0.73315789, 0.75263158],
              [0.77210526, 0.79157895, 0.81105263, 0.83052632, 0.85]]}),
}
#: The networks :func:`run_course_checks` gradient-checks: two depths, with and without
#: batch normalization, and one with dropout (fixed masks); 10 inputs and weight scale 0.3,
#: so that no hidden unit sits within a step of its ReLU's kink and batch normalization
#: has a batch to normalize (the course's check takes 2 inputs at scale 5e-2).
NETWORKS = (
    {"hidden_dims": [20, 30], "reg": 0.0},
    {"hidden_dims": [20, 30], "reg": 0.0, "use_batchnorm": True},
    {"hidden_dims": [20, 30, 25, 15], "reg": 3.14},
    {"hidden_dims": [20, 30, 25, 15], "reg": 3.14, "use_batchnorm": True},
    {"hidden_dims": [20, 30], "reg": 0.0, "dropout": 0.5, "seed": 123},
)
TABLE_INPUTS, TABLE_WEIGHT_SCALE = 10, 0.3


# -- layers ----------------------------------------------------------------------------

def affine_forward_check() -> Pairs:
    """The course's fixed inputs: x (2, 4, 5, 6), w (120, 3), b (3,) from ``linspace``."""
    x = np.linspace(-0.1, 0.5, num=240).reshape(2, 4, 5, 6)
    w = np.linspace(-0.2, 0.3, num=360).reshape(120, 3)
    b = np.linspace(-0.3, 0.1, num=3)
    return {"out": (AFFINE_OUT, layers.affine_forward(x, w, b)[0])}


def affine_backward_check() -> Pairs:
    """x (10, 2, 3), w (6, 5), b (5,), dout (10, 5), each ``randn``."""
    x, w, b = np.random.randn(10, 2, 3), np.random.randn(6, 5), np.random.randn(5)
    dout = np.random.randn(10, 5)
    _, cache = layers.affine_forward(x, w, b)
    return _gradients(layers.affine_backward(dout, cache), dout, {"x": x, "w": w, "b": b},
                      lambda x, w, b: layers.affine_forward(x, w, b)[0])


def relu_forward_check() -> Pairs:
    """The course's fixed input: ``linspace(-0.5, 0.5, 12)`` as (3, 4)."""
    x = np.linspace(-0.5, 0.5, num=12).reshape(3, 4)
    return {"out": (RELU_OUT, layers.relu_forward(x)[0])}


def relu_backward_check() -> Pairs:
    """x and dout (10, 10), ``randn``."""
    x = np.random.randn(10, 10)
    dout = np.random.randn(*x.shape)
    _, cache = layers.relu_forward(x)
    return _gradients((layers.relu_backward(dout, cache),), dout, {"x": x},
                      lambda x: layers.relu_forward(x)[0])


def affine_relu_check() -> Pairs:
    """x (2, 3, 4), w (12, 10), b (10,), dout (2, 10), ``randn``."""
    x, w, b = np.random.randn(2, 3, 4), np.random.randn(12, 10), np.random.randn(10)
    dout = np.random.randn(2, 10)
    _, cache = layer_utils.affine_relu_forward(x, w, b)
    return _gradients(layer_utils.affine_relu_backward(dout, cache), dout,
                      {"x": x, "w": w, "b": b},
                      lambda x, w, b: layer_utils.affine_relu_forward(x, w, b)[0])


def affine_batchnorm_relu_check() -> Pairs:
    """x (4, 3, 4), w (12, 10), b, gamma, beta (10,), dout (4, 10), ``randn``; train mode.
    (The true ``db`` is 0: batch normalization removes any shift.)"""
    x, w, b = np.random.randn(4, 3, 4), np.random.randn(12, 10), np.random.randn(10)
    gamma, beta, dout = np.random.randn(10), np.random.randn(10), np.random.randn(4, 10)

    def forward(x, w, b, gamma, beta):
        return layer_utils.affine_batchnorm_relu_forward(x, w, b, gamma, beta,
                                                         {"mode": "train"})[0]

    _, cache = layer_utils.affine_batchnorm_relu_forward(x, w, b, gamma, beta, {"mode": "train"})
    return _gradients(layer_utils.affine_batchnorm_relu_backward(dout, cache), dout,
                      {"x": x, "w": w, "b": b, "gamma": gamma, "beta": beta}, forward)


def batchnorm_forward_check() -> Pairs:
    """The course's training-time check: a two-layer net's (200, 3) activations normalized
    with gamma (1, 2, 3) and beta (11, 12, 13): their means against beta, their standard
    deviations against gamma."""
    X = np.random.randn(200, 50)
    a = np.maximum(0, X @ np.random.randn(50, 60)) @ np.random.randn(60, 3)
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([11.0, 12.0, 13.0])
    out, _ = layers.batchnorm_forward(a, gamma, beta, {"mode": "train"})
    return {"means": (beta, out.mean(axis=0)), "stds": (gamma, out.std(axis=0))}


def batchnorm_backward_check(alt: bool = False) -> Pairs:
    """The course's check: x = 5 randn(4, 5) + 12, gamma, beta, dout ``randn``; train mode.
    ``alt``: check :func:`~nndl.layers.batchnorm_backward_alt` instead."""
    x = 5 * np.random.randn(4, 5) + 12
    gamma, beta, dout = np.random.randn(5), np.random.randn(5), np.random.randn(4, 5)
    bn_param = {"mode": "train"}
    _, cache = layers.batchnorm_forward(x, gamma, beta, bn_param)
    backward = layers.batchnorm_backward_alt if alt else layers.batchnorm_backward
    return _gradients(backward(dout, cache), dout, {"x": x, "gamma": gamma, "beta": beta},
                      lambda x, g, b: layers.batchnorm_forward(x, g, b, bn_param)[0])


def dropout_forward_check(p: float = 0.75) -> Pairs:
    """x = randn(500, 500) + 10: in train mode the fraction of units kept (against ``p``) and
    the mean (inverted dropout keeps the input's); in test mode the output (the input)."""
    x = np.random.randn(500, 500) + 10
    out, _ = layers.dropout_forward(x, {"mode": "train", "p": p})
    out_test, _ = layers.dropout_forward(x, {"mode": "test", "p": p})
    return {"kept fraction": (p, float((out != 0).mean())), "train mean": (x.mean(), out.mean()),
            "test output": (x, out_test)}


def dropout_backward_check() -> Pairs:
    """The course's check: x = randn(10, 10) + 10, p 0.8, seed 123."""
    x = np.random.randn(10, 10) + 10
    dout = np.random.randn(*x.shape)
    param = {"mode": "train", "p": 0.8, "seed": 123}
    _, cache = layers.dropout_forward(x, param)
    return _gradients((layers.dropout_backward(dout, cache),), dout, {"x": x},
                      lambda x: layers.dropout_forward(x, param)[0])


def loss_check(name: str) -> tuple[float, Pairs]:
    """``svm_loss`` or ``softmax_loss`` on the course's scores 0.001 randn(50, 10) and random
    labels: the loss (about 9 and log 10 = 2.3) and the gradient ``dx``."""
    x = 0.001 * np.random.randn(50, 10)
    y = np.random.randint(10, size=50)
    loss_fn = getattr(layers, name)
    loss, dx = loss_fn(x, y)
    numeric = eval_numerical_gradient(lambda x: loss_fn(x, y)[0], x, verbose=False)
    return loss, {"dx": (numeric, dx)}


def _gradients(analytic: Sequence[NDArray], dout: NDArray, inputs: dict[str, NDArray],
               forward: Callable[..., NDArray]) -> Pairs:
    """For each input (in ``forward``'s argument order) the centred-difference gradient of
    ``sum(dout * forward(*inputs))`` and the analytic gradient at the same position."""
    values, pairs = list(inputs.values()), {}
    for i, (name, grad) in enumerate(zip(inputs, analytic)):
        def f(value, i=i):
            return forward(*values[:i], value, *values[i + 1:])
        pairs[f"d{name}"] = (eval_numerical_gradient_array(f, values[i], dout), grad)
    return pairs


# -- update rules ----------------------------------------------------------------------

def update_rule_check(name: str) -> Pairs:
    """The course's check of rule ``name``: w = linspace(-0.4, 0.6), dw = linspace(-0.6, 0.4)
    over (4, 5) and its config; next ``w`` and each state array against the course's."""
    def grid(low, high):
        return np.linspace(low, high, num=20).reshape(4, 5)

    settings, expected = UPDATE_RULE_CASES[name]
    config = {k: grid(*v) if isinstance(v, tuple) else v for k, v in settings.items()}
    next_w, config = getattr(optim, name)(grid(-0.4, 0.6), grid(-0.6, 0.4), config)
    return {key: (np.asarray(value), next_w if key == "next_w" else config[key])
            for key, value in expected.items()}


# -- networks --------------------------------------------------------------------------

def two_layer_net_check() -> Pairs:
    """The course's check of :class:`nndl.fc_net.TwoLayerNet`: fixed parameters (``linspace``)
    and inputs; its scores, and its loss at reg 0 and 1.0, against the course's."""
    N, D, H, C = 3, 5, 50, 7
    model = fc_net.TwoLayerNet(input_dim=D, hidden_dims=H, num_classes=C, weight_scale=1e-2)
    model.params.update(W1=np.linspace(-0.7, 0.3, num=D * H).reshape(D, H),
                        b1=np.linspace(-0.1, 0.9, num=H),
                        W2=np.linspace(-0.3, 0.4, num=H * C).reshape(H, C),
                        b2=np.linspace(-0.9, 0.1, num=C))
    X = np.linspace(-5.5, 4.5, num=N * D).reshape(D, N).T
    y = np.asarray([0, 5, 1])
    pairs = {"scores": (TWO_LAYER_SCORES, model.loss(X)),
             "loss": (TWO_LAYER_LOSS, model.loss(X, y)[0])}
    model.reg = 1.0
    pairs["loss (reg 1.0)"] = (TWO_LAYER_REG_LOSS, model.loss(X, y)[0])
    return pairs


def network_check(hidden_dims: Sequence[int], reg: float = 0.0, num_inputs: int = 2,
                  weight_scale: float = 5e-2, **options: Any) -> tuple[float, Pairs]:
    """The course's gradient check of a :class:`nndl.fc_net.FullyConnectedNet` (float64) on
    X randn(num_inputs, 15) and 10 classes: its initial loss, and each parameter's
    centred-difference gradient (h = 1e-5) with the analytic one. ``options``:
    ``use_batchnorm``, ``dropout``, ``seed``."""
    D, C = 15, 10
    X = np.random.randn(num_inputs, D)
    y = np.random.randint(C, size=num_inputs)
    model = fc_net.FullyConnectedNet(hidden_dims, input_dim=D, num_classes=C, reg=reg,
                                     weight_scale=weight_scale, dtype=np.float64, **options)
    loss, grads = model.loss(X, y)
    pairs = {}
    for name in sorted(grads):
        numeric = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name],
                                          verbose=False)
        pairs[name] = (numeric, grads[name])
    return loss, pairs


# -- the table -------------------------------------------------------------------------

def _max_abs_difference(reference: Any, computed: Any) -> float:
    return float(np.max(np.abs(np.asarray(reference) - np.asarray(computed))))


def _summed_abs_difference(reference: Any, computed: Any) -> float:
    return float(np.sum(np.abs(np.asarray(reference) - np.asarray(computed))))


def _row(check: str, pairs: Pairs, tolerance: float,
         measure: Callable[[Any, Any], float] = norm_rel_error,
         zero: Sequence[str] = ()) -> CheckResult:
    """One row: the largest error among ``pairs``, each measured by ``measure``, except the
    names in ``zero`` (gradients that are 0 in truth, where a relative error means nothing),
    measured by their largest absolute difference."""
    values = [(_max_abs_difference if name in zero else measure)(*pair)
              for name, pair in pairs.items()]
    return CheckResult(check, max(values), tolerance)


def _network_row(config: dict[str, Any]) -> CheckResult:
    hidden = config["hidden_dims"]
    _, pairs = network_check(num_inputs=TABLE_INPUTS, weight_scale=TABLE_WEIGHT_SCALE, **config)
    zero = [f"b{i}" for i in range(1, len(hidden) + 1)] if config.get("use_batchnorm") else []
    extras = "".join(f", {e}" for e, on in (("batchnorm", config.get("use_batchnorm")),
                                             (f"dropout {config.get('dropout')}",
                                              config.get("dropout"))) if on)
    return _row(f"FullyConnectedNet {hidden}{extras}, reg {config['reg']:g}: "
                f"{len(pairs)} gradients", pairs, NETWORK_TOL, zero=zero)


def run_course_checks() -> list[CheckResult]:
    """Every check above, from NumPy's global generator seeded with :data:`SEED` (its state
    restored afterwards), as rows: gradients by their relative error in norm (hidden biases
    before batch normalization, whose true gradient is 0, by their largest absolute
    difference), comparisons with the course's values as the course measures them."""
    state = np.random.get_state()
    np.random.seed(SEED)
    try:
        course = rel_error
        rows = [
            _row("affine_forward out vs the course's", affine_forward_check(),
                 COURSE_VALUE_TOL["affine_forward"], course),
            _row("affine_backward dx, dw, db", affine_backward_check(), GRADIENT_TOL),
            _row("relu_forward out vs the course's", relu_forward_check(),
                 COURSE_VALUE_TOL["relu_forward"], course),
            _row("relu_backward dx", relu_backward_check(), GRADIENT_TOL),
            _row("affine_relu dx, dw, db", affine_relu_check(), GRADIENT_TOL),
            _row("affine_batchnorm_relu dx, dw, db, dgamma, dbeta",
                 affine_batchnorm_relu_check(), GRADIENT_TOL, zero=["db"]),
            _row("batchnorm_forward means, stds vs beta, gamma", batchnorm_forward_check(),
                 BATCHNORM_FORWARD_TOL, course),
            _row("batchnorm_backward dx, dgamma, dbeta", batchnorm_backward_check(),
                 GRADIENT_TOL),
            _row("batchnorm_backward_alt dx, dgamma, dbeta",
                 batchnorm_backward_check(alt=True), GRADIENT_TOL),
            _row("dropout_forward p 0.75: kept, mean, test", dropout_forward_check(),
                 DROPOUT_FORWARD_TOL, course),
            _row("dropout_backward dx", dropout_backward_check(), GRADIENT_TOL),
            _row("svm_loss dx", loss_check("svm_loss")[1], GRADIENT_TOL),
            _row("softmax_loss dx", loss_check("softmax_loss")[1], GRADIENT_TOL),
        ]
        rows += [_row(f"{name} vs the course's", update_rule_check(name),
                      COURSE_VALUE_TOL["update rule"], course) for name in UPDATE_RULE_CASES]
        two_layer = two_layer_net_check()
        rows += [
            _row("fc_net.TwoLayerNet scores vs the course's: summed |difference|",
                 {"scores": two_layer.pop("scores")}, COURSE_VALUE_TOL["scores"],
                 _summed_abs_difference),
            _row("fc_net.TwoLayerNet loss, reg 0 and 1.0, vs the course's", two_layer,
                 COURSE_VALUE_TOL["loss"], _max_abs_difference),
        ]
        rows += [_network_row(config) for config in NETWORKS]
        return rows
    finally:
        np.random.set_state(state)
