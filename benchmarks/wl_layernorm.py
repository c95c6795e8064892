"""Workload: layer norm forward + backward, (rows 128, features 256) float32, with weight and
bias; loss = sum(y * r) for a fixed random r. tapegrad's fused op vs PyTorch vs a
hand-written NumPy forward and backward (the floor)."""

from __future__ import annotations

import numpy as np

from harness import interleaved, torch_or_none

import tapegrad

WORKLOAD = {"name": "layer_norm", "unit": "us",
            "description": "F.layer_norm fwd+bwd on (128, 256) float32 with weight and bias"}
EPS = 1e-5


def _data(n, d):
    rng = np.random.default_rng(0)
    f = np.float32
    return (rng.standard_normal((n, d)).astype(f), (1 + 0.1 * rng.standard_normal(d)).astype(f),
            (0.1 * rng.standard_normal(d)).astype(f), rng.standard_normal((n, d)).astype(f))


def _framework(lib, n, d):
    x0, w0, b0, r0 = _data(n, d)
    x = lib.tensor(x0, requires_grad=True)
    w = lib.tensor(w0, requires_grad=True)
    b = lib.tensor(b0, requires_grad=True)
    r = lib.tensor(r0)

    def step():
        x.grad = w.grad = b.grad = None
        (lib.nn.functional.layer_norm(x, (d,), w, b) * r).sum().backward()
        return x.grad

    return step


def _numpy(n, d):
    x, w, b, r = _data(n, d)

    def step():
        mu = x.mean(1, keepdims=True)
        xc = x - mu
        rstd = 1.0 / np.sqrt((xc * xc).mean(1, keepdims=True) + EPS)
        xh = xc * rstd
        _ = xh * w + b  # the forward output
        gxh = r * w
        gw = (r * xh).sum(0)
        gb = r.sum(0)
        gx = rstd * (gxh - gxh.mean(1, keepdims=True) - xh * (gxh * xh).mean(1, keepdims=True))
        return gx, gw, gb

    return step


def run(quick: bool = False) -> dict:
    n, d = (16, 32) if quick else (128, 256)
    torch = torch_or_none()
    c = {"tapegrad": _framework(tapegrad, n, d), "numpy": _numpy(n, d)}
    if torch is not None:
        c["torch"] = _framework(torch, n, d)
    med = interleaved(c, repeats=10 if quick else 200)
    got = _framework(tapegrad, n, d)().numpy()
    assert np.allclose(got, _numpy(n, d)()[0], rtol=1e-3, atol=1e-4), "layer_norm grad differs"
    return {k: v * 1e6 for k, v in med.items()}
