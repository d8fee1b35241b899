"""nndl against PyTorch, JAX and scikit-learn on the CPU, on the assignment's best configuration.

hidden 50, batch 200, 2,000 SGD iterations, learning rate 1e-3, per-epoch decay
0.95, reg 0.1, mean-subtracted CIFAR-10 (49,000 / 1,000), minibatches drawn with
replacement. The contenders run alternately, ``--repeats`` rounds, each timed run in a
fresh process of its own (PyTorch's OpenMP threads and NumPy's BLAS threads slow each
other down when they share a process); only the training call is timed. Ratios are
medians of the per-round (paired) ratios against the plain-tensor PyTorch loop, the
strongest plain contender.

Also measured: this machine's float32/float64 product peak (2048^3, best of the rounds);
inside an nndl float32 process, one training step (gather + fused step) against the sum
of its parts measured alone in the same process (gather of 200 random rows, the forward
and the weight-gradient products; all timed in alternating blocks); a 32-member
population's GFLOP/s against the peak; the training time until 50% validation accuracy;
the peak RSS of a full ``nndl train --dtype float32`` run. Writes
``benchmarks/results/cpu.json`` and ``cpu.md`` (the README quotes the table).

    python benchmarks/bench_cpu.py [--repeats 5] [--no-sklearn] [--no-memory]
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
from pathlib import Path

import numpy as np

from nndl import _blas
from nndl._gather import RowGatherer
from nndl.config import RunConfig, TrainOptions
from nndl.neural_net import TwoLayerNet
from nndl.population import Population
from nndl.workflow import prepare_data

RESULTS = Path(__file__).parent / "results"
B, H, C, ITERS, LR, DECAY, REG = 200, 50, 10, 2000, 1e-3, 0.95, 0.1
PER_EPOCH = 245  # 49,000 / 200


def flops_per_iteration(D, members=1):
    """Multiply-adds x 2 of one SGD step: forward (X W1, h W2), backward (dW2, dh, dW1)."""
    return (2 * B * D * H * 2 + 2 * B * H * C * 3) * members


def peak_gflops(dtype, n=2048, repeats=5):
    a = np.random.default_rng(0).normal(size=(n, n)).astype(dtype)
    a @ a
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def accuracy(pred, y):
    return float((np.asarray(pred) == np.asarray(y)).mean())


# -- contenders: each returns (training seconds, validation accuracy[, extras]) ---------
def run_nndl(data, dtype, seed, batch_sampler="replacement"):
    net = TwoLayerNet(data.X_train.shape[1], H, C, random_state=seed, dtype=dtype)
    X = data.X_train if dtype == np.float32 else data.X_train.astype(dtype)
    Xv = data.X_val if dtype == np.float32 else data.X_val.astype(dtype)
    start = time.perf_counter()
    net.train(X, data.y_train, Xv, data.y_val, learning_rate=LR, learning_rate_decay=DECAY,
              reg=REG, num_iters=ITERS, batch_size=B, batch_sampler=batch_sampler)
    seconds = time.perf_counter() - start
    return seconds, accuracy(net.predict(Xv), data.y_val)


def median_ms(fn, repeats=300):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def alternating_medians_ms(fns, rounds=10, repeats=30, before_block=None):
    """Median ms of each of ``fns`` (name -> callable), timed in alternating blocks of
    ``repeats`` calls, so that every one of them sees the same moments of a noisy machine
    (a drift between two separately timed blocks would make their ratio meaningless).
    ``before_block(name)``, when given, runs (untimed) before each block."""
    times = {name: [] for name in fns}
    for name, fn in fns.items():
        if before_block is not None:
            before_block(name)
        fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            if before_block is not None:
                before_block(name)
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def step_vs_parts(data, seed):
    """One training step, as the training loop takes it (on two BLAS threads: split between
    two cores, ``nndl._halves``; else the minibatch gathered into the loop's
    ``RowGatherer``, then the fused step), against its parts measured alone (gather of the
    whole minibatch, forward and weight-gradient products on BLAS's threads), in
    alternating blocks; the index draw is timed too and taken off the step and the gather
    alike. While the split runs, BLAS is held at one thread, as in training: its threads
    are given back for the parts' blocks, and 100 untimed steps (0.1-0.2 s) precede each
    block of steps, as steps follow steps in training (measured: BLAS's threads spin for
    about 0.1 s after a product, and 30 steps right after the parts' blocks, or after a
    0.2 s pause, took 1.9 ms each against 1.09 ms once stepping again)."""
    X, y = data.X_train, data.y_train
    rng = np.random.default_rng(seed)
    net = TwoLayerNet(X.shape[1], H, C, random_state=seed, dtype=np.float32)
    pop = Population([net.params], [TrainOptions()], np.float32)
    lr, reg = np.array([LR]), np.array([REG])
    draw = lambda: rng.integers(0, len(X), B)  # noqa: E731
    gather, ways = RowGatherer(X), []
    threads = _blas.num_threads()
    split = pop.use_halves(X, B)

    def step():
        idx = draw()
        if split:
            pop.step_rows(idx, y[idx], lr, reg)
        else:
            pop.step(gather(idx), y[idx], lr, reg)
            ways.append(gather.way)

    def before_block(name):
        if split and name == "step":
            _blas.set_num_threads(1)
            for _ in range(100):
                step()
        elif split:
            _blas.set_num_threads(threads)

    V = np.ascontiguousarray(net.params["W1"].T)
    batch, dhidden = X[draw()], np.ones((B, H), np.float32)
    ms = alternating_medians_ms({"step": step, "draw": draw, "gather": lambda: X[draw()],
                                 "forward product": lambda: batch @ V,
                                 "gradient product": lambda: batch.T @ dhidden},
                                before_block=before_block)
    pop.close()
    sampling = ms.pop("draw")
    step_ms = ms.pop("step") - sampling
    parts = dict(ms)
    parts["gather"] -= sampling  # the gather alone, not the index draw
    return {"step_ms": step_ms, "parts_ms": parts, "sum_of_parts_ms": sum(parts.values()),
            "step_over_parts": step_ms / sum(parts.values()), "split": split,
            # the gathers the gatherer put in its ring (None when the step split)
            "ring_share": float(np.mean(ways)) if ways else None}


def run_nndl_f32_with_parts(data, seed):
    seconds, acc = run_nndl(data, np.float32, seed)
    return seconds, acc, step_vs_parts(data, seed)


def population_gflops(data, seed, members=32):
    """GFLOP/s of a population of ``members`` hidden-50 networks, step by step."""
    X, y = data.X_train, data.y_train
    pop = Population([TwoLayerNet(X.shape[1], H, C, random_state=seed + i,
                                  dtype=np.float32).params for i in range(members)],
                     [TrainOptions()] * members, np.float32)
    rng = np.random.default_rng(seed)
    lr, reg = np.full(members, LR), np.full(members, REG)

    def step():
        idx = rng.integers(0, len(X), B)
        pop.step(X[idx], y[idx], lr, reg)

    ms = median_ms(step, repeats=60)
    return ms / 1e3, None, {"members": members, "step_ms": ms,
                            "gflops": flops_per_iteration(X.shape[1], members) / ms / 1e6}


def run_torch_plain(data, seed):
    """The strongest plain contender: plain tensors, autograd, the same SGD by hand (L2 in
    the loss, per-epoch decay, minibatches drawn with replacement)."""
    import torch

    torch.manual_seed(seed)
    X, y = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train)
    Xv = torch.from_numpy(data.X_val)
    D = X.shape[1]
    W1 = (1e-4 * torch.randn(D, H)).requires_grad_()
    W2 = (1e-4 * torch.randn(H, C)).requires_grad_()
    b1, b2 = torch.zeros(H, requires_grad=True), torch.zeros(C, requires_grad=True)
    params, lr = (W1, b1, W2, b2), LR
    forward = lambda x: torch.relu(x @ W1 + b1) @ W2 + b2  # noqa: E731
    start = time.perf_counter()
    for it in range(ITERS):
        idx = torch.randint(0, len(X), (B,))
        loss = torch.nn.functional.cross_entropy(forward(X[idx]), y[idx]) + \
            0.5 * REG * ((W1 * W1).sum() + (W2 * W2).sum())
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad
                p.grad = None
            if it % PER_EPOCH == 0:
                forward(Xv).argmax(1)  # the per-epoch validation check
                lr *= DECAY
    seconds = time.perf_counter() - start
    with torch.no_grad():
        return seconds, accuracy(forward(Xv).argmax(1).numpy(), data.y_val)


def run_torch_sequential(data, seed):
    """The same algorithm as a PyTorch user writes it with modules: nn.Sequential of
    nn.Linear, optim.SGD with weight decay on the weights only."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    X, y = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train)
    Xv = torch.from_numpy(data.X_val)
    model = nn.Sequential(nn.Linear(X.shape[1], H), nn.ReLU(), nn.Linear(H, C))
    with torch.no_grad():
        for layer in (model[0], model[2]):
            layer.weight.normal_(0, 1e-4)
            layer.bias.zero_()
    opt = torch.optim.SGD([{"params": [model[0].weight, model[2].weight], "weight_decay": REG},
                           {"params": [model[0].bias, model[2].bias], "weight_decay": 0.0}],
                          lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for it in range(ITERS):
        idx = torch.randint(0, len(X), (B,))
        loss = loss_fn(model(X[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it % PER_EPOCH == 0:
            with torch.no_grad():
                model(Xv).argmax(1)
            for group in opt.param_groups:
                group["lr"] *= DECAY
    seconds = time.perf_counter() - start
    with torch.no_grad():
        return seconds, accuracy(model(Xv).argmax(1).numpy(), data.y_val)


def run_jax(data, seed):
    """A ``jax.jit``-compiled SGD step; indices drawn with NumPy, gathered inside the step."""
    import jax
    import jax.numpy as jnp

    key = jax.random.PRNGKey(seed)
    k1, k2 = jax.random.split(key)
    D = data.X_train.shape[1]
    params = (1e-4 * jax.random.normal(k1, (D, H)), jnp.zeros(H),
              1e-4 * jax.random.normal(k2, (H, C)), jnp.zeros(C))
    X, y, Xv = jnp.asarray(data.X_train), jnp.asarray(data.y_train), jnp.asarray(data.X_val)

    def forward(p, x):
        return jnp.maximum(x @ p[0] + p[1], 0) @ p[2] + p[3]

    def loss(p, idx):
        logp = jax.nn.log_softmax(forward(p, X[idx]))
        data_loss = -jnp.mean(jnp.take_along_axis(logp, y[idx][:, None], axis=1))
        return data_loss + 0.5 * REG * (jnp.sum(p[0] ** 2) + jnp.sum(p[2] ** 2))

    @jax.jit
    def step(p, idx, lr):
        grads = jax.grad(loss)(p, idx)
        return tuple(w - lr * g for w, g in zip(p, grads))

    rng = np.random.default_rng(seed)
    step(params, jnp.asarray(rng.integers(0, len(X), B)), LR)  # compile outside the timing
    lr = LR
    start = time.perf_counter()
    for it in range(ITERS):
        params = step(params, jnp.asarray(rng.integers(0, len(X), B)), lr)
        if it % PER_EPOCH == 0:
            forward(params, Xv).argmax(1).block_until_ready()
            lr *= DECAY
    jax.block_until_ready(params)
    seconds = time.perf_counter() - start
    return seconds, accuracy(forward(params, Xv).argmax(1), data.y_val)


def run_sklearn(data, seed):
    import warnings

    from sklearn.neural_network import MLPClassifier

    epochs = max(1, round(ITERS * B / len(data.X_train)))
    clf = MLPClassifier(hidden_layer_sizes=(H,), solver="sgd", batch_size=B,
                        learning_rate_init=LR, momentum=0.0, alpha=REG, max_iter=epochs,
                        random_state=seed, tol=0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(data.X_train, data.y_train)
    return time.perf_counter() - start, float(clf.score(data.X_val, data.y_val))


FAST = {"learning_rate": 3e-3, "learning_rate_decay": 0.85, "reg": 0.05,
        "batch_sampler": "blocks"}  # found by a population screen of 24 SGD settings


def seconds_to_50(data, seed):
    """Training seconds until the per-epoch validation accuracy first reaches 50% (nndl
    float32, plain SGD with the FAST settings, batch 200), and that accuracy."""
    net = TwoLayerNet(data.X_train.shape[1], H, C, random_state=seed, dtype=np.float32)
    start, reached = time.perf_counter(), []

    def callback(epoch, record):
        if record["val_acc"] >= 0.5:
            reached.append((time.perf_counter() - start, record["val_acc"]))
            return True
        return False

    net.train(data.X_train, data.y_train, data.X_val, data.y_val, num_iters=3 * ITERS,
              batch_size=B, callback=callback, **FAST)
    return reached[0] if reached else (None, None)


def peak_rss_mb_of_train():
    """Peak RSS of one full ``nndl train --dtype float32`` process (that child alone)."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([sys.executable, "-m", "nndl", "train", "--dtype", "float32",
                                 "--num-iters", str(ITERS), "--full-test", "--no-progress",
                                 "--out", str(Path(tmp) / "run")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"nndl train exited with {os.waitstatus_to_exitcode(status)}")
    return usage.ru_maxrss / 1024


REFERENCE = "PyTorch float32, plain tensors + autograd"
CONTENDERS = {
    "nndl float64": lambda data, s: run_nndl(data, np.float64, s),
    "nndl float32": run_nndl_f32_with_parts,
    "nndl float32, blocks sampler": lambda data, s: run_nndl(data, np.float32, s, "blocks"),
    REFERENCE: run_torch_plain,
    "PyTorch float32, nn.Sequential + optim.SGD": run_torch_sequential,
    "JAX float32, jit step": run_jax,
    "scikit-learn MLPClassifier (sgd)": run_sklearn,
}
EXTRA = {"time to 50%": seconds_to_50, "population of 32": population_gflops}


def available(name):
    needs = {"PyTorch": "torch", "JAX": "jax", "scikit-learn": "sklearn"}
    return all(importlib.util.find_spec(mod) for key, mod in needs.items() if key in name)


def run_in_subprocess(name, seed):
    out = subprocess.run([sys.executable, __file__, "--single", name, "--seed", str(seed)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def summarize(runs, peaks, D, repeats):
    rows = []
    reference = runs[REFERENCE]
    for name, values in runs.items():
        seconds = statistics.median(v[0] for v in values)
        peak = peaks["float64" if "float64" in name else "float32"]
        gflops = flops_per_iteration(D) * ITERS / seconds / 1e9
        rows.append({"contender": name, "median_seconds": seconds,
                     "samples_per_second": ITERS * B / seconds,
                     "speed_vs_plain_pytorch": statistics.median(
                         r[0] / v[0] for r, v in zip(reference, values)),
                     "median_val_accuracy": statistics.median(v[1] for v in values),
                     "gflops": gflops, "peak_gflops": peak, "fraction_of_peak": gflops / peak,
                     "seconds": [v[0] for v in values]})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-sklearn", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--single", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = prepare_data(RunConfig(dtype="float32"))
    if args.single:  # one timed run, in this fresh process
        print(json.dumps({**CONTENDERS, **EXTRA}[args.single](data, args.seed)))
        return
    names = [n for n in CONTENDERS if available(n)
             and not (args.no_sklearn and n.startswith("scikit"))]
    peaks = {"float32": 0.0, "float64": 0.0}
    runs = {name: [] for name in names}
    extra = {name: [] for name in EXTRA}
    for r in range(args.repeats):
        for dtype in peaks:  # the best of every round: the machine is shared and noisy
            peaks[dtype] = max(peaks[dtype], peak_gflops(np.dtype(dtype)))
        for name in EXTRA:
            extra[name].append(run_in_subprocess(name, r))
        for name in names:
            runs[name].append(run_in_subprocess(name, r))
            print(f"round {r + 1}: {name:44s} {runs[name][-1][0]:6.2f} s  "
                  f"val {100 * runs[name][-1][1]:.1f}%", flush=True)
    rows = summarize(runs, peaks, data.X_train.shape[1], args.repeats)
    parts = [v[2] for v in runs["nndl float32"]]
    pops = [v[2] for v in extra["population of 32"]]
    reached = [t for t, _ in extra["time to 50%"] if t is not None]
    result = {"config": {"hidden": H, "batch": B, "iterations": ITERS, "learning_rate": LR,
                         "decay": DECAY, "reg": REG}, "repeats": args.repeats,
              "cpu": cpu_name(), "peak_gflops": peaks, "rows": rows,
              "step_vs_parts": {"runs": parts, "median_step_over_parts": statistics.median(
                  p["step_over_parts"] for p in parts)},
              "population_32": {"runs": pops, "median_gflops": statistics.median(
                  p["gflops"] for p in pops)},
              "time_to_50pct": {"settings": FAST, "runs": extra["time to 50%"],
                                "median_seconds": statistics.median(reached) if reached
                                else None}}
    if not args.no_memory:
        result["peak_rss_mb_nndl_train_float32"] = peak_rss_mb_of_train()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cpu.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (RESULTS / "cpu.md").write_text(table)
    print(table)


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def markdown(result):
    lines = ["| contender | median s | samples/s | vs plain PyTorch (paired) | val acc | "
             "GFLOP/s (% of peak) |", "|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['contender']} | {row['median_seconds']:.2f} | "
                     f"{row['samples_per_second']:,.0f} | "
                     f"{row['speed_vs_plain_pytorch']:.2f}x | "
                     f"{100 * row['median_val_accuracy']:.1f}% | {row['gflops']:.0f} "
                     f"({100 * row['fraction_of_peak']:.0f}%) |")
    peaks, sp = result["peak_gflops"], result["step_vs_parts"]
    part = sp["runs"][len(sp["runs"]) // 2]
    pop = result["population_32"]
    extra = [f"\nMachine: {result['cpu']}; product peak (2048^3) {peaks['float32']:.0f} GFLOP/s "
             f"float32, {peaks['float64']:.0f} float64. Medians of {result['repeats']} "
             "alternating rounds, each run in a fresh process.",
             f"One nndl float32 step / its parts measured alone: "
             f"{sp['median_step_over_parts']:.2f}x (e.g. {part['step_ms']:.2f} ms against "
             + ", ".join(f"{k} {v:.2f}" for k, v in part["parts_ms"].items()) + " ms; "
             f"{sum(p.get('split', False) for p in sp['runs'])} of {len(sp['runs'])} "
             "processes split the step between two cores).",
             f"A population of 32 hidden-50 networks: {pop['median_gflops']:.0f} GFLOP/s, "
             f"{100 * pop['median_gflops'] / peaks['float32']:.0f}% of the float32 peak."]
    t50 = result["time_to_50pct"]["median_seconds"]
    when = f"{t50:.2f} s (median)" if t50 else "more than 6,000 iterations"
    extra.append(f"nndl float32 (plain SGD, learning rate 3e-3, decay 0.85, reg 0.05, blocks "
                 f"sampler) reaches 50% validation accuracy after {when} of training.")
    if "peak_rss_mb_nndl_train_float32" in result:
        extra.append(f"Peak RSS of `nndl train --dtype float32 --full-test`: "
                     f"{result['peak_rss_mb_nndl_train_float32']:.0f} MB.")
    return "\n".join(lines) + "\n" + "\n".join(extra) + "\n"


if __name__ == "__main__":
    main()
