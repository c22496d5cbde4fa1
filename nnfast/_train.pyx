"""The training driver: whole epochs of mini-batch SGD, Adam or Rprop without the GIL.

`train` runs up to `epochs` epochs. For every batch it gathers the rows named by the row
order (of a dense X, or of CSR rows, densified by nnfast/_csr.pyx's gather), runs forward,
loss and backward into one gradient buffer, adds the l2 term and applies the optimizer
update to the flat parameter buffer; a batch of one row with plain SGD and MSE is one call
of nnfast/src/row_step.h instead, with the same bits (row_step_table says when). All
memory is allocated before the first epoch. Two ways to run the epochs:

- with a hook: each epoch is one `nogil` region; between epochs the GIL is taken back to
  check for Ctrl-C and to call `epoch_end(epoch, loss)`, the Python side's hook (history,
  validation, callback, next shuffle); it returns False to stop, and it may change the
  optimizer's `Hyperparameters` (a learning-rate schedule) for the next epoch;
- without a hook (`epoch_end` None): all epochs run in one `nogil` region, each epoch's
  loss is written to `losses`, and the loop itself does what the scikit-learn estimators'
  hook would do between epochs: draw the next row order from a NumPy `RandomState`
  exactly as `sklearn.utils.shuffle` does, and stop when the training loss stopped
  improving (a `StoppingRule`). Small networks train several epochs in the time a GIL
  round trip takes, and threads training separate networks then never wait for each other.

Within a long epoch, Ctrl-C is also checked about every SIGNAL_CHECK_SECONDS: it stops the
epoch and restores the parameters it started from. The optimizer's buffers and update
count belong to the caller (nnfast/_solvers.py), so training can continue across calls.
The parameters at the start of the last epoch are kept in `backup`, so the caller can
restore them when that epoch diverged.
"""

from cpython.exc cimport PyErr_CheckSignals, PyErr_Fetch, PyErr_Restore
from cpython.ref cimport PyObject
from cpython.pycapsule cimport PyCapsule_GetPointer
from cython cimport floating
from libc.float cimport DBL_MAX
from libc.math cimport INFINITY, NAN, isfinite, pow, sqrt
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from nnfast._csr cimport CsrRows, CsrSource, gather_rows, is_sparse_rows
from nnfast._kernels cimport (
    ACT_IDENTITY,
    ACT_RELU,
    ACT_TANH,
    LOSS_GAUSSIAN_NLL,
    LOSS_MSE,
    ROW_STEP_FIELDS,
    ROW_STEP_MAX_LAYERS,
    adam_update,
    all_finite_values,
    cache_aligned_free,
    cache_aligned_malloc,
    cache_lines_of,
    check_aligned,
    loss_target_width,
    row_step_runs,
    rprop_update,
    sgd_row_step,
    sgd_update,
)
from nnfast._network cimport Layer, Layout, NetLayout
from nnfast._team cimport Update, team_loss_grad, team_size, team_workspace_size

cdef extern from "numpy/random/bitgen.h":
    # NumPy's C interface to its bit generators (numpy >= 2 is a build requirement).
    ctypedef struct bitgen_t:
        void* state
        uint64_t (*next_uint64)(void* st) noexcept nogil
        uint32_t (*next_uint32)(void* st) noexcept nogil

cdef extern from "Python.h":
    # Declared without an exception clause: the caller looks at the result itself.
    int run_signal_handlers "PyErr_CheckSignals" ()


cdef class Hyperparameters:
    """An optimizer's settings by name: SGD's lr, momentum, nesterov; Adam's lr, beta1,
    beta2, eps; Rprop's eta_plus, eta_minus, step_min, step_max (its initial step sizes
    are in its buffer). `train` reads them before every batch, so a learning-rate schedule
    set between epochs takes effect in the next one."""

    def __init__(self, int optimizer, *, double lr, bint nesterov=False, double momentum=0.9,
                 double beta1=0.9, double beta2=0.999, double eps=1e-8, double eta_plus=1.2,
                 double eta_minus=0.5, double step_min=1e-6, double step_max=50.0):
        if optimizer not in (OPT_SGD, OPT_ADAM, OPT_RPROP):
            raise ValueError(f"optimizer: expected an Optimizer code "
                             f"({OPT_SGD}, {OPT_ADAM} or {OPT_RPROP}), got {optimizer}")
        self.optimizer = optimizer
        self.lr, self.nesterov, self.momentum = lr, nesterov, momentum
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.eta_plus, self.eta_minus = eta_plus, eta_minus
        self.step_min, self.step_max = step_min, step_max


