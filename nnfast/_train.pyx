"""The training driver: whole epochs of mini-batch SGD or Adam without the GIL.

`train` runs up to `epochs` epochs. Each epoch is one `nogil` region: for every batch it
gathers the rows named by `order`, runs forward, loss and backward into one gradient buffer,
adds the l2 term and applies the optimizer update to the flat parameter buffer. All memory
is allocated before the first epoch. Between epochs the GIL is taken back to check for
Ctrl-C and to call `epoch_end(epoch, loss)`, the Python side's hook (history, validation,
callback, next shuffle); it returns False to stop. The parameters at the start of the last
epoch are kept in `backup`, so the caller can restore them when that epoch diverged.
"""

from cpython.exc cimport PyErr_CheckSignals
from cython cimport floating
from libc.math cimport pow, sqrt
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from nnfast._kernels cimport adam_update, l2_penalty, sgd_update
from nnfast._network cimport Layout, NetLayout, network_loss_grad

OPTIMIZER_CODES = {"sgd": 0, "adam": 1}

cdef enum:
    OPT_SGD = 0
    OPT_ADAM = 1


cdef struct Hyper:
    int loss
    int optimizer
    double lr
    double l2
    double momentum
    bint nesterov
    double beta1
    double beta2
    double eps


cdef double run_epoch(const NetLayout* net, const Hyper* h, floating* params, floating* grad,
                      floating* state1, floating* state2, long long* step,
                      const floating* X, const floating* Y, const floating* w,
                      const Py_ssize_t* order, bint gather, Py_ssize_t n,
                      Py_ssize_t batch, floating* Xb, floating* Yb, floating* wb,
                      floating* ws) noexcept nogil:
    """One pass over the data; returns the batch losses' mean weighted by batch weight.

    X (n, n_in), Y (n, n_out), w (n,) or NULL, order (n,) row indices. Without `gather`
    the order is 0..n-1 and batches are read in place. Xb, Yb, wb hold one gathered batch.
    """
    cdef Py_ssize_t start, size, r, idx, l
    cdef Py_ssize_t n_in = net.n_in, n_out = net.n_out
    cdef const floating* xb
    cdef const floating* yb
    cdef const floating* wbp
    cdef double wsum, value, epoch_sum = 0, epoch_weight = 0, lr_t
    cdef Py_ssize_t n_batches = (n + batch - 1) // batch, b
    for b in range(n_batches):
        start = b * batch
        size = min(batch, n - start)
        if gather:
            for r in range(size):
                idx = order[start + r]
                memcpy(Xb + r * n_in, X + idx * n_in, n_in * sizeof(floating))
                memcpy(Yb + r * n_out, Y + idx * n_out, n_out * sizeof(floating))
                if w != NULL:
                    wb[r] = w[idx]
            xb, yb, wbp = Xb, Yb, (wb if w != NULL else NULL)
        else:
            xb, yb, wbp = X + start * n_in, Y + start * n_out, (w + start if w != NULL else NULL)
        if wbp != NULL:
            wsum = 0
            for r in range(size):
                wsum += wbp[r]
        else:
            wsum = size
        value = network_loss_grad(net, params, xb, yb, wbp, size, batch,
                                  (1 / wsum) if wsum > 0 else 0.0, h.loss, grad, False, ws)
        if h.l2 > 0:
            for l in range(net.n_layers):
                value += l2_penalty(grad + net.layers[l].w_offset,
                                    params + net.layers[l].w_offset,
                                    net.layers[l].b_offset - net.layers[l].w_offset, h.l2)
        step[0] += 1
        if h.optimizer == OPT_SGD:
            sgd_update(params, state1, grad, net.n_params, h.lr, h.momentum, h.nesterov)
        else:
            lr_t = h.lr * sqrt(1 - pow(h.beta2, <double>step[0])) / (1 - pow(h.beta1, <double>step[0]))
            adam_update(params, state1, state2, grad, net.n_params, lr_t, h.beta1, h.beta2,
                        h.eps)
        epoch_sum += value * wsum
        epoch_weight += wsum
    return epoch_sum / epoch_weight


def train(Layout layout, floating[::1] params, const floating[:, ::1] X,
          const floating[:, ::1] Y, const floating[::1] w, const Py_ssize_t[::1] order,
          bint gather, Py_ssize_t batch_size, Py_ssize_t epochs, int loss,
          str optimizer, double lr, double l2, double momentum, bint nesterov,
          double beta1, double beta2, double eps, floating[::1] state1,
          floating[::1] state2, floating[::1] backup, epoch_end):
    """Train in place for up to `epochs` epochs; returns the number of optimizer steps.

    params, state1, state2, backup (n_params,); X (n, n_in); Y (n, n_out); w (n,) or None;
    order (n,) row order of the next epoch (the hook may rewrite it between epochs).
    state1/state2: SGD velocity / unused, or Adam's first / second moments.
    """
    cdef const NetLayout* net = &layout.c
    cdef Py_ssize_t n = X.shape[0], batch = min(batch_size, X.shape[0]), epoch
    cdef Py_ssize_t n_params = net.n_params
    cdef Hyper h
    cdef long long step = 0
    cdef double epoch_loss
    cdef const floating* w_ptr = NULL if w is None else &w[0]
    cdef floating* grad
    cdef floating* ws
    cdef floating* Xb
    cdef floating* Yb
    cdef floating* wb
    cdef size_t total

    h.loss = loss
    h.optimizer = OPTIMIZER_CODES[optimizer]
    h.lr, h.l2, h.momentum, h.nesterov = lr, l2, momentum, nesterov
    h.beta1, h.beta2, h.eps = beta1, beta2, eps

    # One block: gradient, workspace, and one gathered batch of X, Y and w.
    total = n_params + batch * (net.ws_per_row + net.n_in + net.n_out + 1)
    grad = <floating*>malloc(total * sizeof(floating))
    if grad == NULL:
        raise MemoryError(f"nnfast: cannot allocate the training workspace ({total} values)")
    ws = grad + n_params
    Xb = ws + batch * net.ws_per_row
    Yb = Xb + batch * net.n_in
    wb = Yb + batch * net.n_out
    try:
        # range(epochs), not range(1, epochs + 1): epochs + 1 overflows for sys.maxsize.
        for epoch in range(epochs):
            PyErr_CheckSignals()
            with nogil:
                memcpy(&backup[0], &params[0], n_params * sizeof(floating))
                epoch_loss = run_epoch(net, &h, &params[0], grad, &state1[0], &state2[0],
                                       &step, &X[0, 0], &Y[0, 0], w_ptr, &order[0], gather,
                                       n, batch, Xb, Yb, wb, ws)
            if epoch_end(epoch + 1, epoch_loss) is False:
                break
    finally:
        free(grad)
    return step
