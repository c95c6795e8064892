"""Reference (plain NumPy) kernels for the neural-network ops of ``tapegrad.ops.nn_ops``.

Arrays in, array out; scalar settings as plain Python values. These define the answer that
the numba and CUDA versions (same names, same signatures) must reproduce.
"""

from __future__ import annotations

import importlib
import itertools
import math

import numpy as np

from tapegrad.backends.ref_core import erf, sigmoid

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715


def _xp(a):
    """The array module of ``a`` (NumPy, or CuPy when the CUDA backend reuses these)."""
    if isinstance(a, np.ndarray):
        return np
    return importlib.import_module(type(a).__module__.split(".")[0])


def softmax(x, dim):
    """exp(x) / sum(exp(x)) along ``dim``, shifted by the max so exp never overflows."""
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def log_softmax(x, dim):
    s = x - x.max(axis=dim, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=dim, keepdims=True))


def softmax_backward(g, y, dim):
    """The vjp of softmax given its output: ``y * (g - sum(g * y, dim))``."""
    return y * (g - (g * y).sum(axis=dim, keepdims=True))


def log_softmax_backward(g, y, dim):
    """The vjp of log_softmax given its output: ``g - exp(y) * sum(g, dim)``."""
    return g - np.exp(y) * g.sum(axis=dim, keepdims=True)


def gelu(x, approximate):
    """x * Phi(x), or its tanh approximation when ``approximate == "tanh"``."""
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(_SQRT_2_PI * (x + _GELU_C * x * x * x)))
    return (0.5 * x * (1.0 + erf(x * _INV_SQRT2))).astype(x.dtype, copy=False)


def gelu_backward(g, x, approximate):
    """g * d gelu / dx."""
    if approximate == "tanh":
        u = _SQRT_2_PI * (x + _GELU_C * x * x * x)
        t = np.tanh(u)
        du = _SQRT_2_PI * (1.0 + 3.0 * _GELU_C * x * x)
        return g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du)
    cdf = 0.5 * (1.0 + erf(x * _INV_SQRT2))
    pdf = np.exp(-0.5 * x * x) * _INV_SQRT_2PI
    return (g * (cdf + x * pdf)).astype(g.dtype, copy=False)


def softplus(x, beta, threshold):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as PyTorch)."""
    bx = x * beta
    soft = np.logaddexp(0.0, bx) / beta
    return np.where(bx > threshold, x, soft).astype(x.dtype, copy=False)


def silu(x):
    """x * sigmoid(x)."""
    return x * sigmoid(x)


def silu_backward(g, x):
    """g * silu'(x) = g * s (1 + x (1 - s)), s = sigmoid(x)."""
    s = sigmoid(x)
    one = np.asarray(1, dtype=s.dtype)
    return g * (s * (one + x * (one - s)))


def leaky_relu(x, slope):
    return np.where(x > 0, x, x * slope).astype(x.dtype, copy=False)


def leaky_relu_backward(g, x, slope):
    return np.where(x > 0, g, g * slope).astype(g.dtype, copy=False)


def _out_size(size, k, s, d):
    return (size - d * (k - 1) - 1) // s + 1


def im2col(x, kernel_size, stride, dilation):
    """Patches of ``x`` (N, C, *spatial), already padded, as columns: (N, C * prod(kernel), L),
    L the number of output positions. Rows run channel-major then over kernel offsets, so a
    weight (O, C, *kernel) flattened to (O, C * K) multiplies each sample's matrix directly:
    a product per sample (one batched matmul) writes the output already in (N, O, L) order."""
    n, c = x.shape[:2]
    sp = x.shape[2:]
    out = tuple(_out_size(s, k, st, d) for s, k, st, d in zip(sp, kernel_size, stride,
                                                               dilation))
    cols = np.empty_like(x, shape=(n, c) + tuple(kernel_size) + out)
    for offs in itertools.product(*(range(k) for k in kernel_size)):
        sl = tuple(slice(o * d, o * d + st * (m - 1) + 1, st)
                   for o, d, st, m in zip(offs, dilation, stride, out))
        cols[(slice(None), slice(None)) + offs] = x[(slice(None), slice(None)) + sl]
    return cols.reshape(n, c * math.prod(kernel_size), math.prod(out))


def col2im(cols, shape, kernel_size, stride, dilation):
    """The adjoint of :func:`im2col`: sum the columns (N, C * K, L) back into ``shape``."""
    n, c = shape[:2]
    sp = shape[2:]
    out = tuple(_out_size(s, k, st, d) for s, k, st, d in zip(sp, kernel_size, stride,
                                                               dilation))
    cols = cols.reshape((n, c) + tuple(kernel_size) + out)
    x = np.zeros_like(cols, shape=(n, c) + tuple(sp))
    for offs in itertools.product(*(range(k) for k in kernel_size)):
        sl = tuple(slice(o * d, o * d + st * (m - 1) + 1, st)
                   for o, d, st, m in zip(offs, dilation, stride, out))
        x[(slice(None), slice(None)) + sl] += cols[(slice(None), slice(None)) + offs]
    return x


