"""Numba kernels for the softmax family and cross-entropy: same names, signatures and
answers as ``ref_nn`` / ``ref_loss``.

Along the last dim of a C-contiguous array. Small arrays take one loop per row (max, then
exp-sum, then write) instead of four NumPy reductions and temporaries; from about a thousand
elements on, NumPy's SIMD exp (under 1 ns an element here, against ~10 ns for the loops'
scalar float64 exp) runs between vectorized row loops. The backward kernels are row loops
too (a dot product or a sum per row, then one write). Anything else goes to the reference
kernels, and a loop that fails to compile falls back with one warning.

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


# ---- softmax family (along the last dim) ---------------------------------------------------
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


@njit(**_JIT)
def _sub_rows(x, m, out):
    # out[i] = x[i] - m[i] (out may be x, but runs faster apart): NumPy's broadcast
    # subtract of a column takes ~1.8x as long on 256 x 1000 float32 (its inner loop is
    # not the SIMD one).
    rows, n = x.shape
    for i in range(rows):
        r, o, mi = x[i], out[i], m[i]
        for j in range(n):
            o[j] = r[j] - mi


@njit(**_JIT)
def _scale_rows(e, s):
    # e[i] *= s[i] in place (~2.7x faster than NumPy's broadcast multiply by a column).
    rows, n = e.shape
    for i in range(rows):
        r, si = e[i], s[i]
        for j in range(n):
            r[j] = r[j] * si


@njit(**_JIT)
def _rows_max(x, out):
    # out[i] = max of row i, with eight running maxima per row: one maximum carried along
    # the row waits on the previous comparison, and the loop does not vectorise (NumPy's
    # max(axis=1) pays a call per row instead: 250 us on 2048 rows of 64, against 40 here).
    # A NaN is skipped (unlike np.max): a row holding one still comes out all NaN from
    # every caller, whose exp(x - max) is NaN there and so is the row's sum.
    rows, n = x.shape
    for i in range(rows):
        r = x[i]
        m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = r[0]
        j = 0
        while j + 8 <= n:
            if r[j] > m0:
                m0 = r[j]
            if r[j + 1] > m1:
                m1 = r[j + 1]
            if r[j + 2] > m2:
                m2 = r[j + 2]
            if r[j + 3] > m3:
                m3 = r[j + 3]
            if r[j + 4] > m4:
                m4 = r[j + 4]
            if r[j + 5] > m5:
                m5 = r[j + 5]
            if r[j + 6] > m6:
                m6 = r[j + 6]
            if r[j + 7] > m7:
                m7 = r[j + 7]
            j += 8
        while j < n:
            if r[j] > m0:
                m0 = r[j]
            j += 1
        for m in (m1, m2, m3, m4, m5, m6, m7):
            if m > m0:
                m0 = m
        out[i] = m0


# Rows this long and longer take NumPy's SIMD max (faster from about here on).
_LONG_ROW = 512


def _maxes(x2):
    """The maximum of each row of a C-contiguous 2-D ``x2``."""
    if x2.shape[1] >= _LONG_ROW:
        return x2.max(axis=1)
    out = np.empty(x2.shape[0], x2.dtype)
    _rows_max(x2, out)
    return out


def _minus_rows(x2, m):
    """``x2 - m[:, None]`` for a C-contiguous 2-D ``x2`` and a column ``m`` of its dtype."""
    out = np.empty_like(x2)
    _sub_rows(x2, m, out)
    return out


def _exp_rows(d, out):
    """``exp(d)`` written into ``out`` (which may be ``d``); returns its row sums (float64)."""
    np.exp(d, out=out)
    s = np.empty(d.shape[0])
    _row_sums(out, s)
    return s


def _softmax_large(x, log):
    x2 = x.reshape(-1, x.shape[-1])
    d = _minus_rows(x2, _maxes(x2))  # NaN rows stay NaN, as in the ref
    if log:  # d - log(sum(exp(d))): the exponentials go to a scratch array, which then
        # takes the result (a loop writing over its own input runs 1.7-2.5x slower: LLVM's
        # overlap check sends it to the scalar path)
        e = np.empty_like(d)
        _sub_rows(d, np.log(_exp_rows(d, e)).astype(x.dtype), e)
        d = e
    else:
        _scale_rows(d, (1.0 / _exp_rows(d, d)).astype(x.dtype))
    return d.reshape(x.shape)


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

# ---- their backward -------------------------------------------------------------------------
@njit(**_JIT_SUM)
def _softmax_bwd(g, y, out):
    # out = y * (g - sum(g * y)) row by row; the dot product accumulated in float64.
    rows, n = y.shape
    for i in range(rows):
        gr = g[i]
        yr = y[i]
        dot = 0.0
        for j in range(n):
            dot += gr[j] * yr[j]
        orow = out[i]
        for j in range(n):
            orow[j] = yr[j] * (gr[j] - dot)


@njit(**_JIT_SUM)
def _log_softmax_bwd(g, e, out):
    # out = g - exp(y) * sum(g) row by row, ``e`` holding exp(y).
    rows, n = g.shape
    for i in range(rows):
        gr = g[i]
        s = 0.0
        for j in range(n):
            s += gr[j]
        er = e[i]
        orow = out[i]
        for j in range(n):
            orow[j] = gr[j] - er[j] * s


def _backward_call(name, ref, g, y, dim, log):
    if _fast1(y) and y.ndim and dim % y.ndim == y.ndim - 1 and y.shape[-1] > 0:
        gc = _grad_c(g, y)
        if gc is not None:
            n = y.shape[-1]
            g2, y2 = gc.reshape(-1, n), y.reshape(-1, n)
            try:
                if log:
                    e = np.exp(y2)  # (NumPy's SIMD exp)
                    # (into a fresh array: written over e, the loop ran 4x slower, see
                    # _softmax_large)
                    out = _empty(y.shape, y.dtype)
                    _log_softmax_bwd(g2, e, out.reshape(-1, n))
                    return out
                out = _empty(y.shape, y.dtype)
                _softmax_bwd(g2, y2, out.reshape(-1, n))
                return out
            except NumbaError:
                return fallback(name, ref, g, y, dim)
    return ref(g, y, dim)


def softmax_backward(g, y, dim):
    """``y * (g - sum(g * y, dim))``: the vjp of softmax given its output ``y``."""
    return _backward_call("softmax_backward", R.softmax_backward, g, y, dim, False)


def log_softmax_backward(g, y, dim):
    """``g - exp(y) * sum(g, dim)``: the vjp of log_softmax given its output ``y``."""
    return _backward_call("log_softmax_backward", R.log_softmax_backward, g, y, dim, True)


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
    m = _maxes(x)
    d = _minus_rows(x, m)
    s = _exp_rows(d, d)
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
                p = _minus_rows(x, lse)
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
    "softmax": softmax,
    "log_softmax": log_softmax,
    "softmax_backward": softmax_backward,
    "log_softmax_backward": log_softmax_backward,
    "cross_entropy": cross_entropy,
    "cross_entropy_backward": cross_entropy_backward,
}
