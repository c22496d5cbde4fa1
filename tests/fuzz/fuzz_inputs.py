"""What the fuzz cases draw: valid inputs of every accepted dtype, layout and shape, and
inputs with exactly one argument corrupted.

- *valid*: bool, integer, float16/32/64 and big-endian arrays, Fortran order, strided,
  reversed, read-only and non-aligned views, lists, zero-size products where they are
  legal; networks of every activation with random biases, and their ``nnfast.reference``
  twin (the oracle the cases compare with); targets for every loss.
- *corrupted*: complex, object, string, None, ragged, wrong shape, empty, NaN, ±inf, a
  value too large for the dtype, labels out of range, ``out=`` of the wrong shape, dtype or
  layout.

Names of activations, losses and dtypes come from ``nnfast._spec``. Which loss goes with
which output activation is this module's own table (``LOSS_FOR``): it is what the cases
expect nnfast to accept, so it is not read from nnfast's validation.
"""

import numpy as np
from hypothesis import strategies as st

import nnfast
from nnfast import reference
from nnfast._spec import DTYPES, HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS

# ------------------------------------------------------------------------------------------
# Arrays: valid values in every accepted dtype and layout
# ------------------------------------------------------------------------------------------

# Values every accepted dtype holds exactly or nearly: small numbers, zeros, subnormals.
# (Huge finite values are fuzzed for refusal and for not crashing, not compared: products of
# 1e300 overflow in an order-dependent way.)
VALID_DTYPES = [
    "float64",
    "float32",
    "float16",
    ">f8",
    "<f4",
    "int64",
    "int32",
    "int8",
    "uint8",
    "bool",
]
LAYOUTS = ["C", "F", "strided", "reversed", "readonly", "unaligned", "list"]


@st.composite
def floats_for(draw, dtype, shape, low=-3.0, high=3.0):
    """A float64 array of values representable in ``dtype`` (bool: 0/1, unsigned: >= 0)."""
    size = int(np.prod(shape))
    kind = np.dtype(dtype).kind
    if kind == "b":
        values = draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=size, max_size=size))
    elif kind in "iu":
        lo = max(int(np.floor(low)), 0 if kind == "u" else -128)
        values = draw(
            st.lists(st.integers(lo, int(np.ceil(high))).map(float), min_size=size, max_size=size)
        )
        values = [min(max(v, low), high) for v in values]
    else:
        special = [
            v for v in (0.0, -0.0, 5e-324, 1e-310, 1e-40, -1e-45, 2.0**-20) if low <= v <= high
        ]
        value = st.floats(low, high, allow_nan=False, width=16 if dtype == "float16" else 64)
        if special:
            value = st.one_of(value, st.sampled_from(special))
        values = draw(st.lists(value, min_size=size, max_size=size))
    return np.array(values, dtype=np.float64).reshape(shape)


