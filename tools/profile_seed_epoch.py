"""Run epochs of one bench case for a profiler (run by hand; see docs/performance.md).

    valgrind --tool=callgrind --toggle-collect='*run_epoch*' \\
        python tools/profile_seed_epoch.py --epochs 20
    callgrind_annotate --inclusive=no callgrind.out.<pid>

The case defaults to the seed network 1→20→20→1, batch 32, float64, 1000 rows: the same
data, weights and SGD as ``python -m nnfast bench``. ``--path`` selects the SIMD code path
(under valgrind the CPU reports no AVX-512, so the best path there is AVX2). Training runs
on one thread, as the bench's rows do (``--threads`` sets more; with several, a callgrind
profile counts the team's spinning at its barriers too).
"""

from __future__ import annotations

import argparse
import time

from nnfast import MLP, _kernels, bench
from nnfast.kernels import set_simd_path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--sizes", default="1,20,20,1", help="layer sizes, comma separated")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32, help="0 for the full batch")
    parser.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    parser.add_argument("--path", default="best", choices=("best", "avx512", "avx2", "baseline"))
    parser.add_argument(
        "--compare",
        action="store_true",
        help="time variants of the case alternately in this process (best of --repeat): "
        "tanh vs identity hidden layers, no shuffle vs shuffle (the batch gather), "
        "each SIMD path",
    )
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--threads", type=int, default=1, help="n_threads of the fits (default 1, as the bench)"
    )
    parser.add_argument("--shuffle", action="store_true", help="shuffle each epoch (gather)")
    parser.add_argument(
        "--general",
        action="store_true",
        help="batch 1 through the general path, not the one-call step (nnfast/src/row_step.h)",
    )
    args = parser.parse_args(argv)
    if args.general:
        _kernels._set_row_step(False)
    if args.compare:
        return compare(args)
    set_simd_path(args.path)
    sizes = [int(s) for s in args.sizes.split(",")]
    X, y = bench._data(sizes, args.rows, args.dtype)
    net = MLP(sizes, activation="tanh", dtype=args.dtype, seed=0)
    settings = dict(
        optimizer="sgd",
        lr=bench.LR,
        momentum=0.0,
        shuffle=False,
        batch_size=args.batch or args.rows,
        n_threads=args.threads,
    )
    net.fit(X, y, epochs=1, **settings)  # warm up outside the measured epochs
    start = time.perf_counter()
    net.fit(X, y, epochs=args.epochs, **settings)
    seconds = (time.perf_counter() - start) / args.epochs
    print(f"{sizes} batch {args.batch or 'full'} {args.dtype}: {seconds * 1e6:.1f} µs per epoch")


def compare(args) -> None:
    """Best µs per epoch of each variant, timed in turns so that all see the same load."""
    sizes = [int(s) for s in args.sizes.split(",")]
    X, y = bench._data(sizes, args.rows, args.dtype)
    batch = args.batch or args.rows
    variants = {
        "tanh, in order": ("tanh", False, "best"),
        "identity, in order": ("identity", False, "best"),
        "tanh, shuffled": ("tanh", True, "best"),
        "tanh, in order, avx2": ("tanh", False, "avx2"),
        "tanh, in order, baseline": ("tanh", False, "baseline"),
    }
    nets = {
        name: MLP(sizes, activation=act, dtype=args.dtype, seed=0)
        for name, (act, _, _) in variants.items()
    }
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(args.repeat):
        for name, (_, shuffle, path) in variants.items():
            set_simd_path(path)
            settings = dict(
                optimizer="sgd",
                lr=bench.LR,
                momentum=0.0,
                shuffle=shuffle,
                n_threads=args.threads,
            )
            start = time.perf_counter()
            nets[name].fit(X, y, epochs=args.epochs, batch_size=batch, **settings)
            best[name] = min(best[name], (time.perf_counter() - start) / args.epochs)
    set_simd_path("best")
    for name, seconds in best.items():
        print(f"{name:<28}{seconds * 1e6:9.1f} µs per epoch")


if __name__ == "__main__":
    main()
