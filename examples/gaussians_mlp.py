"""The Theano tutorial's classifier, written with raw tapegrad tensors.

Two 2-D Gaussian clusters (1000 points), an MLP with sigmoid layers, squared error, and the
tutorial's momentum update (u <- mu*u + (1-mu)*g; w <- w - lr*u_old) applied by hand.
Prints cost and accuracy every iteration.
"""

from __future__ import annotations

import argparse

import numpy as np

import tapegrad as tg


def make_data(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    half = n // 2
    a = rng.normal(loc=(-1.0, -1.0), scale=0.8, size=(half, 2))
    b = rng.normal(loc=(1.0, 1.0), scale=0.8, size=(n - half, 2))
    x = np.concatenate([a, b]).astype(np.float32)
    y = np.concatenate([np.zeros(half), np.ones(n - half)]).astype(np.float32)
    return tg.tensor(x), tg.tensor(y)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--mu", type=float, default=0.9)
    args = p.parse_args(argv)

    tg.manual_seed(0)
    x, y = make_data()
    params = [tg.randn(2, 8) * 0.5, tg.zeros(8), tg.randn(8, 1) * 0.5, tg.zeros(1)]
    for w in params:
        w.requires_grad_()
    velocity = [tg.zeros_like(w) for w in params]
    acc = 0.0
    for it in range(args.iterations):
        w1, b1, w2, b2 = params
        out = tg.sigmoid(tg.sigmoid(x @ w1 + b1) @ w2 + b2).squeeze(1)
        cost = ((out - y) ** 2).sum()
        for w in params:
            w.grad = None
        cost.backward()
        with tg.no_grad():
            for w, u in zip(params, velocity):
                old = u.clone()
                u.mul_(args.mu).add_(w.grad * (1 - args.mu))
                w.sub_(old * args.lr)
        acc = float(((out > 0.5).float() == y).float().mean())
        print(f"iteration {it + 1:3d}  cost {cost.item():9.4f}  accuracy {acc:.3f}")
    return acc


if __name__ == "__main__":
    main()
