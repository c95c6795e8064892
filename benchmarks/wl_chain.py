"""Workload 1: per-op overhead. 300 small ops (``y = tanh(y * 1.0001 + 0.001)`` x 100) on a
64-element float64 vector, forward and backward; reported in microseconds per op."""

from __future__ import annotations

import numpy as np

from harness import interleaved, torch_or_none

import tapegrad

WORKLOAD = {"name": "per-op chain", "unit": "us/op",
            "description": "300 small ops on a 64-element float64 vector, fwd+bwd"}
N_OPS = 300


def _chain(lib):
    x0 = np.linspace(-1, 1, 64)

    def step():
        x = lib.tensor(x0, requires_grad=True)
        y = x
        for _ in range(N_OPS // 3):
            y = (y * 1.0001 + 0.001).tanh()
        y.sum().backward()
        return x.grad

    return step


def _numpy():
    x0 = np.linspace(-1, 1, 64)

    def step():
        ys = []
        y = x0
        for _ in range(N_OPS // 3):
            y = np.tanh(y * 1.0001 + 0.001)
            ys.append(y)
        g = np.ones_like(y)
        for y in reversed(ys):
            g = g * (1 - y * y) * 1.0001
        return g

    return step


def run(quick: bool = False) -> dict:
    torch = torch_or_none()
    c = {"tapegrad": _chain(tapegrad), "numpy": _numpy()}
    if torch is not None:
        c["torch"] = _chain(torch)
    med = interleaved(c, repeats=10 if quick else 60)
    ref = _numpy()()
    got = _chain(tapegrad)().numpy()
    assert np.allclose(got, ref, rtol=1e-12), "tapegrad's gradient differs from NumPy's"
    return {k: v / N_OPS * 1e6 for k, v in med.items()}
