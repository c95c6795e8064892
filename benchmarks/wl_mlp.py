"""Workload 2: one MLP training step (Linear 784-256, ReLU, Linear 256-256, ReLU,
Linear 256-10; batch 128; float32; cross-entropy; SGD momentum 0.9 nesterov): zero_grad,
forward, backward, step. The NumPy floor does the same by hand."""

from __future__ import annotations

import numpy as np

from harness import interleaved, torch_or_none

import tapegrad

WORKLOAD = {"name": "MLP step", "unit": "ms",
            "description": "784-256-256-10 MLP, batch 128, float32, CE, SGD nesterov"}
SIZES = [(784, 256), (256, 256), (256, 10)]


def _data(batch=128):
    rng = np.random.default_rng(0)
    ws = [(rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32) for i, o in SIZES]
    bs = [np.zeros(o, np.float32) for _, o in SIZES]
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    return ws, bs, x, y


def _framework(lib):
    ws, bs, x, y = _data()
    nn = lib.nn
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 10))
    with lib.no_grad():
        for layer, w, b in zip([model[0], model[2], model[4]], ws, bs):
            layer.weight.copy_(lib.tensor(w))
            layer.bias.copy_(lib.tensor(b))
    opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    xt, yt = lib.tensor(x), lib.tensor(y)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
        return loss

    return step


def _numpy():
    ws, bs, x, y = _data()
    bufs = [None] * 6
    n = len(y)
    onehot = np.zeros((n, 10), np.float32)
    onehot[np.arange(n), y] = 1

    def step():
        h1 = np.maximum(x @ ws[0].T + bs[0], 0)
        h2 = np.maximum(h1 @ ws[1].T + bs[1], 0)
        z = h2 @ ws[2].T + bs[2]
        z = z - z.max(1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(1, keepdims=True)
        loss = -np.log(p[np.arange(n), y]).mean()
        dz = (p - onehot) / n
        g2 = dz.T @ h2
        d2 = (dz @ ws[2]) * (h2 > 0)
        g1 = d2.T @ h1
        d1 = (d2 @ ws[1]) * (h1 > 0)
        g0 = d1.T @ x
        grads = [g0, d1.sum(0), g1, d2.sum(0), g2, dz.sum(0)]
        params = [ws[0], bs[0], ws[1], bs[1], ws[2], bs[2]]
        for k, (pa, g) in enumerate(zip(params, grads)):
            if bufs[k] is None:
                bufs[k] = g.copy()
            else:
                bufs[k] *= 0.9
                bufs[k] += g
            pa -= 0.01 * (g + 0.9 * bufs[k])
        return loss

    return step


def run(quick: bool = False) -> dict:
    torch = torch_or_none()
    c = {"tapegrad": _framework(tapegrad), "numpy": _numpy()}
    if torch is not None:
        c["torch"] = _framework(torch)
    med = interleaved(c, repeats=10 if quick else 60)
    return {k: v * 1e3 for k, v in med.items()}
