"""
Compressing spectra to two numbers: an autoencoder against PCA
==============================================================

Each spectrum below depends on two physical parameters only — a temperature, which sets
the shape of the continuum, and the strength of one emission line — but its 60 flux
values change with the temperature in a curved, nonlinear way. PCA, the linear
compression, needs more than two components to follow that curve;
:class:`nnfast.sklearn.MLPAutoencoder` learns a nonlinear two-number code and decodes it
back to the spectrum.

The autoencoder is a scikit-learn transformer: ``fit`` trains a mirrored network
``60 → 64 → 32 → 2 → 32 → 64 → 60`` to reproduce its input (with nnfast's compiled
training), ``transform`` runs the encoder, ``inverse_transform`` the decoder, and
``score`` is minus the mean squared reconstruction error — the same interface as
:class:`~sklearn.decomposition.PCA`.

Run on its own with ``python examples/autoencoder.py``.
"""

import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from nnfast.sklearn import MLPAutoencoder

# %%
# Spectra with two parameters
# ---------------------------
# A black body of temperature 3,000–12,000 K (Planck's law, normalised to a mean of 1)
# over 0.3–1 µm, times ``1 + A · g(λ)`` with ``g`` an emission line at Hα (0.6563 µm) and
# ``A`` uniform in [0, 1], plus 1% Gaussian noise. 2,000 spectra to train on, 1,000 to
# test on.

wavelength = np.linspace(0.3, 1.0, 60)  # µm
HC_OVER_K = 14388.0  # µm·K


def spectra(n, rng):
    temperature = rng.uniform(3000, 12000, n)
    line_strength = rng.uniform(0, 1, n)
    planck = 1 / (wavelength**5 * np.expm1(HC_OVER_K / (wavelength * temperature[:, None])))
    planck /= planck.mean(axis=1, keepdims=True)
    line = np.exp(-0.5 * ((wavelength - 0.6563) / 0.01) ** 2)
    flux = planck * (1 + line_strength[:, None] * line)
    return flux + 0.01 * rng.normal(size=flux.shape), temperature, line_strength


rng = np.random.default_rng(0)
X_train, T_train, A_train = spectra(2000, rng)
X_test, T_test, A_test = spectra(1000, rng)

# Every wavelength's error should count the same: standardise first.
scaler = StandardScaler().fit(X_train)
Z_train, Z_test = scaler.transform(X_train), scaler.transform(X_test)

# %%
# Reconstruction error against the size of the code
# -------------------------------------------------
# For codes of 1 to 4 numbers: PCA, and an autoencoder with ``tanh`` hidden layers trained
# by Adam. Errors are on the held-out spectra, in units of each wavelength's variance.


def reconstruction_error(model, Z):
    return float(np.mean((model.inverse_transform(model.transform(Z)) - Z) ** 2))


sizes = [1, 2, 3, 4]
pca_errors, autoencoder_errors, autoencoders = [], [], {}
for n_components in sizes:
    pca = PCA(n_components).fit(Z_train)
    started = time.perf_counter()
    with warnings.catch_warnings():
        # Stopping after max_iter epochs is intended here; scikit-learn would warn too.
        warnings.simplefilter("ignore", ConvergenceWarning)
        autoencoder = MLPAutoencoder(
            n_components=n_components,
            hidden_layer_sizes=(64, 32),
            activation="tanh",
            learning_rate_init=0.003,
            max_iter=300,
            random_state=0,
        ).fit(Z_train)
    seconds = time.perf_counter() - started
    autoencoders[n_components] = autoencoder
    pca_errors.append(reconstruction_error(pca, Z_test))
    autoencoder_errors.append(reconstruction_error(autoencoder, Z_test))
    print(
        f"{n_components} component(s): PCA {pca_errors[-1]:.4f}, autoencoder "
        f"{autoencoder_errors[-1]:.4f} ({autoencoder_errors[-1] / pca_errors[-1]:.2f}x PCA's;"
        f" {autoencoder.n_iter_} epochs in {seconds:.1f} s)"
    )

# %%
# With two numbers — as many as the spectra have parameters — the autoencoder's error is a
# tenth of PCA's; PCA needs four components to do as well. (Past two, extra numbers give the
# autoencoder nothing more to capture but noise, and its error stays put.) Its code is a
# smooth, nonlinear chart of the two parameters:
# colouring the test spectra's codes by their true temperature and line strength shows
# both varying steadily across it.

autoencoder = autoencoders[2]
codes = autoencoder.transform(Z_test)
pca = PCA(2).fit(Z_train)
example = np.argmin(np.abs(T_test - 4000) / 1000 + np.abs(A_test - 0.7))  # cool, strong line
one = slice(example, example + 1)
from_autoencoder = scaler.inverse_transform(autoencoder.inverse_transform(codes[one]))
from_pca = scaler.inverse_transform(pca.inverse_transform(pca.transform(Z_test[one])))

fig, axes = plt.subplots(1, 3, figsize=(14, 4))
axes[0].semilogy(sizes, pca_errors, "o-", label="PCA")
axes[0].semilogy(sizes, autoencoder_errors, "s-", label="autoencoder")
axes[0].set_xticks(sizes)
axes[0].set_xlabel("size of the code")
axes[0].set_ylabel("held-out reconstruction error")
axes[0].legend()
axes[1].plot(wavelength, X_test[example], color="0.5", lw=3, label="spectrum")
axes[1].plot(wavelength, from_autoencoder[0], color="C1", label="autoencoder, 2 numbers")
axes[1].plot(wavelength, from_pca[0], color="C0", ls="--", label="PCA, 2 components")
axes[1].set_xlabel("wavelength (µm)")
axes[1].set_ylabel("normalised flux")
axes[1].set_title(f"T = {T_test[example]:.0f} K, line strength {A_test[example]:.2f}", fontsize=10)
axes[1].legend(fontsize=8)
points = axes[2].scatter(codes[:, 0], codes[:, 1], c=T_test, s=6, cmap="plasma")
fig.colorbar(points, ax=axes[2], label="temperature (K)")
axes[2].set_xlabel("code 1")
axes[2].set_ylabel("code 2")
axes[2].set_title("the autoencoder's 2-number code", fontsize=10)
fig.tight_layout()

fig, ax = plt.subplots(figsize=(5, 4))
points = ax.scatter(codes[:, 0], codes[:, 1], c=A_test, s=6, cmap="viridis")
fig.colorbar(points, ax=ax, label="line strength")
ax.set_xlabel("code 1")
ax.set_ylabel("code 2")
fig.tight_layout()
plt.show()
