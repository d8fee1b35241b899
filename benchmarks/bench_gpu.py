"""nndl on a CUDA GPU: one configuration, and a population of 1,000 at once.

1. The assignment's best configuration (hidden 50, batch 200, 2,000 SGD
   iterations, learning rate 1e-3, decay 0.95, reg 0.1) trained by nndl on the
   GPU (each available backend: torch, cupy) and by the same PyTorch loop as
   ``bench_cpu.py`` on the GPU.
2. A population of 1,000 random hidden-50 configurations trained together for
   10 epochs of 49,000 images (2,450 iterations at batch 200). Target: < 60 s.

Data: CIFAR-10 through nndl (``$NNDL_DATA``), or ``--npz FILE`` with uint8
images ``X`` (N, 32, 32, 3) and labels ``y`` (the last 1,000 rows become the
validation set); epochs are counted in 49,000 images whatever N is. Writes
``--out`` (default ``benchmarks/results/gpu.json``).

    python benchmarks/bench_gpu.py [--npz FILE] [--members 1000] [--epochs 10]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from nndl.backend import BackendUnavailable, get_backend
from nndl.config import TrainOptions
from nndl.neural_net import TwoLayerNet
from nndl.training import Member, train_members

H, C, B, ITERS, LR, DECAY, REG = 50, 10, 200, 2000, 1e-3, 0.95, 0.1


def load(npz):
    if npz:
        with np.load(npz, allow_pickle=False) as f:
            X, y = f["X"], f["y"].astype(np.int64)
        X_train, y_train, X_val, y_val = X[:-1000], y[:-1000], X[-1000:], y[-1000:]
    else:
        from nndl.data import load_cifar10

        d = load_cifar10()
        X_train, y_train = d.X_train[:49000], d.y_train[:49000].astype(np.int64)
        X_val, y_val = d.X_train[49000:], d.y_train[49000:].astype(np.int64)
    rows = [x.reshape(len(x), -1).astype(np.float32) for x in (X_train, X_val)]
    mean = rows[0].mean(axis=0)
    return rows[0] - mean, y_train, rows[1] - mean, y_val


def single(name, data):
    X, y, Xv, yv = data
    times, accs = [], []
    for seed in range(3):  # the first run includes warm-up (kernels, cuBLAS handles)
        net = TwoLayerNet(X.shape[1], H, C, random_state=seed, dtype=np.float32)
        start = time.perf_counter()
        net.train(X, y, Xv, yv, learning_rate=LR, learning_rate_decay=DECAY, reg=REG,
                  num_iters=ITERS, batch_size=B, backend=name, device="cuda")
        times.append(time.perf_counter() - start)
        accs.append(float((net.predict(Xv) == yv).mean()))
    return {"seconds": times, "median_seconds_after_warmup": float(np.median(times[1:])),
            "val_accuracy": accs}


def torch_loop(data):
    import torch
    from torch import nn

    X, y, Xv, yv = (torch.from_numpy(a).cuda() for a in data)
    times, accs = [], []
    for seed in range(3):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(X.shape[1], H), nn.ReLU(), nn.Linear(H, C)).cuda()
        with torch.no_grad():
            for layer in (model[0], model[2]):
                layer.weight.normal_(0, 1e-4)
                layer.bias.zero_()
        opt = torch.optim.SGD([{"params": [model[0].weight, model[2].weight],
                                "weight_decay": REG},
                               {"params": [model[0].bias, model[2].bias],
                                "weight_decay": 0.0}], lr=LR)
        loss_fn, per_epoch = nn.CrossEntropyLoss(), max(round(len(X) / B), 1)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for it in range(ITERS):
            idx = torch.randint(0, len(X), (B,), device="cuda")
            loss = loss_fn(model(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if it % per_epoch == 0:
                for group in opt.param_groups:
                    group["lr"] *= DECAY
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        with torch.no_grad():
            accs.append(float((model(Xv).argmax(1) == yv).float().mean()))
    return {"seconds": times, "median_seconds_after_warmup": float(np.median(times[1:])),
            "val_accuracy": accs}


def make_members(settings, D, hidden, classes, dtype=np.float32, **options):
    """One Member per (learning rate, reg, std, seed), all with ``options``."""
    return [Member(TwoLayerNet(D, hidden, classes, std=std, random_state=seed, dtype=dtype).params,
                   TrainOptions(learning_rate=lr, reg=reg, **options))
            for lr, reg, std, seed in settings]


def population(name, data, members, epochs):
    X, y, Xv, yv = data
    rng = np.random.default_rng(0)
    settings = [(float(10 ** rng.uniform(-4, -2.5)), float(10 ** rng.uniform(-3, 0)), 1e-4, i)
                for i in range(members)]
    iters = epochs * round(49000 / B)
    backend = get_backend(name, "cuda")
    gpu = dict(batch_size=B, backend=name, device="cuda")
    train_members(make_members(settings[:8], X.shape[1], H, C, num_iters=20, **gpu),
                  X, y, Xv, yv)  # warm-up
    backend.synchronize()
    group = make_members(settings, X.shape[1], H, C, num_iters=iters, **gpu)
    start = time.perf_counter()
    train_members(group, X, y, Xv, yv, rng=np.random.default_rng(0))
    backend.synchronize()
    seconds = time.perf_counter() - start
    accs = [float((TwoLayerNet.from_params(m.params).predict(Xv) == yv).mean())
            for m in group if m.state == "complete"]
    return {"members": members, "iterations": iters, "seconds": seconds,
            "completed": len(accs), "best_val_accuracy": max(accs),
            "median_val_accuracy": float(np.median(accs)),
            "member_iterations_per_second": members * iters / seconds}


def check(name):
    """Largest difference between the GPU and NumPy on a small float64 population of
    mixed options (SGD, AdamW with a cosine schedule, Nesterov with dropout)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 20)), rng.integers(0, 4, 300)
    kinds = [dict(), dict(optimizer="adamw", weight_decay=0.1, schedule="cosine"),
             dict(optimizer="nesterov", dropout=0.2, label_smoothing=0.1)]
    runs = []
    for backend, device in (("numpy", "cpu"), (name, "cuda")):
        group = [make_members([(0.05, 0.01, 0.1, i)], 20, 8, 4, np.float64, num_iters=50,
                              batch_size=32, backend=backend, device=device, **kind)[0]
                 for i, kind in enumerate(kinds)]
        runs.append(train_members(group, X, y, X[:50], y[:50], rng=np.random.default_rng(3)))
    return max(float(np.abs(a.params[k] - b.params[k]).max())
               for a, b in zip(*runs) for k in a.params)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz")
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpu.json"))
    args = parser.parse_args()
    data = load(args.npz)
    result = {"train_rows": len(data[0]), "val_rows": len(data[2])}
    try:
        import torch

        result["device"] = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - the name is decoration only
        pass
    for name in ("torch", "cupy"):
        try:
            get_backend(name, "cuda")
        except BackendUnavailable as exc:
            result[f"nndl {name}"] = f"unavailable: {exc}"
            continue
        result[f"nndl {name}, max |GPU - NumPy| float64"] = check(name)
        print(name, "check", result[f"nndl {name}, max |GPU - NumPy| float64"], flush=True)
        result[f"nndl {name}, single"] = single(name, data)
        print(name, "single", result[f"nndl {name}, single"], flush=True)
        result[f"nndl {name}, population"] = population(name, data, args.members, args.epochs)
        print(name, "population", result[f"nndl {name}, population"], flush=True)
    try:
        result["PyTorch loop, single"] = torch_loop(data)
        print("torch loop", result["PyTorch loop, single"], flush=True)
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        result["PyTorch loop, single"] = f"failed: {exc}"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
