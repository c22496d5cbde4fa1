"""The training driver: whole epochs of mini-batch SGD, Adam or Rprop without the GIL.

`train` runs up to `epochs` epochs. For every batch it gathers the rows named by `order`,
runs forward, loss and backward into one gradient buffer, adds the l2 term and applies the
optimizer update to the flat parameter buffer. All memory is allocated before the first
epoch. Two ways to run the epochs:

- with a hook: each epoch is one `nogil` region; between epochs the GIL is taken back to
  check for Ctrl-C and to call `epoch_end(epoch, loss)`, the Python side's hook (history,
  validation, callback, next shuffle); it returns False to stop, and it may change the
  hyperparameters in `hyper` (a learning-rate schedule) for the next epoch;
- without a hook (`epoch_end` None): all epochs run in one `nogil` region, each epoch's
  loss is written to `losses`, and the loop itself does what the scikit-learn estimators'
  hook would do between epochs: draw the next row order from a NumPy `RandomState`
  exactly as `sklearn.utils.shuffle` does, and stop when the training loss stopped
  improving (`rule`). Small networks train several epochs in the time a GIL round trip
  takes, and threads training separate networks then never wait for each other.

Within a long epoch, Ctrl-C is
also checked about every SIGNAL_CHECK_SECONDS: it stops the epoch and restores the
parameters it started from. The optimizer state (`state1`,
`state2`, `step`) belongs to the caller, so training can continue across calls. The
parameters at the start of the last epoch are kept in `backup`, so the caller can restore
them when that epoch diverged.
"""

from cpython.exc cimport PyErr_CheckSignals
from cpython.pycapsule cimport PyCapsule_GetPointer
from cython cimport floating
from libc.float cimport DBL_MAX
from libc.math cimport NAN, isfinite, pow, sqrt
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from contextlib import nullcontext

from nnfast._kernels cimport (
    adam_update,
    all_finite_values,
    loss_target_width,
    rprop_update,
    sgd_update,
)
from nnfast._network cimport (
    Layout,
    NetLayout,
    check_target_shape,
    network_loss_grad,
    weight_penalty,
    workspace_size,
)

cdef extern from "numpy/random/bitgen.h":
    # NumPy's C interface to its bit generators (numpy >= 2 is a build requirement).
    ctypedef struct bitgen_t:
        void* state
        uint64_t (*next_uint64)(void* st) noexcept nogil
        uint32_t (*next_uint32)(void* st) noexcept nogil

cdef extern from "Python.h":
    # Declared without an exception clause: the caller looks at the result itself.
    int run_signal_handlers "PyErr_CheckSignals" ()

OPTIMIZER_CODES = {"sgd": 0, "adam": 1, "rprop": 2}
# Layout of the `hyper` vector handed to `train` (the epoch hook may rewrite it).
# loss_scale multiplies every batch's data loss and its gradient (1 for MLP.fit; the
# scikit-learn estimators use it for their sums over outputs and squared_error's 1/2).
# l2_batch_scaled != 0 divides each batch's l2 coefficient by the batch's total sample
# weight (scikit-learn's alpha: 0.5 alpha ΣW² / batch size); 0 uses l2 as it is.
HYPER_FIELDS = ("lr", "l2", "momentum", "beta1", "beta2", "eps",
                "eta_plus", "eta_minus", "step_min", "step_max", "loss_scale",
                "l2_batch_scaled")

cdef enum:
    OPT_SGD = 0
    OPT_ADAM = 1
    OPT_RPROP = 2


cdef struct Hyper:
    int loss
    int optimizer
    bint nesterov
    double lr
    double l2
    double momentum
    double beta1
    double beta2
    double eps
    double eta_plus
    double eta_minus
    double step_min
    double step_max
    double loss_scale
    bint l2_batch_scaled


cdef void read_hyper(Hyper* h, const double[::1] hyper) noexcept nogil:
    h.lr, h.l2, h.momentum = hyper[0], hyper[1], hyper[2]
    h.beta1, h.beta2, h.eps = hyper[3], hyper[4], hyper[5]
    h.eta_plus, h.eta_minus, h.step_min, h.step_max = hyper[6], hyper[7], hyper[8], hyper[9]
    h.loss_scale, h.l2_batch_scaled = hyper[10], hyper[11] != 0


