"""A deep network on the CPU: nndl's engine against plain PyTorch and a naive NumPy loop.

The network: three hidden layers of 500 units, batch normalization before each ReLU,
float32, He initialization (``W<l>`` std ``sqrt(2 / n_in)``, biases 0, gamma 1, beta 0,
running statistics 0 / 1), Adam at learning rate 1e-3 with the course's constants
(beta1 0.9, beta2 0.999, epsilon 1e-8, epsilon after the bias correction: PyTorch's too),
a constant learning rate, L2 strength 1e-4 on the weights (not the biases, gamma or beta:
``0.5 * reg * sum |W|^2`` in the loss, as the engine counts it), batch 200 drawn with
replacement, ``--iters`` steps (default 1,000) on mean-subtracted CIFAR-10 (49,000
training / 1,000 validation rows, ``prepare_data(RunConfig(dtype="float32"))``).

Contenders (each timed run a fresh process of its own, alternating, ``--repeats`` rounds;
round ``r`` gives every contender seed ``r``: the same initial weights, drawn here, and the
same minibatches, drawn by nndl's own sampler from ``default_rng(r)``):

- nndl: :func:`nndl.training.train_network` on the engine-layout parameter dict;
- ``nndl train`` (whole process): the command line with ``--hidden-sizes`` and
  ``--batchnorm`` (its own initial draw; it also writes its run folder and scores the test
  rows, which the whole-process time includes; its loop time is its ``train_seconds``);
- PyTorch, the strongest plain contender: plain tensors and autograd (no ``nn.Module``),
  ``F.linear`` on the engine's (n_out, n_in) weights, ``F.batch_norm`` in training mode,
  ``torch.optim.Adam`` as it comes, L2 in the loss, ``torch.set_num_threads`` at the
  machine's cores;
- a naive NumPy loop: the course's layers (affine, batch normalization, ReLU, softmax)
  forward and backward, written plainly below, and Adam by hand.

Like the engine, every contender scores the current minibatch and the validation rows in
test mode (running statistics) after the first step of each epoch (245 steps). Two
times per run: the training loop alone (in the child) and the whole process (from the
parent: start-up, imports, data preparation, training, final scoring). Speeds are medians
of the per-round (paired) ratios against PyTorch (> 1: faster than PyTorch).

Also: a population of 16 such networks (learning rates spaced geometrically from 1e-4 to
3e-3) through :func:`nndl.training.train_members` for ``--pop-iters`` steps (no
per-epoch scoring), in GFLOP/s against the machine's float32 product peak (2048^3, best
of the rounds). FLOPs: 2 per multiply-add of the large products, per step and member:
each affine layer's forward and weight-gradient products, and the input-gradient
product of every layer but the first (no one computes the gradient of the images).
Writes ``benchmarks/results/deep.json`` and ``deep.md`` (``--quick``: the same files in a
temporary folder).

    python benchmarks/bench_deep.py [--repeats 3] [--iters 1000] [--pop-iters 200]
    python benchmarks/bench_deep.py --quick   # tiny sizes: a smoke test, not a measurement
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bench_cpu import cpu_name, peak_gflops

from nndl.architecture import BN_EPS, BN_MOMENTUM
from nndl.config import RunConfig, TrainOptions
from nndl.sampling import MinibatchSampler, iterations_per_epoch
from nndl.training import Member, train_members, train_network
from nndl.workflow import prepare_data

RESULTS = Path(__file__).parent / "results"
B, C, LR, REG = 200, 10, 1e-3, 1e-4
BETA1, BETA2, ADAM_EPS = 0.9, 0.999, 1e-8  # the course's Adam (and PyTorch's defaults)
MEMBERS, POP_LRS = 16, (1e-4, 3e-3)


@dataclass(frozen=True)
class Setup:
    """What one run trains: hidden widths, steps, population steps, and the data's size."""

    hidden: tuple[int, ...] = (500, 500, 500)
    iters: int = 1000
    pop_iters: int = 200
    quick: bool = False

    def run_config(self):
        small = dict(num_training=2000, num_validation=200, num_test=100) if self.quick else {}
        return RunConfig(dtype="float32", **small)

    def sizes(self, D):
        return (D, *self.hidden, C)


QUICK = dict(hidden=(32, 32, 32), iters=30, pop_iters=10, quick=True)


