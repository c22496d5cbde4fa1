"""The compiled entry points re-check every size they rely on and the alignment of every
pointer they pass on, and raise ValueError naming the argument.

These are the last guard behind nnfast's Python validation: they are called here directly
with exactly one argument wrong. Without them each call below reads or writes outside an
array (an estimator refitted on data of another width while another thread predicts once
ran ``X`` of one column through a network of 64 inputs: a heap overflow) or loads a value
from a misaligned address (undefined behaviour in C).
"""

import numpy as np
import pytest

import nnfast
from nnfast import _kernel_entry, _network_entry
from nnfast._spec import ACTIVATION_CODES, LOSS_CODES

DTYPES = (np.float64, np.float32)


def misaligned(array, offset=1):
    """A C-contiguous, writable copy of ``array`` that starts ``offset`` bytes past an
    aligned address (0 < offset < itemsize), as ``np.frombuffer(buf, offset=1)`` gives."""
    array = np.ascontiguousarray(array)
    buffer = np.zeros(array.nbytes + 128, dtype=np.uint8)
    start = (-buffer.ctypes.data) % 64 + offset
    view = buffer[start : start + array.nbytes].view(array.dtype).reshape(array.shape)
    view[...] = array
    assert not view.flags.aligned and view.flags.c_contiguous and view.flags.writeable
    return view


