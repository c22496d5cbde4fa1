"""The solver layer (with :mod:`nnfast._lbfgs_solver`): the only Python that calls the
compiled drivers.

:class:`nnfast.MLP` (the model) and the scikit-learn estimators hand it validated,
C-contiguous arrays of the network's dtype. It holds what training keeps between epochs and
between calls, once for both:

- :class:`CompiledNetwork`: a network's C layer table and its dtype's compiled entry points;
  :func:`predict_into`, :func:`input_grad_into` and :func:`predict_layers_into` are what the
  estimators need from a network;
- the optimizer states :class:`SGD`, :class:`Adam` and :class:`Rprop`: named buffers, the
  settings the driver reads (``_train.Hyperparameters``), an update counter, and the
  learning-rate schedules that change them, as scikit-learn's ``_stochastic_optimizers.py``
  keeps them;
- :class:`EpochLoop`: compiled epochs until a stop, or one epoch at a time with Python
  between epochs; scikit-learn's tol / n_iter_no_change rule is ``_train.StoppingRule``,
  applied by the driver or by the loop.

Full-batch L-BFGS is the solver layer's other module, :mod:`nnfast._lbfgs_solver`.
"""

from __future__ import annotations

import collections
import math
import time

import numpy as np

from nnfast import _csr, _network, _network_entry, _sparse, _threads, _train
from nnfast._history import History
from nnfast._spec import LOSS_CODES, build_spec
from nnfast._validation import cache_aligned_zeros

StoppingRule = _train.StoppingRule

# The rows, targets, sample weights and row order one training run reads (`order` None:
# the rows in their order).
TrainingData = collections.namedtuple("TrainingData", "X Y w order")


# ---- a network, compiled ---------------------------------------------------------------


class _EntryPoints:
    """The compiled functions specialised for one dtype.

    Calling a fused Cython function picks its specialisation from the argument types on
    every call, which costs more than predicting one sample; they are looked up once.
    """

    def __init__(self, ctype):
        self.predict = _network_entry.predict[ctype]
        self.loss = _network_entry.loss[ctype]
        self.loss_and_grad = _network_entry.loss_and_grad[ctype]
        self.input_grad = _network_entry.input_grad[ctype]
        self.train = _train.train[ctype]
        self.sparse_loss_and_grad = _csr.loss_and_grad[ctype]


_ENTRY_POINTS = {
    np.dtype(np.float64): _EntryPoints("double"),
    np.dtype(np.float32): _EntryPoints("float"),
}