def threads():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def flops_per_step(sizes, members=1):
    """2 x multiply-adds of one step's large products: per layer forward and dW, and dX
    for every layer but the first."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    return sum(2 * B * n_in * n_out * (2 if l == 0 else 3)
               for l, (n_in, n_out) in enumerate(pairs)) * members


def he_params(sizes, seed):
    """Engine-layout float32 parameters (W<l> (n_out, n_in)) with He initialization."""
    rng = np.random.default_rng(seed)
    params = {}
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{l}"] = (np.sqrt(2 / n_in) * rng.standard_normal((n_out, n_in))) \
            .astype(np.float32)
        params[f"b{l}"] = np.zeros(n_out, np.float32)
        if l < len(sizes) - 1:
            params[f"gamma{l}"] = np.ones(n_out, np.float32)
            params[f"beta{l}"] = np.zeros(n_out, np.float32)
            params[f"running_mean{l}"] = np.zeros(n_out, np.float32)
            params[f"running_var{l}"] = np.ones(n_out, np.float32)
    return params


def accuracy(pred, y):
    return float((np.asarray(pred) == np.asarray(y)).mean())


def sampler(n, seed):
    """nndl's own with-replacement sampler: every contender draws the same minibatches."""
    return MinibatchSampler("replacement", np.random.default_rng(seed), n, B)


# -- the naive NumPy loop: the course's layers, weights (n_in, n_out) ---------------------
def affine_forward(x, w, b):
    return x @ w + b, (x, w)


def affine_backward(dout, cache, need_dx=True):
    x, w = cache
    return (dout @ w.T if need_dx else None), x.T @ dout, dout.sum(axis=0)


def batchnorm_forward(x, gamma, beta, stats, train):
    """Training mode: normalize by the minibatch's statistics and update ``stats``
    (running_mean, running_var: the course's momentum, biased variance)."""
    if not train:
        return gamma * (x - stats[0]) / np.sqrt(stats[1] + BN_EPS) + beta, None
    mu, var = x.mean(axis=0), x.var(axis=0)
    stats[0] = BN_MOMENTUM * stats[0] + (1 - BN_MOMENTUM) * mu
    stats[1] = BN_MOMENTUM * stats[1] + (1 - BN_MOMENTUM) * var
    inv_std = 1 / np.sqrt(var + BN_EPS)
    xhat = (x - mu) * inv_std
    return gamma * xhat + beta, (xhat, gamma, inv_std)


def batchnorm_backward(dout, cache):
    xhat, gamma, inv_std = cache
    n = dout.shape[0]
    dgamma, dbeta = (dout * xhat).sum(axis=0), dout.sum(axis=0)
    dxhat = dout * gamma
    dx = inv_std / n * (n * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))
    return dx, dgamma, dbeta


def softmax_loss(scores, y):
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = scores.shape[0]
    dscores = np.exp(log_probs)
    dscores[np.arange(n), y] -= 1
    return -log_probs[np.arange(n), y].mean(), dscores / n


class NaiveNet:
    """The network in the course's layout; ``loss`` (training mode) and ``scores`` (test)."""

    def __init__(self, params):
        self.L = sum(k.startswith("W") for k in params)
        self.p = {k: (v.T.copy() if k.startswith("W") else v.copy())
                  for k, v in params.items() if not k.startswith("running")}
        self.stats = {l: [params[f"running_mean{l}"].copy(), params[f"running_var{l}"].copy()]
                      for l in range(1, self.L)}

    def forward(self, x, train):
        caches = []
        for l in range(1, self.L):
            a, affine = affine_forward(x, self.p[f"W{l}"], self.p[f"b{l}"])
            a, bn = batchnorm_forward(a, self.p[f"gamma{l}"], self.p[f"beta{l}"],
                                      self.stats[l], train)
            x = np.maximum(a, 0)
            caches.append((affine, bn, x))
        scores, affine = affine_forward(x, self.p[f"W{self.L}"], self.p[f"b{self.L}"])
        return scores, caches + [affine]

    def scores(self, x):
        return self.forward(x, train=False)[0]

    def loss(self, x, y):
        """(loss, gradients) of one minibatch, L2 ``0.5 * REG * sum |W|^2`` included."""
        scores, caches = self.forward(x, train=True)
        loss, dout = softmax_loss(scores, y)
        grads = {}
        dout, grads[f"W{self.L}"], grads[f"b{self.L}"] = affine_backward(dout, caches[-1])
        for l in range(self.L - 1, 0, -1):
            affine, bn, h = caches[l - 1]
            dout = dout * (h > 0)
            dout, grads[f"gamma{l}"], grads[f"beta{l}"] = batchnorm_backward(dout, bn)
            dout, grads[f"W{l}"], grads[f"b{l}"] = affine_backward(dout, affine, l > 1)
        for l in range(1, self.L + 1):
            w = self.p[f"W{l}"]
            loss += 0.5 * REG * float((w * w).sum())
            grads[f"W{l}"] += REG * w
        return loss, grads


