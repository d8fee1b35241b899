"""50-unit variants scored on a hold-out of the training images (the README's accuracy table).

The network trains on the first 45,000 CIFAR-10 training images and is scored on the last
5,000, so choices never look at the test set (``--test`` adds it, for the record). All the
learning rates given train at once as one population (the same minibatches and draws);
flips, shifts of up to ``--translate`` pixels and a one-cycle schedule, as in ``h50-best``.
Prints one line per rate: hold-out accuracy and accuracy on 10,000 unaugmented training
images (how well 50 units fit what they were trained on).

    python benchmarks/h50_holdout.py --epochs 120 --rates 0.15 0.2
    python benchmarks/h50_holdout.py --epochs 120 --rates 0.2 --label-smoothing 0.1
"""

import argparse
import time

import numpy as np

from nndl.data import load_cifar10
from nndl.metrics import accuracy
from nndl.neural_net import TwoLayerNet
from nndl.recipes import get_recipe
from nndl.sampling import iterations_per_epoch
from nndl.training import Member, train_members
from nndl.workflow import prepare_data, training_inputs

HOLD_OUT = 5000


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=120)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.2],
                        help="peak learning rates, trained together (default: 0.2)")
    parser.add_argument("--translate", type=int, default=2, help="max shift in pixels")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--reg", type=float, default=1e-3)
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0, help="initialization and minibatches")
    parser.add_argument("--test", action="store_true", help="also score the full test set")
    parser.add_argument("--data", help="CIFAR-10 location (default: $NNDL_DATA)")
    args = parser.parse_args()

    num_training = 50000 - HOLD_OUT
    cfg = get_recipe("h50-best").config.replace(
        data=args.data, num_training=num_training, num_validation=HOLD_OUT,
        translate=args.translate, seed=args.seed)  # label smoothing: a training option
    prepared = prepare_data(cfg, load_cifar10(args.data))
    images, transform = training_inputs(cfg, prepared)
    options = cfg.train.replace(
        num_iters=args.epochs * iterations_per_epoch(num_training, args.batch_size),
        batch_size=args.batch_size, reg=args.reg, label_smoothing=args.label_smoothing)
    members = [Member(TwoLayerNet(prepared.X_train.shape[1], 50, len(prepared.class_names),
                                  std=cfg.std, random_state=args.seed,
                                  dtype=np.float32).params,
                      options.replace(learning_rate=rate)) for rate in args.rates]
    start = time.perf_counter()
    train_members(members, images, prepared.y_train, prepared.X_val, prepared.y_val,
                  rng=np.random.default_rng(args.seed), batch_transform=transform,
                  progress=True)
    seconds = time.perf_counter() - start
    fit_rows = np.random.default_rng(0).choice(num_training, 10000, replace=False)
    print(f"{args.epochs} epochs, {args.translate}-px shifts, batch {args.batch_size}, "
          f"label smoothing {args.label_smoothing}: {seconds:.0f} s for {len(members)}")
    score = lambda net, X, y: 100 * accuracy(y, net._predict(X))  # noqa: E731
    for member in members:
        net = TwoLayerNet.from_params(member.params)
        line = (f"peak rate {member.options.learning_rate:g}: {member.state}, hold-out "
                f"{score(net, prepared.X_val, prepared.y_val):.1f}%, training images "
                f"{score(net, prepared.X_train[fit_rows], prepared.y_train[fit_rows]):.1f}%")
        if args.test:
            line += f", test {score(net, prepared.X_test, prepared.y_test):.1f}%"
        print(line)

if __name__ == "__main__":
    main()
