"""JAX as a benchmark peer: the bench's SGD epoch, jitted whole, in a child process.

JAX is never a dependency of nnfast: this module imports it only inside the functions
that need it, and :func:`jax_missing_reason` says why the JAX rows are skipped.

The peer is what a JAX user writes to remove Python from the loop: one ``jax.jit`` call
runs E epochs (``lax.fori_loop`` over epochs), each epoch a ``lax.scan`` over the batches
(``unroll`` 1 or 4) or a ``lax.fori_loop`` slicing them (``dynamic_slice``); the best of the
three variants is reported. The arithmetic is the bench's: tanh hidden layers, linear
output, MSE (mean over the batch's samples and outputs), plain SGD ``p -= lr g``, batches in
order, the last one shorter when the batch size does not divide the set.

One core: XLA reads ``NPROC`` when it is imported and its thread pool ignores XLA_FLAGS'
thread limits, so the peer runs in a child process started with ``NPROC=1`` and pinned to
one CPU with ``os.sched_setaffinity`` before JAX is imported (:class:`JaxPeer`). The parent
and the child talk in JSON lines over stdin/stdout; the child times its own calls, so the
pipe's latency is not in the numbers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LR = 1e-4  # the bench's learning rate (nnfast.bench.LR)
VARIANTS = ("scan", "scan unroll 4", "fori_loop")


def jax_missing_reason() -> str | None:
    """None when ``import jax`` would find JAX, else why the JAX rows are skipped."""
    if importlib.util.find_spec("jax") is None:
        return 'JAX not installed (pip install "jax[cpu]" for its column)'
    return None


def import_jax():
    """Import JAX with float64 enabled (the bench checks float64 weights to 1e-10)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def layer_params(net) -> list:
    """``[(W, b), ...]`` copies of an nnfast.MLP's (or reference.MLP's) weights."""
    return [(np.array(W), np.array(b)) for W, b in zip(net.weights, net.biases)]


def flatten(params) -> np.ndarray:
    """The layer list in nnfast's flat layout: each W row-major, then its b."""
    return np.concatenate([np.ravel(np.asarray(a)) for W, b in params for a in (W, b)])


def _forward(jnp, params, X):
    """``A = tanh(A @ W + b)`` for the hidden layers, ``A @ W + b`` for the output."""
    A = X
    for index, (W, b) in enumerate(params):
        Z = A @ W + b
        A = jnp.tanh(Z) if index < len(params) - 1 else Z
    return A