cdef void optimizer_step(const NetLayout* net, const Hyper* h, floating* params,
                         floating* grad, floating* state1, floating* state2,
                         long long step) noexcept nogil:
    """Apply update number `step` (from 1) of the chosen optimizer to params."""
    cdef double lr_t
    if h.optimizer == OPT_SGD:
        sgd_update(params, state1, grad, net.n_params, h.lr, h.momentum, h.nesterov)
    elif h.optimizer == OPT_ADAM:
        lr_t = h.lr * sqrt(1 - pow(h.beta2, <double>step)) / (1 - pow(h.beta1, <double>step))
        adam_update(params, state1, state2, grad, net.n_params, lr_t, h.beta1, h.beta2, h.eps)
    else:
        rprop_update(params, state1, state2, grad, net.n_params, h.eta_plus, h.eta_minus,
                     h.step_min, h.step_max)


# Within an epoch, Python's signal handlers (Ctrl-C) run at most this often (every
# SIGNAL_CHECK_BATCHES batches the clock is read; the GIL is taken only when the time is up).
cdef double SIGNAL_CHECK_SECONDS = 0.1
cdef Py_ssize_t SIGNAL_CHECK_BATCHES = 8


cdef double monotonic_seconds() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_MONOTONIC, &t)
    return t.tv_sec + 1e-9 * t.tv_nsec


cdef bint signal_raised() noexcept nogil:
    """Run Python's signal handlers (taking the GIL); True when one raised (the exception is
    then set, for the caller to propagate)."""
    with gil:
        return run_signal_handlers() != 0


cdef int propagate_exception() except -1:
    """Raise the exception already set (by a signal handler)."""
    return -1


cdef double rescaled_weights(floating* out, const floating* w, Py_ssize_t n) noexcept nogil:
    """out = w / max(w) (out may be w); returns the sum of out."""
    cdef Py_ssize_t r
    cdef double wmax = 0, total = 0
    for r in range(n):
        wmax = max(wmax, <double>w[r])
    for r in range(n):
        out[r] = <floating>(w[r] / wmax)
        total += out[r]
    return total


cdef bitgen_t* bitgen_of(rng) except NULL:
    """The C bit generator behind a ``numpy.random.RandomState`` (its MT19937)."""
    return <bitgen_t*>PyCapsule_GetPointer(rng._bit_generator.capsule, "BitGenerator")


cdef uint64_t random_interval(bitgen_t* rng, uint64_t max) noexcept nogil:
    """A uniform integer in [0, max], drawn as NumPy's legacy `random_interval` draws it
    (the smallest bit mask covering max, rejection of draws above max)."""
    cdef uint64_t mask = max, value
    if max == 0:
        return 0
    mask |= mask >> 1
    mask |= mask >> 2
    mask |= mask >> 4
    mask |= mask >> 8
    mask |= mask >> 16
    mask |= mask >> 32
    if max <= 0xffffffffUL:
        value = rng.next_uint32(rng.state) & mask
        while value > max:
            value = rng.next_uint32(rng.state) & mask
    else:
        value = rng.next_uint64(rng.state) & mask
        while value > max:
            value = rng.next_uint64(rng.state) & mask
    return value


cdef void sklearn_shuffle(bitgen_t* rng, Py_ssize_t* order, Py_ssize_t* scratch,
                          Py_ssize_t n) noexcept nogil:
    """order = sklearn.utils.shuffle(order, random_state=rs), drawing what it draws:
    `p = arange(n); rs.shuffle(p); order = order[p]` (RandomState.shuffle is a
    Fisher-Yates pass from the last element down)."""
    cdef Py_ssize_t i, j, t
    for i in range(n):
        scratch[i] = i
    for i in range(n - 1, 0, -1):
        j = <Py_ssize_t>random_interval(rng, <uint64_t>i)
        t = scratch[i]
        scratch[i] = scratch[j]
        scratch[j] = t
    for i in range(n):
        scratch[i] = order[scratch[i]]
    memcpy(order, scratch, n * sizeof(Py_ssize_t))


