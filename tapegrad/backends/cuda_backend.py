"""The CUDA backend: CuPy arrays (NumPy in the simulator) plus numba.cuda kernels.

Ops and derivatives are the registry's; this module only supplies the array module and a
kernel table. Reference kernels run unchanged on CuPy arrays through NumPy's dispatch
protocols (``__array_ufunc__`` / ``__array_function__``); the hot fused kernels are
``numba.cuda`` kernels (``backends/cuda_kernels.py``) that take CuPy arrays through
``__cuda_array_interface__`` and, in the simulator, NumPy arrays.
"""

from __future__ import annotations

from tapegrad.backends import Backend


def make_backend() -> Backend:
    from tapegrad import cuda
    from tapegrad.backends import cuda_kernels
    from tapegrad.backends.numpy_backend import reference_kernels

    table = reference_kernels()
    table.update(cuda_kernels.kernels(table))
    return Backend("cuda-sim" if cuda.simulator() else "cupy", cuda.xp(), table, "cuda")
