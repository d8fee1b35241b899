"""How long loading CIFAR-10 takes: first decode vs the .npy cache (medians).

    python benchmarks/bench_data.py [--root DIR] [--repeats 5]
"""

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from nndl.data import find_cifar10
from nndl.data.cache import load_cached
from nndl.data_utils import load_CIFAR10


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="CIFAR-10 data root (default: $NNDL_DATA)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    source = find_cifar10(args.root)
    if source is None:
        raise SystemExit("CIFAR-10 not found: pass --root or set NNDL_DATA")
    cold, warm = [], []
    for _ in range(args.repeats):
        scratch = tempfile.mkdtemp()
        start = time.perf_counter()
        load_cached(source, cache_dir=Path(scratch))
        cold.append(time.perf_counter() - start)
        shutil.rmtree(scratch)
    load_CIFAR10(source.path)
    for _ in range(args.repeats):
        start = time.perf_counter()
        load_CIFAR10(source.path)
        warm.append(time.perf_counter() - start)
    print(f"decode (restricted unpickler): median {statistics.median(cold):.2f} s")
    print(f"load_CIFAR10 from cache (float64 arrays): median {statistics.median(warm):.2f} s")
    print(f"ratio: {statistics.median(cold) / statistics.median(warm):.1f}x")


if __name__ == "__main__":
    main()
