"""Reference (plain NumPy) kernels for the fused recurrent scans.

One call runs every time step of one layer and one direction, so the Python work per step is
a handful of array calls instead of a recorded op per gate. The math is the per-step math of
``tapegrad/nn/_rnn_ops.py`` (PyTorch's gate order: LSTM ``i, f, g, o``; GRU ``r, z, n`` with
``b_hn`` inside ``r * (W_hn h + b_hn)``); these kernels define the answer that the numba
kernels (``numba_rnn.py``) must reproduce.

Shapes: ``xw`` is the input projection of all steps, ``(T, B, G*H)`` with ``G`` gates, already
holding every bias except GRU's ``b_hh``; ``h0``/``c0`` are ``(B, H)``; ``w_hh`` is
``(G*H, H)``. Outputs are stored in time order even when ``reverse`` walks the steps from
``T - 1`` down to ``0``.
"""

from __future__ import annotations

import numpy as np


def _steps(n, reverse):
    return range(n - 1, -1, -1) if reverse else range(n)


def _back_steps(n, reverse):
    # Backward walks the scan's steps in the opposite order.
    return range(n) if reverse else range(n - 1, -1, -1)


def _prev(t, reverse, n):
    """The time index of the state that step ``t`` read (-1: the initial state)."""
    p = t + 1 if reverse else t - 1
    return p if 0 <= p < n else -1


def _transposed(w):
    # A C-ordered copy of w.T: small BLAS products run markedly faster on it than on the view.
    return np.ascontiguousarray(w.T)


def _sigmoid(x, out):
    # 0.5 * (1 + tanh(x / 2)): exact and overflow-free, the same formula as ref_core.sigmoid.
    np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


# ---- Elman RNN (tanh / relu) ----------------------------------------------------------------
def rnn_tanh_seq(xw, h0, w_hh, reverse):
    """All states of ``h_t = tanh(xw_t + h_{t-1} W_hh^T)``, shape ``(T, B, H)``."""
    ys = np.empty_like(xw)
    w_t = _transposed(w_hh)
    h = h0
    for t in _steps(xw.shape[0], reverse):
        a = h @ w_t
        a += xw[t]
        h = np.tanh(a, out=ys[t])
    return ys


def rnn_relu_seq(xw, h0, w_hh, reverse):
    """All states of ``h_t = relu(xw_t + h_{t-1} W_hh^T)``, shape ``(T, B, H)``."""
    ys = np.empty_like(xw)
    w_t = _transposed(w_hh)
    h = h0
    for t in _steps(xw.shape[0], reverse):
        a = h @ w_t
        a += xw[t]
        h = np.maximum(a, 0.0, out=ys[t])
    return ys


def rnn_tanh_seq_backward(gy, ys, h0, w_hh, reverse):
    """Gradients of the pre-activations ``(T, B, H)`` and of ``h0``, given ``gy = dL/dys``."""
    return _elman_backward(gy, 1 - ys * ys, h0, w_hh, reverse)


def rnn_relu_seq_backward(gy, ys, h0, w_hh, reverse):
    """Like :func:`rnn_tanh_seq_backward` for ``relu`` (derivative 0 where the output is 0)."""
    return _elman_backward(gy, ys > 0, h0, w_hh, reverse)


def _elman_backward(gy, act_grad, h0, w_hh, reverse):
    # The activation's derivative for every step at once keeps the loop to three calls a step.
    g = np.empty_like(act_grad, dtype=gy.dtype)
    dh = np.zeros_like(h0)
    for t in _back_steps(g.shape[0], reverse):
        d = gy[t] + dh
        np.multiply(d, act_grad[t], out=g[t])
        dh = g[t] @ w_hh
    return g, dh


# ---- LSTM -----------------------------------------------------------------------------------
def lstm_seq(xw, h0, c0, w_hh, reverse):
    """All ``h`` and ``c`` ``(T, B, H)`` of an LSTM, and ``acts`` ``(T, B, 5H)`` for backward:
    the activated gates ``i, f, g, o`` then ``tanh(c)``."""
    n, b, h4 = xw.shape
    hs = h4 // 4
    ys = np.empty_like(xw, shape=(n, b, hs))
    cs = np.empty_like(ys)
    acts = np.empty_like(xw, shape=(n, b, 5 * hs))
    w_t = _transposed(w_hh)
    h, c = h0, c0
    for t in _steps(n, reverse):
        a = h @ w_t
        a += xw[t]
        act = acts[t]
        _sigmoid(a[:, :2 * hs], act[:, :2 * hs])
        np.tanh(a[:, 2 * hs:3 * hs], out=act[:, 2 * hs:3 * hs])
        _sigmoid(a[:, 3 * hs:], act[:, 3 * hs:4 * hs])
        i, f, g, o = act[:, :hs], act[:, hs:2 * hs], act[:, 2 * hs:3 * hs], act[:, 3 * hs:4 * hs]
        c = np.multiply(f, c, out=cs[t])
        c += i * g
        tc = np.tanh(c, out=act[:, 4 * hs:])
        h = np.multiply(tc, o, out=ys[t])
    return ys, cs, acts


