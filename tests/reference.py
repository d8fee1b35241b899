"""The readable reference: the training loop written plainly with ``nndl.layers`` (through
``TwoLayerNet._loss_and_grads``) and ``nndl.optim``, one network at a time.

It takes its RNGs as the fused loop does (the dropout generator derived from the stream's
state, then per iteration the minibatch, then its augmentation), so the two must agree to
rounding for every option.
"""


from nndl import _random
from nndl.neural_net import TwoLayerNet
from nndl.optim import make_optimizer
from nndl.sampling import MinibatchSampler, iterations_per_epoch
from nndl.schedules import make_schedule


def reference_train(params, X, y, options, rng, batch_transform=None, soft_targets=None):
    """Train a copy of ``params``; returns (its parameters, the loss per iteration)."""
    net = TwoLayerNet.from_params({k: v.copy() for k, v in params.items()})
    o = options
    optimizer = make_optimizer(o.optimizer, o.momentum, o.weight_decay)
    schedule = make_schedule(o.schedule, num_iters=o.num_iters,
                             iterations_per_epoch=iterations_per_epoch(len(X), o.batch_size),
                             decay=o.learning_rate_decay, step_epochs=o.step_epochs,
                             warmup_iters=o.warmup_iters)
    noise = _random.derived_generator(rng) if o.dropout > 0 else None
    sample = MinibatchSampler(o.batch_sampler, rng, len(X), o.batch_size)
    losses = []
    for it in range(o.num_iters):
        idx = sample()
        X_batch = X[idx] if batch_transform is None else batch_transform(X[idx], rng)
        targets = None if soft_targets is None else soft_targets[idx]
        loss, grads = net._loss_and_grads(X_batch, y[idx], o.reg, dropout=o.dropout, rng=noise,
                                          label_smoothing=o.label_smoothing,
                                          soft_targets=targets)
        optimizer.step(net.params, grads, o.learning_rate * schedule(it))
        losses.append(loss)
    return net.params, losses
