"""gaussian_nll in the target's own units: training on standardised targets.

The clip of the log-variance (``LOG_VAR_RANGE``) and the scale of the initial weights
assume targets of about unit variance; targets of 5000 ± 800 (temperatures, say) would need
a mean of 5000 from weights drawn near 0 and standard deviations the first epochs never
reach. So a network (``MLP.fit(..., standardize_targets=True)``) or an estimator
(``MLPRegressor(loss="gaussian_nll")``) trains on ``z = (y - mean) / std``, per target,
with the (weighted) mean and standard deviation of the training targets, and maps its
output back: mean ``μ_y = mean + std · μ_z``, standard deviation ``σ_y = std · σ_z``,
log-variance ``s_y = clip(s_z) + 2 log std``.
"""

from __future__ import annotations

import numpy as np

from nnfast._spec import LOG_VAR_RANGE

# A target whose standard deviation is below this fraction of its mean is constant up to
# rounding: its scale is 1 (as StandardScaler's), not a division by rounding noise.
_CONSTANT_RELATIVE_STD = 10 * np.finfo(np.float64).eps


def gaussian_mean_std(out, k):
    """``(mean, std)`` of a gaussian_nll output ``out`` (..., 2k): the first ``k`` columns, and
    ``exp(c / 2)`` for the log-variances ``c`` of the last ``k`` clipped to LOG_VAR_RANGE
    (the variance the loss used)."""
    mean = np.ascontiguousarray(out[..., :k])
    std = np.exp(0.5 * np.clip(out[..., k:], *LOG_VAR_RANGE))
    return mean, std


def target_statistics(Y, w=None):
    """``(mean, std)``, each ``(k,)`` float64, of the columns of ``Y`` (n, k) weighted by
    ``w`` (n,) when given: ``mean = Σ w y / Σ w``, ``std = sqrt(Σ w (y - mean)² / Σ w)``; a
    constant column (std within rounding of 0) gets std 1."""
    Y = np.asarray(Y, dtype=np.float64)
    if w is None:
        mean = Y.mean(axis=0)
        var = np.square(Y - mean).mean(axis=0)
    else:
        w = np.asarray(w, dtype=np.float64)
        total = w.sum()
        mean = (w @ Y) / total
        var = (w @ np.square(Y - mean)) / total
    std = np.sqrt(var)
    std[~(std > _CONSTANT_RELATIVE_STD * np.abs(mean))] = 1.0
    return _frozen(mean), _frozen(std)


def check_target_scaling(value, k, name="target_scaling"):
    """``None``, or ``(mean, std)`` as two read-only float64 arrays of ``k`` finite values
    with ``std > 0``."""
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(
            f"{name}: expected None or a pair (mean, std) of arrays of {k} values, got "
            f"{type(value).__name__} {value!r:.60}"
        )
    arrays = []
    for part, what in zip(value, ("mean", "std")):
        try:
            array = np.array(part, dtype=np.float64, ndmin=1)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name}: expected {what} as {k} real numbers, got {part!r:.60}"
            ) from None
        if array.shape != (k,):
            raise ValueError(
                f"{name}: expected {what} of shape ({k},) (one value per target, {k} "
                f"target{'s' if k != 1 else ''}), got shape {array.shape}"
            )
        if not np.isfinite(array).all():
            raise ValueError(f"{name}: expected finite values of {what}, got {array}")
        arrays.append(array)
    if not (arrays[1] > 0).all():
        raise ValueError(f"{name}: expected every std > 0, got {arrays[1]}")
    return _frozen(arrays[0]), _frozen(arrays[1])


def standardized(Y, scaling, dtype):
    """``(Y - mean) / std`` (n, k) as a C-contiguous array of ``dtype`` (computed in float64)."""
    mean, std = scaling
    Z = (np.asarray(Y, dtype=np.float64) - mean) / std
    return np.ascontiguousarray(Z, dtype=dtype)


def in_training_units(Y, loss, scaling, dtype):
    """The targets ``Y`` as the network trains on them: standardised with ``scaling``
    (``(mean, std)`` or None), which only the gaussian_nll loss may use."""
    if scaling is None:
        return Y
    if loss != "gaussian_nll":
        raise ValueError(
            "target_scaling: a network trained on standardised targets predicts in the "
            f"targets' units with loss='gaussian_nll' only; got loss={loss!r}"
        )
    return standardized(Y, scaling, dtype)


def scaled_mean_std(out, k, scaling):
    """``(mean, std)`` of a gaussian output ``out`` (..., 2k) trained on standardised
    targets, in the targets' units and ``out``'s dtype."""
    mean, std = gaussian_mean_std(out, k)
    offset, scale = (np.asarray(a, dtype=out.dtype) for a in scaling)
    return mean * scale + offset, std * scale


def scaled_output(out, k, scaling):
    """The gaussian output ``out`` (..., 2k) in the targets' units: the means
    ``mean + std · μ``, then the log-variances ``clip(s) + 2 log std``."""
    offset, scale = (np.asarray(a, dtype=out.dtype) for a in scaling)
    result = np.empty_like(out)
    result[..., :k] = out[..., :k] * scale + offset
    result[..., k:] = np.clip(out[..., k:], *LOG_VAR_RANGE) + 2 * np.log(scale)
    return result


def _frozen(array):
    array = np.ascontiguousarray(array, dtype=np.float64)
    array.flags.writeable = False
    return array