cdef class Objective:
    """What each batch step minimises, ``loss_scale · data_loss + 0.5 · l2' · ΣW²``
    (l2' = l2 / the batch's total sample weight when l2_batch_scaled, else l2).

    loss_scale is 1 for MLP.fit; the scikit-learn estimators use it for their sums over
    outputs and squared_error's 1/2, and l2_batch_scaled for alpha (0.5 alpha ΣW² / batch size).
    """

    def __init__(self, int loss, *, double loss_scale=1.0, double l2=0.0,
                 bint l2_batch_scaled=False):
        if not LOSS_MSE <= loss <= LOSS_GAUSSIAN_NLL:
            raise ValueError(f"loss: expected a Loss code ({LOSS_MSE} to "
                             f"{LOSS_GAUSSIAN_NLL}), got {loss}")
        self.loss = loss
        self.loss_scale, self.l2, self.l2_batch_scaled = loss_scale, l2, l2_batch_scaled


cdef class StoppingRule:
    """scikit-learn's stopping rule on a value to minimise (the training loss, or minus
    the validation score): after each epoch `count` grows by one unless the value is below
    ``best - tol`` (then it is reset to 0), `best` becomes the lowest value so far, and the
    rule fires once ``count > patience``."""

    def __init__(self, double tol, double patience, double best=INFINITY,
                 Py_ssize_t count=0):
        self.tol, self.patience, self.best, self.count = tol, patience, best, count

    def update(self, double value):
        """Apply the rule to one epoch's value; True when it fires."""
        return rule_update(self, value)

    @property
    def fired(self):
        """Whether count > patience (the run should stop, or change its learning rate)."""
        return rule_fired(self)


cdef inline bint rule_fired(StoppingRule rule) noexcept nogil:
    return rule.count > rule.patience


cdef bint rule_update(StoppingRule rule, double value) noexcept nogil:
    if value > rule.best - rule.tol:
        rule.count += 1
    else:
        rule.count = 0
    if value < rule.best:
        rule.best = value
    return rule_fired(rule)


cdef struct OptimizerState:
    # One update of an optimizer: its settings (read from a Hyperparameters before each
    # batch), the arrays it reads and writes (n_params each), and their dtype.
    int optimizer
    bint nesterov, is_double
    double lr, lr_t, momentum, beta1, beta2, eps, eta_plus, eta_minus, step_min, step_max
    void* params
    void* grad
    void* buffer1
    void* buffer2


cdef void read_hyperparameters(OptimizerState* s, Hyperparameters h,
                               long long step) noexcept nogil:
    """The settings of update number `step` (from 1): Adam's lr_t = lr sqrt(1 - beta2^t) /
    (1 - beta1^t)."""
    s.optimizer, s.nesterov = h.optimizer, h.nesterov
    s.lr, s.momentum, s.beta1, s.beta2, s.eps = h.lr, h.momentum, h.beta1, h.beta2, h.eps
    s.eta_plus, s.eta_minus = h.eta_plus, h.eta_minus
    s.step_min, s.step_max = h.step_min, h.step_max
    if s.optimizer == OPT_ADAM:
        s.lr_t = h.lr * sqrt(1 - pow(h.beta2, <double>step)) / (1 - pow(h.beta1, <double>step))


cdef void update_block(const OptimizerState* s, floating* params, floating* grad,
                       floating* buffer1, floating* buffer2, Py_ssize_t size) noexcept nogil:
    """The update of `size` parameters. buffer1 and buffer2: SGD's velocity (and nothing),
    Adam's first and second moments, Rprop's step sizes and previous gradient. Every
    parameter's update reads only its own values, so blocks of them can go to threads."""
    if s.optimizer == OPT_SGD:
        sgd_update(params, buffer1, grad, size, s.lr, s.momentum, s.nesterov)
    elif s.optimizer == OPT_ADAM:
        adam_update(params, buffer1, buffer2, grad, size, s.lr_t, s.beta1, s.beta2, s.eps)
    else:
        rprop_update(params, buffer1, buffer2, grad, size, s.eta_plus, s.eta_minus,
                     s.step_min, s.step_max)