def layout(values, dtype, how):
    """``values`` as an array (or list) of ``dtype`` in the layout ``how``."""
    a = values.astype(dtype)
    if how == "F":
        return np.asfortranarray(a)
    if how == "strided":
        big = np.zeros(tuple(2 * s for s in a.shape), dtype=a.dtype)
        view = big[tuple(slice(None, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    if how == "reversed":
        flipped = np.ascontiguousarray(a[::-1] if a.ndim else a)
        return flipped[::-1] if a.ndim else flipped
    if how == "readonly":
        a = a.copy()
        a.flags.writeable = False
        return a
    if how == "unaligned" and a.dtype.itemsize > 1:
        raw = np.zeros(a.nbytes + 1, dtype=np.uint8)
        view = raw[1:].view(a.dtype).reshape(a.shape)
        view[...] = a
        return view
    if how == "list" and a.size:  # (an empty list loses the shape of an empty array)
        return a.tolist()
    return a


@st.composite
def arrays(draw, shape, low=-3.0, high=3.0, dtypes=VALID_DTYPES):
    dtype = draw(st.sampled_from(dtypes))
    values = draw(floats_for(dtype, shape, low, high))
    return layout(values, dtype, draw(st.sampled_from(LAYOUTS)))


def as64(a):
    return np.asarray(a, dtype=np.float64)


# ------------------------------------------------------------------------------------------
# Corruptions: each makes exactly one argument invalid
# ------------------------------------------------------------------------------------------

BAD_VALUES = [np.nan, np.inf, -np.inf]
TOO_BIG = {np.dtype(np.float32): [1e39, -3.5e38, 1e308], np.dtype(np.float64): []}


@st.composite
def corrupted(draw, good, dtype, shapes=(), finite=True):
    """An invalid replacement for the array-like ``good``: wrong type or dtype, wrong shape,
    empty, or (when ``finite`` values are required: not for the kernels, where NaN in gives
    NaN out as in NumPy) a NaN / infinity / value too large for ``dtype``."""
    a = np.array(good, dtype=np.float64)
    choices = ["complex", "object", "string", "none", "ragged", "shape"]
    if a.ndim and a.shape[0]:
        choices.append("empty")
    if a.size and finite:
        choices.append("nan")
    how = draw(st.sampled_from(choices))
    if how == "complex":
        return a.astype(np.complex128) + 1j
    if how == "object":
        return a.astype(object)
    if how == "string":
        return draw(st.sampled_from([a.astype(str), "abc", [["1", "2"]]]))
    if how == "none":
        return None
    if how == "ragged":
        return [[1.0, 2.0], [3.0]]
    if how == "shape":
        shape = draw(st.sampled_from(list(shapes)))
        return np.zeros(shape)
    if how == "empty":
        return np.zeros((0,) + a.shape[1:])
    # A non-finite or too-large value at a random position, in a float array of some layout.
    values = BAD_VALUES + TOO_BIG[np.dtype(dtype)]
    flat = a.reshape(-1).copy()
    flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from(values))
    return layout(flat.reshape(a.shape), "float64", draw(st.sampled_from(LAYOUTS[:-1])))


# ------------------------------------------------------------------------------------------
# Networks and their targets
# ------------------------------------------------------------------------------------------

# The network dtypes, widest first (hypothesis shrinks towards the first).
NETWORK_DTYPES = sorted(DTYPES, key=lambda name: -DTYPES[name].itemsize)

LOSS_FOR = {
    "identity": ["mse", "gaussian_nll"],
    "tanh": ["mse"],
    "sigmoid": ["mse", "binary_cross_entropy"],
    "softmax": ["mse", "cross_entropy"],
    "exp": ["mse", "poisson"],
}
assert set(LOSS_FOR) == set(OUTPUT_ACTIVATIONS), "LOSS_FOR: one entry per output activation"
assert set().union(*LOSS_FOR.values()) == set(LOSSES), "LOSS_FOR: every loss of nnfast._spec"


def losses_for(net):
    """The losses ``net`` accepts: those of its output activation (gaussian_nll: even width)."""
    return [
        loss
        for loss in LOSS_FOR[net.activations[-1]]
        if loss != "gaussian_nll" or net.layer_sizes[-1] % 2 == 0
    ]


def target_width(loss, n_out):
    return n_out // 2 if loss == "gaussian_nll" else n_out


@st.composite
def networks(draw):
    n_in = draw(st.integers(1, 5))
    hidden = draw(st.lists(st.integers(1, 6), max_size=2))
    output = draw(st.sampled_from(OUTPUT_ACTIVATIONS))
    n_out = draw(st.integers(2 if output == "softmax" else 1, 4))
    activation = draw(
        st.lists(st.sampled_from(HIDDEN_ACTIVATIONS), min_size=len(hidden), max_size=len(hidden))
    )
    sizes = [n_in] + hidden + [n_out]
    dtype = draw(st.sampled_from(NETWORK_DTYPES))
    seed = draw(st.integers(0, 2**32))
    kwargs = dict(
        activation=activation or "tanh",
        output_activation=output,
        dtype=dtype,
        seed=seed,
        maxout_pieces=draw(st.integers(1, 3)),
        leaky_slope=draw(st.sampled_from([0.0, 0.1, 1.0])),
        elu_alpha=draw(st.sampled_from([0.0, 1.0, 2.5])),
    )
    net = nnfast.MLP(sizes, **kwargs)
    # Random biases too (initial biases are zero and would hide bias mistakes).
    net.params = np.random.default_rng(seed).normal(0.0, 0.5, net.n_params)
    oracle = reference.MLP(sizes, params=net.params, **kwargs)
    return net, oracle


@st.composite
def targets(draw, loss, n, n_out):
    if loss == "cross_entropy" and draw(st.booleans()):
        labels = np.array(draw(st.lists(st.integers(0, n_out - 1), min_size=n, max_size=n)))
        dtype = draw(st.sampled_from(["int64", "int8", "uint8", "float64", "float32"]))
        return layout(labels, dtype, draw(st.sampled_from(LAYOUTS)))
    if loss == "cross_entropy":
        rows = np.random.default_rng(n).dirichlet(np.ones(n_out), size=n)
        return layout(rows, "float64", draw(st.sampled_from(LAYOUTS)))
    low, high = (0.0, 1.0) if loss in ("binary_cross_entropy", "poisson") else (-3.0, 3.0)
    width = target_width(loss, n_out)
    shape = (n,) if width == 1 and draw(st.booleans()) else (n, width)
    return draw(arrays(shape, low, high))


def bad_targets(draw, loss, n, n_out, dtype, y):
    """An invalid y for this loss: generic corruptions or values out of the loss's range."""
    specific = []
    if loss == "cross_entropy":
        specific = [
            np.full(n, n_out),
            np.full(n, -1),
            np.full(n, 0.5),
            np.ones((n, n_out)),
            np.full(n, True),
        ]
    elif loss == "binary_cross_entropy":
        specific = [np.full((n, n_out), 1.5), np.full((n, n_out), -0.25)]
    elif loss == "poisson":
        specific = [np.full((n, n_out), -1.0)]
    elif loss == "gaussian_nll":  # one column per output instead of one per target
        specific = [np.zeros((n, n_out))]
    width = target_width(loss, n_out)
    pool = st.sampled_from(specific) if specific else st.nothing()
    return draw(
        st.one_of(pool, corrupted(y, dtype, [(n + 1, width), (n, width + 1), (n, width, 1)]))
    )


# ------------------------------------------------------------------------------------------
# Sizes and arguments of the network cases
# ------------------------------------------------------------------------------------------

ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2**70),
    st.floats(),
    st.text(max_size=3),
    st.sampled_from([[], [1], [1.5], {"a": 1}, np.array([2, 3])]),
)

