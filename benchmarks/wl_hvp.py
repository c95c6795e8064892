"""Workload: Hessian-vector product of a 2-layer MLP loss, tapegrad vs PyTorch (CPU, float64).

    python benchmarks/wl_hvp.py            # full size; --quick for a smoke run

loss(W1, b1, W2, b2) = cross_entropy(tanh(x W1 + b1) W2 + b2, y), and we time
H v = d/dt grad(loss)(params + t v) at t = 0 for a random direction v over all parameters:

* tapegrad: ``autograd.functional.hvp`` (forward over reverse: the backward pass of dual
  tensors, whose tangents are H v; one forward and one backward pass);
* PyTorch: ``torch.autograd.functional.hvp`` (the same signature; PyTorch computes it with the
  double-backward trick), and ``torch.func.jvp(torch.func.grad(loss))`` (PyTorch's fastest
  forward-over-reverse route), reported alongside.

``run`` returns the medians, the ratio tapegrad / PyTorch and the largest difference between
the two results (they must agree to float64 rounding).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

import tapegrad

WORKLOAD = {"name": "hvp_mlp", "description": "Hessian-vector product of a 2-layer MLP loss "
            "(batch x 64 -> 128 tanh -> 10, cross-entropy), float64 CPU"}


def _sizes(quick):
    return dict(batch=64, d_in=16, hidden=32, classes=10) if quick else \
        dict(batch=256, d_in=64, hidden=128, classes=10)


def _data(sz, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(sz["d_in"], sz["hidden"]), (sz["hidden"],), (sz["hidden"], sz["classes"]),
              (sz["classes"],)]
    params = [rng.standard_normal(s) / np.sqrt(s[0]) for s in shapes]
    v = [rng.standard_normal(s) for s in shapes]
    x = rng.standard_normal((sz["batch"], sz["d_in"]))
    y = rng.integers(0, sz["classes"], sz["batch"])
    return params, v, x, y


def _loss(lib, x, y):
    def loss(w1, b1, w2, b2):
        logits = lib.tanh(x @ w1 + b1) @ w2 + b2
        picked = logits.gather(1, y.unsqueeze(1)).squeeze(1)
        return (lib.logsumexp(logits, 1) - picked).mean()
    return loss


def _median_ms(fn, repeats):
    fn()  # warm-up (caches, lazy imports)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def run(quick: bool = False) -> dict:
    """Time one HVP both ways; returns medians in ms, the ratio and the largest difference."""
    sz = _sizes(quick)
    repeats = 5 if quick else 30
    params, v, x, y = _data(sz)
    tg_p = tuple(tapegrad.tensor(p) for p in params)
    tg_v = tuple(tapegrad.tensor(a) for a in v)
    tg_loss = _loss(tapegrad, tapegrad.tensor(x), tapegrad.tensor(y))
    out = {"workload": WORKLOAD["name"], "sizes": sz, "repeats": repeats}
    res = {}

    def tg_hvp():
        res["tapegrad"] = tapegrad.autograd.functional.hvp(tg_loss, tg_p, tg_v)[1]
    out["tapegrad_ms"] = _median_ms(tg_hvp, repeats)
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        return out
    t_p = tuple(torch.tensor(p) for p in params)
    t_v = tuple(torch.tensor(a) for a in v)
    t_loss = _loss(torch, torch.tensor(x), torch.tensor(y))

    def torch_hvp():
        res["torch"] = torch.autograd.functional.hvp(t_loss, t_p, t_v)[1]

    def torch_func_hvp():
        g = torch.func.grad(t_loss, argnums=(0, 1, 2, 3))
        res["torch.func"] = torch.func.jvp(lambda *p: g(*p), t_p, t_v)[1]

    out["torch_ms"] = _median_ms(torch_hvp, repeats)
    out["torch_func_ms"] = _median_ms(torch_func_hvp, repeats)
    out["ratio"] = out["tapegrad_ms"] / out["torch_ms"]
    out["ratio_vs_torch_func"] = out["tapegrad_ms"] / out["torch_func_ms"]
    out["max_abs_diff"] = max(float(np.abs(a.numpy() - b.numpy()).max())
                              for a, b in zip(res["tapegrad"], res["torch"]))
    return out


def main(argv=None) -> dict:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    r = run(args.quick)
    print(f"{WORKLOAD['description']}: sizes {r['sizes']}")
    print(f"  tapegrad functional.hvp        {r['tapegrad_ms']:8.3f} ms")
    if "torch_ms" in r:
        print(f"  torch.autograd.functional.hvp  {r['torch_ms']:8.3f} ms   ratio "
              f"tapegrad/torch {r['ratio']:.2f}")
        print(f"  torch.func jvp(grad)           {r['torch_func_ms']:8.3f} ms   ratio "
              f"tapegrad/torch.func {r['ratio_vs_torch_func']:.2f}")
        print(f"  max |difference| {r['max_abs_diff']:.2e}")
    return r


if __name__ == "__main__":
    main()
