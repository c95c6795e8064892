"""GPU benchmarks: tapegrad on CUDA vs PyTorch on CUDA, timed on the device (CUDA events).

    python benchmarks/gpu.py                 # on a machine with an NVIDIA GPU and CuPy
    TAPEGRAD_CUDA_SIMULATOR=1 python benchmarks/gpu.py --tiny   # smoke test, no GPU

Prints per-workload medians, the tapegrad/PyTorch ratio (when PyTorch has CUDA), and the
achieved memory bandwidth of the fused elementwise kernels. In the simulator the numbers
mean nothing; the run only proves that every code path works.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

import tapegrad as tg


def _time(fn, sync, repeats):
    """Median milliseconds of ``fn`` between two events, after one warm-up call."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start, end = tg.cuda.Event(enable_timing=True), tg.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def _torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def mlp_step(lib, dev, batch, width, dtype):
    rng = np.random.default_rng(0)
    ws = [lib.tensor(rng.standard_normal(s) * 0.05, dtype=dtype, device=dev,
                     requires_grad=True) for s in [(784, width), (width, width), (width, 10)]]
    x = lib.tensor(rng.standard_normal((batch, 784)), dtype=dtype, device=dev)
    y = lib.tensor(rng.integers(0, 10, batch), device=dev)

    def step():
        h = lib.relu(x @ ws[0])
        h = lib.relu(h @ ws[1])
        logits = h @ ws[2]
        loss = (lib.logsumexp(logits, 1) - logits.gather(1, y.unsqueeze(1)).squeeze(1)).mean()
        for w in ws:
            w.grad = None
        loss.backward()
        with lib.no_grad():
            for w in ws:
                w -= 0.01 * w.grad

    return step


def rnn_bptt(lib, dev, batch, hidden, steps, dtype):
    rng = np.random.default_rng(0)
    wx = lib.tensor(rng.standard_normal((32, hidden)) * 0.1, dtype=dtype, device=dev,
                    requires_grad=True)
    wh = lib.tensor(rng.standard_normal((hidden, hidden)) * 0.1, dtype=dtype, device=dev,
                    requires_grad=True)
    xs = lib.tensor(rng.standard_normal((steps, batch, 32)), dtype=dtype, device=dev)

    def step():
        h = lib.zeros(batch, hidden, dtype=dtype, device=dev)
        total = 0
        for t in range(steps):
            h = lib.tanh(xs[t] @ wx + h @ wh)
            total = total + h.sum()
        wx.grad = wh.grad = None
        total.backward()

    return step


def fused_tanh(lib, dev, n, dtype):
    x = lib.ones(n, dtype=dtype, device=dev) * 0.5
    return lambda: lib.tanh(x)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tiny", action="store_true", help="simulator-sized smoke run")
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args(argv)
    if not tg.cuda.is_available():
        raise SystemExit("no CUDA device: run on a GPU machine or set TAPEGRAD_CUDA_SIMULATOR=1")
    tiny = args.tiny or tg.cuda.simulator()
    repeats = 2 if tiny else args.repeats
    torch = _torch_cuda()
    sizes = dict(batch=4, width=8, hidden=8, steps=3, n=256) if tiny else \
        dict(batch=1024, width=1024, hidden=512, steps=64, n=1 << 26)
    rows = []
    work = [
        ("MLP step", lambda lib, dt: mlp_step(lib, "cuda", sizes["batch"], sizes["width"], dt)),
        ("RNN BPTT", lambda lib, dt: rnn_bptt(lib, "cuda", sizes["batch"], sizes["hidden"],
                                              sizes["steps"], dt)),
        ("fused tanh", lambda lib, dt: fused_tanh(lib, "cuda", sizes["n"], dt)),
    ]
    for name, make in work:
        ours = _time(make(tg, tg.float32), tg.cuda.synchronize, repeats)
        theirs = None
        if torch is not None:
            theirs = _time(make(torch, torch.float32), torch.cuda.synchronize, repeats)
        rows.append((name, ours, theirs))
    print(f"{'workload':<12} {'tapegrad ms':>12} {'torch ms':>10} {'ratio':>7}")
    for name, ours, theirs in rows:
        t = f"{theirs:10.3f}" if theirs is not None else f"{'n/a':>10}"
        r = f"{ours / theirs:7.2f}" if theirs else f"{'n/a':>7}"
        print(f"{name:<12} {ours:12.3f} {t} {r}")
    ms = rows[-1][1]
    gbps = 2 * sizes["n"] * 4 / (ms / 1000) / 1e9
    print(f"fused tanh bandwidth: {gbps:.2f} GB/s (read + write, float32)")
    return rows


if __name__ == "__main__":
    main()
