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
        estimators' stopping rule on the training loss also ends a run ``"converged"``.
    """

    def __init__(self):
        self.loss: list[float] = []
        self.val_loss: list[float] = []
        self.stop_reason: str = "completed"

    @property
    def epochs(self) -> int:
        """Number of completed epochs."""
        return len(self.loss)

    def __repr__(self) -> str:
        last = f", last loss={self.loss[-1]:.6g}" if self.loss else ""
        val = f", last val_loss={self.val_loss[-1]:.6g}" if self.val_loss else ""
        return f"History(epochs={self.epochs}{last}{val}, stop_reason={self.stop_reason!r})"
