# The training driver's shared definitions: the optimizer codes and the three structures
# `train` reads by name. They are defined here once; Python reads them through nnfast._train
# (the enum as `Optimizer`, each class's fields as typed attributes).

cpdef enum Optimizer:
    OPT_SGD = 0
    OPT_ADAM = 1
    OPT_RPROP = 2


# An optimizer's settings, read before every batch (an epoch hook may change them).
cdef class Hyperparameters:
    cdef readonly int optimizer             # an Optimizer code, fixed at construction
    cdef public bint nesterov               # SGD
    cdef public double lr, momentum         # SGD (lr is Adam's too)
    cdef public double beta1, beta2, eps    # Adam
    cdef public double eta_plus, eta_minus, step_min, step_max   # Rprop


# What every batch step minimises: loss_scale · data_loss + 0.5 · l2' · ΣW², where
# l2' = l2 / Σw_batch when l2_batch_scaled (scikit-learn's alpha), else l2.
cdef class Objective:
    cdef readonly int loss                  # a nnfast._kernels.Loss code, fixed
    cdef public double loss_scale, l2
    cdef public bint l2_batch_scaled


# scikit-learn's tol / n_iter_no_change rule on a value to minimise.
cdef class StoppingRule:
    cdef public double tol, patience, best
    cdef public Py_ssize_t count
