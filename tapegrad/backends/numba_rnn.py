"""Numba kernels for the fused recurrent scans, same names and signatures as ``ref_rnn.py``.

Backward scans are single jitted loops: one BLAS product per step for the recurrent term and
one pass for all the gate math, which NumPy spreads over a dozen temporaries. Forward scans
that need ``tanh``/``sigmoid`` split the work instead: NumPy's ``tanh`` is vectorised (SIMD),
several times faster than the scalar libm ``tanh`` a jitted loop calls, so each step runs
BLAS, one NumPy ``tanh`` over every gate at once and a small jitted kernel for the rest.
(``sigmoid(x) = (1 + tanh(x / 2)) / 2``, the reference's formula, lets one ``tanh`` serve all
gates: the sigmoid gates' columns of ``xw`` and ``W_hh`` are halved once per sequence, which
is exact.) The tanh RNN's forward has nothing left to fuse and is the reference's.

Compiled on first call and cached on disk (``cache=True``); importing compiles nothing.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tapegrad.backends import ref_rnn


@njit(cache=True)
def _relu_seq(xw, h0, w_t, reverse):
    n, b, hs = xw.shape
    ys = np.empty((n, b, hs), xw.dtype)
    h = h0.copy()
    for s in range(n):
        t = n - 1 - s if reverse else s
        a = h @ w_t
        for i in range(b):
            for j in range(hs):
                v = a[i, j] + xw[t, i, j]
                if v < 0:
                    v = 0.0
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
def _lstm_gates(th, c_prev, act, c_out):
    # th = tanh of the (sigmoid-halved) pre-activations; writes i, f, g, o and the new c.
    b, h4 = th.shape
    hs = h4 // 4
    for i in range(b):
        for j in range(hs):
            ig = 0.5 + 0.5 * th[i, j]
            fg = 0.5 + 0.5 * th[i, hs + j]
            gg = th[i, 2 * hs + j]
            og = 0.5 + 0.5 * th[i, 3 * hs + j]
            act[i, j] = ig
            act[i, hs + j] = fg
            act[i, 2 * hs + j] = gg
            act[i, 3 * hs + j] = og
            c_out[i, j] = fg * c_prev[i, j] + ig * gg


@njit(cache=True)
def _lstm_seq_backward(gy, gc, cs, acts, c0, w_hh, reverse):
    n, b, hs = cs.shape
    g_pre = np.empty((n, b, 4 * hs), cs.dtype)
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
                tc = acts[t, i, 4 * hs + j]
                cp = c0[i, j] if p < 0 or p >= n else cs[p, i, j]
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
def _gru_pre(x, gh, b_hh, pre, hn):
    # Halved r/z pre-activations (tanh then gives the sigmoids) and W_hn h + b_hn.
    b, hs = hn.shape
    for i in range(b):
        for j in range(2 * hs):
            pre[i, j] = 0.5 * (x[i, j] + (gh[i, j] + b_hh[j]))
        for j in range(hs):
            hn[i, j] = gh[i, 2 * hs + j] + b_hh[2 * hs + j]


@njit(cache=True)
def _gru_mid(th, x, hn, act):
    # r and z from their tanh; the n gate's pre-activation x_n + r * (W_hn h + b_hn).
    b, hs = hn.shape
    for i in range(b):
        for j in range(hs):
            r = 0.5 + 0.5 * th[i, j]
            act[i, j] = r
            act[i, hs + j] = 0.5 + 0.5 * th[i, hs + j]
            act[i, 2 * hs + j] = x[i, 2 * hs + j] + r * hn[i, j]


@njit(cache=True)
def _gru_out(act, h, y):
    # h' = n + z * (h - n), PyTorch's arrangement of (1 - z) * n + z * h.
    b, hs = y.shape
    for i in range(b):
        for j in range(hs):
            nn = act[i, 2 * hs + j]
            y[i, j] = (h[i, j] - nn) * act[i, hs + j] + nn


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


# ---- the table: plain functions around the jitted pieces -------------------------------------
_c = np.ascontiguousarray


def _steps(n, reverse):
    return range(n - 1, -1, -1) if reverse else range(n)


def rnn_relu_seq(xw, h0, w_hh, reverse):
    return _relu_seq(_c(xw), _c(h0), _c(w_hh.T), bool(reverse))


def rnn_tanh_seq_backward(gy, ys, h0, w_hh, reverse):
    return _rnn_seq_backward(_c(gy), _c(ys), _c(h0), _c(w_hh), bool(reverse), False)


def rnn_relu_seq_backward(gy, ys, h0, w_hh, reverse):
    return _rnn_seq_backward(_c(gy), _c(ys), _c(h0), _c(w_hh), bool(reverse), True)


def lstm_seq(xw, h0, c0, w_hh, reverse):
    n, b, h4 = xw.shape
    hs = h4 // 4
    half = np.full(h4, 0.5, xw.dtype)
    half[2 * hs:3 * hs] = 1.0  # the g gate is a plain tanh
    xs = xw * half
    w_s = _c(w_hh.T * half)
    ys = np.empty((n, b, hs), xw.dtype)
    cs = np.empty_like(ys)
    acts = np.empty((n, b, 5 * hs), xw.dtype)
    th = np.empty((b, h4), xw.dtype)
    h, c = _c(h0), _c(c0)
    for t in _steps(n, reverse):
        np.matmul(h, w_s, out=th)
        th += xs[t]
        np.tanh(th, out=th)
        act = acts[t]
        _lstm_gates(th, c, act, cs[t])
        c = cs[t]
        tc = np.tanh(c, out=act[:, 4 * hs:])
        h = np.multiply(tc, act[:, 3 * hs:4 * hs], out=ys[t])
    return ys, cs, acts


def lstm_seq_backward(gy, gc, cs, acts, c0, w_hh, reverse):
    return _lstm_seq_backward(_c(gy), _c(gc), _c(cs), _c(acts), _c(c0), _c(w_hh),
                              bool(reverse))


def gru_seq(xw, h0, w_hh, b_hh, reverse):
    n, b, h3 = xw.shape
    hs = h3 // 3
    xw, b_hh, w_t = _c(xw), _c(b_hh), _c(w_hh.T)
    ys = np.empty((n, b, hs), xw.dtype)
    acts = np.empty_like(xw)
    hns = np.empty_like(ys)
    gh = np.empty((b, h3), xw.dtype)
    pre = np.empty((b, 2 * hs), xw.dtype)
    h = _c(h0)
    for t in _steps(n, reverse):
        np.matmul(h, w_t, out=gh)
        _gru_pre(xw[t], gh, b_hh, pre, hns[t])
        np.tanh(pre, out=pre)
        act = acts[t]
        _gru_mid(pre, xw[t], hns[t], act)
        np.tanh(act[:, 2 * hs:], out=act[:, 2 * hs:])
        _gru_out(act, h, ys[t])
        h = ys[t]
    return ys, acts, hns


def gru_seq_backward(gy, ys, acts, hns, h0, w_hh, reverse):
    return _gru_seq_backward(_c(gy), _c(ys), _c(acts), _c(hns), _c(h0), _c(w_hh),
                             bool(reverse))


KERNELS = {
    "rnn_tanh_seq": ref_rnn.rnn_tanh_seq,
    "rnn_relu_seq": rnn_relu_seq,
    "rnn_tanh_seq_backward": rnn_tanh_seq_backward,
    "rnn_relu_seq_backward": rnn_relu_seq_backward,
    "lstm_seq": lstm_seq,
    "lstm_seq_backward": lstm_seq_backward,
    "gru_seq": gru_seq,
    "gru_seq_backward": gru_seq_backward,
}
