"""The second assignment: each part fails on its own for a copy of the course-style solution
with one planted mistake, and the mistake is named (its hint); the parts that build on it
say so. Then the other known mistakes, one part each."""

import pytest

from .conftest import C147_FC, own_failures, plant, verdict

LAYERS, UTILS, OPTIM, NET = ("nndl/layers.py", "nndl/layer_utils.py", "nndl/optim.py",
                             "nndl/fc_net.py")
SOLVER = "utils/solver.py"
BN_LINES = ("  a_bn, bn_cache = batchnorm_forward(a, gamma, beta, bn_param)\n"
            "  out, relu_cache = relu_forward(a_bn)\n")
NO_REG_GRAD = [("grads['W%d' % L] = dW + self.reg * self.params['W%d' % L]",
                "grads['W%d' % L] = dW"),
               ("grads['W%d' % i] = dW + self.reg * self.params['W%d' % i]",
                "grads['W%d' % i] = dW")]

# part -> (file, edits, the parts failing on their own, words of the hint)
ONE_PART = {
    "affine_forward": (LAYERS, [("out = x_rows.dot(w) + b", "out = x_rows.dot(w)")],
                       {"affine_forward"}, "bias b is not added"),
    "affine_backward": (LAYERS, [("db = np.sum(dout, axis=0)\n  return dx, dw, db",
                                  "db = np.mean(dout, axis=0)\n  return dx, dw, db")],
                        {"affine_backward"}, "db is N times too small"),
    "relu_backward": (LAYERS, [("dx = dout * (x > 0)", "dx = dout")], {"relu_backward"},
                      "the ReLU's mask is missing"),
    "batchnorm_forward_train": (LAYERS, [("sample_var = np.var(x, axis=0)",
                                          "sample_var = np.var(x, axis=0, ddof=1)")],
                                {"batchnorm_forward_train"}, "the unbiased one"),
    "batchnorm_forward_test": (
        LAYERS, [("x_hat = (x - running_mean) / np.sqrt(running_var + eps)",
                  "x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)")],
        {"batchnorm_forward_test"}, "normalizes with the minibatch's own mean"),
    "batchnorm_backward": (LAYERS, [("dx = dx_hat * inv_std + dvar * 2.0 * xmu / N + dmu / N",
                                     "dx = dx_hat * inv_std + dvar * 2.0 * xmu / N")],
                           {"batchnorm_backward"}, "the term that flows through the "
                           "minibatch mean"),
    "batchnorm_backward_alt": (
        LAYERS, [("dx = (gamma / (N * np.sqrt(var + eps))) * (N * dout - dbeta - x_hat * "
                  "dgamma)", "dx = gamma / np.sqrt(var + eps) * dout")],
        {"batchnorm_backward_alt"}, "mean and variance (it treats them as constants)"),
    "dropout_forward_train": (LAYERS, [("mask = (np.random.rand(*x.shape) < p) / p",
                                        "mask = (np.random.rand(*x.shape) < p)")],
                              {"dropout_forward_train"}, "not scaled by 1/p"),
    "dropout_forward_test": (LAYERS, [("  elif mode == 'test':\n    out = x\n",
                                       "  elif mode == 'test':\n    out = x * p\n")],
                             {"dropout_forward_test"}, "the test-time output is scaled by p"),
    "dropout_backward": (LAYERS, [("dx = dout * mask", "dx = dout")], {"dropout_backward"},
                         "the mask of the forward pass is not applied"),
    "svm_loss": (LAYERS, [("  margins[np.arange(N), y] = 0\n", "")], {"svm_loss"},
                 "counts the correct class's own margin"),
    "softmax_loss": (LAYERS, [("  dx[np.arange(N), y] -= 1\n  dx /= N\n",
                               "  dx[np.arange(N), y] -= 1\n")], {"softmax_loss"},
                     "dx is N times too large"),
    "affine_relu_forward": (UTILS, [("  out, relu_cache = relu_forward(a)\n",
                                     "  out, relu_cache = a, a\n")],
                            {"affine_relu_forward"}, "the sandwich's ReLU is skipped"),
    "affine_relu_backward": (UTILS, [("da = relu_backward(dout, relu_cache)", "da = dout")],
                             {"affine_relu_backward"}, "skips the ReLU's gradient"),
    "affine_batchnorm_relu_forward": (
        UTILS, [(BN_LINES, "  h, relu_cache = relu_forward(a)\n"
                 "  out, bn_cache = batchnorm_forward(h, gamma, beta, bn_param)\n")],
        {"affine_batchnorm_relu_forward"}, "the ReLU comes before batch normalization"),
    "affine_batchnorm_relu_backward": (
        UTILS, [("  da_bn = relu_backward(dout, relu_cache)\n"
                 "  da, dgamma, dbeta = batchnorm_backward(da_bn, bn_cache)\n",
                 "  da_bn, dgamma, dbeta = batchnorm_backward(dout, bn_cache)\n"
                 "  da = relu_backward(da_bn, relu_cache)\n")],
        {"affine_batchnorm_relu_backward"}, "runs them in reverse"),
    "sgd": (OPTIM, [("w -= config['learning_rate'] * dw", "w += config['learning_rate'] * dw")],
            {"sgd"}, "moves w along the gradient"),
    "sgd_momentum": (OPTIM, [("  v = config['momentum'] * v - config['learning_rate'] * dw\n"
                              "  next_w = w + v\n",
                              "  v = config['momentum'] * v + config['learning_rate'] * dw\n"
                              "  next_w = w - v\n")],
                     {"sgd_momentum"}, "the opposite sign"),
    "sgd_nesterov_momentum": (OPTIM, [("next_w = w + v + config['momentum'] * (v - v_prev)",
                                       "next_w = w + v")],
                              {"sgd_nesterov_momentum"}, "plain momentum's"),
    "rmsprop": (OPTIM, [("config['a'] = config['decay_rate'] * config['a'] + "
                         "(1 - config['decay_rate']) * dw**2",
                         "config['a'] = (1 - config['decay_rate']) * config['a'] + "
                         "config['decay_rate'] * dw**2")], {"rmsprop"},
                "decay_rate weighs the new squared gradient"),
    "adam": (OPTIM, [("v_corr = config['v'] / (1 - config['beta1']**config['t'])",
                      "v_corr = config['v']"),
                     ("a_corr = config['a'] / (1 - config['beta2']**config['t'])",
                      "a_corr = config['a']")], {"adam"}, "without bias correction"),
    "fc_loss": (NET, [("loss += 0.5 * self.reg * np.sum(W * W)",
                       "loss += self.reg * np.sum(W * W)"),
                      ("dW + self.reg * self.params['W%d' % L]",
                       "dW + 2 * self.reg * self.params['W%d' % L]"),
                      ("dW + self.reg * self.params['W%d' % i]",
                       "dW + 2 * self.reg * self.params['W%d' % i]")],
                {"fc_loss"}, "the course's FullyConnectedNet uses 0.5 * reg"),
    "fc_grads": (NET, NO_REG_GRAD, {"fc_grads_numeric", "fc_grads_reference"},
                 "regularization term's gradient is missing"),
    "fc_batchnorm_loss": (NET, [("        bn_param['mode'] = mode\n", "        pass\n")],
                          {"fc_batchnorm_loss"}, "runs in train mode"),
    "fc_batchnorm_grads": (NET, [("        grads['gamma%d' % i] = dgamma\n", "")],
                           {"fc_batchnorm_grads_numeric", "fc_batchnorm_grads_reference"},
                           "a gradient for every entry of params"),
    "fc_dropout_loss": (NET, [("      self.dropout_param['mode'] = mode\n", "      pass\n")],
                        {"fc_dropout_loss"}, "runs in train mode"),
    "fc_dropout_grads": (NET, [("        dh = dropout_backward(dh, dropout_caches[i - 1])\n",
                                "        pass\n")],
                         {"fc_dropout_grads_numeric", "fc_dropout_grads_reference"},
                         "skips dropout's backward pass"),
}


