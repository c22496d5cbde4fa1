"""Forward-mode input Jacobians (cimport only: no Python names)."""
