"""Workload 1 again, with tapegrad's chain under ``tapegrad.compile``: the same 300 small ops
(``wl_chain.py``), traced on the first call and replayed after. PyTorch runs eagerly, as in
``wl_chain.py``."""

from __future__ import annotations

import numpy as np
import wl_chain as W
from harness import interleaved, torch_or_none

import tapegrad

WORKLOAD = {"name": "chain compile", "unit": "us/op",
            "description": "wl_chain.py with tapegrad.compile (PyTorch eager)"}


def _compiled():
    x0 = np.linspace(-1, 1, 64)

    @tapegrad.compile
    def chain(x):
        y = x
        for _ in range(W.N_OPS // 3):
            y = (y * 1.0001 + 0.001).tanh()
        return y.sum()

    def step():
        x = tapegrad.tensor(x0, requires_grad=True)
        chain(x).backward()
        return x.grad

    return step


def run(quick: bool = False) -> dict:
    torch = torch_or_none()
    c = {"tapegrad": _compiled(), "numpy": W._numpy()}
    if torch is not None:
        c["torch"] = W._chain(torch)
    med = interleaved(c, repeats=10 if quick else 60)
    step = _compiled()
    step()  # (the first call traces; the check is on a replay)
    assert np.allclose(step().numpy(), W._numpy()(), rtol=1e-12)
    return {k: v / W.N_OPS * 1e6 for k, v in med.items()}