cdef double run_epoch(const NetLayout* net, const Hyper* h, floating* params, floating* grad,
                      floating* state1, floating* state2, long long* step,
                      const floating* X, const floating* Y, const floating* w,
                      const Py_ssize_t* order, bint gather, Py_ssize_t n,
                      Py_ssize_t batch, floating* Xb, floating* Yb, floating* wb,
                      floating* ws, bint* interrupted) noexcept nogil:
    """One pass over the data; returns the batch losses' mean weighted by batch weight.

    X (n, n_in), Y (n, y_cols) with y_cols = loss_target_width(h.loss, n_out), w (n,) or
    NULL, order (n,) row indices. Without `gather` the order is 0..n-1 and batches are read
    in place. Xb, Yb, wb hold one gathered batch.
    A signal handler that raises (Ctrl-C) stops the pass early: `interrupted` is set, the
    exception is pending and the parameters are those of an unfinished epoch.
    """
    cdef double next_check = monotonic_seconds() + SIGNAL_CHECK_SECONDS
    cdef Py_ssize_t start, size, r, c, idx
    cdef Py_ssize_t n_in = net.n_in, y_cols = loss_target_width(h.loss, net.n_out)
    cdef const floating* xb
    cdef const floating* yb
    cdef const floating* wbp
    cdef double wsum, batch_weight, value, l2, epoch_sum = 0, epoch_weight = 0
    cdef Py_ssize_t n_batches = (n + batch - 1) // batch, b
    for b in range(n_batches):
        start = b * batch
        size = min(batch, n - start)
        if gather:
            # Plain loops, not memcpy: rows of a few values (n_in = 1 is common) would cost
            # a library call each.
            for r in range(size):
                idx = order[start + r]
                for c in range(n_in):
                    Xb[r * n_in + c] = X[idx * n_in + c]
                for c in range(y_cols):
                    Yb[r * y_cols + c] = Y[idx * y_cols + c]
                if w != NULL:
                    wb[r] = w[idx]
            xb, yb, wbp = Xb, Yb, (wb if w != NULL else NULL)
        else:
            xb, yb, wbp = X + start * n_in, Y + start * y_cols, (w + start if w != NULL else NULL)
        if wbp != NULL:
            wsum = 0
            for r in range(size):
                wsum += wbp[r]
        else:
            wsum = size
        batch_weight = wsum
        if wbp != NULL and wsum > 0 and not (h.loss_scale / wsum <= DBL_MAX):
            # 1 / Σw overflows (subnormal weights such as 5e-324): the batch's weighted mean
            # is the same with its weights divided by their maximum.
            wsum = rescaled_weights(wb, wbp, size)
            wbp = wb
        # The losses are linear in inv_weight_sum: passing loss_scale / wsum scales the
        # data loss and its gradient at no cost.
        value = network_loss_grad(net, params, xb, yb, wbp, size, batch,
                                  (h.loss_scale / wsum) if wsum > 0 else 0.0, h.loss, grad,
                                  False, ws)
        l2 = (h.l2 / batch_weight) if h.l2_batch_scaled and batch_weight > 0 else h.l2
        if l2 > 0:
            value += weight_penalty(net, params, grad, l2)
        step[0] += 1
        optimizer_step(net, h, params, grad, state1, state2, step[0])
        epoch_sum += value * batch_weight
        epoch_weight += batch_weight
        if b % SIGNAL_CHECK_BATCHES == SIGNAL_CHECK_BATCHES - 1 and b + 1 < n_batches:
            if monotonic_seconds() >= next_check:
                if signal_raised():
                    interrupted[0] = True
                    return NAN
                next_check = monotonic_seconds() + SIGNAL_CHECK_SECONDS
    return epoch_sum / epoch_weight