def adam_step(p, grads, state, t):
    """The course's Adam, by hand, on every parameter."""
    for k, dw in grads.items():
        m, v = state.setdefault(k, (np.zeros_like(dw), np.zeros_like(dw)))
        m *= BETA1
        m += (1 - BETA1) * dw
        v *= BETA2
        v += (1 - BETA2) * dw * dw
        mhat, vhat = m / (1 - BETA1**t), v / (1 - BETA2**t)
        p[k] -= LR * mhat / (np.sqrt(vhat) + ADAM_EPS)


def run_naive(data, setup, seed):
    X, y, Xv = data.X_train, data.y_train, data.X_val
    net = NaiveNet(he_params(setup.sizes(X.shape[1]), seed))
    sample, ipe, state = sampler(len(X), seed), iterations_per_epoch(len(X), B), {}
    start = time.perf_counter()
    for it in range(setup.iters):
        idx = sample()
        _, grads = net.loss(X[idx], y[idx])
        adam_step(net.p, grads, state, it + 1)
        if it % ipe == 0:  # the per-epoch accuracies, as the engine scores them
            net.scores(X[idx]).argmax(axis=1)
            net.scores(Xv).argmax(axis=1)
    seconds = time.perf_counter() - start
    return seconds, accuracy(net.scores(Xv).argmax(axis=1), data.y_val)


# -- nndl -----------------------------------------------------------------------------------
def options(setup, **changes):
    return TrainOptions(**{"learning_rate": LR, "schedule": "constant", "reg": REG,
                           "num_iters": setup.iters, "batch_size": B, "optimizer": "adam",
                           **changes})


def engine_val_accuracy(params, data):
    return accuracy(NaiveNet(params).scores(data.X_val).argmax(axis=1), data.y_val)


def run_nndl(data, setup, seed):
    params = he_params(setup.sizes(data.X_train.shape[1]), seed)
    start = time.perf_counter()
    train_network(params, data.X_train, data.y_train, data.X_val, data.y_val, options(setup),
                  rng=np.random.default_rng(seed))
    seconds = time.perf_counter() - start
    return seconds, engine_val_accuracy(params, data)


def cli_args(setup, seed, out):
    """``nndl train`` for the same network (its own initial draw, seeded ``seed``)."""
    args = ["--hidden-sizes", ",".join(map(str, setup.hidden)), "--batchnorm", "--std", "auto",
            "--dtype", "float32", "--optimizer", "adam", "--learning-rate", str(LR),
            "--schedule", "constant", "--reg", str(REG), "--num-iters", str(setup.iters),
            "--batch-size", str(B), "--seed", str(seed), "--no-progress", "--out", out]
    if setup.quick:
        args += ["--num-training", "2000", "--num-validation", "200", "--num-test", "100"]
    return [sys.executable, "-m", "nndl", "train", *args]


