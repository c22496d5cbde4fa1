"""The Moré–Thuente line search of nnfast's L-BFGS: C-level only (cimport nnfast._linesearch)."""
