"""What :meth:`nnfast.MLP.fit` adds to the solver layer's epoch loop.

- :class:`TrainingState`: the optimizer a network keeps between ``fit`` calls, so that
  ``fit(epochs=4)`` then ``fit(epochs=6)`` is ``fit(epochs=10)`` bit for bit;
- :func:`check_lr`, :func:`scheduled_lr`, :func:`check_patience`: the checks of ``lr`` (a
  number or a callable of the epoch) and ``patience``;
- :class:`FitControl`: the per-epoch work of a callable ``lr``, of early stopping (the best
  weights kept aside and restored) and of the progress bar, called by
  ``nnfast._solvers.EpochLoop`` between epochs (its ``control``).

The scikit-learn estimators use the epoch loop without any of this.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from nnfast import _solvers
from nnfast._validation import check_int, check_real

SCHEDULED_OPTIMIZERS = ("sgd", "adam")  # those whose update reads lr at every step


class TrainingState:
    """What a network keeps between ``fit`` calls: ``optimizer`` (an ``nnfast._solvers``
    optimizer: its buffers, update count and settings), ``epochs``, the epochs it has
    trained, which is where a callable ``lr`` goes on, and ``diverged`` (then it is not
    continued: its moments may be NaN or huge)."""

    def __init__(self, optimizer, epochs=0):
        self.optimizer = optimizer
        self.epochs = epochs
        self.diverged = False

    def __repr__(self):
        return f"TrainingState({self.optimizer!r}, epochs={self.epochs})"


def start_state(previous, name, params, lr, settings, restart, epochs) -> TrainingState:
    """The state of a fit with optimizer `name`, ``lr`` and the other `settings` of this
    call, continuing `previous` (the network's state, or None) when it is of the same
    optimizer, did not diverge and `restart` is False.

    Settings (lr, momentum, betas …) are this call's; what the optimizer accumulated is
    the previous run's (an Rprop continues with its adapted step sizes, not ``lr``). A
    callable lr is called here for the first epoch (so a bad value stops the fit before
    any training) unless no epoch runs.
    """
    if previous is None or previous.diverged or restart or previous.optimizer.name != name:
        previous = None
    position = 0 if previous is None else previous.epochs
    if callable(lr):
        lr = scheduled_lr(lr, position) if epochs else 1.0  # (1.0: unused)
    optimizer = _solvers.make_optimizer(name, params, lr, **settings)
    if previous is not None:
        optimizer.step[...] = previous.optimizer.step
        for buffer_name, buffer in optimizer.buffers.items():
            buffer[...] = previous.optimizer.buffers[buffer_name]
    return TrainingState(optimizer, position)


def check_lr(lr, optimizer):
    """``lr``: a finite number > 0, or (for sgd and adam) a callable ``lr(epoch)``."""
    if callable(lr):
        if optimizer not in SCHEDULED_OPTIMIZERS:
            raise ValueError(
                "lr: a callable lr(epoch) sets the step size of optimizer 'sgd' or 'adam' "
                f"epoch by epoch; optimizer={optimizer!r} takes a number "
                "(rprop: its initial step size; lbfgs: unused)"
            )
        return lr
    if not isinstance(lr, numbers.Real) or isinstance(lr, bool):
        raise TypeError(
            f"lr: expected a real number or a callable lr(epoch), got {type(lr).__name__} {lr!r}"
        )
    return check_real(lr, "lr", low=0, low_open=True)


def scheduled_lr(schedule, epoch) -> float:
    """``schedule(epoch)``, checked to be a finite number > 0."""
    return check_real(schedule(epoch), f"lr({epoch})", low=0, low_open=True)


def check_patience(patience, validation, optimizer):
    """``patience``: None, or an integer >= 1 with validation data and an epoch optimizer."""
    if patience is None:
        return None
    patience = check_int(patience, "patience", 1)
    if validation is None:
        raise ValueError(
            "patience: early stopping watches the validation loss; "
            "give validation_data=(X_val, y_val) too"
        )
    if optimizer in ("lbfgs", "lbfgs_scipy"):
        raise ValueError(
            "patience: early stopping is for optimizer 'sgd', 'adam' or 'rprop', not "
            f"{optimizer!r} (whose own stop is tol)"
        )
    return patience


def check_validation(validation_data, check_data, in_training_units):
    """fit's validation_data: None, or (X_val, Y_val in the training units, their
    inv_wsum) from a tuple (X_val, y_val) that ``check_data(X_val, y_val)`` (the training
    data's checks) accepts."""
    if validation_data is None:
        return None
    if not isinstance(validation_data, (tuple, list)):
        raise TypeError(
            "validation_data: expected a tuple (X_val, y_val), "
            f"got {type(validation_data).__name__}"
        )
    if len(validation_data) != 2:
        raise ValueError(
            "validation_data: expected a tuple (X_val, y_val), got a "
            f"{type(validation_data).__name__} of length {len(validation_data)}"
        )
    Xv, Yv, _, _, _, inv_wsum_v = check_data(*validation_data)
    return Xv, in_training_units(Yv), inv_wsum_v


def progress_callback(bar, callback):
    """A fit callback that updates `bar` (if any) with each epoch's loss, then calls
    `callback` (L-BFGS's progress: its loop has no control)."""
    if bar is None:
        return callback

    def update(epoch, loss):
        bar.update(epoch, loss)
        return None if callback is None else callback(epoch, loss)

    return update


class FitControl:
    """The per-epoch work of one ``fit`` call, for ``EpochLoop(control=...)``.

    ``epoch_starts(epoch)`` before each epoch after the first (the first's lr is the
    optimizer's own) sets ``lr(state.epochs + epoch)``; ``epoch_ended(history)`` after each
    recorded epoch updates the bar and the early-stopping count and returns True when
    ``patience`` epochs in a row brought no validation loss below the best (the best
    epoch's weights are kept aside); :meth:`keep_best` restores them. ``bar`` is a
    ``nnfast._progress.ProgressBar`` or None; its owner closes it.
    """

    def __init__(self, state, params, lr, patience=None, bar=None):
        self.state = state
        self.params = params
        self.lr_schedule = lr if callable(lr) else None
        self.patience = patience
        self.bar = bar
        self.best_loss = math.inf
        self.best_epoch = None
        self.best_params = None if patience is None else np.empty_like(params)
        self.epochs_without_improvement = 0

    @property
    def needed(self) -> bool:
        """Whether there is any per-epoch work (otherwise the epochs may run compiled)."""
        return self.lr_schedule is not None or self.patience is not None or self.bar is not None

    def epoch_starts(self, epoch):
        """Before epoch `epoch` (counted from 0 in this run)."""
        if self.lr_schedule is not None:
            self.state.optimizer.lr = scheduled_lr(self.lr_schedule, self.state.epochs + epoch)

    def epoch_ended(self, history) -> bool:
        """After an epoch recorded in `history`: True to stop (patience ran out)."""
        val_loss = history.val_loss[-1] if history.val_loss else None
        if self.bar is not None:
            self.bar.update(history.epochs, history.loss[-1], val_loss)
        if self.patience is None:
            return False
        # NaN compares False: an epoch with a non-finite validation loss is no improvement.
        if val_loss < self.best_loss:
            self.best_loss, self.best_epoch = val_loss, history.epochs
            self.best_params[...] = self.params
            self.epochs_without_improvement = 0
            return False
        self.epochs_without_improvement += 1
        return self.epochs_without_improvement >= self.patience

    def run(self, loop, epochs):
        """``loop.run(epochs)`` (an EpochLoop of this state's optimizer), then
        :meth:`keep_best`; the state counts the epochs run, and is marked when the run
        diverged."""
        try:
            history = loop.run(epochs)
        except FloatingPointError:
            self.state.diverged = True
            raise
        finally:
            self.state.epochs += loop.history.epochs
        self.keep_best(history)
        return history

    def keep_best(self, history):
        """After a run that ended normally (completed, converged, callback): with patience,
        the network gets back the weights of its best epoch, recorded as
        ``history.best_epoch``."""
        if self.best_epoch is not None:
            self.params[...] = self.best_params
            history.best_epoch = self.best_epoch