def lstm_seq_backward(gy, gc, cs, acts, c0, w_hh, reverse):
    """Gradients of the gate pre-activations ``(T, B, 4H)``, of ``h0`` and of ``c0``."""
    n, b, hs = cs.shape
    g_pre = np.empty_like(cs, shape=(n, b, 4 * hs))
    dh = np.zeros_like(c0)
    dc = np.zeros_like(c0)
    for t in _back_steps(n, reverse):
        act = acts[t]
        i, f, g, o = act[:, :hs], act[:, hs:2 * hs], act[:, 2 * hs:3 * hs], act[:, 3 * hs:4 * hs]
        tc = act[:, 4 * hs:]
        p = _prev(t, reverse, n)
        c_prev = c0 if p < 0 else cs[p]
        d = gy[t] + dh
        dcc = gc[t] + dc + d * o * (1 - tc * tc)
        gp = g_pre[t]
        gp[:, :hs] = dcc * g * i * (1 - i)
        gp[:, hs:2 * hs] = dcc * c_prev * f * (1 - f)
        gp[:, 2 * hs:3 * hs] = dcc * i * (1 - g * g)
        gp[:, 3 * hs:] = d * tc * o * (1 - o)
        dc = dcc * f
        dh = gp @ w_hh
    return g_pre, dh, dc


# ---- GRU ------------------------------------------------------------------------------------
def gru_seq(xw, h0, w_hh, b_hh, reverse):
    """All states of a GRU, its activated gates ``(T, B, 3H)`` and ``W_hn h + b_hn``."""
    n, b, h3 = xw.shape
    hs = h3 // 3
    ys = np.empty_like(xw, shape=(n, b, hs))
    acts = np.empty_like(xw)
    hns = np.empty_like(ys)
    w_t = _transposed(w_hh)
    h = h0
    for t in _steps(n, reverse):
        gh = h @ w_t
        gh += b_hh
        x = xw[t]
        act = acts[t]
        _sigmoid(x[:, :2 * hs] + gh[:, :2 * hs], act[:, :2 * hs])
        r, z = act[:, :hs], act[:, hs:2 * hs]
        hn = gh[:, 2 * hs:]
        hns[t] = hn
        nn = np.tanh(x[:, 2 * hs:] + r * hn, out=act[:, 2 * hs:])
        # n + z * (h - n): PyTorch's own arrangement of (1 - z) * n + z * h.
        y = np.subtract(h, nn, out=ys[t])
        y *= z
        y += nn
        h = y
    return ys, acts, hns


def gru_seq_backward(gy, ys, acts, hns, h0, w_hh, reverse):
    """Gradients of the input-side and hidden-side gate pre-activations and of ``h0``."""
    n, _, hs = ys.shape
    gx = np.empty_like(acts)
    gh = np.empty_like(acts)
    dh = np.zeros_like(h0)
    for t in _back_steps(n, reverse):
        act = acts[t]
        r, z, nn = act[:, :hs], act[:, hs:2 * hs], act[:, 2 * hs:]
        p = _prev(t, reverse, n)
        h_prev = h0 if p < 0 else ys[p]
        d = gy[t] + dh
        dn = d * (1 - z) * (1 - nn * nn)
        dz = d * (h_prev - nn) * z * (1 - z)
        dr = dn * hns[t] * r * (1 - r)
        gxt, ght = gx[t], gh[t]
        gxt[:, :hs] = dr
        gxt[:, hs:2 * hs] = dz
        gxt[:, 2 * hs:] = dn
        ght[:, :2 * hs] = gxt[:, :2 * hs]
        np.multiply(dn, r, out=ght[:, 2 * hs:])
        dh = d * z
        dh += ght @ w_hh
    return gx, gh, dh


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
