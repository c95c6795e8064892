"""Numba kernels for the elementwise smooth L1 loss of ``ops/loss_ops.py``: same names,
signatures and answers as ``ref_loss``.

NumPy's version is a ``where`` over three temporaries (and ``np.where`` branches per element);
here one loop each way, in the input's dtype. Anything but float32 / float64 arrays of one
dtype and shape goes to the reference.

>>> KERNELS["smooth_l1"](np.array([0.5, -3.0]), 1.0)
array([0.125, 2.5  ])
"""

from __future__ import annotations

import numpy as np  # noqa: F401 (the docstring example)
from numba import njit
from numba.core.errors import NumbaError

from tapegrad.backends import ref_loss as R
from tapegrad.backends.numba_backend import fallback
from tapegrad.backends.numba_core import _JIT, _empty, _fast1, _grad_c


@njit(**_JIT)
def _smooth_l1(d, beta, out):
    half = d.dtype.type(0.5)
    for i in range(d.size):
        v = d.flat[i]
        a = abs(v)
        # (the reference's operations in its order: 0.5 * d * d / beta; a NaN fails a < beta)
        out.flat[i] = half * v * v / beta if a < beta else a - half * beta


@njit(**_JIT)
def _smooth_l1_backward(g, d, beta, out):
    # Selects, not branches (an if / elif chain ran 35x slower on random signs); the
    # reference's operations in its order (g * d / beta); sign(NaN) is NaN.
    zero, one = d.dtype.type(0), d.dtype.type(1)
    for i in range(d.size):
        v = d.flat[i]
        gi = g.flat[i]
        s = one if v > zero else (-one if v < zero else v)
        out.flat[i] = gi * v / beta if abs(v) < beta else gi * s


def smooth_l1(d, beta):
    """0.5 d^2 / beta where |d| < beta, else |d| - beta / 2, in one pass."""
    if _fast1(d) and type(beta) in (int, float) and beta > 0:
        out = _empty(d.shape, d.dtype)
        try:
            _smooth_l1(d, d.dtype.type(beta), out)
        except NumbaError:
            return fallback("smooth_l1", R.smooth_l1, d, beta)
        return out
    return R.smooth_l1(d, beta)


def smooth_l1_backward(g, d, beta):
    """g * (d / beta where |d| < beta, else sign(d)), in one pass (a broadcast ``g``, the
    gradient of a mean, is copied to C order first)."""
    gc = _grad_c(g, d) if _fast1(d) else None
    if gc is not None and type(beta) in (int, float) and beta > 0:
        out = _empty(d.shape, d.dtype)
        try:
            _smooth_l1_backward(gc, d, d.dtype.type(beta), out)
        except NumbaError:
            return fallback("smooth_l1_backward", R.smooth_l1_backward, g, d, beta)
        return out
    return R.smooth_l1_backward(g, d, beta)


KERNELS = {
    "smooth_l1": smooth_l1,
    "smooth_l1_backward": smooth_l1_backward,
}