cdef void apply_update(void* state, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    """nnfast._team's Update: the optimizer's update of the parameters [start, end)."""
    cdef OptimizerState* s = <OptimizerState*>state
    if s.is_double:
        update_block(s, <double*>s.params + start, <double*>s.grad + start,
                     <double*>s.buffer1 + start, <double*>s.buffer2 + start, end - start)
    else:
        update_block(s, <float*>s.params + start, <float*>s.grad + start,
                     <float*>s.buffer1 + start, <float*>s.buffer2 + start, end - start)


# Within an epoch, Python's signal handlers (Ctrl-C) run at most this often (every
# SIGNAL_CHECK_BATCHES batches the clock is read; the GIL is taken only when the time is up).
cdef double SIGNAL_CHECK_SECONDS = 0.1
cdef Py_ssize_t SIGNAL_CHECK_BATCHES = 8


cdef extern from "monotonic.h" nogil:
    # clock_gettime(CLOCK_MONOTONIC) on POSIX, QueryPerformanceCounter on Windows
    double monotonic_seconds "nnf_monotonic_seconds"() noexcept


cdef bint signal_raised() noexcept nogil:
    """Run Python's signal handlers (taking the GIL); True when one raised (the exception is
    then set, for the caller to propagate)."""
    with gil:
        return run_signal_handlers() != 0


cdef int propagate_exception() except -1:
    """Raise the exception already set (by a signal handler)."""
    return -1


cdef int release_keeping_exception(lock) except -1:
    """lock.release() while an exception may be set (by a signal handler): it is kept
    aside for the call, which would otherwise fail with SystemError, then set again."""
    cdef PyObject* kind
    cdef PyObject* value
    cdef PyObject* traceback
    PyErr_Fetch(&kind, &value, &traceback)
    lock.release()  # (a lock this thread holds releases without error)
    PyErr_Restore(kind, value, traceback)
    return 0


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
    if n > 0:  # memcpy's pointers must be valid even for 0 bytes; order is NULL when n == 0
        memcpy(order, scratch, n * sizeof(Py_ssize_t))


cdef bint row_step_table(const NetLayout* net, Objective objective, Hyperparameters h,
                         Py_ssize_t batch, int team, const CsrRows* csr,
                         Py_ssize_t* table) noexcept nogil:
    """Whether this epoch's steps take sgd_row_step (nnfast/src/row_step.h), which does a
    batch of one row in one call with the general path's bits: one thread, dense rows,
    SGD (plain, momentum or Nesterov), MSE without l2, identity, tanh or relu hidden layers
    and an identity output, while row_step_runs(). If so, fills `table` (ROW_STEP_FIELDS
    values per layer, in row_step.h's order)."""
    cdef Py_ssize_t l
    cdef const Layer* layer
    if not (batch == 1 and team == 1 and csr == NULL and h.optimizer == OPT_SGD
            and objective.loss == LOSS_MSE and not objective.l2 > 0
            and net.n_layers <= ROW_STEP_MAX_LAYERS
            and net.layers[net.n_layers - 1].activation == ACT_IDENTITY
            and row_step_runs()):
        return False
    for l in range(net.n_layers):
        layer = &net.layers[l]
        if layer.activation not in (ACT_IDENTITY, ACT_TANH, ACT_RELU):
            return False
        table[0], table[1] = layer.n_in, layer.width
        table[2], table[3] = layer.w_offset, layer.b_offset
        table[4], table[5], table[6] = layer.z_offset, layer.a_offset, layer.activation
        table += ROW_STEP_FIELDS
    return True


cdef Py_ssize_t workspace_rows(Py_ssize_t batch, size_t itemsize) noexcept nogil:
    """The rows a training workspace is laid out for: batch rounded up to a whole number of
    cache lines of values (8 float64, 16 float32), so that every per-row region (offset *
    rows values from ws) starts on a line."""
    return cache_lines_of(batch, itemsize)


cdef double run_epoch(const NetLayout* net, Objective objective, Hyperparameters h,
                      floating* params, floating* grad, floating* buffer1, floating* buffer2,
                      long long* step, const floating* X, const CsrRows* csr,
                      const floating* Y, const floating* w, const Py_ssize_t* order,
                      Py_ssize_t n, Py_ssize_t batch, floating* Xb, floating* Yb, floating* wb,
                      floating* ws, int team, bint* interrupted) noexcept nogil:
    """One pass over the data; returns the batch losses' mean weighted by batch weight.

    X (n, n_in), or NULL and csr the rows (each batch gathered densely into Xb),
    Y (n, y_cols) with y_cols = loss_target_width(objective.loss, n_out),
    w (n,) or NULL, order (n,) row indices, or NULL for the rows in order (batches are then
    read in place). Xb, Yb, wb hold one gathered batch. Each batch's forward, backward and
    update run on `team` threads (nnfast/_team.pyx; ws is sized for them).
    A signal handler that raises (Ctrl-C) stops the pass early: `interrupted` is set, the
    exception is pending and the parameters are those of an unfinished epoch.
    """
    cdef double next_check = monotonic_seconds() + SIGNAL_CHECK_SECONDS
    cdef Py_ssize_t start, size, r, c, idx
    cdef Py_ssize_t n_in = net.n_in, y_cols = loss_target_width(objective.loss, net.n_out)
    cdef const floating* xb
    cdef const floating* yb
    cdef const floating* wbp
    cdef double wsum, batch_weight, value, l2, epoch_sum = 0, epoch_weight = 0
    cdef double loss_scale = objective.loss_scale
    cdef Py_ssize_t n_batches = (n + batch - 1) // batch, b
    cdef OptimizerState state
    cdef Update update
    cdef Py_ssize_t table[ROW_STEP_MAX_LAYERS * ROW_STEP_FIELDS]
    cdef bint row_step = row_step_table(net, objective, h, batch, team, csr, table)
    # The workspace is laid out for a whole number of cache lines of rows: each layer's
    # Z, A and dZ then start on a line, as ws does (workspace_rows).
    cdef Py_ssize_t ws_rows = workspace_rows(batch, sizeof(floating))
    state.params, state.grad, state.buffer1, state.buffer2 = params, grad, buffer1, buffer2
    state.is_double = floating is double
    update.apply, update.state = apply_update, &state
    for b in range(n_batches):
        start = b * batch
        size = min(batch, n - start)
        if order != NULL:
            # Plain loops, not memcpy: rows of a few values (n_in = 1 is common) would cost
            # a library call each.
            for r in range(size):
                idx = order[start + r]
                if X != NULL:
                    for c in range(n_in):
                        Xb[r * n_in + c] = X[idx * n_in + c]
                for c in range(y_cols):
                    Yb[r * y_cols + c] = Y[idx * y_cols + c]
                if w != NULL:
                    wb[r] = w[idx]
            xb, yb, wbp = Xb, Yb, (wb if w != NULL else NULL)
        else:
            xb = X + start * n_in if X != NULL else Xb
            yb, wbp = Y + start * y_cols, (w + start if w != NULL else NULL)
        if csr != NULL:
            gather_rows(Xb, csr, order, start, size)
            xb = Xb
        if wbp != NULL:
            wsum = 0
            for r in range(size):
                wsum += wbp[r]
        else:
            wsum = size
        batch_weight = wsum
        if wbp != NULL and wsum > 0 and not (loss_scale / wsum <= DBL_MAX):
            # 1 / Σw overflows (subnormal weights such as 5e-324): the batch's weighted mean
            # is the same with its weights divided by their maximum.
            wsum = rescaled_weights(wb, wbp, size)
            wbp = wb
        l2 = objective.l2
        if objective.l2_batch_scaled and batch_weight > 0:
            l2 = l2 / batch_weight
        step[0] += 1
        read_hyperparameters(&state, h, step[0])
        # The losses are linear in inv_weight_sum: passing loss_scale / wsum scales the
        # data loss and its gradient at no cost.
        if row_step:
            value = sgd_row_step(net.n_layers, table, net.scratch_offset, net.max_width,
                                 params, buffer1, xb, yb, wbp[0] if wbp != NULL else 1.0,
                                 (loss_scale / wsum) if wsum > 0 else 0.0, state.lr,
                                 state.momentum, state.nesterov, ws)
        else:
            value = team_loss_grad(net, params, xb, yb, wbp, size, ws_rows,
                                   (loss_scale / wsum) if wsum > 0 else 0.0, objective.loss,
                                   grad, False, l2 if l2 > 0 else 0.0, &update, ws, team)
        epoch_sum += value * batch_weight
        epoch_weight += batch_weight
        if b % SIGNAL_CHECK_BATCHES == SIGNAL_CHECK_BATCHES - 1 and b + 1 < n_batches:
            if monotonic_seconds() >= next_check:
                if signal_raised():
                    interrupted[0] = True
                    return NAN
                next_check = monotonic_seconds() + SIGNAL_CHECK_SECONDS
    return epoch_sum / epoch_weight


cdef double checked_epoch(const NetLayout* net, Objective objective, Hyperparameters h,
                          floating* params, floating* grad, floating* buffer1,
                          floating* buffer2, long long* step, const floating* X,
                          const CsrRows* csr, const floating* Y, const floating* w,
                          const Py_ssize_t* order,
                          Py_ssize_t n, Py_ssize_t batch, floating* Xb, floating* Yb,
                          floating* wb, floating* ws, int team, floating* backup,
                          bint* interrupted) noexcept nogil:
    """One epoch from a backup of the parameters: its loss, NaN when the loss or the new
    weights are not finite; after Ctrl-C within it, the parameters it started from."""
    cdef double value
    memcpy(backup, params, net.n_params * sizeof(floating))
    value = run_epoch(net, objective, h, params, grad, buffer1, buffer2, step, X, csr, Y, w,
                      order, n, batch, Xb, Yb, wb, ws, team, interrupted)
    if interrupted[0]:
        memcpy(params, backup, net.n_params * sizeof(floating))
        return NAN
    # The loss is measured before each step: the last step can overflow the weights behind
    # a finite loss. Either way the epoch reports NaN.
    if not all_finite_values(params, net.n_params):
        return NAN
    return value


cdef int check_length(str name, Py_ssize_t got, Py_ssize_t expected,
                      str what) except -1:
    if got != expected:
        raise ValueError(f"{name}: expected {expected} {what}, got {got}")
    return 0


cdef int check_order(const Py_ssize_t[::1] order, Py_ssize_t n) except -1:
    """Every entry of the row order must name a row of X (the epoch reads X[order[i]])."""
    cdef Py_ssize_t i
    for i in range(order.shape[0]):
        if not 0 <= order[i] < n:
            raise ValueError(f"data.order: expected row indices in [0, {n}), "
                             f"got {order[i]} at position {i}")
    return 0


def train(Layout layout, floating[::1] params, data, Objective objective, optimizer,
          Py_ssize_t batch_size, Py_ssize_t epochs, floating[::1] backup, epoch_end=None,
          double[::1] losses=None, StoppingRule rule=None, rng=None, int n_threads=1):
    """Train in place for up to `epochs` epochs; returns the number of epochs run.

    params, backup (n_params,) of the layout; data.X (n, n_in), or sparse rows (CSR: data,
    indices, indptr, shape; see nnfast._csr), data.Y (n, n_out), or
    (n, n_out / 2) for gaussian_nll; data.w (n,) or None; data.order (n,) the row order of
    the next epoch (the hook may rewrite it between epochs), or None for the rows in order.
    optimizer.hyperparameters is a `Hyperparameters`; optimizer.buffers maps names to its
    (n_params,) buffers, one for SGD (velocity), two for Adam (first and second moments)
    and Rprop (step sizes and previous gradient); optimizer.step (1,) counts its updates
    across calls. Each batch holds batch_size rows (all n when batch_size >= n).

    Without a hook (`epoch_end` None), `losses` (epochs,) receives each epoch's loss; a
    NaN or infinite loss (diverged) ends the run. With `rng` (a
    ``numpy.random.RandomState``) each epoch first shuffles data.order as
    ``sklearn.utils.shuffle(order, random_state=rng)`` would. With `rule`, the run also
    ends when the rule fires on the training loss (the rule is updated in place).
    Each batch runs on up to n_threads threads when it is large enough to gain from them
    (the result is the same on any number).
    """
    cdef const NetLayout* net = &layout.c
    cdef CsrSource csr = None
    cdef const floating[:, ::1] X = None
    cdef const floating[:, ::1] Y = data.Y
    cdef const floating[::1] w = data.w
    cdef Py_ssize_t[::1] order = data.order
    cdef Hyperparameters h = optimizer.hyperparameters
    cdef long long[::1] step = optimizer.step
    cdef floating[::1] buffer1
    cdef floating[::1] buffer2
    cdef Py_ssize_t n, n_cols, batch, epoch, _epoch, done = 0, n_params = net.n_params
    cdef Py_ssize_t y_cols = loss_target_width(objective.loss, net.n_out)
    cdef double epoch_loss, next_check
    cdef const floating* X_ptr = NULL
    cdef const CsrRows* csr_ptr = NULL
    cdef const floating* w_ptr
    cdef const Py_ssize_t* order_ptr
    cdef floating* grad
    cdef floating* ws
    cdef floating* Xb
    cdef floating* Yb
    cdef floating* wb
    cdef Py_ssize_t* scratch = NULL
    cdef bitgen_t* bitgen = NULL
    cdef size_t total
    cdef Py_ssize_t grad_len, ws_len, xb_len, yb_len
    cdef bint interrupted = False, hooked = epoch_end is not None
    cdef int team

    # Every size the loops rely on, against the layout.
    check_length("params", params.shape[0], n_params, "values (the layout's n_params)")
    check_length("backup", backup.shape[0], n_params, "values (the layout's n_params)")
    if is_sparse_rows(data.X):
        csr = CsrSource(data.X, floating is double, "data.X")
        n, n_cols, csr_ptr = csr.c.n_rows, csr.c.n_cols, &csr.c
    else:
        X = data.X
        n, n_cols = X.shape[0], X.shape[1]
    if n == 0:
        raise ValueError("data.X: expected at least one row, got 0")
    check_length("data.X", n_cols, net.n_in, "columns (the layout's n_in)")
    if objective.loss == LOSS_GAUSSIAN_NLL and net.n_out % 2:
        raise ValueError(f"objective: gaussian_nll needs an even number of outputs "
                         f"(means, then log-variances), the layout has {net.n_out}")
    check_length("data.Y", Y.shape[0], n, "rows (those of data.X)")
    check_length("data.Y", Y.shape[1], y_cols,
                 f"columns (loss code {objective.loss} for {net.n_out} outputs)")
    if w is not None:
        check_length("data.w", w.shape[0], n, "sample weights (one per row of data.X)")
    if order is not None:
        check_length("data.order", order.shape[0], n, "row indices (one per row of data.X)")
        check_order(order, n)
    buffers = list(optimizer.buffers.items())
    check_length("optimizer.buffers", len(buffers), 1 if h.optimizer == OPT_SGD else 2,
                 f"buffers for optimizer code {h.optimizer}")
    for name, array in buffers:
        buffer1 = array  # (the assignment checks the buffer's dtype)
        check_length(f"optimizer.{name}", buffer1.shape[0], n_params,
                     "values (the layout's n_params)")
    # SGD has one buffer: it is passed twice (the second is unused).
    buffer1, buffer2 = buffers[0][1], buffers[len(buffers) - 1][1]
    check_length("optimizer.step", step.shape[0], 1, "counter")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size}")
    if epochs < 0:
        raise ValueError(f"epochs: expected an integer >= 0, got {epochs}")
    if n_threads < 1:
        raise ValueError(f"n_threads: expected an integer >= 1, got {n_threads}")
    if not hooked and (losses is None or losses.shape[0] < epochs):
        raise ValueError(f"losses: expected room for {epochs} values (one per epoch, without "
                         f"epoch_end), got {None if losses is None else losses.shape[0]}")
    if rng is not None:
        if hooked or order is None:
            raise ValueError("rng: shuffles data.order, and only without epoch_end")
        bitgen = bitgen_of(rng)
    batch = min(batch_size, n)
    w_ptr = NULL if w is None else &w[0]
    order_ptr = NULL if order is None else &order[0]
    # The loops load whole elements: a misaligned pointer would be undefined behaviour.
    check_aligned(&params[0], sizeof(floating), "params")
    check_aligned(&backup[0], sizeof(floating), "backup")
    if X is not None:
        X_ptr = &X[0, 0]
        check_aligned(X_ptr, sizeof(floating), "data.X")
    check_aligned(&Y[0, 0], sizeof(floating), "data.Y")
    check_aligned(w_ptr, sizeof(floating), "data.w")
    check_aligned(order_ptr, sizeof(Py_ssize_t), "data.order")
    check_aligned(&buffer1[0], sizeof(floating), "optimizer buffer")
    check_aligned(&buffer2[0], sizeof(floating), "optimizer buffer")

    # One block: gradient, workspace, and one gathered batch of X, Y and w, each starting
    # on a cache line.
    team = team_size(net, batch, n_threads, 3)
    grad_len = cache_lines_of(n_params, sizeof(floating))
    ws_len = cache_lines_of(
        team_workspace_size(net, workspace_rows(batch, sizeof(floating)), team), sizeof(floating)
    )
    xb_len = cache_lines_of(batch * net.n_in, sizeof(floating))
    yb_len = cache_lines_of(batch * y_cols, sizeof(floating))
    total = grad_len + ws_len + xb_len + yb_len + batch
    grad = <floating*>cache_aligned_malloc(total * sizeof(floating))
    if bitgen != NULL:
        scratch = <Py_ssize_t*>malloc(n * sizeof(Py_ssize_t))
    if grad == NULL or (bitgen != NULL and scratch == NULL):
        cache_aligned_free(grad)
        free(scratch)
        raise MemoryError(f"nnfast: cannot allocate the training workspace ({total} values)")
    ws = grad + grad_len
    Xb = ws + ws_len
    Yb = Xb + xb_len
    wb = Yb + yb_len
    try:
        if hooked:
            # range(epochs), not range(1, epochs + 1): epochs + 1 overflows for sys.maxsize.
            for epoch in range(epochs):
                PyErr_CheckSignals()
                with nogil:
                    epoch_loss = checked_epoch(net, objective, h, &params[0], grad,
                                               &buffer1[0], &buffer2[0], &step[0], X_ptr,
                                               csr_ptr, &Y[0, 0], w_ptr, order_ptr, n, batch,
                                               Xb, Yb, wb, ws, team, &backup[0],
                                               &interrupted)
                if interrupted:
                    propagate_exception()
                done += 1
                if epoch_end(epoch + 1, epoch_loss) is False:
                    break
            return done
        PyErr_CheckSignals()
        # The draws hold the generator's lock as RandomState's own methods do. It is taken
        # and released by hand, not in a `with` block: Ctrl-C seen inside the loop leaves
        # its exception set, and a `with` block's exit would then raise SystemError.
        if rng is not None:
            rng._bit_generator.lock.acquire()
        with nogil:
            next_check = monotonic_seconds() + SIGNAL_CHECK_SECONDS
            for _epoch in range(epochs):
                if bitgen != NULL:
                    sklearn_shuffle(bitgen, &order[0], scratch, n)
                epoch_loss = checked_epoch(net, objective, h, &params[0], grad,
                                           &buffer1[0], &buffer2[0], &step[0], X_ptr,
                                           csr_ptr, &Y[0, 0], w_ptr, order_ptr, n, batch,
                                           Xb, Yb, wb, ws, team, &backup[0], &interrupted)
                if interrupted:
                    break
                losses[done] = epoch_loss
                done += 1
                if not isfinite(epoch_loss):
                    break
                if rule is not None and rule_update(rule, epoch_loss):
                    break
                if monotonic_seconds() >= next_check:
                    if signal_raised():
                        interrupted = True
                        break
                    next_check = monotonic_seconds() + SIGNAL_CHECK_SECONDS
        if rng is not None:
            release_keeping_exception(rng._bit_generator.lock)
        if interrupted:
            propagate_exception()
        return done
    finally:
        cache_aligned_free(grad)
        free(scratch)


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
