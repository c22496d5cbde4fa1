"""Data shared by the scikit-learn comparison tests."""

import numpy as np


def curve(n=200):
    x = np.linspace(-3, 3, n)[:, None]
    return x, np.sin(2 * x).ravel()
