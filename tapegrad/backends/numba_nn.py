"""Numba kernels for the neural-network ops: same names, signatures and answers as ``ref_nn``.

softmax / log_softmax make one pass per row (max, then exp-sum, then write) instead of four
NumPy reductions and temporaries; gelu, softplus and leaky_relu (and their derivatives) are
single fused loops; im2col / col2im, max pooling and its scatter-add are direct loops over
the windows. The wrappers send what the loops were not written for (float16 and integer
arrays, non-contiguous arrays, a softmax dim that is not the last, 1-D or 3-D convolution)
to the reference kernels, and a loop that fails to compile falls back with one warning.

>>> KERNELS["softmax"](np.zeros((1, 4)), 1)
array([[0.25, 0.25, 0.25, 0.25]])
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.core.errors import NumbaError

from tapegrad.backends import ref_loss as RL
from tapegrad.backends import ref_nn as R
from tapegrad.backends.numba_backend import fallback
from tapegrad.backends.numba_core import _JIT, _empty, _fast1, _grad_c

_JIT_SUM = dict(_JIT, fastmath={"reassoc"})  # (reassociation only: NaN and inf propagate)

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715


# ---- softmax family (one pass per row along the last dim) ----------------------------------
@njit(**_JIT)
def _row_max(x, s, n):
    m = x[s]
    for j in range(s + 1, s + n):
        v = x[j]
        if v > m:
            m = v
        elif v != v:
            return v  # NaN: the whole row is NaN, as with np.max
    return m


@njit(**_JIT)
def _softmax(x, n, log, out):
    for r in range(x.size // n):
        s = r * n
        m = _row_max(x, s, n)
        acc = 0.0
        for j in range(s, s + n):
            e = math.exp(x[j] - m)
            acc += e
            if not log:
                out[j] = e
        if log:
            lse = math.log(acc)
            for j in range(s, s + n):
                out[j] = (x[j] - m) - lse
        else:
            inv = 1.0 / acc
            for j in range(s, s + n):
                out[j] = out[j] * inv


# From this many elements on, the softmax family takes NumPy's SIMD exp (under 1 ns an
# element here) and a vectorized row sum instead of the row loops, whose scalar float64 exp
# costs ~10 ns an element: measured 4x faster on 256 x 1000 float32, slower below ~1000.
_LARGE_SOFTMAX = 1024
_LARGE_CE = 4096


@njit(**_JIT_SUM)
def _row_sums(e, out):
    # out[i] = sum of row i, accumulated in float64 (vectorized: reassociation allowed).
    rows, n = e.shape
    for i in range(rows):
        r = e[i]
        acc = 0.0
        for j in range(n):
            acc += r[j]
        out[i] = acc


def _exp_rows(x2, shift):
    """``exp(x2 - shift[:, None])`` (a fresh array) and its row sums (float64)."""
    e = np.subtract(x2, shift)
    np.exp(e, out=e)
    s = np.empty(x2.shape[0])
    _row_sums(e, s)
    return e, s


def _softmax_large(x, log):
    x2 = x.reshape(-1, x.shape[-1])
    m = x2.max(axis=1, keepdims=True)  # NaN rows stay NaN, as in the reference
    e, s = _exp_rows(x2, m)
    if log:
        np.subtract(x2, m, out=e)
        e -= np.log(s).astype(x.dtype)[:, None]
    else:
        e *= (1.0 / s).astype(x.dtype)[:, None]
    return e.reshape(x.shape)


def _softmax_call(name, ref, x, dim, log):
    if _fast1(x) and x.ndim and dim % x.ndim == x.ndim - 1 and x.shape[-1] > 0:
        if x.size >= _LARGE_SOFTMAX:
            try:
                return _softmax_large(x, log)
            except NumbaError:
                return fallback(name, ref, x, dim)
        out = _empty(x.shape, x.dtype)
        try:
            _softmax(x.reshape(-1), x.shape[-1], log, out.reshape(-1))
        except NumbaError:
            return fallback(name, ref, x, dim)
        return out
    return ref(x, dim)


def softmax(x, dim):
    """exp(x - max) / sum along ``dim``; a loop over rows when ``dim`` is the last."""
    return _softmax_call("softmax", R.softmax, x, dim, False)


def log_softmax(x, dim):
    """(x - max) - log(sum(exp(x - max))) along ``dim``."""
    return _softmax_call("log_softmax", R.log_softmax, x, dim, True)


# ---- fused activations ----------------------------------------------------------------------
@njit(**_JIT)
def _gelu(x, tanh_form, out):
    for i in range(x.size):
        v = x.flat[i]
        if tanh_form:
            out.flat[i] = 0.5 * v * (1.0 + math.tanh(_SQRT_2_PI * (v + _GELU_C * v * v * v)))
        else:
            out.flat[i] = 0.5 * v * (1.0 + math.erf(v * _INV_SQRT2))


@njit(**_JIT)
def _gelu_backward(g, x, tanh_form, out):
    for i in range(x.size):
        v = x.flat[i]
        if tanh_form:
            t = math.tanh(_SQRT_2_PI * (v + _GELU_C * v * v * v))
            du = _SQRT_2_PI * (1.0 + 3.0 * _GELU_C * v * v)
            out.flat[i] = g.flat[i] * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * du)
        else:
            cdf = 0.5 * (1.0 + math.erf(v * _INV_SQRT2))
            pdf = math.exp(-0.5 * v * v) * _INV_SQRT_2PI
            out.flat[i] = g.flat[i] * (cdf + v * pdf)


def gelu(x, approximate):
    if _fast1(x) and approximate in ("none", "tanh"):
        out = _empty(x.shape, x.dtype)
        try:
            _gelu(x, approximate == "tanh", out)
        except NumbaError:
            return fallback("gelu", R.gelu, x, approximate)
        return out
    return R.gelu(x, approximate)


def gelu_backward(g, x, approximate):
    gc = _grad_c(g, x) if _fast1(x) else None
    if gc is not None and approximate in ("none", "tanh"):
        g = gc
        out = _empty(x.shape, x.dtype)
        try:
            _gelu_backward(g, x, approximate == "tanh", out)
        except NumbaError:
            return fallback("gelu_backward", R.gelu_backward, g, x, approximate)
        return out
    return R.gelu_backward(g, x, approximate)


@njit(**_JIT)
def _softplus(x, beta, threshold, out):
    for i in range(x.size):
        v = x.flat[i]
        a = v * beta
        if a > threshold:
            out.flat[i] = v
        else:
            # logaddexp(0, a) without overflow; a NaN stays NaN through log1p.
            out.flat[i] = ((a if a > 0 else 0.0) + math.log1p(math.exp(-abs(a)))) / beta


def softplus(x, beta, threshold):
    if _fast1(x) and type(beta) in (int, float) and type(threshold) in (int, float):
        out = _empty(x.shape, x.dtype)
        try:
            _softplus(x, float(beta), float(threshold), out)
        except NumbaError:
            return fallback("softplus", R.softplus, x, beta, threshold)
        return out
    return R.softplus(x, beta, threshold)


@njit(**_JIT)
def _leaky(g, x, slope, out):
    # leaky_relu is the case g is x: x where x > 0, else slope * x.
    for i in range(x.size):
        out.flat[i] = g.flat[i] if x.flat[i] > 0 else g.flat[i] * slope


def leaky_relu(x, slope):
    if _fast1(x) and type(slope) in (int, float):
        out = _empty(x.shape, x.dtype)
        try:
            _leaky(x, x, x.dtype.type(slope), out)
        except NumbaError:
            return fallback("leaky_relu", R.leaky_relu, x, slope)
        return out
    return R.leaky_relu(x, slope)


def leaky_relu_backward(g, x, slope):
    gc = _grad_c(g, x) if _fast1(x) else None
    if gc is not None and type(slope) in (int, float):
        g = gc
        out = _empty(x.shape, x.dtype)
        try:
            _leaky(g, x, x.dtype.type(slope), out)
        except NumbaError:
            return fallback("leaky_relu_backward", R.leaky_relu_backward, g, x, slope)
        return out
    return R.leaky_relu_backward(g, x, slope)


# ---- im2col / col2im (2-D convolution) ------------------------------------------------------
@njit(**_JIT)
def _im2col(x, kh, kw, sh, sw, dh, dw, oh, ow, cols):
    n, c = x.shape[0], x.shape[1]
    for ci in range(c):
        for i in range(kh):
            for j in range(kw):
                row = (ci * kh + i) * kw + j
                for ni in range(n):
                    for p in range(oh):
                        base = (ni * oh + p) * ow
                        hi = p * sh + i * dh
                        for q in range(ow):
                            cols[row, base + q] = x[ni, ci, hi, q * sw + j * dw]


@njit(**_JIT)
def _col2im(cols, kh, kw, sh, sw, dh, dw, oh, ow, out):
    n, c = out.shape[0], out.shape[1]
    for ci in range(c):
        for i in range(kh):
            for j in range(kw):
                row = (ci * kh + i) * kw + j
                for ni in range(n):
                    for p in range(oh):
                        base = (ni * oh + p) * ow
                        hi = p * sh + i * dh
                        for q in range(ow):
                            out[ni, ci, hi, q * sw + j * dw] += cols[row, base + q]


def _out(size, k, s, d):
    return (size - d * (k - 1) - 1) // s + 1


def im2col(x, kernel_size, stride, dilation):
    """Windows of a padded (N, C, H, W) array as the columns of one matrix."""
    if _fast1(x) and x.ndim == 4 and len(kernel_size) == 2:
        (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
        n, c, h, w = x.shape
        oh, ow = _out(h, kh, sh, dh), _out(w, kw, sw, dw)
        if oh > 0 and ow > 0:
            cols = _empty((c * kh * kw, n * oh * ow), x.dtype)
            try:
                _im2col(x, kh, kw, sh, sw, dh, dw, oh, ow, cols)
            except NumbaError:
                return fallback("im2col", R.im2col, x, kernel_size, stride, dilation)
            return cols
    return R.im2col(x, kernel_size, stride, dilation)


def col2im(cols, shape, kernel_size, stride, dilation):
    """The adjoint of :func:`im2col`: columns summed back into an (N, C, H, W) array."""
    if _fast1(cols) and len(shape) == 4 and len(kernel_size) == 2 and cols.ndim == 2:
        (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
        n, c, h, w = shape
        oh, ow = _out(h, kh, sh, dh), _out(w, kw, sw, dw)
        if cols.shape == (c * kh * kw, n * oh * ow) and oh > 0 and ow > 0:
            out = np.zeros(tuple(shape), cols.dtype)
            try:
                _col2im(cols, kh, kw, sh, sw, dh, dw, oh, ow, out)
            except NumbaError:
                return fallback("col2im", R.col2im, cols, shape, kernel_size, stride, dilation)
            return out
    return R.col2im(cols, shape, kernel_size, stride, dilation)


# ---- max pooling ----------------------------------------------------------------------------
@njit(**_JIT)
def _max_pool(x, kh, kw, sh, sw, ph, pw, dh, dw, best, idx):
    n, c, h, w = x.shape
    oh, ow = best.shape[2], best.shape[3]
    for ni in range(n):
        for ci in range(c):
            for p in range(oh):
                for q in range(ow):
                    # The reference's scan: the first maximum wins, any later NaN wins, and
                    # the first real cell wins over an all -inf window; padding never wins.
                    b = -np.inf
                    k = -1
                    for i in range(kh):
                        r = p * sh - ph + i * dh
                        if r < 0 or r >= h:
                            continue
                        for j in range(kw):
                            col = q * sw - pw + j * dw
                            if col < 0 or col >= w:
                                continue
                            v = x[ni, ci, r, col]
                            if v > b or v != v or k < 0:
                                b = v
                                k = r * w + col
                    best[ni, ci, p, q] = b
                    idx[ni, ci, p, q] = k


def max_pool2d(x, kernel_size, stride, padding, dilation, out_size):
    """Window maxima of (N, C, H, W) and the winners' flat indices into H * W."""
    if _fast1(x) and x.ndim == 4:
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
        n, c = x.shape[:2]
        shape = (n, c) + tuple(out_size)
        best = _empty(shape, x.dtype)
        idx = _empty(shape, np.int64)
        try:
            _max_pool(x, kh, kw, sh, sw, ph, pw, dh, dw, best, idx)
        except NumbaError:
            return fallback("max_pool2d", R.max_pool2d, x, kernel_size, stride, padding,
                            dilation, out_size)
        return best, idx
    return R.max_pool2d(x, kernel_size, stride, padding, dilation, out_size)


