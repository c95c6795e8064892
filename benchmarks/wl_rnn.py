"""Workload 3: BPTT through a tanh RNN written with tensor ops (input 32, hidden 128,
64 time steps, batch 32, float32); loss = sum of all hidden states; backward."""

from __future__ import annotations

import numpy as np

from harness import interleaved, torch_or_none

import tapegrad

WORKLOAD = {"name": "RNN BPTT", "unit": "ms",
            "description": "tanh RNN with tensor ops, in 32, hidden 128, 64 steps, batch 32"}
T, B, I, H = 64, 32, 32, 128


def _data():
    rng = np.random.default_rng(0)
    wx = (rng.standard_normal((I, H)) * 0.1).astype(np.float32)
    wh = (rng.standard_normal((H, H)) * 0.1).astype(np.float32)
    xs = rng.standard_normal((T, B, I)).astype(np.float32)
    return wx, wh, xs


def _framework(lib):
    wx0, wh0, xs0 = _data()
    wx = lib.tensor(wx0, requires_grad=True)
    wh = lib.tensor(wh0, requires_grad=True)
    xs = lib.tensor(xs0)

    def step():
        wx.grad = wh.grad = None
        h = lib.zeros(B, H)
        total = 0
        for t in range(T):
            h = lib.tanh(xs[t] @ wx + h @ wh)
            total = total + h.sum()
        total.backward()
        return wx.grad

    return step


def _numpy():
    wx, wh, xs = _data()

    def step():
        h = np.zeros((B, H), np.float32)
        hs = [h]
        for t in range(T):
            h = np.tanh(xs[t] @ wx + h @ wh)
            hs.append(h)
        gwx = np.zeros_like(wx)
        gwh = np.zeros_like(wh)
        gh = np.zeros((B, H), np.float32)
        for t in range(T, 0, -1):
            gh = gh + 1.0
            da = gh * (1 - hs[t] * hs[t])
            gwx += xs[t - 1].T @ da
            gwh += hs[t - 1].T @ da
            gh = da @ wh.T
        return gwx

    return step


def run(quick: bool = False) -> dict:
    torch = torch_or_none()
    c = {"tapegrad": _framework(tapegrad), "numpy": _numpy()}
    if torch is not None:
        c["torch"] = _framework(torch)
    med = interleaved(c, repeats=5 if quick else 30)
    got = _framework(tapegrad)().numpy()
    assert np.allclose(got, _numpy()(), rtol=1e-3, atol=1e-3)
    return {k: v * 1e3 for k, v in med.items()}
