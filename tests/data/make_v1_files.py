"""Write the format-version-1 files of tests/data/v1/ (run once, by hand, with nnfast 0.1.0).

These files were written by ``nnfast.save`` before the format version 2 of saved estimators
(issue 15) existed: the test ``tests/test_io_versions.py`` checks that every later nnfast
still loads them, to the bit, and that the loaded networks predict what they predicted when
the files were written (``expected.npz``, a plain ``np.savez`` of the inputs and outputs).
Version 1 held networks only (``nnfast.save`` refused estimators), so these are networks
of every kind that version could hold: every hidden and output activation, both dtypes,
non-default ``leaky_slope``, ``elu_alpha`` and ``maxout_pieces``, a gaussian_nll-shaped
output. Do not regenerate them with a later nnfast (they would stop testing anything)::

    python tests/data/make_v1_files.py tests/data/v1
"""

import os
import sys

import numpy as np

import nnfast

NETWORKS = {
    "seed-tanh-f64": dict(layer_sizes=[1, 20, 20, 1], activation="tanh"),
    "relu-softmax-f32": dict(
        layer_sizes=[3, 5, 4], activation="relu", output_activation="softmax", dtype="float32"
    ),
    "maxout3-sigmoid-f64": dict(
        layer_sizes=[2, 4, 3], activation="maxout", maxout_pieces=3, output_activation="sigmoid"
    ),
    "leaky-elu-exp-f32": dict(
        layer_sizes=[3, 5, 4, 2],
        activation=["leaky_relu", "elu"],
        output_activation="exp",
        dtype="float32",
        leaky_slope=0.05,
        elu_alpha=0.7,
    ),
    "identity-tanh-f64": dict(
        layer_sizes=[2, 3, 2], activation="identity", output_activation="tanh"
    ),
    "sigmoid-gaussian-nll-f64": dict(layer_sizes=[2, 6, 2], activation="sigmoid"),
}


def main(directory):
    os.makedirs(directory, exist_ok=True)
    expected = {}
    for i, (name, kwargs) in enumerate(NETWORKS.items()):
        net = nnfast.MLP(seed=i, **kwargs)
        rng = np.random.default_rng(100 + i)
        # Non-zero biases too (a fresh network's are zero).
        net.params = rng.normal(scale=0.5, size=net.n_params).astype(net.dtype)
        nnfast.save(net, os.path.join(directory, f"{name}.npz"))
        X = rng.normal(size=(7, net.layer_sizes[0])).astype(net.dtype)
        expected[f"{name}.X"] = X
        expected[f"{name}.params"] = net.params
        expected[f"{name}.predict"] = net.predict(X)
    np.savez(os.path.join(directory, "expected.npz"), **expected)


if __name__ == "__main__":
    main(sys.argv[1])
