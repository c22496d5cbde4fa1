# nnfast._blas exposes no Python-level names: its row-major `gemm` is a Cython-only
# function (cimport it from nnfast._blas, see _blas.pxd).