class CompiledNetwork:
    """One network for the compiled modules: its spec, its flat parameter buffer
    ``params`` (used in place, never copied) and its C layer table.

    Every method takes C-contiguous arrays of the network's dtype, already validated, and
    runs on up to ``nnfast._threads.current()`` threads (the count of the call it serves).
    """

    def __init__(self, spec, dtype, params):
        self.spec = spec
        self.dtype = np.dtype(dtype)
        self.params = params
        self.layout = _network.Layout(spec)
        self._entry = _ENTRY_POINTS[self.dtype]
        # predict_into's function itself, for callers whose latency is that of one sample
        # (a method call adds 80 ns to a 2 µs prediction): fast_predict(layout, params, X, out,
        # n_threads=1).
        self.fast_predict = self._entry.predict
        # predict_small(layout, params, X): a few samples in one call, or None
        # (nnfast._network_entry).
        self.predict_small = _network_entry.predict_small
        self._parts = {}

    def predict_into(self, X, out):
        """out (n, n_out) = network(X (n, n_in))."""
        self._entry.predict(self.layout, self.params, X, out, _threads.current())

    def input_grad_into(self, X, J):
        """J (n, m, n_in) = the Jacobians of the first m outputs at each row of X."""
        self._entry.input_grad(self.layout, self.params, X, J, "auto", _threads.current())

    def loss(self, X, Y, w, loss, inv_weight_sum, l2=0.0):
        """Data loss (code `loss`) of (X, Y, w) scaled by inv_weight_sum, plus 0.5·l2·ΣW²."""
        return self.loss_and_grad(X, Y, w, loss, inv_weight_sum, None, l2)

    def loss_and_grad(self, X, Y, w, loss, inv_weight_sum, grad, l2=0.0):
        """:meth:`loss`, with its gradient written to grad (n_params,) unless it is None;
        X dense, or sparse rows densified a chunk at a time (``nnfast._csr``)."""
        if not isinstance(X, np.ndarray):  # (one thread)
            X = _sparse.compiled_rows(X)
            entry = self._entry.sparse_loss_and_grad
            return entry(self.layout, self.params, X, Y, w, loss, inv_weight_sum, grad, l2)
        entry = self._entry.loss_and_grad
        return entry(
            self.layout, self.params, X, Y, w, loss, inv_weight_sum, grad, l2, _threads.current()
        )

    def train(self, data, objective, optimizer, **run):
        """Epochs of the training driver (see ``nnfast._train.train``)."""
        return self._entry.train(
            self.layout,
            self.params,
            data,
            objective,
            optimizer,
            n_threads=_threads.current(),
            **run,
        )

    def workspace_size(self, rows):
        """Workspace values a training batch (or prediction chunk) of `rows` rows uses."""
        return self.layout.workspace_size(rows)

    def layers(self, first, stop):
        """Layers first..stop-1 as a network of their own, on a view of their parameters
        (layers lie one after the other in the flat buffer)."""
        key = (first, stop)
        if key not in self._parts:
            spec = self.spec
            layers = spec.layers[first:stop]
            activations = [layer.activation for layer in layers]
            part = build_spec(
                spec.layer_sizes[first : stop + 1],
                activations[:-1],
                activations[-1],
                spec.leaky_slope,
                spec.elu_alpha,
                spec.maxout_pieces,
            )
            params = self.params[layers[0].w_offset : layers[-1].end]
            self._parts[key] = CompiledNetwork(part, self.dtype, params)
        return self._parts[key]


def compiled(net) -> CompiledNetwork:
    """The CompiledNetwork of an :class:`nnfast.MLP` (it builds one for its own buffer)."""
    return net._compiled


def predict_into(net, X, out):
    """out (n, n_out) = net(X) for X (n, n_in) of the network's dtype (a CSR matrix:
    predicted in dense row chunks)."""
    if _sparse.is_sparse(X):
        _sparse.predict_into(compiled(net), X, out)
    elif X.shape[0]:
        compiled(net).predict_into(X, out)


def input_grad_into(net, X, J):
    """J (n, m, n_in): the input Jacobians of the network's first m outputs."""
    if _sparse.is_sparse(X):
        _sparse.input_grad_into(compiled(net), X, J)
    else:
        compiled(net).input_grad_into(X, J)


def predict_layers_into(net, first, stop, X, out):
    """out = the output of layers first..stop-1 alone for their input X."""
    compiled(net).layers(first, stop).predict_into(X, out)


# ---- optimizer states ------------------------------------------------------------------


class _Optimizer:
    """What an optimizer keeps across training calls: its named buffers (each in the
    layout of ``params``), its settings (``hyperparameters``, a ``_train.Hyperparameters``
    the driver reads before every batch) and ``step``, its number of updates so far (Adam's
    bias correction). The schedule methods are scikit-learn's (``iteration_ends``,
    ``trigger_stopping``); the constant schedule changes nothing.
    """

    name = ""
    code = -1
    schedule = "constant"

    def __init__(self, **settings):
        self.hyperparameters = _train.Hyperparameters(self.code, **settings)
        self.step = np.zeros(1, dtype=np.longlong)

    @property
    def buffers(self) -> dict:
        """{name: buffer} in the order the driver's optimizer update takes them."""
        raise NotImplementedError

    @property
    def lr(self) -> float:
        return self.hyperparameters.lr

    @lr.setter
    def lr(self, value):
        self.hyperparameters.lr = value

    def iteration_ends(self, time_step):
        """After an epoch that brought the samples seen to `time_step`."""

    def trigger_stopping(self, msg, verbose) -> bool:
        """The stopping rule fired: True to stop (a schedule may instead go on)."""
        if verbose:
            print(msg + " Stopping.")
        return True

    def __repr__(self):
        return f"{type(self).__name__}(lr={self.lr!r}, step={int(self.step[0])})"


