"""Fitted network <-> ``coefs_`` / ``intercepts_``: the estimators' parameter views.

The estimators' ``coefs_`` and ``intercepts_`` are views into their network's flat
parameter buffer; arrays the user assigns instead are copied into it before the network is
used. Pickling drops the views (they would be copied detached from the buffer) and
rebuilds them on load.
"""

from __future__ import annotations

import numpy as np


class _ParameterViews:
    """Mixin of the nnfast estimators that own a fitted network ``self._net``."""

    def _bind_views(self):
        """coefs_ / intercepts_ become views into the network's flat parameter buffer."""
        weights, biases = list(self._net.weights), list(self._net.biases)
        self._views = (weights, biases)
        self.coefs_ = list(weights)
        self.intercepts_ = list(biases)

    def _sync_params(self):
        """Copy coefs_ / intercepts_ into the network if the user replaced any of them."""
        weights, biases = self._views
        for name, current, views in (
            ("coefs_", self.coefs_, weights),
            ("intercepts_", self.intercepts_, biases),
        ):
            if len(current) != len(views):
                raise ValueError(
                    f"{name}: expected {len(views)} arrays (one per layer), got {len(current)}"
                )
            for i, (array, view) in enumerate(zip(current, views)):
                if array is view:
                    continue
                array = np.asarray(array)
                if array.shape != view.shape:
                    raise ValueError(f"{name}[{i}]: expected shape {view.shape}, got {array.shape}")
                view[...] = array
        self.coefs_ = list(weights)
        self.intercepts_ = list(biases)

    def __getstate__(self):
        if getattr(self, "_net", None) is not None:
            self._sync_params()
        state = dict(super().__getstate__())  # object.__getstate__ returns __dict__ itself
        # Views would be pickled as copies detached from the buffer: rebuilt on load.
        for key in ("coefs_", "intercepts_", "_views"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if getattr(self, "_net", None) is not None:
            self._bind_views()