@pytest.mark.parametrize("part", list(ONE_PART))
def test_a_planted_mistake_fails_its_part_and_names_the_mistake(session, tmp_path, part):
    file, edits, failing, hint = ONE_PART[part]
    result = session.grade(plant(tmp_path, *edits, source=C147_FC, file=file))
    assert own_failures(result) == failing
    for name in failing:
        v = verdict(result, name)
        assert v.kind == "wrong" and hint in v.hint, (v.message, v.hint)


def test_a_solver_that_trains_on_other_labels_fails_the_solver_part(session, tmp_path):
    sub = plant(tmp_path, ("y_batch = self.y_train[batch_mask]",
                           "y_batch = self.y_train[np.random.choice(num_train, "
                           "self.batch_size)]"), source=C147_FC, file=SOLVER)
    result = session.grade(sub)
    assert own_failures(result) == {"solver"}
    v = verdict(result, "solver")
    assert v.message.startswith("training accuracy ") and v.message.endswith(
        "expected at least 90% (nndl's reference reaches 100%)")
    assert v.value < 0.9


def test_a_wrong_value_without_a_known_mistake_says_where_without_a_hint(session, tmp_path):
    sub = plant(tmp_path, ("out = np.maximum(0, x)", "out = np.maximum(0.01 * x, x)"),
                source=C147_FC, file=LAYERS)
    result = session.grade(sub)
    assert own_failures(result) == {"relu_forward"}
    v = verdict(result, "relu_forward")
    assert v.hint == "" and v.tolerance == 1e-7
    assert v.message.startswith("largest relative error ") and " at out[" in v.message
    assert v.value == pytest.approx(0.01 * v.expected if v.expected else v.value)
    # the parts built on it say so
    assert verdict(result, "affine_relu_forward").because == ["relu_forward"]


