"""The record of a training run returned by ``fit``."""

from __future__ import annotations


class History:
    """Per-epoch losses of one ``fit`` call.

    Attributes
    ----------
    loss : list of float
        Training loss of each completed epoch: the mean of the batch losses (each including
        the ``l2`` penalty at the time it was computed), weighted by each batch's total
        sample weight (its number of samples when no ``sample_weight`` is given).
    val_loss : list of float
        Loss on ``validation_data`` after each epoch (same definition as ``MLP.loss``,
        ``l2`` included); empty when no validation data was given.
    stop_reason : str
        ``"completed"`` (all epochs ran), ``"callback"`` (the callback returned False),
        ``"diverged"`` (the loss or the weights became NaN or infinite; the weights are those of the last
        finite epoch) or ``"interrupted"`` (KeyboardInterrupt; the weights are those of the last
        complete epoch). With
        ``optimizer="lbfgs"`` an epoch is one L-BFGS iteration and the run may also end
        ``"converged"`` (gradient below ``tol``), ``"max_fun"`` (loss evaluations used up)
        or ``"stalled"`` (the line search could make no progress). The scikit-learn
        estimators' stopping rule on the training loss also ends a run ``"converged"``, and
        so does ``fit``'s early stopping (``patience`` epochs without a better val_loss).
    best_epoch : int or None
        With ``fit(patience=...)``: the epoch (from 1) of the lowest val_loss, whose weights
        the network was given back at the end of the run; None otherwise (and after a
        diverged or interrupted run, which keeps its last complete epoch).
    """

    def __init__(self):
        self.loss: list[float] = []
        self.val_loss: list[float] = []
        self.stop_reason: str = "completed"
        self.best_epoch: int | None = None

    @property
    def epochs(self) -> int:
        """Number of completed epochs."""
        return len(self.loss)

    def plot(self, ax=None, log=None):
        """Draw the loss (and val_loss) per epoch with matplotlib; returns the Axes.

        Parameters
        ----------
        ax : matplotlib Axes or None
            Where to draw (None: a new figure).
        log : bool or None
            A logarithmic loss axis; None chooses it when every loss is positive and they
            span more than a factor of 10.
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as err:
            raise ImportError(
                "History.plot needs matplotlib: pip install matplotlib "
                '(or pip install "nnfast[plot]")'
            ) from err
        if ax is None:
            _, ax = plt.subplots()
        epochs = range(1, self.epochs + 1)
        ax.plot(epochs, self.loss, label="loss")
        if self.val_loss:
            ax.plot(range(1, len(self.val_loss) + 1), self.val_loss, label="val_loss")
        values = self.loss + self.val_loss
        if log is None:
            log = bool(values) and min(values) > 0 and max(values) > 10 * min(values)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title(f"stop reason: {self.stop_reason}")
        ax.legend()
        return ax

    def __repr__(self) -> str:
        last = f", last loss={self.loss[-1]:.6g}" if self.loss else ""
        val = f", last val_loss={self.val_loss[-1]:.6g}" if self.val_loss else ""
        best = "" if self.best_epoch is None else f", best_epoch={self.best_epoch}"
        return f"History(epochs={self.epochs}{last}{val}{best}, stop_reason={self.stop_reason!r})"
