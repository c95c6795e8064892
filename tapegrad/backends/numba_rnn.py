"""Numba kernels for the fused recurrent scans, same names and signatures as ``ref_rnn.py``.

Per time step: one BLAS product for the recurrent term, then a single jitted loop for all of
the gate math (NumPy needs a temporary array per gate operation). Compiled on first call and
cached on disk (``cache=True``); importing this module compiles nothing.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _sig(x):
    # Same formula as the reference: exact and overflow-free.
    return 0.5 + 0.5 * math.tanh(0.5 * x)


@njit(cache=True)
def _rnn_seq(xw, h0, w_t, reverse, relu):
    n, b, hs = xw.shape
    ys = np.empty((n, b, hs), xw.dtype)
    h = h0.copy()
    for s in range(n):
        t = n - 1 - s if reverse else s
        a = h @ w_t
        for i in range(b):
            for j in range(hs):
                v = a[i, j] + xw[t, i, j]
                if relu:
                    if v < 0:
                        v = 0.0
                else:
                    v = math.tanh(v)
                ys[t, i, j] = v
                h[i, j] = v
    return ys


@njit(cache=True)
def _rnn_seq_backward(gy, ys, h0, w_hh, reverse, relu):
    n, b, hs = ys.shape
    g = np.empty_like(ys)
    dh = np.zeros((b, hs), ys.dtype)
    for s in range(n):
        t = s if reverse else n - 1 - s
        for i in range(b):
            for j in range(hs):
                d = gy[t, i, j] + dh[i, j]
                y = ys[t, i, j]
                if relu:
                    g[t, i, j] = d if y > 0 else 0.0
                else:
                    g[t, i, j] = d * (1 - y * y)
        dh = g[t] @ w_hh
    return g, dh


@njit(cache=True)
def _lstm_seq(xw, h0, c0, w_t, reverse):
    n, b, h4 = xw.shape
    hs = h4 // 4
    ys = np.empty((n, b, hs), xw.dtype)
    cs = np.empty((n, b, hs), xw.dtype)
    acts = np.empty((n, b, h4), xw.dtype)
    h = h0.copy()
    c = c0.copy()
    for s in range(n):
        t = n - 1 - s if reverse else s
        a = h @ w_t
        for i in range(b):
            for j in range(hs):
                ig = _sig(a[i, j] + xw[t, i, j])
                fg = _sig(a[i, hs + j] + xw[t, i, hs + j])
                gg = math.tanh(a[i, 2 * hs + j] + xw[t, i, 2 * hs + j])
                og = _sig(a[i, 3 * hs + j] + xw[t, i, 3 * hs + j])
                acts[t, i, j] = ig
                acts[t, i, hs + j] = fg
                acts[t, i, 2 * hs + j] = gg
                acts[t, i, 3 * hs + j] = og
                cc = fg * c[i, j] + ig * gg
                hh = math.tanh(cc) * og
                cs[t, i, j] = cc
                ys[t, i, j] = hh
                c[i, j] = cc
                h[i, j] = hh
    return ys, cs, acts


@njit(cache=True)
def _lstm_seq_backward(gy, gc, cs, acts, c0, w_hh, reverse):
    n, b, hs = cs.shape
    g_pre = np.empty_like(acts)
    dh = np.zeros((b, hs), cs.dtype)
    dc = np.zeros((b, hs), cs.dtype)
    for s in range(n):
        t = s if reverse else n - 1 - s
        p = t + 1 if reverse else t - 1
        for i in range(b):
            for j in range(hs):
                ig = acts[t, i, j]
                fg = acts[t, i, hs + j]
                gg = acts[t, i, 2 * hs + j]
                og = acts[t, i, 3 * hs + j]
                cp = c0[i, j] if p < 0 or p >= n else cs[p, i, j]
                tc = math.tanh(cs[t, i, j])
                d = gy[t, i, j] + dh[i, j]
                dcc = gc[t, i, j] + dc[i, j] + d * og * (1 - tc * tc)
                g_pre[t, i, j] = dcc * gg * ig * (1 - ig)
                g_pre[t, i, hs + j] = dcc * cp * fg * (1 - fg)
                g_pre[t, i, 2 * hs + j] = dcc * ig * (1 - gg * gg)
                g_pre[t, i, 3 * hs + j] = d * tc * og * (1 - og)
                dc[i, j] = dcc * fg
        dh = g_pre[t] @ w_hh
    return g_pre, dh, dc


@njit(cache=True)
def _gru_seq(xw, h0, w_t, b_hh, reverse):
    n, b, h3 = xw.shape
    hs = h3 // 3
    ys = np.empty((n, b, hs), xw.dtype)
    acts = np.empty((n, b, h3), xw.dtype)
    hns = np.empty((n, b, hs), xw.dtype)
    h = h0.copy()
    for s in range(n):
        t = n - 1 - s if reverse else s
        gh = h @ w_t
        for i in range(b):
            for j in range(hs):
                r = _sig(xw[t, i, j] + (gh[i, j] + b_hh[j]))
                z = _sig(xw[t, i, hs + j] + (gh[i, hs + j] + b_hh[hs + j]))
                hn = gh[i, 2 * hs + j] + b_hh[2 * hs + j]
                nn = math.tanh(xw[t, i, 2 * hs + j] + r * hn)
                y = (h[i, j] - nn) * z + nn
                acts[t, i, j] = r
                acts[t, i, hs + j] = z
                acts[t, i, 2 * hs + j] = nn
                hns[t, i, j] = hn
                ys[t, i, j] = y
                h[i, j] = y
    return ys, acts, hns


@njit(cache=True)
def _gru_seq_backward(gy, ys, acts, hns, h0, w_hh, reverse):
    n, b, hs = ys.shape
    gx = np.empty_like(acts)
    gh = np.empty_like(acts)
    dh = np.zeros((b, hs), ys.dtype)
    direct = np.empty((b, hs), ys.dtype)
    for s in range(n):
        t = s if reverse else n - 1 - s
        p = t + 1 if reverse else t - 1
        for i in range(b):
            for j in range(hs):
                r = acts[t, i, j]
                z = acts[t, i, hs + j]
                nn = acts[t, i, 2 * hs + j]
                hp = h0[i, j] if p < 0 or p >= n else ys[p, i, j]
                d = gy[t, i, j] + dh[i, j]
                dn = d * (1 - z) * (1 - nn * nn)
                dz = d * (hp - nn) * z * (1 - z)
                dr = dn * hns[t, i, j] * r * (1 - r)
                gx[t, i, j] = dr
                gx[t, i, hs + j] = dz
                gx[t, i, 2 * hs + j] = dn
                gh[t, i, j] = dr
                gh[t, i, hs + j] = dz
                gh[t, i, 2 * hs + j] = dn * r
                direct[i, j] = d * z
        dh = direct + gh[t] @ w_hh
    return gx, gh, dh


# ---- the table: plain functions that hand contiguous arrays to the jitted loops ------------
_c = np.ascontiguousarray


def rnn_tanh_seq(xw, h0, w_hh, reverse):
    return _rnn_seq(_c(xw), _c(h0), _c(w_hh.T), bool(reverse), False)


def rnn_relu_seq(xw, h0, w_hh, reverse):
    return _rnn_seq(_c(xw), _c(h0), _c(w_hh.T), bool(reverse), True)


def rnn_tanh_seq_backward(gy, ys, h0, w_hh, reverse):
    return _rnn_seq_backward(_c(gy), _c(ys), _c(h0), _c(w_hh), bool(reverse), False)


def rnn_relu_seq_backward(gy, ys, h0, w_hh, reverse):
    return _rnn_seq_backward(_c(gy), _c(ys), _c(h0), _c(w_hh), bool(reverse), True)


def lstm_seq(xw, h0, c0, w_hh, reverse):
    return _lstm_seq(_c(xw), _c(h0), _c(c0), _c(w_hh.T), bool(reverse))


def lstm_seq_backward(gy, gc, cs, acts, c0, w_hh, reverse):
    return _lstm_seq_backward(_c(gy), _c(gc), _c(cs), _c(acts), _c(c0), _c(w_hh),
                              bool(reverse))


def gru_seq(xw, h0, w_hh, b_hh, reverse):
    return _gru_seq(_c(xw), _c(h0), _c(w_hh.T), _c(b_hh), bool(reverse))


def gru_seq_backward(gy, ys, acts, hns, h0, w_hh, reverse):
    return _gru_seq_backward(_c(gy), _c(ys), _c(acts), _c(hns), _c(h0), _c(w_hh),
                             bool(reverse))


KERNELS = {
    "rnn_tanh_seq": rnn_tanh_seq,
    "rnn_relu_seq": rnn_relu_seq,
    "rnn_tanh_seq_backward": rnn_tanh_seq_backward,
    "rnn_relu_seq_backward": rnn_relu_seq_backward,
    "lstm_seq": lstm_seq,
    "lstm_seq_backward": lstm_seq_backward,
    "gru_seq": gru_seq,
    "gru_seq_backward": gru_seq_backward,
}
