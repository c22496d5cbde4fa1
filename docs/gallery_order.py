"""The order of the examples in the gallery, for sphinx-gallery's ``within_subsection_order``.

A module of its own (not a class in conf.py) so that the configuration names it by a string:
Sphinx caches only configurations it can pickle.
"""

import os

# From the first fit to the benchmark. An example not listed (a new one) comes after these,
# by file name.
ORDER = [
    "seed_fit.py",
    "photometric_classification.py",
    "uncertainty.py",
    "emulator.py",
    "autoencoder.py",
    "benchmark.py",
]


class GalleryOrder:
    """Sort key: the position in ORDER, then the file name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = os.path.basename(filename)
        return (ORDER.index(name) if name in ORDER else len(ORDER), name)

    def __repr__(self):  # sphinx-gallery tells configurations apart by their repr
        return f"GalleryOrder({ORDER})"
