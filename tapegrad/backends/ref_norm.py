"""Reference (plain NumPy) kernels for the fused layer norm of ``ops/norm_ops.py`` and the
fused training-mode batch norm of ``ops/batch_norm_op.py``.

The op layer flattens the input to ``(rows, features)``: each row is normalised on its own.
The variance is the biased one of the mean-subtracted row (two passes, never the cancelling
``E[x^2] - E[x]^2``). float16 rows are computed in float32 (as PyTorch's accumulate type)
and rounded once at the end; ``mean`` and ``rstd`` stay in the compute dtype. These define
the answer the numba versions must reproduce. They use array methods and ufuncs only, so
the CUDA backend runs them unchanged on CuPy arrays.

>>> y, mean, rstd = layer_norm(np.array([[1.0, 3.0]]), None, None, 0.0)
>>> y.tolist(), mean.tolist(), rstd.tolist()
([[-1.0, 1.0]], [2.0], [1.0])
"""

from __future__ import annotations

import numpy as np


def _compute_dtype(dt):
    # Half precision loses too much in the row sums: accumulate in float32, as PyTorch.
    return np.dtype(np.float32) if dt.itemsize < 4 else dt


def layer_norm(x, w, b, eps):
    """``((x - mean) * rstd) * w + b`` per row of ``x`` (R, F), with ``rstd =
    1 / sqrt(var + eps)``; ``w`` and ``b`` are (F,) or None. Returns ``(y, mean, rstd)``,
    the last two of shape (R,)."""
    ct = _compute_dtype(x.dtype)
    xf = x.astype(ct, copy=False)
    n = x.shape[1]
    if n == 0:  # nothing to normalise (PyTorch returns the empty rows); no 0/0 warnings
        stat = (xf.sum(axis=1) * np.nan).astype(ct, copy=False)
        return x.copy(), stat, stat.copy()
    mean = xf.sum(axis=1, keepdims=True) / ct.type(n)
    xc = xf - mean
    var = (xc * xc).sum(axis=1, keepdims=True) / ct.type(n)
    rstd = (1.0 / np.sqrt(var + ct.type(eps))).astype(ct, copy=False)
    y = xc * rstd
    if w is not None:
        y = y * w.astype(ct, copy=False)
    if b is not None:
        y = y + b.astype(ct, copy=False)
    return y.astype(x.dtype, copy=False), mean[:, 0], rstd[:, 0]


def layer_norm_backward(g, x, w, mean, rstd):
    """Gradients ``(dx, dw, db)`` of :func:`layer_norm` for the output gradient ``g`` (R, F).

    With ``xhat = (x - mean) * rstd`` and ``a = g * w``:
    ``dx = rstd * (a - mean_j(a) - xhat * mean_j(a * xhat))``, ``dw = sum_i(g * xhat)``,
    ``db = sum_i(g)`` (``dw`` and ``db`` are returned even when ``w`` / the bias is None:
    they are cheap, and the op layer drops what no input needs).
    """
    ct = mean.dtype
    gf = g.astype(ct, copy=False)
    xhat = (x.astype(ct, copy=False) - mean[:, None]) * rstd[:, None]
    a = gf if w is None else gf * w.astype(ct, copy=False)
    n = x.shape[1]
    if n:
        inv = ct.type(1.0 / n)
        ma = a.sum(axis=1, keepdims=True) * inv
        max_ = (a * xhat).sum(axis=1, keepdims=True) * inv
        dx = rstd[:, None] * (a - ma - xhat * max_)
    else:
        dx = a
    dw = (gf * xhat).sum(axis=0)
    db = gf.sum(axis=0)
    dt = x.dtype
    return dx.astype(dt, copy=False), dw.astype(dt, copy=False), db.astype(dt, copy=False)


def batch_norm(x, w, b, eps):
    """Training-mode batch norm of ``x`` (N, C, L): each channel normalised with its mean
    and biased variance over N and L; ``w`` and ``b`` are (C,) or None. Returns
    ``(y, mean, var, rstd)``, the last three of shape (C,) in the compute dtype (``var`` is
    the biased batch variance, for the running statistics)."""
    ct = _compute_dtype(x.dtype)
    xf = x.astype(ct, copy=False)
    m = x.shape[0] * x.shape[2]
    mean = xf.sum(axis=(0, 2)) / ct.type(m)
    xc = xf - mean[:, None]
    var = (xc * xc).sum(axis=(0, 2)) / ct.type(m)
    rstd = (1.0 / np.sqrt(var + ct.type(eps))).astype(ct, copy=False)
    y = xc * rstd[:, None]
    if w is not None:
        y = y * w.astype(ct, copy=False)[:, None]
    if b is not None:
        y = y + b.astype(ct, copy=False)[:, None]
    return y.astype(x.dtype, copy=False), mean, var, rstd


def batch_norm_backward(g, x, w, mean, rstd):
    """Gradients ``(dx, dw, db)`` of :func:`batch_norm` for the output gradient ``g``
    (N, C, L): the layer norm formulas with the means over N and L of each channel."""
    ct = mean.dtype
    gf = g.astype(ct, copy=False)
    xhat = (x.astype(ct, copy=False) - mean[:, None]) * rstd[:, None]
    a = gf if w is None else gf * w.astype(ct, copy=False)[:, None]
    inv = ct.type(1.0 / (x.shape[0] * x.shape[2]))
    ma = a.sum(axis=(0, 2)) * inv
    max_ = (a * xhat).sum(axis=(0, 2)) * inv
    dx = rstd[:, None] * (a - ma[:, None] - xhat * max_[:, None])
    dw = (gf * xhat).sum(axis=(0, 2))
    db = gf.sum(axis=(0, 2))
    dt = x.dtype
    return dx.astype(dt, copy=False), dw.astype(dt, copy=False), db.astype(dt, copy=False)


KERNELS = {
    "layer_norm": layer_norm,
    "layer_norm_backward": layer_norm_backward,
    "batch_norm": batch_norm,
    "batch_norm_backward": batch_norm_backward,
}
