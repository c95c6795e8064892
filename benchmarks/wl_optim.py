"""Workload 4: one reparameterized Nesterov step on a 4,000,000-element float32 parameter.
The floor is a hand-written one-pass numba loop of the same rule; PyTorch runs
SGD(momentum=0.9, nesterov=True), its closest rule."""

from __future__ import annotations

import numpy as np

from harness import interleaved, torch_or_none

import tapegrad

WORKLOAD = {"name": "optimizer step", "unit": "ms",
            "description": "reparameterized Nesterov, one 4M-element float32 parameter"}


def _numba_loop():
    from numba import njit

    @njit(cache=True, fastmath=False)
    def nesterov(p, g, v, lr, mu):
        for i in range(p.size):
            d = g[i]
            vo = v[i]
            p[i] += mu * mu * vo - (1 + mu) * lr * d
            v[i] = mu * vo - lr * d

    return nesterov


def run(quick: bool = False) -> dict:
    n = 400_000 if quick else 4_000_000
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(n).astype(np.float32)
    g0 = rng.standard_normal(n).astype(np.float32)
    p = tapegrad.tensor(p0, requires_grad=True)
    p.grad = tapegrad.tensor(g0)
    opt = tapegrad.optim.Nesterov([p], lr=0.01, momentum=0.9)
    loop = _numba_loop()
    pn, vn = p0.copy(), np.zeros_like(p0)
    c = {"tapegrad": opt.step, "numba loop": lambda: loop(pn, g0, vn, 0.01, 0.9)}
    torch = torch_or_none()
    if torch is not None:
        tp = torch.tensor(p0, requires_grad=True)
        tp.grad = torch.tensor(g0)
        topt = torch.optim.SGD([tp], lr=0.01, momentum=0.9, nesterov=True)
        c["torch"] = topt.step
    med = interleaved(c, repeats=10 if quick else 40)
    return {k: v * 1e3 for k, v in med.items()}
