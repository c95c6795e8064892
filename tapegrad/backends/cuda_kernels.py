"""numba.cuda kernels for the CUDA backend: the hot fused elementwise kernels.

Each kernel has a host wrapper with the reference kernel's signature. The wrapper falls back
to the reference (which runs on CuPy arrays through NumPy's dispatch) for inputs a kernel
does not handle: float16, non-contiguous or broadcast operands, empty arrays. ``numba.cuda``
is imported only when the CUDA backend is first built, never at ``import tapegrad``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda  # module global on purpose: the simulator swaps it in kernels

TPB = 128  # threads per block


def _blocks(n: int) -> int:
    return (n + TPB - 1) // TPB


def _plain(*arrays) -> bool:
    a0 = arrays[0]
    for a in arrays:
        if a.dtype != a0.dtype or a.shape != a0.shape or a.dtype not in (np.float32,
                                                                          np.float64):
            return False
        if not a.flags.c_contiguous or a.size == 0:
            return False
    return True


def _empty_like(x):
    from tapegrad import cuda

    return cuda.xp().empty_like(x)



@cuda.jit
def k_tanh(x, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = math.tanh(x[i])

@cuda.jit
def k_tanh_backward(g, y, out):
    i = cuda.grid(1)
    if i < g.size:
        out[i] = g[i] * (1 - y[i] * y[i])

@cuda.jit
def k_sigmoid(x, out):
    i = cuda.grid(1)
    if i < x.size:
        v = x[i]
        # Stable form: 0.5 + 0.5 * tanh(x / 2) never overflows.
        out[i] = 0.5 + 0.5 * math.tanh(0.5 * v)

@cuda.jit
def k_sigmoid_backward(g, y, out):
    i = cuda.grid(1)
    if i < g.size:
        out[i] = g[i] * y[i] * (1 - y[i])

@cuda.jit
def k_relu(x, out):
    i = cuda.grid(1)
    if i < x.size:
        v = x[i]
        out[i] = v if v > 0 else 0

@cuda.jit
def k_relu_backward(g, y, out):
    i = cuda.grid(1)
    if i < g.size:
        out[i] = g[i] if y[i] > 0 else 0


def kernels(ref: dict) -> dict:
    """The CUDA kernel table entries (wrappers around numba.cuda kernels)."""

    def unary(kernel, name):
        fallback = ref[name]

        def run(x):
            if not _plain(x):
                return fallback(x)
            out = _empty_like(x)
            kernel[_blocks(x.size), TPB](x.reshape(-1), out.reshape(-1))
            return out

        run.__name__ = name
        run.cuda_kernel = kernel
        return run

    def binary(kernel, name):
        fallback = ref[name]

        def run(g, y):
            if not _plain(g, y):
                return fallback(g, y)
            out = _empty_like(g)
            kernel[_blocks(g.size), TPB](g.reshape(-1), y.reshape(-1), out.reshape(-1))
            return out

        run.__name__ = name
        run.cuda_kernel = kernel
        return run

    table = {
        "tanh": unary(k_tanh, "tanh"),
        "sigmoid": unary(k_sigmoid, "sigmoid"),
        "relu": unary(k_relu, "relu"),
        "tanh_backward": binary(k_tanh_backward, "tanh_backward"),
        "sigmoid_backward": binary(k_sigmoid_backward, "sigmoid_backward"),
        "relu_backward": binary(k_relu_backward, "relu_backward"),
    }
    try:
        from tapegrad.backends import cuda_optim
    except ImportError:  # the optimizer kernels arrive with the optim package
        cuda_optim = None
    if cuda_optim is not None:
        table.update(cuda_optim.kernels(ref))
    return table