def train(Layout layout, floating[::1] params, const floating[:, ::1] X,
          const floating[:, ::1] Y, const floating[::1] w, Py_ssize_t[::1] order,
          bint gather, Py_ssize_t batch_size, Py_ssize_t epochs, int loss, int optimizer,
          bint nesterov, const double[::1] hyper, floating[::1] state1, floating[::1] state2,
          long long[::1] step, floating[::1] backup, epoch_end, double[::1] losses=None,
          double[::1] rule=None, rng=None):
    """Train in place for up to `epochs` epochs; returns the number of epochs run.

    params, state1, state2, backup (n_params,); X (n, n_in); Y (n, n_out), or (n, n_out / 2)
    for gaussian_nll; w (n,) or None; order (n,) row order of the next epoch (the hook may
    rewrite it between epochs);
    hyper (len(HYPER_FIELDS),) read again before every epoch; step (1,) counts optimizer
    updates across calls. state1/state2: SGD velocity / unused, Adam's first / second
    moments, or Rprop's step sizes / previous gradient.

    Without a hook (`epoch_end` None), `losses` (epochs,) receives each epoch's loss; a
    NaN or infinite loss (diverged) ends the run. With `rng` (a
    ``numpy.random.RandomState``) each epoch first shuffles `order` as
    ``sklearn.utils.shuffle(order, random_state=rng)`` would.
    `rule` = [tol, patience, best, count] is scikit-learn's stopping rule on the training
    loss, updated in place: after each epoch, count grows by one unless the loss is below
    best - tol (then it is reset to 0), best becomes the lowest loss so far, and the run
    ends once count > patience.
    """
    cdef const NetLayout* net = &layout.c
    cdef Py_ssize_t n = X.shape[0], batch = min(batch_size, X.shape[0]), epoch, done = 0
    cdef Py_ssize_t y_cols
    cdef Py_ssize_t n_params = net.n_params
    cdef Hyper h
    cdef double epoch_loss, next_check
    cdef const floating* w_ptr = NULL if w is None else &w[0]
    cdef floating* grad
    cdef floating* ws
    cdef floating* Xb
    cdef floating* Yb
    cdef floating* wb
    cdef Py_ssize_t* scratch = NULL
    cdef bitgen_t* bitgen = NULL
    cdef size_t total
    cdef bint interrupted = False, hooked = epoch_end is not None

    if hyper.shape[0] != len(HYPER_FIELDS) or step.shape[0] != 1:
        raise ValueError("train: hyper must hold HYPER_FIELDS and step one counter")
    if optimizer not in (OPT_SGD, OPT_ADAM, OPT_RPROP):
        raise ValueError(f"train: unknown optimizer code {optimizer}")
    check_target_shape(Y.shape[0], Y.shape[1], loss, net, n)
    if not hooked and (losses is None or losses.shape[0] < epochs):
        raise ValueError("train: without epoch_end, losses must hold one value per epoch")
    if rule is not None and rule.shape[0] != 4:
        raise ValueError("train: rule must be [tol, patience, best, count]")
    if rng is not None:
        if hooked or not gather:
            raise ValueError("train: rng shuffles only without epoch_end and with gather")
        bitgen = bitgen_of(rng)
    h.loss = loss
    h.optimizer = optimizer
    h.nesterov = nesterov

    # One block: gradient, workspace, and one gathered batch of X, Y and w.
    y_cols = loss_target_width(loss, net.n_out)
    total = n_params + workspace_size(net, batch) + batch * (net.n_in + y_cols + 1)
    grad = <floating*>malloc(total * sizeof(floating))
    if bitgen != NULL:
        scratch = <Py_ssize_t*>malloc(n * sizeof(Py_ssize_t))
    if grad == NULL or (bitgen != NULL and scratch == NULL):
        free(grad)
        free(scratch)
        raise MemoryError(f"nnfast: cannot allocate the training workspace ({total} values)")
    ws = grad + n_params
    Xb = ws + workspace_size(net, batch)
    Yb = Xb + batch * net.n_in
    wb = Yb + batch * y_cols
    try:
        if hooked:
            # range(epochs), not range(1, epochs + 1): epochs + 1 overflows for sys.maxsize.
            for epoch in range(epochs):
                PyErr_CheckSignals()
                read_hyper(&h, hyper)
                with nogil:
                    epoch_loss = checked_epoch(net, &h, &params[0], grad, &state1[0],
                                               &state2[0], &step[0], &X[0, 0], &Y[0, 0],
                                               w_ptr, &order[0], gather, n, batch, Xb, Yb,
                                               wb, ws, &backup[0], &interrupted)
                if interrupted:
                    propagate_exception()
                done += 1
                if epoch_end(epoch + 1, epoch_loss) is False:
                    break
            return done
        PyErr_CheckSignals()
        read_hyper(&h, hyper)
        with rng._bit_generator.lock if rng is not None else nullcontext():
            with nogil:
                next_check = monotonic_seconds() + SIGNAL_CHECK_SECONDS
                for epoch in range(epochs):
                    if bitgen != NULL:
                        sklearn_shuffle(bitgen, &order[0], scratch, n)
                    epoch_loss = checked_epoch(net, &h, &params[0], grad, &state1[0],
                                               &state2[0], &step[0], &X[0, 0], &Y[0, 0],
                                               w_ptr, &order[0], gather, n, batch, Xb, Yb,
                                               wb, ws, &backup[0], &interrupted)
                    if interrupted:
                        break
                    losses[done] = epoch_loss
                    done += 1
                    if not isfinite(epoch_loss):
                        break
                    if rule is not None and stopping_rule(&rule[0], epoch_loss):
                        break
                    if monotonic_seconds() >= next_check:
                        if signal_raised():
                            interrupted = True
                            break
                        next_check = monotonic_seconds() + SIGNAL_CHECK_SECONDS
        if interrupted:
            propagate_exception()
        return done
    finally:
        free(grad)
        free(scratch)