@njit(**_JIT)
def _pool_scatter(g, idx, plane, per, out):
    # out (flat: N*C planes of H*W) += g at each window's winner; per = windows per plane.
    for k in range(g.size):
        j = idx[k]
        if j >= 0:
            out[(k // per) * plane + j] += g[k]


def max_pool2d_backward(g, idx, shape):
    """Scatter-add ``g`` (N, C, oh, ow) into zeros of ``shape`` at the winners."""
    if _fast1(g) and g.ndim == 4 and type(idx) is np.ndarray and idx.dtype == np.int64 and \
            idx.shape == g.shape and idx.flags.c_contiguous and g.size:
        out = np.zeros(tuple(shape), g.dtype)
        try:
            _pool_scatter(g.reshape(-1), idx.reshape(-1), shape[2] * shape[3],
                          g.shape[2] * g.shape[3], out.reshape(-1))
        except NumbaError:
            return fallback("max_pool2d_backward", R.max_pool2d_backward, g, idx, shape)
        return out
    return R.max_pool2d_backward(g, idx, shape)


@njit(**_JIT)
def _pool_gather(x, idx, plane, per, out):
    for k in range(idx.size):
        out[k] = x[(k // per) * plane + idx[k]]


def pool_gather(x, idx):
    """out[n, c, i, j] = x[n, c].flat[idx[n, c, i, j]]."""
    if _fast1(x) and x.ndim == 4 and type(idx) is np.ndarray and idx.dtype == np.int64 and \
            idx.ndim == 4 and idx.shape[:2] == x.shape[:2] and idx.flags.c_contiguous and \
            idx.size and idx.min() >= 0:
        out = _empty(idx.shape, x.dtype)
        per = idx.shape[2] * idx.shape[3]
        try:
            _pool_gather(x.reshape(-1), idx.reshape(-1), x.shape[2] * x.shape[3], per,
                         out.reshape(-1))
        except NumbaError:
            return fallback("pool_gather", R.pool_gather, x, idx)
        return out
    return R.pool_gather(x, idx)


# ---- cross-entropy (class-index targets, 2-D logits) -----------------------------------------
@njit(**_JIT)
def _cross_entropy(x, target, valid, loss, lse):
    n, c = x.shape
    for i in range(n):
        m = x[i, 0]
        for j in range(1, c):
            v = x[i, j]
            if v > m or v != v:
                m = v
        acc = 0.0
        for j in range(c):
            acc += math.exp(x[i, j] - m)
        s = m + math.log(acc)
        lse[i] = s
        loss[i] = s - x[i, target[i]] if valid[i] else 0.0


@njit(**_JIT)
def _cross_entropy_backward(g, x, lse, target, valid, scale, out):
    n, c = x.shape
    per_row = g.size == n
    for i in range(n):
        if not valid[i]:
            for j in range(c):
                out[i, j] = 0.0
            continue
        r = (g[i] if per_row else g[0]) * scale
        s = lse[i]
        for j in range(c):
            out[i, j] = r * math.exp(x[i, j] - s)
        out[i, target[i]] -= r


def _ce_ok(x, target, valid) -> bool:
    return _fast1(x) and x.ndim == 2 and x.shape[1] > 0 and type(target) is np.ndarray and \
        target.dtype == np.int64 and target.shape == x.shape[:1] and \
        type(valid) is np.ndarray and valid.dtype == np.bool_ and valid.shape == x.shape[:1]


@njit(**_JIT)
def _ce_finish(p, g, target, valid, scale):
    # p holds softmax(x) row by row: times the row's gradient, minus it at the target;
    # rows not counted (ignore_index) become 0.
    n, c = p.shape
    per_row = g.size == n
    for i in range(n):
        pr = p[i]
        if not valid[i]:
            for j in range(c):
                pr[j] = 0.0  # (not p * 0: a row of NaN logits would stay NaN)
            continue
        r = (g[i] if per_row else g[0]) * scale
        for j in range(c):
            pr[j] = pr[j] * r
        pr[target[i]] -= r


def _ce_large(x, target, valid):
    m = x.max(axis=1)
    _, s = _exp_rows(x, m[:, None])
    lse = (m + np.log(s)).astype(x.dtype)
    loss = np.where(valid, lse - x[np.arange(x.shape[0]), target], np.zeros((), x.dtype))
    return loss.astype(x.dtype, copy=False), lse


def cross_entropy(x, target, valid):
    """Per-row losses and logsumexps in one pass per row (max-subtracted)."""
    if _ce_ok(x, target, valid):
        n = x.shape[0]
        if x.size >= _LARGE_CE:
            try:
                return _ce_large(x, target, valid)
            except NumbaError:
                return fallback("cross_entropy", RL.cross_entropy, x, target, valid)
        loss = _empty(n, x.dtype)
        lse = _empty(n, x.dtype)
        try:
            _cross_entropy(x, np.ascontiguousarray(target), np.ascontiguousarray(valid), loss,
                           lse)
        except NumbaError:
            return fallback("cross_entropy", RL.cross_entropy, x, target, valid)
        return loss, lse
    return RL.cross_entropy(x, target, valid)


def cross_entropy_backward(g, x, lse, target, valid, scale):
    """``g * scale * (softmax(x) - onehot)`` on valid rows, one pass per row."""
    if _ce_ok(x, target, valid) and type(g) is np.ndarray and g.dtype == x.dtype and \
            g.size in (1, x.shape[0]) and type(lse) is np.ndarray and lse.dtype == x.dtype:
        if x.size >= _LARGE_CE:
            try:
                p = np.subtract(x, lse[:, None])
                np.exp(p, out=p)
                _ce_finish(p, np.ascontiguousarray(g).reshape(-1),
                           np.ascontiguousarray(target), np.ascontiguousarray(valid),
                           float(scale))
                return p
            except NumbaError:
                return fallback("cross_entropy_backward", RL.cross_entropy_backward, g, x,
                                lse, target, valid, scale)
        out = _empty(x.shape, x.dtype)
        try:
            _cross_entropy_backward(np.ascontiguousarray(g).reshape(-1), x, lse,
                                    np.ascontiguousarray(target), np.ascontiguousarray(valid),
                                    float(scale), out)
        except NumbaError:
            return fallback("cross_entropy_backward", RL.cross_entropy_backward, g, x, lse,
                            target, valid, scale)
        return out
    return RL.cross_entropy_backward(g, x, lse, target, valid, scale)


KERNELS = {
    "cross_entropy": cross_entropy,
    "cross_entropy_backward": cross_entropy_backward,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "gelu": gelu,
    "gelu_backward": gelu_backward,
    "softplus": softplus,
    "leaky_relu": leaky_relu,
    "leaky_relu_backward": leaky_relu_backward,
    "im2col": im2col,
    "col2im": col2im,
    "max_pool2d": max_pool2d,
    "max_pool2d_backward": max_pool2d_backward,
    "pool_gather": pool_gather,
}
