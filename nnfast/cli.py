"""Command line: ``python -m nnfast demo`` and ``python -m nnfast bench``."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _bounded(convert, low, inclusive, expected):
    """An argparse type: ``convert(text)``, finite and >= low (> low unless inclusive)."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not (np.isfinite(value) and (value >= low if inclusive else value > low)):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _bounded(int, 1, True, "a positive integer")
_non_negative_int = _bounded(int, 0, True, "an integer >= 0")
_positive_float = _bounded(float, 0, False, "a positive number")


def noisy_curve(n: int, seed: int, noise: float = 0.1):
    """``n`` points of y = sin(2x) + noise on x in [-3, 3], and the clean curve."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-3, 3, size=n))[:, None]
    clean = np.sin(2 * x)
    return x, clean + noise * rng.standard_normal(clean.shape), clean


class _Progress:
    """Prints one updating line with the epoch and loss while ``fit`` runs."""

    def __init__(self, epochs: int, label: str, stream=sys.stdout):
        self.epochs = epochs
        self.label = label
        self.stream = stream
        self.every = max(1, epochs // 50)

    def __call__(self, epoch: int, loss: float):
        # On a terminal one line updates in place; in a log, one line per 10 %.
        tty = self.stream.isatty()
        every = self.every if tty else max(1, self.epochs // 10)
        if epoch % every == 0 or epoch == self.epochs:
            filled = int(30 * epoch / self.epochs)
            bar = "#" * filled + "." * (30 - filled)
            start = "\r" if tty else ""
            end = "\n" if epoch == self.epochs or not tty else ""
            self.stream.write(
                f"{start}  {self.label} [{bar}] epoch {epoch}/{self.epochs}  loss {loss:.3e}{end}"
            )
            self.stream.flush()


def demo(args) -> int:
    from nnfast import MLP, reference

    x, y, clean = noisy_curve(args.samples, args.seed)
    settings = dict(
        optimizer=args.optimizer,
        lr=args.lr,
        batch_size=args.batch_size,
        epochs=args.epochs,
        shuffle=True,
    )
    net = MLP([1, 20, 20, 1], activation="tanh", seed=args.seed)
    print(f"nnfast demo: {net}")
    print(
        f"  fitting y = sin(2x) + noise (n = {args.samples}), {args.optimizer}, "
        f"lr = {args.lr}, batch {args.batch_size}, {args.epochs} epochs"
    )

    started = time.perf_counter()
    history = net.fit(x, y, callback=_Progress(args.epochs, "nnfast   "), **settings)
    nnfast_seconds = time.perf_counter() - started

    # The same network, weights, data, batches and shuffling, in plain NumPy.
    ref = reference.MLP([1, 20, 20, 1], activation="tanh", seed=args.seed)
    started = time.perf_counter()
    ref.fit(x, y, callback=_Progress(args.epochs, "reference"), **settings)
    ref_seconds = time.perf_counter() - started

    fit = net.predict(x)
    print(f"  final training loss (MSE vs noisy data): {history.loss[-1]:.4e}")
    print(f"  MSE of the fit against the clean curve:  {np.mean((fit - clean) ** 2):.4e}")
    print(f"  largest difference nnfast vs reference:  {np.max(np.abs(fit - ref.predict(x))):.1e}")
    print(
        f"  time: nnfast {nnfast_seconds:.3f} s ({1e3 * nnfast_seconds / args.epochs:.3f} ms/epoch), "
        f"reference.py (NumPy) {ref_seconds:.3f} s ({1e3 * ref_seconds / args.epochs:.3f} ms/epoch): "
        f"nnfast is {ref_seconds / nnfast_seconds:.1f}x faster"
    )

    if args.no_plot:
        return 0
    try:
        import matplotlib
    except ImportError:
        print(
            '  (no plot: matplotlib is not installed; `pip install "nnfast[plot]"` '
            f"or `pip install matplotlib` to get {args.output})"
        )
        return 0
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(x, y, ".", ms=3, color="0.6", label="noisy data")
    left.plot(x, clean, "k--", lw=1, label="sin(2x)")
    left.plot(x, fit, "C0", lw=2, label="nnfast 1-20-20-1 tanh")
    left.set_xlabel("x")
    left.set_ylim(-1.8, 1.6)
    left.legend(loc="lower center", ncol=3, fontsize="small")
    left.set_title("fit")
    right.semilogy(np.arange(1, len(history.loss) + 1), history.loss, "C0")
    right.set_xlabel("epoch")
    right.set_ylabel("training loss (MSE)")
    right.set_title(f"loss ({nnfast_seconds:.2f} s in nnfast, {ref_seconds:.2f} s in NumPy)")
    fig.tight_layout()
    fig.savefig(args.output, dpi=100)
    plt.close(fig)
    print(f"  wrote {args.output}")
    return 0


def bench(args) -> int:
    from nnfast.bench import run
    from nnfast.kernels import set_avx512_units, set_simd_path

    # Every kernel family switches path at run time: no re-launch needed.
    set_simd_path(args.path)
    if args.avx512_units is not None:
        set_avx512_units(args.avx512_units)
    return run(args)


def build_parser() -> argparse.ArgumentParser:
    from nnfast import __version__

    parser = argparse.ArgumentParser(
        prog="python -m nnfast", description="nnfast: fast multi-layer perceptrons."
    )
    parser.add_argument("--version", action="version", version=f"nnfast {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{demo,bench}")

    p = commands.add_parser(
        "demo",
        help="fit the 1-20-20-1 tanh network to a noisy curve",
        description="Fit the 481-parameter 1-20-20-1 tanh network to "
        "y = sin(2x) + noise, time it against the same training in "
        "plain NumPy (nnfast.reference) and plot the result.",
    )
    p.add_argument(
        "--epochs", type=_positive_int, default=1000, help="training epochs (default 1000)"
    )
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="adam", help="default adam")
    p.add_argument("--lr", type=_positive_float, default=5e-3, help="learning rate (default 5e-3)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="default 32")
    p.add_argument("--samples", type=_positive_int, default=400, help="data points (default 400)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument("--output", default="demo.png", help="plot file (default demo.png)")
    p.add_argument("--no-plot", action="store_true", help="do not write the plot")
    p.set_defaults(func=demo)

    p = commands.add_parser(
        "bench",
        help="time nnfast against NumPy (and PyTorch and JAX if installed)",
        description="Per-epoch training times of nnfast, nnfast.reference "
        "(NumPy), PyTorch and JAX (when installed), one thread, same arithmetic; then "
        "nnfast's scaling with n_threads and every library on every allowed core.",
    )
    p.add_argument(
        "--repeat",
        type=_positive_int,
        default=5,
        help="timed repetitions per case; the best is reported (default 5)",
    )
    p.add_argument("--quick", action="store_true", help="fewer epochs per timing")
    p.add_argument(
        "--training-only",
        action="store_true",
        help="only the training and predict tables and the all-threads rows (no thread, "
        "memory, emulator and scikit-learn rows)",
    )
    p.add_argument(
        "--threads-only",
        action="store_true",
        help="only nnfast's thread-scaling table (n_threads = 1 ... every allowed core, and "
        "None) and the all-threads rows against NumPy/BLAS, PyTorch and JAX",
    )
    p.add_argument(
        "--no-jax", action="store_true", help="no JAX columns even when JAX is installed"
    )
    p.add_argument(
        "--path",
        choices=("best", "avx512", "avx2", "baseline"),
        default="best",
        help="widest SIMD code path nnfast's kernels may use (default: the best "
        "this CPU runs; as the environment variable NNFAST_SIMD)",
    )
    p.add_argument(
        "--avx512-units",
        type=int,
        choices=(256, 512),
        default=None,
        help="plan the AVX-512 products for units this wide (default: as detected, 256 on "
        "AMD Zen 4, where narrow rows run in 256-bit vectors; as NNFAST_AVX512_UNITS)",
    )
    p.set_defaults(func=bench)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