def run_cli(setup, seed):
    """(loop seconds, validation accuracy, whole-process seconds) of one ``nndl train``."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(cli_args(setup, seed, str(Path(tmp) / "run")), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - start
        metrics = json.loads((Path(tmp) / "run" / "metrics.json").read_text())
    return metrics["train_seconds"], metrics["val_accuracy"], wall


def run_population(data, setup, seed):
    """16 members, learning rates geometrically spaced; GFLOP/s of the training call."""
    X, sizes = data.X_train, setup.sizes(data.X_train.shape[1])
    lrs = np.geomspace(*POP_LRS, MEMBERS)
    members = [Member(he_params(sizes, seed + i), options(setup, learning_rate=float(lr),
                                                          num_iters=setup.pop_iters))
               for i, lr in enumerate(lrs)]
    start = time.perf_counter()
    train_members(members, X, data.y_train, None, None, rng=np.random.default_rng(seed))
    seconds = time.perf_counter() - start
    member_steps = sum(len(m.history["loss_history"]) for m in members)
    gflops = flops_per_step(sizes, member_steps) / seconds / 1e9
    accs = [engine_val_accuracy(m.params, data) for m in members]
    return seconds, max(accs), {"members": MEMBERS, "member_steps": member_steps,
                                "step_ms": 1e3 * seconds / setup.pop_iters, "gflops": gflops,
                                "learning_rates": lrs.tolist(), "val_accuracies": accs,
                                "states": [m.state for m in members]}


# -- PyTorch ------------------------------------------------------------------------------
def run_torch(data, setup, seed):
    """Plain tensors and autograd; ``F.batch_norm`` (its momentum 0.1 is the course's 0.9;
    its running variance is the unbiased one), ``torch.optim.Adam`` with its defaults."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads())
    p = {k: torch.from_numpy(v) for k, v in he_params(setup.sizes(data.X_train.shape[1]),
                                                      seed).items()}
    L = sum(k.startswith("W") for k in p)
    trained = [v.requires_grad_() for k, v in p.items() if not k.startswith("running")]
    weights = [p[f"W{l}"] for l in range(1, L + 1)]
    X, y = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train).long()
    Xv = torch.from_numpy(data.X_val)

    def forward(x, train):
        for l in range(1, L):
            a = F.batch_norm(F.linear(x, p[f"W{l}"], p[f"b{l}"]), p[f"running_mean{l}"],
                             p[f"running_var{l}"], p[f"gamma{l}"], p[f"beta{l}"],
                             training=train, momentum=1 - BN_MOMENTUM, eps=BN_EPS)
            x = torch.relu(a)
        return F.linear(x, p[f"W{L}"], p[f"b{L}"])

    opt = torch.optim.Adam(trained, lr=LR)
    sample, ipe = sampler(len(X), seed), iterations_per_epoch(len(X), B)
    start = time.perf_counter()
    for it in range(setup.iters):
        idx = torch.from_numpy(sample())
        loss = F.cross_entropy(forward(X[idx], True), y[idx]) + \
            0.5 * REG * sum((w * w).sum() for w in weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it % ipe == 0:
            with torch.no_grad():
                forward(X[idx], False).argmax(1)
                forward(Xv, False).argmax(1)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        return seconds, accuracy(forward(Xv, False).argmax(1).numpy(), data.y_val)


REFERENCE = "PyTorch float32, plain tensors + autograd + optim.Adam"
CLI = "nndl train (whole process, CLI)"
CONTENDERS = {
    "nndl float32, train_network": run_nndl,
    REFERENCE: run_torch,
    "naive NumPy float32 (course layers, Adam by hand)": run_naive,
}
POPULATION = "population of 16"


def run_child(name, setup, seed):
    """(loop seconds, validation accuracy[, extras], whole-process seconds)."""
    if name == CLI:
        return list(run_cli(setup, seed))
    command = [sys.executable, __file__, "--single", name, "--seed", str(seed),
               "--iters", str(setup.iters), "--pop-iters", str(setup.pop_iters)]
    start = time.perf_counter()
    out = subprocess.run(command + (["--quick"] if setup.quick else []), check=True,
                         capture_output=True, text=True).stdout
    wall = time.perf_counter() - start
    return json.loads(out.strip().splitlines()[-1]) + [wall]


def contender_names():
    names = [n for n in CONTENDERS if "PyTorch" not in n or importlib.util.find_spec("torch")]
    # TODO(nndl train): `nndl train --hidden-sizes ... --batchnorm --optimizer adam` now trains
    # this network as a whole process (CLI, below); it draws its own initial weights, so
    # "nndl float32, train_network" stays the same-start comparison. When `nndl train` can
    # load given initial weights, the train_network contender can become that process.
    return [*names, CLI]


def summarize(runs, setup, D, peak):
    reference = runs.get(REFERENCE)
    rows = []
    for name, values in runs.items():
        loop = statistics.median(v[0] for v in values)
        row = {"contender": name, "median_step_ms": 1e3 * loop / setup.iters,
               "median_loop_seconds": loop,
               "median_process_seconds": statistics.median(v[-1] for v in values),
               "median_val_accuracy": statistics.median(v[1] for v in values),
               "gflops": flops_per_step(setup.sizes(D)) * setup.iters / loop / 1e9,
               "loop_seconds": [v[0] for v in values], "process_seconds": [v[-1] for v in values],
               "val_accuracies": [v[1] for v in values]}
        row["fraction_of_peak"] = row["gflops"] / peak
        if reference is not None:
            row["loop_speed_vs_pytorch"] = statistics.median(
                r[0] / v[0] for r, v in zip(reference, values))
            row["process_speed_vs_pytorch"] = statistics.median(
                r[-1] / v[-1] for r, v in zip(reference, values))
        rows.append(row)
    return rows


def measure(setup, repeats):
    names, peak = contender_names(), 0.0
    runs, pops = {name: [] for name in names}, []
    for r in range(repeats):
        peak = max(peak, peak_gflops(np.float32))  # best of the rounds: a noisy machine
        pops.append(run_child(POPULATION, setup, r)[2])
        print(f"round {r + 1}: {POPULATION:52s} {pops[-1]['gflops']:7.1f} GFLOP/s", flush=True)
        for name in names:
            runs[name].append(run_child(name, setup, r))
            v = runs[name][-1]
            print(f"round {r + 1}: {name:52s} {1e3 * v[0] / setup.iters:7.2f} ms/step  "
                  f"process {v[-1]:6.1f} s  val {100 * v[1]:.1f}%", flush=True)
    return runs, pops, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iters", type=int, default=None, help="steps (default 1,000)")
    parser.add_argument("--pop-iters", type=int, default=None,
                        help="steps of the population of 16 (default 200)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (hidden 32, 30 steps, 2,000 rows): a smoke test")
    parser.add_argument("--single", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    setup = Setup(**QUICK) if args.quick else Setup()
    setup = Setup(setup.hidden, args.iters or setup.iters, args.pop_iters or setup.pop_iters,
                  setup.quick)
    data = prepare_data(setup.run_config())
    if args.single:  # one timed run, in this fresh process
        fn = run_population if args.single == POPULATION else CONTENDERS[args.single]
        print(json.dumps(list(fn(data, setup, args.seed))))
        return
    runs, pops, peak = measure(setup, args.repeats)
    result = {"config": {"sizes": list(setup.sizes(data.X_train.shape[1])), "batchnorm": True,
                         "batch": B, "iterations": setup.iters, "optimizer": "adam",
                         "learning_rate": LR, "schedule": "constant", "reg": REG,
                         "train_rows": len(data.X_train), "val_rows": len(data.X_val),
                         "quick": setup.quick, "torch_threads": threads()},
              "repeats": args.repeats, "cpu": cpu_name(), "peak_gflops_float32": peak,
              "rows": summarize(runs, setup, data.X_train.shape[1], peak),
              "population_16": {"iterations": setup.pop_iters, "runs": pops,
                                "median_gflops": statistics.median(p["gflops"] for p in pops)}}
    # a smoke test's numbers are no measurement: they go to a temporary folder
    folder = Path(tempfile.gettempdir()) / "nndl-bench-deep-quick" if setup.quick else RESULTS
    folder.mkdir(exist_ok=True)
    (folder / "deep.json").write_text(json.dumps(result, indent=2) + "\n")
    (folder / "deep.md").write_text(markdown(result))
    print(markdown(result))
    print(f"written: {folder / 'deep.json'}, {folder / 'deep.md'}")


def markdown(result):
    cfg = result["config"]
    lines = ["| contender | ms/step (loop) | speed vs PyTorch (loop) | process s | "
             "speed vs PyTorch (process) | val acc | GFLOP/s (% of peak) |",
             "|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        vs = [f"{row[k]:.2f}x" if k in row else "-"
              for k in ("loop_speed_vs_pytorch", "process_speed_vs_pytorch")]
        lines.append(f"| {row['contender']} | {row['median_step_ms']:.2f} | {vs[0]} | "
                     f"{row['median_process_seconds']:.1f} | {vs[1]} | "
                     f"{100 * row['median_val_accuracy']:.1f}% | {row['gflops']:.0f} "
                     f"({100 * row['fraction_of_peak']:.0f}%) |")
    peak, pop = result["peak_gflops_float32"], result["population_16"]
    lines += ["", f"Network {cfg['sizes']}, batch normalization, Adam lr {cfg['learning_rate']}"
              f" (constant), reg {cfg['reg']}, batch {cfg['batch']}, {cfg['iterations']} steps "
              f"on {cfg['train_rows']:,} / {cfg['val_rows']:,} rows"
              + (" (--quick: a smoke test, not a measurement)" if cfg["quick"] else "") + ".",
              f"Machine: {result['cpu']}; float32 product peak (2048^3, best of rounds) "
              f"{peak:.0f} GFLOP/s; PyTorch on {cfg['torch_threads']} threads. Medians of "
              f"{result['repeats']} alternating rounds, each run a fresh process; speeds are "
              "medians of the per-round ratios (PyTorch's time / the contender's).",
              f"A population of 16 (learning rates {POP_LRS[0]:g} to {POP_LRS[1]:g}), "
              f"{pop['iterations']} steps: {pop['median_gflops']:.0f} GFLOP/s, "
              f"{100 * pop['median_gflops'] / peak:.0f}% of the float32 peak."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