def offsets(dtype):
    """A byte offset of 1 and one of half an element (a float64 view at offset 4)."""
    return (1, np.dtype(dtype).itemsize // 2)


@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def case(request):
    """A network (3 inputs, 2 outputs) and valid arguments for every _network entry point."""
    dtype = request.param
    net = nnfast.MLP([3, 5, 2], activation="tanh", dtype=dtype, seed=0)
    rng = np.random.default_rng(0)
    n = 4
    arrays = {
        "params": net.params.copy(),
        "X": rng.uniform(-1, 1, (n, 3)).astype(dtype),
        "out": np.empty((n, 2), dtype),
        "J": np.empty((n, 2, 3), dtype),
        "Y": rng.uniform(-1, 1, (n, 2)).astype(dtype),
        "w": np.ones(n, dtype),
        "grad": np.empty(net.n_params, dtype),
    }
    return net, arrays


def call(entry, net, a):
    layout, mse = net._compiled.layout, LOSS_CODES["mse"]
    if entry == "predict":
        return _network_entry.predict(layout, a["params"], a["X"], a["out"])
    if entry == "input_grad":
        return _network_entry.input_grad(layout, a["params"], a["X"], a["J"])
    if entry == "loss":
        return _network_entry.loss(
            layout, a["params"], a["X"], a["Y"], a["w"], a.get("loss", mse), 0.25
        )
    return _network_entry.loss_and_grad(
        layout, a["params"], a["X"], a["Y"], a["w"], a.get("loss", mse), 0.25, a["grad"]
    )


ENTRIES = ("predict", "input_grad", "loss", "loss_and_grad")
USES = {
    "predict": ("params", "X", "out"),
    "input_grad": ("params", "X", "J"),
    "loss": ("params", "X", "Y", "w"),
    "loss_and_grad": ("params", "X", "Y", "w", "grad"),
}


def wrong_sizes(a, n_params):
    """(argument, replacement) pairs: each one size the entry points rely on, wrong."""
    dtype = a["X"].dtype
    return [
        ("params", np.zeros(n_params - 1, dtype)),
        ("params", np.zeros(n_params + 1, dtype)),
        ("X", np.zeros((4, 2), dtype)),
        ("X", np.zeros((4, 64), dtype)),
        ("out", np.empty((5, 2), dtype)),
        ("out", np.empty((3, 2), dtype)),
        ("out", np.empty((4, 1), dtype)),
        ("out", np.empty((4, 3), dtype)),
        ("J", np.empty((5, 2, 3), dtype)),
        ("J", np.empty((4, 3, 3), dtype)),
        ("J", np.empty((4, 2, 2), dtype)),
        ("J", np.empty((4, 2, 4), dtype)),
        ("Y", np.zeros((5, 2), dtype)),
        ("Y", np.zeros((4, 1), dtype)),
        ("Y", np.zeros((4, 3), dtype)),
        ("w", np.ones(3, dtype)),
        ("w", np.ones(5, dtype)),
        ("grad", np.empty(n_params - 1, dtype)),
        ("grad", np.empty(n_params + 1, dtype)),
    ]


@pytest.mark.parametrize("entry", ENTRIES)
def test_valid_arguments_run(case, entry):
    net, a = case
    call(entry, net, a)
    if entry == "predict":
        np.testing.assert_array_equal(a["out"], net.predict(a["X"]))


@pytest.mark.parametrize("entry", ENTRIES)
def test_every_size_is_checked_against_the_layout_and_the_other_buffers(case, entry):
    net, a = case
    checked = 0
    for name, bad in wrong_sizes(a, net.n_params):
        if name not in USES[entry]:
            continue
        before = net.params.copy()
        with pytest.raises(ValueError, match=f"^{name}: expected") as info:
            call(entry, net, {**a, name: bad})
        assert str(bad.shape[-1]) in str(info.value) or str(bad.shape[0]) in str(info.value)
        np.testing.assert_array_equal(net.params, before)
        checked += 1
    assert checked >= 4


@pytest.mark.parametrize("entry", ["loss", "loss_and_grad"])
def test_loss_codes_out_of_range_are_refused(case, entry):
    net, a = case
    for code in (-1, max(LOSS_CODES.values()) + 1):
        with pytest.raises(ValueError, match=f"^loss: expected a code in .*got {code}"):
            call(entry, net, {**a, "loss": code})


def test_gaussian_nll_targets_have_half_the_output_columns(case):
    net, a = case
    code = LOSS_CODES["gaussian_nll"]
    call("loss", net, {**a, "Y": a["Y"][:, :1].copy(), "loss": code})
    with pytest.raises(ValueError, match=r"^Y: expected shape \(4, 1\), got \(4, 2\)"):
        call("loss", net, {**a, "loss": code})


@pytest.mark.parametrize("entry", ENTRIES)
def test_every_pointer_is_checked_for_alignment(case, entry):
    net, a = case
    for name in USES[entry]:
        for offset in offsets(a["X"].dtype):
            with pytest.raises(ValueError, match=f"^{name}: expected an array aligned"):
                call(entry, net, {**a, name: misaligned(a[name], offset)})


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_missing_layout_is_a_type_error(case, entry):
    _, a = case
    fake = type("Fake", (), {"_compiled": type("NoLayout", (), {"layout": None})()})()
    with pytest.raises(TypeError):
        call(entry, fake, a)


# ------------------------------------------------------------------------------------------
# nnfast._kernel_entry: the *_into functions
# ------------------------------------------------------------------------------------------


def kernel_calls(dtype):
    """name -> (function, keyword arguments) of every *_into function, valid."""
    rng = np.random.default_rng(1)

    def r(*shape):
        return rng.uniform(-1, 1, shape).astype(dtype)

    n, m, k, pieces = 3, 4, 5, 2
    act = ACTIVATION_CODES
    return {
        "matvec_into": (
            lambda y, A, x: _kernel_entry.matvec_into(y, A, x),
            dict(y=r(m), A=r(m, k), x=r(k)),
        ),
        "matmul_into": (
            lambda C, A, B: _kernel_entry.matmul_into(C, A, B),
            dict(C=r(n, m), A=r(n, k), B=r(k, m)),
        ),
        "dense_forward_into": (
            lambda out, Z, X, W, b: _kernel_entry.dense_forward_into(
                out, Z, X, W, b, act["maxout"], 0.1, 1.0, pieces
            ),
            dict(out=r(n, m), Z=r(n, m * pieces), X=r(n, k), W=r(k, m * pieces), b=r(m * pieces)),
        ),
        "activation_forward_into": (
            lambda A, Z: _kernel_entry.activation_forward_into(
                act["maxout"], A, Z, 0.1, 1.0, pieces
            ),
            dict(A=r(n, m), Z=r(n, m * pieces)),
        ),
        "activation_backward_into": (
            lambda dZ, Z, A, dA: _kernel_entry.activation_backward_into(
                act["maxout"], dZ, Z, A, dA, 0.1, 1.0, pieces
            ),
            dict(dZ=r(n, m * pieces), Z=r(n, m * pieces), A=r(n, m), dA=r(n, m)),
        ),
        "loss_delta_into": (
            lambda dZ, Z, A, Y, w: _kernel_entry.loss_delta_into(
                LOSS_CODES["mse"], act["identity"], dZ, Z, A, Y, w, 1 / n
            ),
            dict(dZ=r(n, m), Z=r(n, m), A=r(n, m), Y=r(n, m), w=np.ones(n, dtype)),
        ),
        "sgd_update_into": (
            lambda params, velocity, grad: _kernel_entry.sgd_update_into(
                params, velocity, grad, 0.1, 0.9, False
            ),
            dict(params=r(k), velocity=r(k), grad=r(k)),
        ),
        "adam_update_into": (
            lambda params, m, v, grad: _kernel_entry.adam_update_into(
                params, m, v, grad, 0.1, 0.9, 0.999, 1e-8
            ),
            dict(params=r(k), m=r(k), v=np.abs(r(k)), grad=r(k)),
        ),
        "rprop_update_into": (
            lambda params, step, prev_grad, grad: _kernel_entry.rprop_update_into(
                params, step, prev_grad, grad, 1.2, 0.5, 1e-6, 50.0
            ),
            dict(params=r(k), step=np.abs(r(k)), prev_grad=r(k), grad=r(k)),
        ),
        "fastmath_into": (
            lambda out, x: _kernel_entry.fastmath_into("tanh", out, x),
            dict(out=r(k), x=r(k)),
        ),
        "all_finite": (lambda x: _kernel_entry.all_finite(x), dict(x=r(k))),
    }


def grown(array, axis):
    shape = list(array.shape)
    shape[axis] += 1
    return np.zeros(shape, array.dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", list(kernel_calls(np.float64)))
def test_kernel_entry_points_check_alignment_and_sizes(name, dtype):
    function, arrays = kernel_calls(dtype)[name]
    function(**arrays)
    for arg, value in arrays.items():
        for offset in offsets(dtype):
            with pytest.raises(ValueError, match=f"^{arg}: expected an array aligned"):
                function(**{**arrays, arg: misaligned(value, offset)})
    if name in ("fastmath_into", "all_finite"):
        return
    # Each argument in turn one size too large (the error names it, or the argument whose
    # shape no longer matches it).
    for arg, value in arrays.items():
        for axis in range(value.ndim):
            with pytest.raises(ValueError, match=f"^({arg}|[A-Za-z_]+): expected"):
                function(**{**arrays, arg: grown(value, axis)})


def test_kernel_activation_codes_and_pieces_are_checked():
    A, Z = np.zeros((2, 3)), np.zeros((2, 6))
    with pytest.raises(ValueError, match="^activation: expected a code"):
        _kernel_entry.activation_forward_into(99, A, Z, 0.1, 1.0, 2)
    with pytest.raises(ValueError, match="^pieces: expected 1"):
        _kernel_entry.activation_forward_into(ACTIVATION_CODES["tanh"], A, Z, 0.1, 1.0, 2)
    with pytest.raises(ValueError, match="^pieces: expected 1"):
        _kernel_entry.activation_forward_into(ACTIVATION_CODES["maxout"], A, Z[:, :0], 0.1, 1.0, 0)
    with pytest.raises(ValueError, match="^loss: expected a code"):
        _kernel_entry.loss_delta_into(7, 0, A, A, A, A, None, 1.0)
