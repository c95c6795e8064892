"""Numba kernels for the fused layer norm: same names, signatures and answers as ``ref_norm``.

NumPy spends a layer norm in about ten full passes over memory and as many temporaries
(mean, subtract, square, mean, add, sqrt, divide, multiply, scale, shift; the backward twice
that). Here the forward is one loop over the rows that sweeps each row, still in cache, for
the mean, the centred variance and the output; the backward is one loop over the rows that
sweeps each row twice: the two row sums, ``dw`` and ``db`` accumulated on the way, then
``dx``. The arithmetic is in the rows' dtype, as in the reference.

Only float32 / float64 C-contiguous rows of one dtype take the loops; everything else
(float16, mixed dtypes, strided views) goes to the reference kernels, which give the same
answer, and a loop that fails to compile falls back with one warning.

>>> y, mean, rstd = KERNELS["layer_norm"](np.array([[1.0, 3.0]]), None, None, 0.0)
>>> y.tolist()
[[-1.0, 1.0]]
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.core.errors import NumbaError

from tapegrad.backends import ref_norm as R
from tapegrad.backends.numba_backend import fallback
from tapegrad.backends.numba_core import _JIT, _c_order, _empty, _fast1


# Reassociation lets LLVM vectorise the row sums (several partial sums, as NumPy's pairwise
# sum). No other fast-math flag: NaN and inf propagate as in the reference, and without
# "contract" a product is rounded alike in both sweeps, so what should cancel does exactly.
_JIT_SUM = dict(_JIT, fastmath={"reassoc"})


@njit(**_JIT_SUM)
def _layer_norm(x, w, b, has_w, has_b, zero, inv_n, eps, y, mean, rstd):
    # Arithmetic in the rows' dtype (``zero``, ``inv_n`` and ``eps`` carry it), as the
    # reference and PyTorch do: float32 rows keep twice the SIMD width.
    # Two row loops: the statistics of every row, then the outputs. (One loop writing each
    # row's output right after its statistics measured 1.7x slower, 128 x 256 float32.)
    rows, n = x.shape
    for i in range(rows):
        xr = x[i]
        s = zero
        for j in range(n):
            s += xr[j]
        m = s * inv_n
        v = zero
        for j in range(n):
            d = xr[j] - m
            v += d * d
        mean[i] = m
        rstd[i] = (zero + 1) / math.sqrt(v * inv_n + eps)
    for i in range(rows):
        xr = x[i]
        yr = y[i]
        m = mean[i]
        r = rstd[i]
        for j in range(n):
            t = (xr[j] - m) * r
            if has_w:
                t = t * w[j]
            if has_b:
                t = t + b[j]
            yr[j] = t


@njit(**_JIT_SUM)
def _layer_norm_backward(g, x, w, has_w, zero, inv_n, mean, rstd, dx, dw, db):
    rows, n = x.shape
    for j in range(n):
        dw[j] = zero
        db[j] = zero
    for i in range(rows):
        gr = g[i]
        xr = x[i]
        dr = dx[i]
        m = mean[i]
        r = rstd[i]
        sa = zero
        sax = zero
        for j in range(n):
            gj = gr[j]
            xh = (xr[j] - m) * r
            a = gj * w[j] if has_w else gj
            sa += a
            sax += a * xh
            dw[j] += gj * xh
            db[j] += gj
        sa *= inv_n
        sax *= inv_n
        for j in range(n):
            xh = (xr[j] - m) * r
            a = gr[j] * w[j] if has_w else gr[j]
            dr[j] = r * (a - sa - xh * sax)


def _param_ok(p, x) -> bool:
    return p is None or (_fast1(p) and p.dtype is x.dtype and p.shape == x.shape[1:])


# numba cannot type None and an array alike: an empty array stands in, with the flag off.
_ABSENT = {np.dtype(np.float32): np.empty(0, np.float32),
           np.dtype(np.float64): np.empty(0, np.float64)}


def _or_empty(p, x):
    return (p, True) if p is not None else (_ABSENT[x.dtype], False)


def layer_norm(x, w, b, eps):
    """``(y, mean, rstd)`` of the rows of ``x`` (R, F), one sweep per row for each."""
    if _fast1(x) and x.ndim == 2 and x.shape[1] > 0 and _param_ok(w, x) and _param_ok(b, x) \
            and type(eps) in (int, float):
        rows = x.shape[0]
        y = _empty(x.shape, x.dtype)
        mean = _empty(rows, x.dtype)
        rstd = _empty(rows, x.dtype)
        wa, has_w = _or_empty(w, x)
        ba, has_b = _or_empty(b, x)
        t = x.dtype.type
        try:
            _layer_norm(x, wa, ba, has_w, has_b, t(0), t(1.0 / x.shape[1]), t(eps), y, mean,
                        rstd)
        except NumbaError:
            return fallback("layer_norm", R.layer_norm, x, w, b, eps)
        return y, mean, rstd
    return R.layer_norm(x, w, b, eps)


def layer_norm_backward(g, x, w, mean, rstd):
    """``(dx, dw, db)`` of the layer norm of the rows of ``x`` for the output gradient ``g``."""
    if _fast1(x) and x.ndim == 2 and x.shape[1] > 0 and _fast1(g) and g.dtype is x.dtype \
            and g.shape == x.shape and _param_ok(w, x) and _fast1(mean) and \
            mean.dtype is x.dtype and _fast1(rstd) and rstd.dtype is x.dtype and \
            mean.shape == rstd.shape == x.shape[:1]:
        n = x.shape[1]
        dx = _empty(x.shape, x.dtype)
        dw = _empty(n, x.dtype)
        db = _empty(n, x.dtype)
        wa, has_w = _or_empty(w, x)
        t = x.dtype.type
        try:
            _layer_norm_backward(g, x, wa, has_w, t(0), t(1.0 / n), mean, rstd, dx, dw, db)
        except NumbaError:
            return fallback("layer_norm_backward", R.layer_norm_backward, g, x, w, mean, rstd)
        return dx, dw, db
    return R.layer_norm_backward(g, x, w, mean, rstd)


# ---- batch norm (training mode) over (N, C, L): per channel, the sums in float64 ----------
@njit(**_JIT_SUM)
def _batch_norm(x, w, b, has_w, has_b, eps, y, mean, var, rstd):
    n, c, l = x.shape
    inv = 1.0 / (n * l)
    for ci in range(c):
        s = 0.0
        for ni in range(n):
            xr = x[ni, ci]
            for j in range(l):
                s += xr[j]
        mean[ci] = s * inv
        m = mean[ci]  # (the rounded mean, as the reference centres with)
        v = 0.0
        for ni in range(n):
            xr = x[ni, ci]
            for j in range(l):
                d = xr[j] - m
                v += d * d
        var[ci] = v * inv
        rstd[ci] = 1.0 / math.sqrt(var[ci] + eps)
    for ni in range(n):
        for ci in range(c):
            xr = x[ni, ci]
            yr = y[ni, ci]
            m = mean[ci]
            r = rstd[ci]
            for j in range(l):
                t = (xr[j] - m) * r
                if has_w:
                    t = t * w[ci]
                if has_b:
                    t = t + b[ci]
                yr[j] = t


@njit(**_JIT_SUM)
def _batch_norm_backward(g, x, w, has_w, mean, rstd, dx, dw, db):
    n, c, l = x.shape
    inv = 1.0 / (n * l)
    for ci in range(c):
        m = mean[ci]
        r = rstd[ci]
        sg = 0.0
        sgx = 0.0
        for ni in range(n):
            gr = g[ni, ci]
            xr = x[ni, ci]
            for j in range(l):
                gj = gr[j]
                sg += gj
                sgx += gj * ((xr[j] - m) * r)
        dw[ci] = sgx
        db[ci] = sg
        # The pass below in x's own dtype (a float64 factor would make Numba run a float32
        # pass in float64, half as wide): the means of a = g * w and of a * xhat, rounded.
        t = x.dtype.type
        wc = w[ci] if has_w else t(1)
        ma = t(wc * sg * inv)
        max_ = t(wc * sgx * inv)
        for ni in range(n):
            gr = g[ni, ci]
            xr = x[ni, ci]
            dr = dx[ni, ci]
            for j in range(l):
                dr[j] = r * (gr[j] * wc - ma - ((xr[j] - m) * r) * max_)


def _chan_ok(p, x) -> bool:
    return p is None or (_fast1(p) and p.dtype is x.dtype and p.shape == x.shape[1:2])


def batch_norm(x, w, b, eps):
    """``(y, mean, var, rstd)`` of the channels of ``x`` (N, C, L): two sweeps per channel
    for the statistics, one over the array for the output."""
    if _fast1(x) and x.ndim == 3 and x.shape[0] * x.shape[2] > 0 and _chan_ok(w, x) and \
            _chan_ok(b, x) and type(eps) in (int, float):
        c = x.shape[1]
        y = _empty(x.shape, x.dtype)
        mean, var, rstd = _empty(c, x.dtype), _empty(c, x.dtype), _empty(c, x.dtype)
        wa, has_w = _or_empty(w, x)
        ba, has_b = _or_empty(b, x)
        try:
            _batch_norm(x, wa, ba, has_w, has_b, float(eps), y, mean, var, rstd)
        except NumbaError:
            return fallback("batch_norm", R.batch_norm, x, w, b, eps)
        return y, mean, var, rstd
    return R.batch_norm(x, w, b, eps)


def batch_norm_backward(g, x, w, mean, rstd):
    """``(dx, dw, db)`` of :func:`batch_norm` for the output gradient ``g`` (N, C, L)."""
    g = _c_order(g)
    if _fast1(x) and x.ndim == 3 and x.shape[0] * x.shape[2] > 0 and _fast1(g) and \
            g.dtype is x.dtype and g.shape == x.shape and _chan_ok(w, x) and \
            _fast1(mean) and mean.dtype is x.dtype and _fast1(rstd) and \
            rstd.dtype is x.dtype and mean.shape == rstd.shape == x.shape[1:2]:
        c = x.shape[1]
        dx = _empty(x.shape, x.dtype)
        dw, db = _empty(c, x.dtype), _empty(c, x.dtype)
        wa, has_w = _or_empty(w, x)
        try:
            _batch_norm_backward(g, x, wa, has_w, mean, rstd, dx, dw, db)
        except NumbaError:
            return fallback("batch_norm_backward", R.batch_norm_backward, g, x, w, mean, rstd)
        return dx, dw, db
    return R.batch_norm_backward(g, x, w, mean, rstd)


KERNELS = {
    "layer_norm": layer_norm,
    "layer_norm_backward": layer_norm_backward,
    "batch_norm": batch_norm,
    "batch_norm_backward": batch_norm_backward,
}