class SGD(_Optimizer):
    """Stochastic gradient descent with momentum (Nesterov's optionally): buffer
    ``velocity``. Schedules: ``constant``, ``invscaling`` (``lr = lr_init / (t + 1) **
    power_t`` after each epoch, ``t`` the samples seen), ``adaptive`` (``lr / 5`` each time
    the stopping rule fires, until ``lr <= 1e-6``)."""

    name = "sgd"
    code = _train.Optimizer.OPT_SGD

    def __init__(self, params, lr, momentum=0.9, nesterov=False, schedule="constant", power_t=0.5):
        super().__init__(lr=lr, momentum=momentum, nesterov=nesterov)
        self.velocity = cache_aligned_zeros(params.shape[0], params.dtype)
        self.set_schedule(schedule, lr, power_t)

    def set_schedule(self, schedule, lr_init, power_t=0.5):
        self.schedule, self.lr_init, self.power_t = schedule, lr_init, power_t

    @property
    def buffers(self):
        return {"velocity": self.velocity}

    def iteration_ends(self, time_step):
        if self.schedule == "invscaling":
            self.lr = float(self.lr_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        if self.schedule != "adaptive":
            return super().trigger_stopping(msg, verbose)
        if self.lr <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.lr = self.lr / 5.0
        if verbose:
            print(msg + f" Setting learning rate to {self.lr:f}")
        return False


class Adam(_Optimizer):
    """Adam: buffers ``first_moment`` and ``second_moment`` (of the gradient)."""

    name = "adam"
    code = _train.Optimizer.OPT_ADAM

    def __init__(self, params, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr=lr, beta1=beta1, beta2=beta2, eps=eps)
        self.first_moment = cache_aligned_zeros(params.shape[0], params.dtype)
        self.second_moment = cache_aligned_zeros(params.shape[0], params.dtype)

    @property
    def buffers(self):
        return {"first_moment": self.first_moment, "second_moment": self.second_moment}


class Rprop(_Optimizer):
    """iRprop- (full batch): buffers ``step_sizes`` (starting at ``lr``) and
    ``previous_gradient``; each step size grows by eta_plus while its gradient keeps its
    sign and shrinks by eta_minus when it flips, within [step_min, step_max]."""

    name = "rprop"
    code = _train.Optimizer.OPT_RPROP

    def __init__(self, params, lr, eta_plus=1.2, eta_minus=0.5, step_min=1e-6, step_max=50.0):
        super().__init__(
            lr=lr, eta_plus=eta_plus, eta_minus=eta_minus, step_min=step_min, step_max=step_max
        )
        self.step_sizes = cache_aligned_zeros(params.shape[0], params.dtype)
        self.step_sizes[...] = lr
        self.previous_gradient = cache_aligned_zeros(params.shape[0], params.dtype)

    @property
    def buffers(self):
        return {"step_sizes": self.step_sizes, "previous_gradient": self.previous_gradient}


def make_optimizer(
    name, params, lr, *, momentum=0.9, nesterov=False, beta1=0.9, beta2=0.999, eps=1e-8
):
    """A fresh state of optimizer `name` for a network with parameters `params`."""
    if name == "sgd":
        return SGD(params, lr, momentum=momentum, nesterov=nesterov)
    if name == "adam":
        return Adam(params, lr, beta1=beta1, beta2=beta2, eps=eps)
    return Rprop(params, lr)


def make_objective(loss, *, loss_scale=1.0, l2=0.0, l2_batch_scaled=False):
    """The ``_train.Objective`` of loss `loss` (a name of nnfast._spec.LOSSES)."""
    return _train.Objective(
        LOSS_CODES[loss], loss_scale=loss_scale, l2=l2, l2_batch_scaled=l2_batch_scaled
    )


# ---- the epoch loop ----------------------------------------------------------------------


class EpochLoop:
    """Epochs of the training driver on one data set until a stop, recorded in a History.

    ``shuffle`` gives the row order of each epoch: None (the rows in order), a
    ``numpy.random.RandomState`` (``sklearn.utils.shuffle`` of the current order before
    each epoch, as the scikit-learn estimators draw it) or a callable ``permutation(n)``
    (a new order before each epoch, e.g. ``Generator.permutation``). ``rule``, a
    StoppingRule, watches the training loss, or the value ``watch()`` returns after each
    epoch; when it fires, ``on_plateau()`` may let the run go on (the rule's count then
    starts again from 0). ``on_epochs(losses)`` receives the losses of finished epochs as
    soon as they are known. ``control`` (MLP.fit's, see nnfast/_training_control.py)
    gets ``epoch_starts(epoch)`` before each epoch after the first and
    ``epoch_ended(history)`` after each, whose True stops the run ("converged").

    Without per-epoch Python work (``validation``, ``verbose``, ``callback``, ``watch``, a
    callable shuffle, a ``control``) the epochs run in compiled loops without the GIL, CHUNK_EPOCHS per
    call; otherwise the driver calls :meth:`_end_of_epoch` after every epoch.
    """

    CHUNK_EPOCHS = 4096

    def __init__(
        self,
        net,
        X,
        Y,
        w,
        objective,
        optimizer,
        batch_size,
        *,
        shuffle=None,
        validation=None,
        verbose=False,
        callback=None,
        rule=None,
        watch=None,
        on_plateau=None,
        on_epochs=None,
        control=None,
    ):
        self.net = compiled(net)
        n = X.shape[0]
        X = _sparse.compiled_rows(X)  # a CSR matrix: its rows are gathered batch by batch
        self.data = TrainingData(X, Y, w, None if shuffle is None else np.arange(n, dtype=np.intp))
        self.objective, self.optimizer, self.batch_size = objective, optimizer, batch_size
        self.shuffle, self.validation, self.verbose, self.callback = (
            shuffle,
            validation,
            verbose,
            callback,
        )
        self.rule, self.watch, self.on_plateau, self.on_epochs = rule, watch, on_plateau, on_epochs
        self.control = control
        self.per_epoch = (
            validation is not None
            or verbose
            or callback is not None
            or watch is not None
            or callable(shuffle)
            or control is not None
        )
        self.backup = np.empty_like(self.net.params)
        self.history = History()
        self.epochs = 0

    def run(self, epochs) -> History:
        """Train for up to `epochs` epochs; raises FloatingPointError (diverged) and
        KeyboardInterrupt with ``.history``, after restoring the weights of the last
        finite (complete) epoch."""
        self.epochs = epochs
        self._started = time.perf_counter()
        self._losses = np.empty(0 if self.per_epoch else min(epochs, self.CHUNK_EPOCHS))
        first_step = int(self.optimizer.step[0])
        try:
            if self.per_epoch:
                if epochs > 0:
                    self._next_order()
                self._train(epochs, self._end_of_epoch)
            else:
                self._run_compiled(epochs)
        except KeyboardInterrupt as err:
            self._interrupted(first_step)
            err.history = self.history
            raise
        if self.history.stop_reason == "diverged":
            raise self._diverged_error()
        return self.history

    def _train(self, epochs, hook):
        compiled_shuffle = self.shuffle is not None and hook is None
        return self.net.train(
            self.data,
            self.objective,
            self.optimizer,
            batch_size=self.batch_size,
            epochs=epochs,
            backup=self.backup,
            epoch_end=hook,
            losses=None if hook else self._losses,
            rule=None if hook else self.rule,
            rng=self.shuffle if compiled_shuffle else None,
        )

    def _run_compiled(self, epochs):
        """Compiled runs of up to CHUNK_EPOCHS epochs (any `epochs`, sys.maxsize say, needs
        no more memory than that) until done, diverged, or stopped by the rule."""
        history = self.history
        while history.epochs < epochs and history.stop_reason == "completed":
            count = min(epochs - history.epochs, len(self._losses))
            done = self._train(count, None)
            self._record(self._losses[:done])
            if self.rule is not None and self.rule.fired and history.stop_reason == "completed":
                if not self._go_on():
                    history.stop_reason = "converged"
            elif done < count:
                break

    def _end_of_epoch(self, epoch, value):
        """The driver's hook after each epoch: record it, then Python's per-epoch work;
        False stops the run."""
        history = self.history
        # The driver reports NaN when the loss or the weights stopped being finite.
        if not math.isfinite(value):
            self._restore()
            history.stop_reason = "diverged"
            return False
        history.loss.append(value)
        if self.on_epochs is not None:
            self.on_epochs([value])
        if self.validation is not None:
            history.val_loss.append(self._validation_loss())
        if self.verbose:
            self._print(epoch, value)
        if self.callback is not None and self.callback(epoch, value) is False:
            history.stop_reason = "callback"
            return False
        if self.control is not None and self.control.epoch_ended(history):
            history.stop_reason = "converged"
            return False
        if self.rule is not None:
            watched = value if self.watch is None else self.watch()
            if self.rule.update(watched) and not self._go_on():
                history.stop_reason = "converged"
                return False
        if epoch < self.epochs:
            self._next_order()
            if self.control is not None:
                self.control.epoch_starts(epoch)
        return True

    def _next_order(self):
        order, shuffle = self.data.order, self.shuffle
        if shuffle is None:
            return
        if callable(shuffle):
            order[:] = shuffle(order.shape[0])
        else:
            _train.shuffle_like_sklearn(shuffle, order)

    def _go_on(self):
        """The rule fired: go on (its count restarts) if on_plateau allows it."""
        if self.on_plateau is None or not self.on_plateau():
            return False
        self.rule.count = 0
        return True

    def _record(self, losses):
        """A compiled run's epoch losses into the history; a last non-finite one ends it."""
        values = [float(value) for value in losses]
        if values and not math.isfinite(values[-1]):
            values.pop()
            self._restore()
            self.history.stop_reason = "diverged"
        self.history.loss.extend(values)
        if values and self.on_epochs is not None:
            self.on_epochs(values)

    def _restore(self):
        self.net.params[...] = self.backup

    def _validation_loss(self):
        Xv, Yv, inv_wsum_v = self.validation
        objective = self.objective
        return float(self.net.loss(Xv, Yv, None, objective.loss, inv_wsum_v, objective.l2))

    def _print(self, epoch, value):
        history, epochs = self.history, self.epochs
        val_text = f"  val_loss {history.val_loss[-1]:.6g}" if self.validation else ""
        print(
            f"epoch {epoch:>{len(str(epochs))}}/{epochs}  loss {value:.6g}{val_text}"
            f"  ({time.perf_counter() - self._started:.2f} s)",
            flush=True,
        )

    def _interrupted(self, first_step):
        """Ctrl-C: history and weights end at the same complete epoch.

        The driver restores the weights of the last complete epoch when Ctrl-C comes
        within an epoch. One that came after its last check is delivered by Python as soon
        as the epoch's hook is entered, before the epoch is recorded: the weights are then
        one epoch ahead of the History. The optimizer's step counter tells; the weights
        that epoch started from are in `backup`. An epoch whose validation loss was not
        recorded yet is dropped too.
        """
        history = self.history
        if self.validation is not None:
            del history.loss[len(history.val_loss) :]
        n = self.data.X.shape[0]
        batches = -(-n // min(self.batch_size, n))
        epochs_run = (int(self.optimizer.step[0]) - first_step) // batches
        if not self.per_epoch:
            self._record(self._losses[: epochs_run - history.epochs])
        elif epochs_run > history.epochs:
            self._restore()
        history.stop_reason = "interrupted"

    def _diverged_error(self):
        err = FloatingPointError(
            f"fit: the training loss or the weights became NaN or infinite in epoch "
            f"{self.history.epochs + 1} "
            f"(optimizer={self.optimizer.name!r}, lr={self.optimizer.lr!r}); the weights of "
            "the last finite epoch were kept. A smaller lr usually helps."
        )
        err.history = self.history
        return err
