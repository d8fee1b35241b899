"""nndl's estimator against scikit-learn's MLPClassifier, both with their defaults.

Each contender is ``make_pipeline(StandardScaler(), estimator)`` with the estimator's
defaults (``random_state`` fixed per fold), scored by repeated stratified 5-fold
cross-validation (``--repeats`` repeats, 3 by default) on scikit-learn's digits, iris, wine
and breast cancer, and on real images: the first ``--images`` CIFAR-10 training images
(found through nndl's data location, ``NNDL_DATA``), flattened. Each (data set, contender)
cross-validation runs in a fresh process of its own, the contenders alternating; the fit
time is the sum of the folds' ``fit`` calls; the machine's float64 product peak is recorded
beside them. Writes ``benchmarks/results/sklearn.json`` and
``sklearn.md`` (the README quotes the table).

    python benchmarks/bench_sklearn.py [--repeats 3] [--images 3000] [--no-images]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
TABULAR = ("digits", "iris", "wine", "breast_cancer")
CONTENDERS = ("nndl", "mlp")


def load(name, images):
    """(X, y) of a data set of the table."""
    if name == "cifar10":
        from nndl.data import load_dataset

        data = load_dataset("cifar10")
        X = np.asarray(data.X_train[:images], dtype=np.float64).reshape(images, -1)
        return X, np.asarray(data.y_train[:images])
    import sklearn.datasets

    return getattr(sklearn.datasets, f"load_{name}")(return_X_y=True)


def estimator(contender):
    if contender == "nndl":
        from nndl.sklearn import TwoLayerNetClassifier

        return TwoLayerNetClassifier(random_state=0)
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(random_state=0)


def cross_validate_once(name, contender, repeats, images):
    """The cross-validation of one (data set, contender), in this process."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load(name, images)
    folds = RepeatedStratifiedKFold(n_splits=5, n_repeats=repeats, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        result = cross_validate(make_pipeline(StandardScaler(), estimator(contender)), X, y,
                                cv=folds)
    warned = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    return {"accuracy": float(result["test_score"].mean()),
            "accuracy_std": float(result["test_score"].std()),
            "fit_seconds": float(result["fit_time"].sum()),
            "fits": len(result["fit_time"]), "convergence_warnings": warned}


def run_child(name, contender, repeats, images):
    code = ("import json, sys; sys.path.insert(0, 'benchmarks'); import bench_sklearn as b; "
            f"print(json.dumps(b.cross_validate_once({name!r}, {contender!r}, {repeats}, "
            f"{images})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parent.parent, env=os.environ)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--no-images", action="store_true", help="the tabular sets only")
    args = parser.parse_args()
    names = TABULAR + (() if args.no_images else ("cifar10",))
    rows = {}
    for i, name in enumerate(names):
        order = CONTENDERS if i % 2 == 0 else CONTENDERS[::-1]  # alternate who goes first
        for contender in order:
            start = time.perf_counter()
            rows[name, contender] = run_child(name, contender, args.repeats, args.images)
            r = rows[name, contender]
            print(f"{name:14s} {contender:5s} {100 * r['accuracy']:5.1f}%  fit "
                  f"{r['fit_seconds']:6.1f} s  ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    write(rows, names, args)


def write(rows, names, args):
    from bench_cpu import peak_gflops  # this machine's float64 product peak, for the record

    result = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
              "peak_gflops_float64": round(peak_gflops(np.float64)),
              "repeats": args.repeats, "images": args.images,
              "results": {f"{n}/{c}": r for (n, c), r in rows.items()}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sklearn.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| data set | nndl accuracy | MLPClassifier accuracy | difference | nndl fit s | "
             "MLP fit s | fit-time ratio (MLP / nndl) |", "|---|---|---|---|---|---|---|"]
    for name in names:
        a, b = rows[name, "nndl"], rows[name, "mlp"]
        label = f"CIFAR-10, first {args.images:,} images" if name == "cifar10" else name
        lines.append(f"| {label} | {100 * a['accuracy']:.1f}% | {100 * b['accuracy']:.1f}% | "
                     f"{100 * (a['accuracy'] - b['accuracy']):+.1f} | {a['fit_seconds']:.1f} | "
                     f"{b['fit_seconds']:.1f} | {b['fit_seconds'] / a['fit_seconds']:.2f}x |")
    table = "\n".join(lines) + "\n"
    (RESULTS / "sklearn.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
