"""Numba kernels for the fused recurrent scans, same names and signatures as ``ref_rnn.py``.

Backward scans are single jitted loops: one BLAS product per step for the recurrent term and
one pass for all the gate math, which NumPy spreads over a dozen temporaries. Forward scans
that need ``tanh``/``sigmoid`` split the work instead: NumPy's ``tanh`` is vectorised (SIMD),
several times faster than the scalar libm ``tanh`` a jitted loop calls, so each step runs
BLAS, one NumPy ``tanh`` over every gate at once and small jitted kernels for the rest.
(``sigmoid(x) = (1 + tanh(x / 2)) / 2``, the reference's formula, lets one ``tanh`` serve all
gates: the sigmoid gates' columns of ``xw`` and ``W_hh`` are halved once per sequence, which
is exact.) NumPy's ``tanh`` always writes a contiguous scratch row block: into a strided slice
of ``acts`` it runs at half speed. The tanh RNN's forward has nothing left to fuse and is the
reference's.

The loops compute in the arrays' own precision, with constants of that dtype (``one``,
``half``): a bare ``1 - y * y`` on float32 would be typed float64 by Numba, which rounds
differently from the reference and keeps the loop from vectorising (2-3x slower). In that
precision, with the reference's order of operations, the gate math rounds as the
reference's does; only the BLAS products may sum in another order. Each row is handled
through 1-D views of its gate blocks, which LLVM vectorises.

Compiled on first call and cached on disk (``cache=True``); importing compiles nothing.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tapegrad.backends import ref_rnn


# ---- Elman RNN ------------------------------------------------------------------------------
@njit(cache=True)
def _relu_seq(xw, h0, w_t, reverse):
    n, b, hs = xw.shape
    zero = xw.dtype.type(0)
    ys = np.empty((n, b, hs), xw.dtype)
    h = h0.copy()
    for s in range(n):
        t = n - 1 - s if reverse else s
        a = h @ w_t
        for i in range(b):
            ar, xr, yr, hr = a[i], xw[t, i], ys[t, i], h[i]
            for j in range(hs):
                v = ar[j] + xr[j]
                if v < 0:
                    v = zero
                yr[j] = v
                hr[j] = v
    return ys


@njit(cache=True)
def _rnn_seq_backward(gy, ys, h0, w_hh, reverse, relu):
    n, b, hs = ys.shape
    one, zero = ys.dtype.type(1), ys.dtype.type(0)
    g = np.empty_like(ys)
    dh = np.zeros((b, hs), ys.dtype)
    for s in range(n):
        t = s if reverse else n - 1 - s
        for i in range(b):
            gr, yr, gyr, dr = g[t, i], ys[t, i], gy[t, i], dh[i]
            for j in range(hs):
                d = gyr[j] + dr[j]
                y = yr[j]
                if relu:
                    gr[j] = d if y > 0 else zero
                else:
                    gr[j] = d * (one - y * y)
        dh = g[t] @ w_hh
    return g, dh


# ---- LSTM -----------------------------------------------------------------------------------
@njit(cache=True)
def _lstm_gates(th, c_prev, act, c_out):
    # th = tanh of the (sigmoid-halved) pre-activations; writes i, f, g, o and the new c.
    b, h4 = th.shape
    hs = h4 // 4
    half = th.dtype.type(0.5)
    for i in range(b):
        t, a, cp, co = th[i], act[i], c_prev[i], c_out[i]
        ti, tf, tg, to = t[:hs], t[hs:2 * hs], t[2 * hs:3 * hs], t[3 * hs:h4]
        ai, af, ag, ao = a[:hs], a[hs:2 * hs], a[2 * hs:3 * hs], a[3 * hs:h4]
        for j in range(hs):
            ig = half + half * ti[j]
            fg = half + half * tf[j]
            gg = tg[j]
            ai[j] = ig
            af[j] = fg
            ag[j] = gg
            ao[j] = half + half * to[j]
            co[j] = fg * cp[j] + ig * gg


@njit(cache=True)
def _lstm_out(tc, act, h_out):
    # Keeps tanh(c) for backward and writes h = tanh(c) * o.
    b, hs = tc.shape
    for i in range(b):
        tr, a, hr = tc[i], act[i], h_out[i]
        ao, at = a[3 * hs:4 * hs], a[4 * hs:5 * hs]
        for j in range(hs):
            v = tr[j]
            at[j] = v
            hr[j] = v * ao[j]


@njit(cache=True)
def _lstm_seq_backward(gy, gc, cs, acts, c0, w_hh, reverse):
    n, b, hs = cs.shape
    one = cs.dtype.type(1)
    g_pre = np.empty((n, b, 4 * hs), cs.dtype)
    dh = np.zeros((b, hs), cs.dtype)
    dc = np.zeros((b, hs), cs.dtype)
    for s in range(n):
        t = s if reverse else n - 1 - s
        p = t + 1 if reverse else t - 1
        for i in range(b):
            a, gp = acts[t, i], g_pre[t, i]
            ai, af, ag, ao, at = (a[:hs], a[hs:2 * hs], a[2 * hs:3 * hs], a[3 * hs:4 * hs],
                                  a[4 * hs:5 * hs])
            gi, gf, gg_, go = gp[:hs], gp[hs:2 * hs], gp[2 * hs:3 * hs], gp[3 * hs:4 * hs]
            cpr = c0[i] if p < 0 or p >= n else cs[p, i]
            gyr, gcr, dhr, dcr = gy[t, i], gc[t, i], dh[i], dc[i]
            for j in range(hs):
                ig, fg, gg, og, tc = ai[j], af[j], ag[j], ao[j], at[j]
                d = gyr[j] + dhr[j]
                dcc = gcr[j] + dcr[j] + d * og * (one - tc * tc)
                gi[j] = dcc * gg * ig * (one - ig)
                gf[j] = dcc * cpr[j] * fg * (one - fg)
                gg_[j] = dcc * ig * (one - gg * gg)
                go[j] = d * tc * og * (one - og)
                dcr[j] = dcc * fg
        dh = g_pre[t] @ w_hh
    return g_pre, dh, dc


# ---- GRU ------------------------------------------------------------------------------------
@njit(cache=True)
def _gru_pre(x, gh, b_hh, pre, hn):
    # Halved r/z pre-activations (tanh then gives the sigmoids) and W_hn h + b_hn.
    b, hs = hn.shape
    half = x.dtype.type(0.5)
    for i in range(b):
        xr, gr, pr, hr = x[i], gh[i], pre[i], hn[i]
        for j in range(2 * hs):
            pr[j] = (xr[j] + (gr[j] + b_hh[j])) * half
        for j in range(hs):
            hr[j] = gr[2 * hs + j] + b_hh[2 * hs + j]


@njit(cache=True)
def _gru_mid(th, x, hn, act, pre_n):
    # r and z from their tanh into ``act``; the n gate's pre-activation x_n + r * (W_hn h +
    # b_hn) into the contiguous scratch ``pre_n`` (NumPy's tanh runs on it next).
    b, hs = hn.shape
    half = th.dtype.type(0.5)
    for i in range(b):
        tr, xr, hr, a, pn = th[i], x[i], hn[i], act[i], pre_n[i]
        for j in range(hs):
            r = half + half * tr[j]
            a[j] = r
            a[hs + j] = half + half * tr[hs + j]
            pn[j] = xr[2 * hs + j] + r * hr[j]


@njit(cache=True)
def _gru_out(nt, act, h, y):
    # Keeps n for backward; h' = n + z * (h - n), PyTorch's arrangement of (1 - z) n + z h.
    b, hs = y.shape
    for i in range(b):
        nr, a, hr, yr = nt[i], act[i], h[i], y[i]
        for j in range(hs):
            nn = nr[j]
            a[2 * hs + j] = nn
            yr[j] = (hr[j] - nn) * a[hs + j] + nn


@njit(cache=True)
def _gru_seq_backward(gy, ys, acts, hns, h0, w_hh, reverse):
    n, b, hs = ys.shape
    one = ys.dtype.type(1)
    gx = np.empty_like(acts)
    gh = np.empty_like(acts)
    dh = np.zeros((b, hs), ys.dtype)
    direct = np.empty((b, hs), ys.dtype)
    for s in range(n):
        t = s if reverse else n - 1 - s
        p = t + 1 if reverse else t - 1
        for i in range(b):
            a, gxr, ghr = acts[t, i], gx[t, i], gh[t, i]
            hpr = h0[i] if p < 0 or p >= n else ys[p, i]
            gyr, dhr, hnr, dr_ = gy[t, i], dh[i], hns[t, i], direct[i]
            for j in range(hs):
                r, z, nn = a[j], a[hs + j], a[2 * hs + j]
                d = gyr[j] + dhr[j]
                dn = d * (one - z) * (one - nn * nn)
                dz = d * (hpr[j] - nn) * z * (one - z)
                dr = dn * hnr[j] * r * (one - r)
                gxr[j] = dr
                gxr[hs + j] = dz
                gxr[2 * hs + j] = dn
                ghr[j] = dr
                ghr[hs + j] = dz
                ghr[2 * hs + j] = dn * r
                dr_[j] = d * z
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
    tc = np.empty((b, hs), xw.dtype)
    h, c = _c(h0), _c(c0)
    tanh, matmul, add = np.tanh, np.matmul, np.add  # (locals: a global lookup less a call)
    for t in _steps(n, reverse):
        matmul(h, w_s, out=th)
        add(th, xs[t], out=th)
        tanh(th, out=th)
        act, c_new, h = acts[t], cs[t], ys[t]
        _lstm_gates(th, c, act, c_new)
        tanh(c_new, out=tc)
        _lstm_out(tc, act, h)
        c = c_new
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
    pre_n = np.empty((b, hs), xw.dtype)
    h = _c(h0)
    tanh, matmul = np.tanh, np.matmul
    for t in _steps(n, reverse):
        matmul(h, w_t, out=gh)
        x, act, y = xw[t], acts[t], ys[t]
        _gru_pre(x, gh, b_hh, pre, hns[t])
        tanh(pre, out=pre)
        _gru_mid(pre, x, hns[t], act, pre_n)
        tanh(pre_n, out=pre_n)
        _gru_out(pre_n, act, h, y)
        h = y
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
