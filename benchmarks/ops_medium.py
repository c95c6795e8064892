"""Single ops on medium arrays, forward + backward, tapegrad against PyTorch CPU.

    python benchmarks/ops_medium.py

Where ``benchmarks/run.py`` times whole models, this finds the ops whose kernels lose to
PyTorch's on arrays of 10^5 to 10^6 elements (float32, one thread, interleaved medians).
Each case is ``loss(op(inputs)).backward()``, so the op's backward kernel sees the
gradient of a sum (a broadcast view) as it does in real use.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import versus_torch  # noqa: E402


_RNG = np.random.default_rng(0)
_TARGET = _RNG.integers(0, 1000, 256)
_IDX = _RNG.integers(0, 5000, (64, 32))
_MASK = _RNG.random((256, 1024)) > 0.5
_T1024 = _RNG.integers(0, 1024, 256)


def _F(lib):
    return lib.nn.functional


# name: (input shapes, loss(lib, *inputs, *extras), extras(lib))
CASES = {
    "softmax 256x1000": ([(256, 1000)], lambda L, x: (_F(L).softmax(x, -1) * x).sum(), None),
    # Attention scores: 8 x 4 heads of 64 x 64, softmax over rows of 64.
    "softmax 8x4x64x64": ([(8, 4, 64, 64)], lambda L, x: (_F(L).softmax(x, -1) * x).sum(),
                          None),
    "log_softmax 256x1000": ([(256, 1000)], lambda L, x: (_F(L).log_softmax(x, -1) * x).sum(),
                             None),
    "cross_entropy 256x1000": ([(256, 1000)], lambda L, x, t: _F(L).cross_entropy(x, t),
                               lambda L: (L.tensor(_TARGET),)),
    "gelu 256x1024": ([(256, 1024)], lambda L, x: _F(L).gelu(x).sum(), None),
    "sigmoid 256x1024": ([(256, 1024)], lambda L, x: L.sigmoid(x).sum(), None),
    "relu 256x1024": ([(256, 1024)], lambda L, x: L.relu(x).sum(), None),
    "exp 256x1024": ([(256, 1024)], lambda L, x: L.exp(x).sum(), None),
    "mse_loss 256x1024": ([(256, 1024), (256, 1024)], lambda L, x, y: _F(L).mse_loss(x, y),
                          None),
    "conv2d 16x16x32x32 k3": ([(16, 16, 32, 32), (32, 16, 3, 3)],
                              lambda L, x, w: _F(L).conv2d(x, w, padding=1).sum(), None),
    "max_pool2d 16x32x32x32": ([(16, 32, 32, 32)], lambda L, x: _F(L).max_pool2d(x, 2).sum(),
                               None),
    "conv-relu-pool block": ([(16, 16, 32, 32), (32, 16, 3, 3), (32,)],
                             lambda L, x, w, b: _F(L).max_pool2d(
                                 _F(L).relu(_F(L).conv2d(x, w, b, padding=1)), 2).sum(), None),
    "linear 256x512x512": ([(256, 512), (512, 512), (512,)],
                           lambda L, x, w, b: _F(L).linear(x, w, b).sum(), None),
    # An LSTM cell's gates: i, f, g, o = gates.chunk(4, 1), each piece used.
    "chunk(4) gates 128x1024": ([(128, 1024)], lambda L, x: (lambda i, f, g, o: (
        i * f + g * o).sum())(*x.chunk(4, 1)), None),
    # Found by a survey of common ops on 2026-11-23 (each was 1.4x-10x PyTorch before).
    "silu 256x1024": ([(256, 1024)], lambda L, x: _F(L).silu(x).sum(), None),
    "softplus 256x1024": ([(256, 1024)], lambda L, x: _F(L).softplus(x).sum(), None),
    "where 256x1024": ([(256, 1024), (256, 1024)], lambda L, x, y, m: L.where(m, x, y).sum(),
                       lambda L: (L.tensor(_MASK),)),
    "smooth_l1_loss 256x1024": ([(256, 1024), (256, 1024)],
                                lambda L, x, y: _F(L).smooth_l1_loss(x, y), None),
    "bce_with_logits 256x1024": ([(256, 1024)], lambda L, x, t: _F(L).
                                 binary_cross_entropy_with_logits(x, t),
                                 lambda L: (L.tensor(_MASK.astype(np.float32)),)),
    "nll(log_softmax) 256x1024": ([(256, 1024)], lambda L, x, t: _F(L).nll_loss(
        _F(L).log_softmax(x, -1), t), lambda L: (L.tensor(_T1024),)),
    "pow 2 256x1024": ([(256, 1024)], lambda L, x: x.pow(2).sum(), None),
    "embedding 5000x128": ([(5000, 128)], lambda L, w, i: _F(L).embedding(i, w).sum(),
                           lambda L: (L.tensor(_IDX),)),
}


def _step(lib, shapes, loss, extras):
    arrays = [_RNG.standard_normal(s).astype(np.float32) for s in shapes]
    ts = [lib.tensor(a, requires_grad=True) for a in arrays]
    ex = extras(lib) if extras else ()

    def step():
        for t in ts:
            t.grad = None
        loss(lib, *ts, *ex).backward()

    step.tensors = ts
    return step


def main() -> None:
    versus_torch("op (fwd + bwd, float32)", "us", 1e6,
                 {name: (lambda lib, c=case: _step(lib, *c)) for name, case in CASES.items()},
                 repeats=15)


if __name__ == "__main__":
    main()
