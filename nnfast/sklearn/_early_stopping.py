"""How a run that diverges under early stopping ends: as in scikit-learn 1.9.

scikit-learn (since its fix for its issue #29504) does not stop a stochastic run whose
weights became NaN or infinite while ``early_stopping=True``: it trains on, each later
epoch's loss is NaN and its network's outputs are NaN. A regressor's validation score is
then NaN (``_score_with_function`` returns NaN for non-finite predictions), which resets
the no-improvement count (``NaN < best + tol`` is false), so the run goes on to
``max_iter``, warns that it reached it, and restores the best weights — finite — without
raising. A classifier's score is the accuracy of the labels NaN outputs give (the first
class; no label for multilabel targets), a finite number that the stopping rule counts as
usual. nnfast's driver stops at the first non-finite epoch instead of computing NaNs;
:func:`finish_diverged_run` then plays the remaining epochs as scikit-learn plays them.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import accuracy_score


def nan_network_score(model, y_val, w_val):
    """The validation score scikit-learn computes for a network whose outputs are NaN."""
    if not is_classifier(model):
        return np.nan
    outputs = np.full((len(y_val), model.n_outputs_), np.nan)
    labels = model._label_binarizer.inverse_transform(
        outputs.ravel() if model.n_outputs_ == 1 else outputs
    )
    return float(accuracy_score(y_val, labels, sample_weight=w_val))


def finish_diverged_run(model, rule, n_train, validation):
    """Play epochs ``model.n_iter_ + 1 … max_iter`` of a diverged run as scikit-learn does.

    Each gets a NaN loss and the score of a NaN network (printed with ``verbose`` as
    scikit-learn prints them); ``t_`` advances by ``n_train`` samples per epoch and the
    optimizer's schedule sees them; the stopping rule watches minus the score and may end
    the run (or, with the adaptive schedule, lower the rate). True when it ran to
    ``max_iter``. A NaN network that scores better than every earlier epoch becomes the
    "best" one, and scikit-learn then fails on its weights: ValueError here too.
    (scikit-learn's first non-finite epoch may record ``inf`` where nnfast records NaN.)
    """
    _, y_val, w_val = validation
    score = nan_network_score(model, y_val, w_val)
    while model.n_iter_ < model.max_iter:
        model.n_iter_ += 1
        model.t_ += n_train
        model.loss_ = np.nan
        model.loss_curve_.append(np.nan)
        if model.verbose:
            print(f"Iteration {model.n_iter_}, loss = nan")
        model.validation_scores_.append(score)
        if model.verbose:
            print(f"Validation score: {score:f}")
        if score > model.best_validation_score_:
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain "
                "large values and need to be preprocessed."
            )
        model._optimizer.iteration_ends(model.t_)
        if rule.update(-score):
            if not model._on_plateau():
                return False
            rule.count = 0
    return True
