"""Numba kernels for the neural-network ops: same names, signatures and answers as ``ref_nn``
(the softmax family and cross-entropy live in ``numba_softmax``).

gelu, softplus and leaky_relu (and their derivatives) are single fused loops (large float32
gelu: two loops around NumPy's SIMD exp / tanh); im2col / col2im, max pooling and its
scatter-add are direct loops over the windows. The wrappers send what the loops were not
written for (float16 and integer arrays, non-contiguous arrays, 1-D or 3-D convolution) to
the reference kernels, and a loop that fails to compile falls back with one warning.

>>> KERNELS["leaky_relu"](np.array([-2.0, 3.0]), 0.5)
array([-1.,  3.])
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.core.errors import NumbaError

from tapegrad.backends import ref_nn as R
from tapegrad.backends.numba_backend import fallback
from tapegrad.backends.numba_core import _F32, _JIT, _c_order, _empty, _fast1, _grad_c
from tapegrad.backends.numba_core import sigmoid as _sigmoid

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715


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


# Large float32 arrays: three passes, the transcendental one NumPy's SIMD exp / tanh in place
# (the scalar libm erf of the loops above costs ~14 ns an element here). The erf form uses
# Abramowitz & Stegun 7.1.26, |error in erf| < 1.5e-7, the formula of PyTorch's vectorized
# float32 erf; written as erfc for x < 0 (no 1 - erf cancelling), so that the left tail
# keeps a relative error under 0.1% down to x = -4 and a few % down to -12.
_LARGE_GELU = 2048
_f = np.float32  # the constants of the float32 passes: float64 ones would halve the SIMD width
_AS_P = _f(0.3275911 * _INV_SQRT2)
_AS_A = tuple(_f(a) for a in (0.254829592, -0.284496736, 1.421413741, -1.453152027,
                              1.061405429))
_F_HALF, _F_ONE, _F_THREE = _f(0.5), _f(1.0), _f(3.0)
_F_S2PI, _F_C, _F_ISQ2PI = _f(_SQRT_2_PI), _f(_GELU_C), _f(_INV_SQRT_2PI)


@njit(**_JIT)
def _gelu_pre(x, tanh_form, out):
    # The argument of the pass NumPy runs: tanh's, or exp's (-x^2 / 2).
    for i in range(x.size):
        v = x[i]
        out[i] = _F_S2PI * (v + _F_C * v * v * v) if tanh_form else -_F_HALF * v * v


@njit(**_JIT)
def _gelu_post(g, x, tanh_form, backward, out):
    # ``out`` holds tanh(u) (tanh form) or exp(-x^2 / 2); ``g`` is read only for backward.
    a1, a2, a3, a4, a5 = _AS_A
    for i in range(x.size):
        v = x[i]
        f = out[i]
        if tanh_form:
            if backward:
                du = _F_S2PI * (_F_ONE + _F_THREE * _F_C * v * v)
                r = _F_HALF * (_F_ONE + f) + _F_HALF * v * ((_F_ONE - f) * (_F_ONE + f)) * du
            else:
                r = _F_HALF * v * (_F_ONE + f)
        else:
            t = _F_ONE / (_F_ONE + _AS_P * abs(v))
            tail = _F_HALF * t * (a1 + t * (a2 + t * (a3 + t * (a4 + t * a5)))) * f  # Phi(-|v|)
            cdf = _F_ONE - tail if v >= 0 else tail
            r = cdf + v * f * _F_ISQ2PI if backward else v * cdf
        out[i] = g[i] * r if backward else r


def _gelu_large(g, x, tanh_form, backward):
    xf = x.reshape(-1)
    out = _empty(x.shape, x.dtype)
    of = out.reshape(-1)
    _gelu_pre(xf, tanh_form, of)
    (np.tanh if tanh_form else np.exp)(of, out=of)
    _gelu_post(xf if g is None else g.reshape(-1), xf, tanh_form, backward, of)
    return out


def gelu(x, approximate):
    if _fast1(x) and approximate in ("none", "tanh"):
        if x.dtype is _F32 and x.size >= _LARGE_GELU:
            try:
                return _gelu_large(None, x, approximate == "tanh", False)
            except NumbaError:
                return fallback("gelu", R.gelu, x, approximate)
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
        if x.dtype is _F32 and x.size >= _LARGE_GELU:
            try:
                return _gelu_large(g, x, approximate == "tanh", True)
            except NumbaError:
                return fallback("gelu_backward", R.gelu_backward, g, x, approximate)
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


@njit(**_JIT)
def _softplus_pre(x, beta, out):
    for i in range(x.size):
        out[i] = -abs(x[i] * beta)


@njit(**_JIT)
def _softplus_post(x, beta, threshold, out):
    # out holds log1p(exp(-|beta x|)); a NaN stays NaN (it fails both comparisons).
    zero = x.dtype.type(0)
    for i in range(x.size):
        v = x[i]
        a = v * beta
        out[i] = v if a > threshold else ((a if a > zero else zero) + out[i]) / beta


def _softplus_large(x, beta, threshold):
    # Large float32: NumPy's SIMD exp and log1p between two loops, in float32 (the scalar
    # loop calls libm's exp and log1p per element in float64: ~18 ms on 256 x 1024).
    xf = x.reshape(-1)
    out = _empty(x.shape, x.dtype)
    of = out.reshape(-1)
    b = _F32.type(beta)
    _softplus_pre(xf, b, of)
    np.exp(of, out=of)
    np.log1p(of, out=of)
    _softplus_post(xf, b, _F32.type(threshold), of)
    return out


def softplus(x, beta, threshold):
    if _fast1(x) and type(beta) in (int, float) and type(threshold) in (int, float):
        if x.dtype is _F32 and x.size >= _LARGE_GELU and beta:
            try:
                return _softplus_large(x, beta, threshold)
            except NumbaError:
                return fallback("softplus", R.softplus, x, beta, threshold)
        out = _empty(x.shape, x.dtype)
        try:
            _softplus(x, float(beta), float(threshold), out)
        except NumbaError:
            return fallback("softplus", R.softplus, x, beta, threshold)
        return out
    return R.softplus(x, beta, threshold)


# ---- silu --------------------------------------------------------------------------------------
@njit(**_JIT)
def _times(x, s):
    # s = x * s in place (s holds sigmoid(x)).
    for i in range(x.size):
        s[i] = x[i] * s[i]


@njit(**_JIT)
def _silu_grad(g, x, s):
    # s (holding sigmoid(x)) = g * s * (1 + x * (1 - s)), in x's dtype.
    one = x.dtype.type(1)
    for i in range(x.size):
        v = s[i]
        s[i] = g[i] * (v * (one + x[i] * (one - v)))


def silu(x):
    """x * sigmoid(x): the sigmoid kernel (NumPy's SIMD tanh on large arrays), then one pass."""
    if _fast1(x):
        s = _sigmoid(x)
        try:
            _times(x.reshape(-1), s.reshape(-1))
        except NumbaError:
            return fallback("silu", R.silu, x)
        return s
    return R.silu(x)


def silu_backward(g, x):
    """g * s (1 + x (1 - s)) with s = sigmoid(x) recomputed: two passes after the sigmoid
    (the composite x * sigmoid(x) ran ~10 ops and temporaries backward)."""
    gc = _grad_c(g, x) if _fast1(x) else None
    if gc is not None:
        s = _sigmoid(x)
        try:
            _silu_grad(gc.reshape(-1), x.reshape(-1), s.reshape(-1))
        except NumbaError:
            return fallback("silu_backward", R.silu_backward, g, x)
        return s
    return R.silu_backward(g, x)


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
# Both loops go row by row through 1-D views, and a stride-1 row is a plain contiguous copy
# (or sum) that LLVM vectorises: ~3.5x faster than one strided index expression for every
# stride (2.4 -> 0.65 ms and 4.2 -> 1.6 ms for a 16x16x32x32 input, 3x3 kernel).
@njit(**_JIT)
def _im2col(x, kh, kw, sh, sw, dh, dw, oh, ow, cols):
    n, c = x.shape[0], x.shape[1]
    for ni in range(n):
        for ci in range(c):
            xc = x[ni, ci]
            for i in range(kh):
                for j in range(kw):
                    row = cols[ni, (ci * kh + i) * kw + j]
                    off = j * dw
                    for p in range(oh):
                        src = xc[p * sh + i * dh]
                        dst = row[p * ow:(p + 1) * ow]
                        if sw == 1:
                            s = src[off:off + ow]
                            for q in range(ow):
                                dst[q] = s[q]
                        else:
                            for q in range(ow):
                                dst[q] = src[q * sw + off]


@njit(**_JIT)
def _col2im(cols, kh, kw, sh, sw, dh, dw, oh, ow, out):
    n, c = out.shape[0], out.shape[1]
    for ni in range(n):
        for ci in range(c):
            oc = out[ni, ci]
            for i in range(kh):
                for j in range(kw):
                    row = cols[ni, (ci * kh + i) * kw + j]
                    off = j * dw
                    for p in range(oh):
                        dst = oc[p * sh + i * dh]
                        src = row[p * ow:(p + 1) * ow]
                        if sw == 1:
                            d = dst[off:off + ow]
                            for q in range(ow):
                                d[q] += src[q]
                        else:
                            for q in range(ow):
                                dst[q * sw + off] += src[q]


def _out(size, k, s, d):
    return (size - d * (k - 1) - 1) // s + 1


def im2col(x, kernel_size, stride, dilation):
    """Windows of a padded (N, C, H, W) array as columns, (N, C * kh * kw, L)."""
    if _fast1(x) and x.ndim == 4 and len(kernel_size) == 2:
        (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
        n, c, h, w = x.shape
        oh, ow = _out(h, kh, sh, dh), _out(w, kw, sw, dw)
        if oh > 0 and ow > 0:
            cols = _empty((n, c * kh * kw, oh * ow), x.dtype)
            try:
                _im2col(x, kh, kw, sh, sw, dh, dw, oh, ow, cols)
            except NumbaError:
                return fallback("im2col", R.im2col, x, kernel_size, stride, dilation)
            return cols
    return R.im2col(x, kernel_size, stride, dilation)


def col2im(cols, shape, kernel_size, stride, dilation):
    """The adjoint of :func:`im2col`: columns summed back into an (N, C, H, W) array."""
    cols = _c_order(cols)  # (a broadcast or transposed gradient)
    if _fast1(cols) and len(shape) == 4 and len(kernel_size) == 2 and cols.ndim == 3:
        (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
        n, c, h, w = shape
        oh, ow = _out(h, kh, sh, dh), _out(w, kw, sw, dw)
        if cols.shape == (n, c * kh * kw, oh * ow) and oh > 0 and ow > 0:
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


@njit(**_JIT)
def _max_pool_2x2(x, best, idx):
    # MaxPool2d(2), the commonest pooling: the same scan as _max_pool's (first maximum wins,
    # a later NaN wins) unrolled over the four cells, with no bounds tests and row views
    # (3.6x faster on 32x16x32x32: 0.6 against 2.2 ms; PyTorch's takes 3.9 ms here).
    n, c, h, w = x.shape
    oh, ow = best.shape[2], best.shape[3]
    for ni in range(n):
        for ci in range(c):
            xp, bp, ip = x[ni, ci], best[ni, ci], idx[ni, ci]
            for p in range(oh):
                r0, r1, br, ir = xp[2 * p], xp[2 * p + 1], bp[p], ip[p]
                base = 2 * p * w
                for q in range(ow):
                    j = 2 * q
                    b = r0[j]
                    k = base + j
                    v = r0[j + 1]
                    if v > b or v != v:
                        b = v
                        k = base + j + 1
                    v = r1[j]
                    if v > b or v != v:
                        b = v
                        k = base + w + j
                    v = r1[j + 1]
                    if v > b or v != v:
                        b = v
                        k = base + w + j + 1
                    br[q] = b
                    ir[q] = k


def max_pool2d(x, kernel_size, stride, padding, dilation, out_size):
    """Window maxima of (N, C, H, W) and the winners' flat indices into H * W."""
    if _fast1(x) and x.ndim == 4:
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
        n, c = x.shape[:2]
        shape = (n, c) + tuple(out_size)
        best = _empty(shape, x.dtype)
        idx = _empty(shape, np.int64)
        try:
            if (kh, kw, sh, sw, ph, pw, dh, dw) == (2, 2, 2, 2, 0, 0, 1, 1) and \
                    shape[2:] == (x.shape[2] // 2, x.shape[3] // 2):
                _max_pool_2x2(x, best, idx)
            else:
                _max_pool(x, kh, kw, sh, sw, ph, pw, dh, dw, best, idx)
        except NumbaError:
            return fallback("max_pool2d", R.max_pool2d, x, kernel_size, stride, padding,
                            dilation, out_size)
        return best, idx
    return R.max_pool2d(x, kernel_size, stride, padding, dilation, out_size)


@njit(**_JIT)
def _pool_scatter(g, idx, plane, per, out):
    # out (flat: N*C planes of H*W) += g at each window's winner; per = windows per plane.
    # Plane by plane: no division per window to find its plane.
    for pl in range(g.size // per):
        o = pl * plane
        for k in range(pl * per, (pl + 1) * per):
            j = idx[k]
            if j >= 0:
                out[o + j] += g[k]


def max_pool2d_backward(g, idx, shape):
    """Scatter-add ``g`` (N, C, oh, ow) into zeros of ``shape`` at the winners (a ``g`` of
    another layout, such as the broadcast gradient of a ``sum``, is copied to C order)."""
    g = _c_order(g)
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


KERNELS = {
    "gelu": gelu,
    "gelu_backward": gelu_backward,
    "softplus": softplus,
    "silu": silu,
    "silu_backward": silu_backward,
    "leaky_relu": leaky_relu,
    "leaky_relu_backward": leaky_relu_backward,
    "im2col": im2col,
    "col2im": col2im,
    "max_pool2d": max_pool2d,
    "max_pool2d_backward": max_pool2d_backward,
    "pool_gather": pool_gather,
}
