"""The gaussian_nll regressor's targets: standardised for training, reported in y's units.

``MLPRegressor(loss="gaussian_nll")`` trains on ``z = (y - target_mean_) / target_scale_``
per target (see :mod:`nnfast._targets` for why) and maps its network's output back, so
``predict``, ``predict(X, return_std=True)``, ``score`` and ``input_grad`` are in ``y``'s
units. ``MeanStd`` is the pair ``predict(X, return_std=True)`` returns.
"""

from __future__ import annotations

import numpy as np

from nnfast._targets import standardized, target_statistics

_NOT_AN_ARRAY = (
    "predict(X, return_std=True) returned a (mean, std) pair, not an array, so it has no "
    "attribute {name!r}. scikit-learn's TransformedTargetRegressor asks for it: its predict "
    "applies the transformer's inverse to whatever the regressor returns, and so cannot "
    "pass return_std through (scikit-learn issue #24638; GaussianProcessRegressor fails the "
    "same way). It is not needed: nnfast's gaussian_nll estimators standardise the targets "
    "themselves and report mean and std in y's own units — fit the estimator (or a Pipeline "
    "ending in it) on y directly."
)


class MeanStd(tuple):
    """``(mean, std)``: a plain pair, whose missing array attributes (``ndim``, ``shape``
    …, which TransformedTargetRegressor reads from what ``predict`` returns) raise an
    AttributeError saying why and what to do instead."""

    __slots__ = ()

    def __new__(cls, mean, std):
        return super().__new__(cls, (mean, std))

    def __getnewargs__(self):
        return tuple(self)

    def __getattr__(self, name):  # called only for attributes a tuple does not have
        if name in ("ndim", "shape", "dtype", "size", "reshape", "squeeze", "__array__"):
            raise AttributeError(_NOT_AN_ARRAY.format(name=name))
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


class TargetScaling:
    """Mixin of MLPRegressor: the standardisation of gaussian_nll targets.

    ``target_mean_`` and ``target_scale_`` ((n_outputs,) float64) are set by a first fit
    (not by a warm start nor a later ``partial_fit``, which keep the units the network was
    trained in) from the (weighted) training targets; a constant target gets scale 1.
    """

    def _scaling(self):
        """(mean, scale) of a gaussian_nll model, None otherwise (or for one pickled before
        the targets were standardised)."""
        if not self._predicts_std or getattr(self, "target_scale_", None) is None:
            return None
        return self.target_mean_, self.target_scale_

    def _training_targets(self, Y, sample_weight, first_pass):
        """``Y`` (n, n_outputs) in the units the network trains in."""
        if not self._gaussian_nll():
            return Y
        if first_pass:
            self.target_mean_, self.target_scale_ = (
                np.array(a) for a in target_statistics(Y, sample_weight)
            )
        scaling = self._scaling()
        if scaling is None:  # warm start of a model pickled before: it trained on y itself
            return Y
        return standardized(Y, scaling, Y.dtype)

    def _in_target_units(self, mean):
        """Predicted means (n, n_outputs) of the network -> y's units, in their dtype."""
        scaling = self._scaling()
        if scaling is None:
            return mean
        offset, scale = (a.astype(mean.dtype) for a in scaling)
        return mean * scale + offset

    def _targets_for_score(self, Y_val):
        """Early stopping's validation targets, back in y's units (R² is computed there)."""
        scaling = self._scaling()
        if scaling is not None:
            Y_val = Y_val.astype(np.float64) * scaling[1] + scaling[0]
        return Y_val[:, 0] if Y_val.shape[1] == 1 else Y_val
