"""Workload 3 again, with tapegrad's step under ``tapegrad.compile``: the same tanh RNN
written with tensor ops (``wl_rnn.py``), traced on the first call and replayed after.

PyTorch runs eagerly here, as in ``wl_rnn.py``: ``torch.compile`` needs a C++ toolchain
and minutes of compiling, and is not the eager PyTorch the targets compare with.
"""

from __future__ import annotations

import numpy as np
import wl_rnn as W
from harness import interleaved, torch_or_none

import tapegrad

WORKLOAD = {"name": "RNN BPTT compile", "unit": "ms",
            "description": "wl_rnn.py with tapegrad.compile (PyTorch eager)"}


def _compiled():
    wx0, wh0, xs0 = W._data()
    wx = tapegrad.tensor(wx0, requires_grad=True)
    wh = tapegrad.tensor(wh0, requires_grad=True)
    xs = tapegrad.tensor(xs0)

    @tapegrad.compile
    def loss(xs):
        h = tapegrad.zeros(W.B, W.H)
        total = 0
        for t in range(W.T):
            h = tapegrad.tanh(xs[t] @ wx + h @ wh)
            total = total + h.sum()
        return total

    def step():
        wx.grad = wh.grad = None
        loss(xs).backward()
        return wx.grad

    return step


def run(quick: bool = False) -> dict:
    torch = torch_or_none()
    c = {"tapegrad": _compiled(), "numpy": W._numpy()}
    if torch is not None:
        c["torch"] = W._framework(torch)
    med = interleaved(c, repeats=5 if quick else 30)
    step = _compiled()
    step()  # (the first call traces; the check is on a replay)
    assert np.allclose(step().numpy(), W._numpy()(), rtol=1e-3, atol=1e-3)
    return {k: v * 1e3 for k, v in med.items()}