# (name, file, edits, the part whose hint names it, words of the hint)
CATALOG = [
    ("dropout p as the drop probability", LAYERS,
     [("mask = (np.random.rand(*x.shape) < p) / p",
       "mask = (np.random.rand(*x.shape) < 1 - p) / (1 - p)")],
     "dropout_forward_train", "the older starter code's meaning"),
    ("dropout without the seed", LAYERS,
     [("    np.random.seed(dropout_param['seed'])\n", "    pass\n")],
     "dropout_forward_train", "does not fix the mask"),
    ("dropout applied at test time", LAYERS,
     [("  elif mode == 'test':\n    out = x\n",
       "  elif mode == 'test':\n    out = x * (np.random.rand(*x.shape) < p)\n")],
     "dropout_forward_test", "zeroes units at test time"),
    ("running averages' momentum swapped", LAYERS,
     [("    running_mean = momentum * running_mean + (1 - momentum) * sample_mean",
       "    running_mean = (1 - momentum) * running_mean + momentum * sample_mean"),
      ("    running_var = momentum * running_var + (1 - momentum) * sample_var",
       "    running_var = (1 - momentum) * running_var + momentum * sample_var")],
     "batchnorm_forward_train", "the old average is the one weighted by momentum"),
    ("eps outside the square root", LAYERS,
     [("x_hat = (x - sample_mean) / np.sqrt(sample_var + eps)",
       "x_hat = (x - sample_mean) / (np.sqrt(sample_var) + eps)")],
     "batchnorm_forward_train", "added to the standard deviation"),
    ("batchnorm backward without the variance term", LAYERS,
     [("dx = dx_hat * inv_std + dvar * 2.0 * xmu / N + dmu / N",
       "dx = dx_hat * inv_std + np.sum(-dx_hat * inv_std, axis=0) / N")],
     "batchnorm_backward", "flows through the minibatch variance"),
    ("dgamma without x_hat", LAYERS,
     [("  dgamma = np.sum(dout * x_hat, axis=0)\n\n  dx_hat",
       "  dgamma = np.sum(dout, axis=0)\n\n  dx_hat")],
     "batchnorm_backward", "each row is weighted by its normalized input"),
    ("svm not averaged", LAYERS,
     [("loss = np.sum(margins) / N", "loss = np.sum(margins)"),
      ("  dx[np.arange(N), y] -= num_pos\n  dx /= N\n",
       "  dx[np.arange(N), y] -= num_pos\n")],
     "svm_loss", "summed over the N rows"),
    ("softmax not averaged", LAYERS,
     [("loss = -np.sum(np.log(probs[np.arange(N), y])) / N",
       "loss = -np.sum(np.log(probs[np.arange(N), y]))"),
      ("  dx[np.arange(N), y] -= 1\n  dx /= N\n", "  dx[np.arange(N), y] -= 1\n")],
     "softmax_loss", "summed over the N rows, not averaged"),
    ("softmax loss summed, dx averaged", LAYERS,
     [("loss = -np.sum(np.log(probs[np.arange(N), y])) / N",
       "loss = -np.sum(np.log(probs[np.arange(N), y]))")],
     "softmax_loss", "the loss is summed over the N rows, not averaged"),
    ("svm loss summed, dx averaged", LAYERS,
     [("loss = np.sum(margins) / N", "loss = np.sum(margins)")],
     "svm_loss", "the loss is summed over the N rows, not averaged"),
    ("softmax gradient without the -1", LAYERS,
     [("  dx[np.arange(N), y] -= 1\n  dx /= N\n", "  dx /= N\n")],
     "softmax_loss", "misses the -1"),
    ("affine dx kept flat", LAYERS,
     [("dx = dout.dot(w.T).reshape(x.shape)", "dx = dout.dot(w.T)")],
     "affine_backward", "keeps the flattened shape"),
    ("momentum not kept", OPTIM,
     [("  next_w = w + v\n\n  config['velocity'] = v\n", "  next_w = w + v\n\n")],
     "sgd_momentum", "config['velocity'] is not stored back"),
    ("RMSProp averaging the gradient, not its square", OPTIM,
     [("(1 - config['decay_rate']) * dw**2", "(1 - config['decay_rate']) * dw")],
     "rmsprop", "averages the gradient itself"),
    ("Adam's t incremented after the step", OPTIM,
     [("  config['t'] += 1\n", ""),
      ("(np.sqrt(a_corr) + config['epsilon'])\n",
       "(np.sqrt(a_corr) + config['epsilon'])\n  config['t'] += 1\n")],
     "adam", "t is incremented after the update"),
    ("CS231n's Adam names", OPTIM,
     [("config.setdefault('v', np.zeros_like(w))", "config.setdefault('m', np.zeros_like(w))"),
      ("config.setdefault('a', np.zeros_like(w))\n  config.setdefault('t', 0)",
       "config.setdefault('v', np.zeros_like(w))\n  config.setdefault('t', 0)"),
      ("config['v'] = config['beta1'] * config['v'] + (1 - config['beta1']) * dw\n"
       "  config['a'] = config['beta2'] * config['a'] + (1 - config['beta2']) * dw**2\n"
       "  v_corr = config['v']",
       "config['m'] = config['beta1'] * config['m'] + (1 - config['beta1']) * dw\n"
       "  config['v'] = config['beta2'] * config['v'] + (1 - config['beta2']) * dw**2\n"
       "  v_corr = config['m']"),
      ("a_corr = config['a']", "a_corr = config['v']")],
     "adam", "CS231n's newer names"),
    ("regularization on the last layer only", NET,
     [("    for i in range(1, L + 1):\n      W = self.params['W%d' % i]\n"
       "      loss += 0.5 * self.reg * np.sum(W * W)\n",
       "    loss += 0.5 * self.reg * np.sum(self.params['W%d' % L] ** 2)\n"),
      ("dW + self.reg * self.params['W%d' % i]", "dW")],
     "fc_loss", "covers only the last layer's weights"),
    ("regularization without the last layer", NET,
     [("    for i in range(1, L + 1):\n      W = self.params['W%d' % i]",
       "    for i in range(1, L):\n      W = self.params['W%d' % i]"),
      ("dW + self.reg * self.params['W%d' % L]", "dW")],
     "fc_loss", "leaves out the last layer's weights"),
]


@pytest.mark.parametrize("name, file, edits, part, hint", CATALOG, ids=[c[0] for c in CATALOG])
def test_each_known_mistake_gets_its_hint(session, tmp_path, name, file, edits, part, hint):
    result = session.grade(plant(tmp_path, *edits, source=C147_FC, file=file), only={part})
    (v,) = result.verdicts
    assert not v.passed and v.kind == "wrong", v.message
    assert hint in v.hint, (v.message, v.hint)
