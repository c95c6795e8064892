"""Host arrays on 64-byte boundaries, as PyTorch's CPU allocator gives them.

NumPy's arrays come from ``malloc``, which promises 16 bytes: three times in four, a large
array starts off a cache line. OpenBLAS's single-precision GEMM minds where its right
operand starts: here, 32 x 128 times 128 x 128 float32 runs ~20% faster (17.5 against
21.4 us) when the 128 x 128 matrix starts on a 64-byte boundary (see the README, Speed).

So the tensors that live long and meet BLAS again and again are made aligned: every CPU
tensor a creation function builds (``tensor``, ``zeros``, ``randn``..., so parameters and
optimizer state), and the transposed weight copy of a backward pass (``reused_nt``). Op
outputs are not: an aligned allocation costs about 2 us of Python, more than it saves on
the small arrays most ops make.

>>> empty((4, 256), np.float32).ctypes.data % 64
0
"""

from __future__ import annotations

import numpy as np

__all__ = ["ALIGN", "empty", "aligned"]

ALIGN = 64  # bytes: one cache line, and what PyTorch's CPU allocator aligns to
_MIN_BYTES = 1024  # smaller arrays stay as NumPy makes them (its small-block cache)


def empty(shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array starting on an ``ALIGN``-byte boundary.

    It is a view of a slightly larger byte buffer that it keeps alive (``.base``); the
    engine's in-place rule (``accumulate._sole_array``) treats such an array as shared, so
    it is never written through by mistake.
    """
    dtype = np.dtype(dtype)
    n = dtype.itemsize
    for s in shape:
        n *= s
    if n < _MIN_BYTES:
        return np.empty(shape, dtype)
    buf = np.empty(n + ALIGN, np.uint8)
    off = -buf.ctypes.data % ALIGN
    return buf[off:off + n].view(dtype).reshape(shape)


def aligned(a: np.ndarray) -> np.ndarray:
    """``a`` itself if it is small or starts on an ``ALIGN``-byte boundary, else an aligned
    C-contiguous copy."""
    if a.nbytes < _MIN_BYTES or a.ctypes.data % ALIGN == 0:
        return a
    out = empty(a.shape, a.dtype)
    out[...] = a
    return out
