"""Small model blocks, one training step each (forward, loss, backward), tapegrad against
PyTorch CPU:

    python benchmarks/model_blocks.py

A transformer block (layer norm, attention with softmax, GELU MLP), a 2-layer LSTM, a CNN
with batch norm and pooling, an MLP with dropout; float32, one thread, interleaved medians.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import versus_torch  # noqa: E402


_RNG = np.random.default_rng(0)


def _zero(params):
    for p in params:
        p.grad = None


def _classifier_step(lib, model, shape):
    """A cross-entropy training step of ``model`` on a random batch of ``shape``, 10 classes."""
    x = lib.tensor(_RNG.standard_normal(shape).astype(np.float32))
    t = lib.tensor(_RNG.integers(0, 10, shape[0]))
    params = list(model.parameters())

    def step():
        _zero(params)
        lib.nn.functional.cross_entropy(model(x), t).backward()

    return step, params


def attention(lib, d=128, heads=4, n=64, b=8):
    nn, F = lib.nn, lib.nn.functional
    lib.manual_seed(0)
    ln1, qkv, proj = nn.LayerNorm(d), nn.Linear(d, 3 * d), nn.Linear(d, d)
    ln2, fc1, fc2 = nn.LayerNorm(d), nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
    params = [p for m in (ln1, qkv, proj, ln2, fc1, fc2) for p in m.parameters()]
    x = lib.tensor(_RNG.standard_normal((b, n, d)).astype(np.float32))

    def step():
        _zero(params)
        q, k, v = qkv(ln1(x)).reshape(b, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        a = F.softmax(q @ k.transpose(-2, -1) / (d // heads) ** 0.5, dim=-1)
        z = x + proj((a @ v).transpose(1, 2).reshape(b, n, d))
        (z + fc2(F.gelu(fc1(ln2(z))))).pow(2).mean().backward()

    return step, params


def lstm(lib):
    lib.manual_seed(0)
    m = lib.nn.LSTM(32, 64, num_layers=2, batch_first=True)
    x = lib.tensor(_RNG.standard_normal((16, 40, 32)).astype(np.float32))
    params = list(m.parameters())

    def step():
        _zero(params)
        m(x)[0].sum().backward()

    return step, params


def bn_cnn(lib):
    nn = lib.nn
    lib.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32),
                      nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    return _classifier_step(lib, m, (32, 3, 32, 32))


def mlp_dropout(lib):
    nn = lib.nn
    lib.manual_seed(0)
    m = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Dropout(0.2), nn.Linear(512, 512),
                      nn.GELU(), nn.Dropout(0.2), nn.Linear(512, 10))
    return _classifier_step(lib, m, (128, 256))


BLOCKS = {"transformer block": attention, "LSTM 2 layers": lstm,
          "CNN with batch norm": bn_cnn, "MLP with dropout, GELU": mlp_dropout}


def main() -> None:
    versus_torch("block (one training step)", "ms", 1e3,
                 {name: (lambda lib, m=make: m(lib)[0]) for name, make in BLOCKS.items()},
                 repeats=10)


if __name__ == "__main__":
    main()