def max_pool2d(x, kernel_size, stride, padding, dilation, out_size):
    """Max over windows of ``x`` (N, C, H, W): (values, flat indices into H*W).

    The first maximum of a window wins and a NaN wins over everything (the last NaN, as in
    PyTorch's scan). Padding cells never win."""
    n, c, h, w = x.shape
    kh, kw = kernel_size
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    oh, ow = out_size
    xm = _xp(x)
    # Pad (with -inf) enough on every side that each window is complete.
    need_h = (oh - 1) * sh + dh * (kh - 1) + 1
    need_w = (ow - 1) * sw + dw * (kw - 1) + 1
    hp, wp = max(need_h, h + ph), max(need_w, w + pw)
    if (hp, wp, ph, pw) != (h, w, 0, 0):
        padded = np.full_like(x, -np.inf, shape=(n, c, hp, wp))
        padded[:, :, ph:ph + h, pw:pw + w] = x
    else:
        padded = np.ascontiguousarray(x)
    # Every window as a strided view (N, C, oh, ow, kh, kw); one argmax over its cells.
    s0, s1, s2, s3 = padded.strides
    win = xm.lib.stride_tricks.as_strided(
        padded, (n, c, oh, ow, kh, kw), (s0, s1, s2 * sh, s3 * sw, s2 * dh, s3 * dw))
    win = win.reshape(n, c, oh, ow, kh * kw)
    arg = win.argmax(axis=-1)
    best = np.take_along_axis(win, arg[..., None], axis=-1)[..., 0]
    row = (xm.arange(oh) * sh - ph)[:, None] + (arg // kw) * dh
    col = (xm.arange(ow) * sw - pw)[None, :] + (arg % kw) * dw
    idx = row * w + col
    if (ph or pw or hp > h or wp > w) and bool((best == -np.inf).any()) \
            or bool(np.isnan(best).any()):
        return _max_pool2d_scan(padded, best.shape, (h, w), kernel_size, stride, padding,
                                dilation)
    return best, idx


def _max_pool2d_scan(padded, out_shape, hw, kernel_size, stride, padding, dilation):
    """Window offset by window offset, with PyTorch's exact rule for ties with padding
    (a -inf window reports its first real cell) and for several NaNs (the last wins)."""
    h, w = hw
    kh, kw = kernel_size
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    n, c, oh, ow = out_shape
    xm = _xp(padded)
    best = np.full_like(padded, -np.inf, shape=out_shape)
    idx = np.full_like(padded, -1, dtype=np.int64, shape=out_shape)
    rows0 = xm.arange(oh) * sh - ph
    cols0 = xm.arange(ow) * sw - pw
    for i in range(kh):
        rows = rows0 + i * dh
        vr = (rows >= 0) & (rows < h)
        for j in range(kw):
            cols = cols0 + j * dw
            valid = vr[:, None] & ((cols >= 0) & (cols < w))[None, :]
            v = padded[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                       j * dw:j * dw + sw * (ow - 1) + 1:sw]
            take = valid & ((v > best) | np.isnan(v) | (idx < 0))
            best = np.where(take, v, best)
            idx = np.where(take, rows[:, None] * w + cols[None, :], idx)
    return best, idx


def max_pool2d_backward(g, idx, shape):
    """Scatter-add ``g`` (N, C, oh, ow) into zeros of ``shape`` (N, C, H, W) at ``idx``."""
    n, c, h, w = shape
    planes = _xp(g).arange(n * c, dtype=np.int64).reshape(n, c, 1, 1) * (h * w)
    flat = (planes + idx).ravel()
    r = np.bincount(flat, weights=g.ravel().astype(np.float64), minlength=n * c * h * w)
    return r.reshape(shape).astype(g.dtype, copy=False)


def pool_gather(x, idx):
    """out[n, c, i, j] = x[n, c].flat[idx[n, c, i, j]] (the adjoint of the scatter above)."""
    n, c = x.shape[:2]
    r = np.take_along_axis(x.reshape(n, c, -1), idx.reshape(n, c, -1), axis=2)
    return r.reshape(idx.shape)


KERNELS = {
    "softmax": softmax,
    "log_softmax": log_softmax,
    "softmax_backward": softmax_backward,
    "log_softmax_backward": log_softmax_backward,
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