cdef bint stopping_rule(double* rule, double value) noexcept nogil:
    """scikit-learn's rule on the training loss; rule = [tol, patience, best, count]."""
    if value > rule[2] - rule[0]:
        rule[3] += 1
    else:
        rule[3] = 0
    if value < rule[2]:
        rule[2] = value
    return rule[3] > rule[1]


cdef double checked_epoch(const NetLayout* net, const Hyper* h, floating* params,
                          floating* grad, floating* state1, floating* state2, long long* step,
                          const floating* X, const floating* Y, const floating* w,
                          const Py_ssize_t* order, bint gather, Py_ssize_t n, Py_ssize_t batch,
                          floating* Xb, floating* Yb, floating* wb, floating* ws,
                          floating* backup, bint* interrupted) noexcept nogil:
    """One epoch from a backup of the parameters: its loss, NaN when the loss or the new
    weights are not finite; after Ctrl-C within it, the parameters it started from."""
    cdef double value
    memcpy(backup, params, net.n_params * sizeof(floating))
    value = run_epoch(net, h, params, grad, state1, state2, step, X, Y, w, order, gather, n,
                      batch, Xb, Yb, wb, ws, interrupted)
    if interrupted[0]:
        memcpy(params, backup, net.n_params * sizeof(floating))
        return NAN
    # The loss is measured before each step: the last step can overflow the weights behind
    # a finite loss. Either way the epoch reports NaN.
    if not all_finite_values(params, net.n_params):
        return NAN
    return value


def shuffle_like_sklearn(rng, Py_ssize_t[::1] order):
    """In place: order = sklearn.utils.shuffle(order, random_state=rng) for a
    ``numpy.random.RandomState`` rng (the draws `train` makes before each epoch)."""
    cdef bitgen_t* bitgen = bitgen_of(rng)
    cdef Py_ssize_t n = order.shape[0]
    cdef Py_ssize_t* scratch = <Py_ssize_t*>malloc(max(n, 1) * sizeof(Py_ssize_t))
    if scratch == NULL:
        raise MemoryError(f"nnfast: cannot allocate {n} indices")
    try:
        with rng._bit_generator.lock, nogil:
            sklearn_shuffle(bitgen, &order[0] if n else NULL, scratch, n)
    finally:
        free(scratch)
