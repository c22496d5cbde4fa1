"""MLPAutoencoder: nonlinear dimensionality reduction with a mirrored multi-layer perceptron."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.metrics import mean_squared_error
from sklearn.utils._param_validation import Interval
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from nnfast import _solvers, _threads
from nnfast._validation import as_finite
from nnfast.sklearn import _state
from nnfast.sklearn._base import _HIDDEN, _BaseMLP


def _negative_mse(X, X_reconstructed, sample_weight=None):
    """Minus the mean over samples and features of the squared reconstruction error."""
    return -mean_squared_error(X, X_reconstructed, sample_weight=sample_weight)


class MLPAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, _BaseMLP):
    """Nonlinear dimensionality reduction: a multi-layer perceptron trained to reproduce X.

    The network is a mirrored encoder and decoder around a linear bottleneck of
    ``n_components`` units::

        n_features -> h1 -> ... -> hk -> n_components -> hk -> ... -> h1 -> n_features
                   activation      identity        activation       identity

    ``transform`` runs the encoder (the layers up to the bottleneck), ``inverse_transform``
    the decoder, both compiled. The bottleneck is linear, as the components of PCA are, so
    that the code is not confined to the range of ``activation`` (a ReLU code would lose its
    negative half); with ``activation="identity"`` the network is an affine map of rank
    ``n_components`` and ``solver="lbfgs"`` reaches PCA's reconstruction error, the least
    such a map can have. The output is linear (the reconstruction of ``X``).

    Training is :class:`MLPRegressor`'s, of ``X`` onto ``X``, with the layer stack above: the
    same solvers, schedules, stopping rules, early stopping, warnings, initialisation and
    random draws (the autoencoder is ``MLPRegressor(hidden_layer_sizes=(h1, ..., hk,
    n_components, hk, ..., h1))`` with an identity bottleneck). The objective is half the
    squared reconstruction error summed over features and averaged over samples (weighted
    by ``sample_weight``), plus ``0.5 * alpha * ΣW² / n_batch``; ``loss_`` and
    ``loss_curve_`` report it. :meth:`score` is minus the mean squared reconstruction error
    (averaged over features too), so that model selection maximises it. Scale the features
    first (e.g. ``StandardScaler``): every feature's error counts the same.

    ``inverse_transform`` takes codes of ``n_components`` columns; like scikit-learn's
    transformers it calls its argument ``X``. Both halves refuse NaN, infinity and, for a
    float32 network, values too large for float32.

    Parameters
    ----------
    n_components : int, default=2
        Width of the code; from 1 to ``n_features`` (at ``n_features`` the code reduces no
        dimension but may still straighten the data, as PCA allows).
    hidden_layer_sizes : array-like of shape (n_encoder_layers,), default=(100,)
        Widths of the encoder's hidden layers, from the input inwards; the decoder uses them
        in reverse order. ``()`` gives a linear encoder and an affine decoder.
    activation : {"identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "maxout"}, \
default="relu"
        Activation of every hidden layer except the (linear) bottleneck.
    solver, alpha, batch_size, learning_rate, learning_rate_init, power_t, max_iter, \
shuffle, random_state, tol, verbose, warm_start, momentum, nesterovs_momentum, \
early_stopping, validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun, \
dtype, n_threads
        As :class:`MLPRegressor`'s. ``early_stopping`` scores the held-out samples with
        :meth:`score` (minus the mean squared reconstruction error).

    Attributes
    ----------
    coefs_, intercepts_ : list of ndarray
        Weights and biases of the ``2 * len(hidden_layer_sizes) + 2`` layers, encoder
        first; views into the network's flat parameter buffer (assigning new arrays is also
        honoured). A maxout layer's are ``(n_in, n_out, 2)`` and ``(n_out, 2)``.
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, t_, n_iter_
        As :class:`MLPRegressor`'s.
    n_features_in_, feature_names_in_
        Width and (for DataFrames) column names of ``X`` seen by ``fit``.
    n_layers_ : int
        Number of layers counting the input: ``2 * len(hidden_layer_sizes) + 3``.
    n_outputs_, out_activation_
        ``n_features_in_`` and ``"identity"``: the network's output is the reconstruction.

    Examples
    --------
    >>> import numpy as np
    >>> from nnfast.sklearn import MLPAutoencoder
    >>> t = np.linspace(0, 3 * np.pi, 300)
    >>> X = np.c_[np.cos(t), np.sin(t), t / 5]  # a helix: 1-D curve in 3-D
    >>> ae = MLPAutoencoder(n_components=1, hidden_layer_sizes=(32,), activation="tanh",
    ...                     learning_rate_init=0.01, max_iter=1000, random_state=0).fit(X)
    >>> ae.transform(X).shape, ae.inverse_transform(ae.transform(X)).shape
    ((300, 1), (300, 3))
    """

    # Dense X only (sparse input would be reconstructed densely).
    _accept_sparse = False

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_components=2,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dtype=None,
        n_threads=None,
    ):
        self.n_components = n_components
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            dtype=dtype,
            n_threads=n_threads,
        )

    # ---- the mirrored layer stack (hooks of _BaseMLP) --------------------------------------

    def _hidden_sizes(self):
        encoder = super()._hidden_sizes()
        return encoder + [int(self.n_components)] + encoder[::-1]

    def _hidden_activations(self, n_hidden):
        side = (_HIDDEN[self.activation],) * (n_hidden // 2)
        return side + ("identity",) + side

    def _output_activation(self):
        return "identity"

    def _loss_setup(self):
        return "mse", self.n_outputs_ / 2.0  # half the squared error summed over features

    def _validate_input(self, X, y, incremental, reset):
        # X is checked, and n_components against its width, before validate_data records
        # n_features_in_: a refused X leaves a fitted autoencoder as it was. (Without reset,
        # validate_data refuses a width other than the fitted one.)
        checked = check_array(X, dtype=(np.float64, np.float32), estimator=self, input_name="X")
        n_features = checked.shape[1]
        if reset and self.n_components > n_features:
            raise ValueError(
                f"n_components: expected an integer from 1 to n_features = {n_features} "
                f"(the number of columns of X), got {self.n_components}"
            )
        validate_data(self, X, reset=reset, skip_check_array=True)
        return checked, checked

    def _targets_for_score(self, Y_val):
        return Y_val

    def _predict(self, X, check_input=True):
        return self._forward(X, check_input=check_input)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, _negative_mse)

    # ---- encoder and decoder -----------------------------------------------------------------

    @property
    def _n_features_out(self):
        """The fitted code width (get_feature_names_out); AttributeError before fit."""
        sizes = self._net.layer_sizes
        return sizes[len(sizes) // 2]

    def _run_half(self, X, decoder):
        """The encoder's (or decoder's) output for validated X, in the network's dtype.

        Layers are stored one after the other in the flat buffer, so the encoder's
        parameters are a prefix of it and the decoder's the rest: each half runs as a
        network of its own on a view of its part of the buffer.
        """
        self._sync_params()
        net = self._net
        n_layers = len(net.layer_sizes) - 1
        middle = n_layers // 2
        first, stop = (middle, n_layers) if decoder else (0, middle)
        X = as_finite(X, "X", net.dtype)  # 1e39 is finite, but infinity in float32
        out = np.empty((X.shape[0], net.layer_sizes[stop]), dtype=net.dtype)
        with _threads.use(self.n_threads):
            _solvers.predict_layers_into(net, first, stop, X, out)
        return out

    # ---- public methods ----------------------------------------------------------------------

    def fit(self, X, y=None, sample_weight=None):
        """Fit the autoencoder to X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored; present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.

        Returns
        -------
        self
        """
        self._validate_params()
        return self._fit(X, None, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the model with one epoch over X (sgd, adam, rprop).

        Returns
        -------
        self
        """
        self._validate_params()
        return self._fit(X, None, sample_weight=sample_weight, incremental=True)

    @_state.consistent
    def transform(self, X):
        """Encode X: the output of the bottleneck layer.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            In the network's dtype.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return self._run_half(X, decoder=False)

    @_state.consistent
    def inverse_transform(self, X):
        """Decode codes back to the data space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, such as the output of :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            The reconstruction, in the network's dtype.
        """
        check_is_fitted(self)
        X = check_array(X, dtype=(np.float64, np.float32), estimator=self, input_name="X")
        n_components = self._n_features_out
        if X.shape[1] != n_components:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__}.inverse_transform "
                f"expects codes of n_components = {n_components} features"
            )
        return self._run_half(X, decoder=True)

    @_state.consistent
    def score(self, X, y=None, sample_weight=None):
        """Minus the mean squared reconstruction error, averaged over samples and features.

        Higher is better (0 is perfect), so that model selection maximises it. On the
        training data, ``-0.5 * n_features_in_ * score(X)`` is ``loss_`` without the L2 term.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return self._score(X, X, sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