def batches(X, y, batch):
    """``(Xb, yb, X_rest, y_rest)``: the full batches stacked ``(count, batch, width)`` and
    the shorter last batch (None when ``batch`` divides the set); ``batch=None`` is one."""
    n = X.shape[0]
    batch = n if batch is None else min(batch, n)
    full = n // batch * batch
    Xb = X[:full].reshape(n // batch, batch, X.shape[1])
    yb = y[:full].reshape(n // batch, batch, y.shape[1])
    if full == n:
        return Xb, yb, None, None
    return Xb, yb, X[full:], y[full:]


def make_trainer(jax, variant: str, has_rest: bool):
    """A jitted ``train(params, Xb, yb, X_rest, y_rest, epochs) -> params``: ``epochs``
    epochs of SGD over the stacked batches (then the rest, when ``has_rest``)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
    jnp, lax = jax.numpy, jax.lax

    def loss(params, X, y):
        diff = _forward(jnp, params, X) - y
        return jnp.mean(diff * diff)

    grad = jax.grad(loss)

    def step(params, X, y):
        return jax.tree.map(lambda p, g: p - LR * g, params, grad(params, X, y))

    def epoch(params, Xb, yb, X_rest, y_rest):
        if variant == "fori_loop":
            params = lax.fori_loop(0, Xb.shape[0], lambda i, p: step(p, Xb[i], yb[i]), params)
        else:
            unroll = 4 if variant == "scan unroll 4" else 1
            params, _ = lax.scan(
                lambda p, batch: (step(p, *batch), None), params, (Xb, yb), unroll=unroll
            )
        return step(params, X_rest, y_rest) if has_rest else params

    @jax.jit
    def train(params, Xb, yb, X_rest, y_rest, epochs):
        return lax.fori_loop(0, epochs, lambda _, p: epoch(p, Xb, yb, X_rest, y_rest), params)

    return train


class Trainer:
    """The three variants of one case, compiled, with the parameters they carry on from."""

    def __init__(self, jax, params, X, y, batch):
        jnp = jax.numpy
        Xb, yb, X_rest, y_rest = batches(X, y, batch)
        self.data = [jnp.asarray(a) if a is not None else None for a in (Xb, yb, X_rest, y_rest)]
        self.start = [(jnp.asarray(W), jnp.asarray(b)) for W, b in params]
        self.params = self.start
        self.trainers = {v: make_trainer(jax, v, X_rest is not None) for v in VARIANTS}
        for variant in VARIANTS:  # compile and warm up each
            self.run(variant, 1)

    def run(self, variant, epochs):
        """``epochs`` epochs of ``variant``; returns the seconds they took."""
        start = time.perf_counter()
        self.params = self.trainers[variant](self.params, *self.data, epochs)
        jax_leaves = [a for layer in self.params for a in layer]
        for leaf in jax_leaves:
            leaf.block_until_ready()
        return time.perf_counter() - start

    def one_epoch(self, variant):
        """The flat parameters after one epoch of ``variant`` from the initial weights."""
        params = self.trainers[variant](self.start, *self.data, 1)
        return flatten(params)


def make_predictor(jax, params):
    """A jitted forward pass, and ``predict(X) -> np.ndarray`` calling it."""
    jnp = jax.numpy
    weights = [(jnp.asarray(W), jnp.asarray(b)) for W, b in params]
    forward = jax.jit(lambda p, X: _forward(jnp, p, X))
    return lambda X: np.asarray(forward(weights, X))


# ---------------------------------------------------------------------------------------
# The child process
# ---------------------------------------------------------------------------------------


def _case_network(sizes, n, dtype):
    from nnfast import MLP, bench

    X, y = bench._data(sizes, n, dtype)
    return layer_params(MLP(sizes, activation="tanh", dtype=dtype, seed=0)), X, y


def _predict_input(rows):
    if rows == 1:
        return np.array([[0.5]])
    return np.random.default_rng(0).uniform(-3, 3, size=(rows, 1))


def serve(lines, reply) -> None:
    """Answer requests (one JSON object a line) until the input ends.

    ``{"op": "train", "key", "sizes", "n", "batch", "dtype"}`` compiles a case;
    ``{"op": "time", "key", "epochs"}`` runs each variant ``epochs`` epochs and returns the
    seconds per epoch of each; ``{"op": "run", "key", "variant", "epochs"}`` runs one
    variant and returns its seconds; ``{"op": "one_epoch", "key"}`` returns the flat
    parameters of each variant after one epoch from the initial weights; ``{"op":
    "predict", "rows", "calls"}`` returns the seconds per call of the seed network's
    prediction over ``rows`` rows, ``calls`` calls in a row.
    """
    jax = import_jax()
    reply({"jax": jax.__version__, "cpus": sorted(os.sched_getaffinity(0))})
    trainers, predictors = {}, {}
    for line in lines:
        request = json.loads(line)
        op = request["op"]
        if op == "train":
            params, X, y = _case_network(request["sizes"], request["n"], request["dtype"])
            started = time.perf_counter()
            trainers[request["key"]] = Trainer(jax, params, X, y, request["batch"])
            reply({"compile": time.perf_counter() - started})
        elif op == "time":
            trainer, epochs = trainers[request["key"]], request["epochs"]
            reply({v: trainer.run(v, epochs) / epochs for v in VARIANTS})
        elif op == "run":
            trainer, epochs = trainers[request["key"]], request["epochs"]
            reply({"seconds": trainer.run(request["variant"], epochs)})
        elif op == "one_epoch":
            trainer = trainers[request["key"]]
            reply({v: trainer.one_epoch(v).tolist() for v in VARIANTS})
        elif op == "predict":
            rows, calls = request["rows"], request["calls"]
            if rows not in predictors:
                params, _, _ = _case_network([1, 20, 20, 1], 1, "float64")
                predictors[rows] = (make_predictor(jax, params), _predict_input(rows))
                predictors[rows][0](predictors[rows][1])  # compile
            predict, X = predictors[rows]
            started = time.perf_counter()
            for _ in range(calls):
                predict(X)
            reply({"seconds": (time.perf_counter() - started) / calls})
        else:
            reply({"error": f"unknown op {op!r}"})


def child_environment(one_core: bool) -> dict:
    """The child's environment: nnfast importable from where the parent found it, and
    with ``one_core`` XLA told it has one processor (read when JAX is imported)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    if one_core:
        env["NPROC"] = "1"
        env["XLA_FLAGS"] = " ".join(
            filter(None, [env.get("XLA_FLAGS"), "--xla_cpu_multi_thread_eigen=false"])
        )
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = "1"
    else:
        env.pop("NPROC", None)
    return env


class JaxPeer:
    """A child process running JAX on one CPU (``one_core``) or on every allowed CPU."""

    def __init__(self, one_core: bool = True):
        self.one_core = one_core
        self.errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by close())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nnfast._bench_jax", "1" if one_core else "all"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
            env=child_environment(one_core),
        )
        hello = self._receive()
        self.version, self.cpus = hello["jax"], hello["cpus"]
        self.variant_best: dict = {}
        self.timers: dict = {}

    def _receive(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.errors.seek(0)
            raise RuntimeError(f"the JAX child process stopped: {self.errors.read()[-2000:]}")
        return json.loads(line)

    def request(self, **fields) -> dict:
        self.process.stdin.write(json.dumps(fields) + "\n")
        self.process.stdin.flush()
        return self._receive()

    def trainer(self, sizes, n, batch, dtype):
        """Compile the case; returns ``timed(epochs) -> seconds per epoch`` (the best
        variant of that call; ``variant_best[key]`` keeps each variant's best)."""
        key = f"{sizes}-{n}-{batch}-{dtype}"
        if key in self.timers:  # compiled already
            return self.timers[key]
        self.request(op="train", key=key, sizes=list(sizes), n=n, batch=batch, dtype=dtype)
        best = self.variant_best.setdefault(key, dict.fromkeys(VARIANTS, float("inf")))

        def timed(epochs):
            seconds = self.request(op="time", key=key, epochs=epochs)
            for variant in VARIANTS:
                best[variant] = min(best[variant], seconds[variant])
            return min(seconds.values())

        timed.key = key
        self.timers[key] = timed
        return timed

    def runner(self, sizes, n, batch, dtype, variant):
        """``run(epochs)``: ``epochs`` epochs of one variant in the child (for
        pytest-benchmark, which times the call, pipe included)."""
        key = self.trainer(sizes, n, batch, dtype).key

        def run(epochs):
            self.request(op="run", key=key, variant=variant, epochs=epochs)

        return run

    def one_epoch(self, key) -> dict:
        """{variant: flat parameters after one epoch from the initial weights}."""
        return {v: np.array(p) for v, p in self.request(op="one_epoch", key=key).items()}

    def best_variant(self, key) -> str:
        best = self.variant_best[key]
        return min(best, key=best.get)

    def predict_seconds(self, rows, calls) -> float:
        return self.request(op="predict", rows=rows, calls=calls)["seconds"]

    def close(self) -> None:
        self.process.stdin.close()  # the child's loop ends with its input
        self.process.wait(timeout=60)
        self.process.stdout.close()
        self.errors.close()


def _child_main(mode: str) -> None:
    if mode == "1":
        # Pin before JAX is imported: XLA sizes its thread pool from the CPUs it may use.
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    out = sys.stdout

    def reply(message):
        out.write(json.dumps(message) + "\n")
        out.flush()

    sys.stdout = sys.stderr  # nothing but replies on the protocol's stream
    serve(sys.stdin, reply)


if __name__ == "__main__":
    _child_main(sys.argv[1] if len(sys.argv) > 1 else "1")