ROWS = st.sampled_from([1, 1, 2, 3, 7, 33])


# ------------------------------------------------------------------------------------------
# Sizes, dtypes and out= of the kernel cases
# ------------------------------------------------------------------------------------------

DIMS = st.sampled_from([0, 1, 2, 3, 5, 17])
KDTYPES = ["float64", "float32", "float32", "int32", "bool", "float16", ">f8"]


@st.composite
def outs(draw, shape, dtype):
    """``out=``: None, a correct array, or one of the wrong shape / dtype / layout."""
    how = draw(st.sampled_from(["none", "good", "good", "shape", "dtype", "F", "readonly", "list"]))
    if how == "none":
        return None, None
    if how == "good":
        return np.full(shape, np.nan, dtype=dtype), None
    if how == "shape":
        return np.empty(tuple(s + 1 for s in shape) or (1,), dtype=dtype), ValueError
    if how == "dtype":
        other = np.float32 if np.dtype(dtype) == np.float64 else np.float64
        return np.empty(shape, dtype=draw(st.sampled_from([other, np.int64]))), TypeError
    if how == "list":
        return [0.0] * (shape[0] if shape else 1), TypeError
    a = np.empty(shape, dtype=dtype)
    if how == "F":
        if a.ndim < 2 or a.flags.c_contiguous:  # F order of a vector is C order
            return a, None
        return np.asfortranarray(a), ValueError
    a.flags.writeable = False
    return a, ValueError


# ------------------------------------------------------------------------------------------
# Values of a file header (nnfast.load)
# ------------------------------------------------------------------------------------------

JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False),
        st.text(max_size=5),
    ),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)
