"""Find and classify the critical points of a 2-D function from its Hessian's eigenvalues.

    python examples/critical_points.py             # prints the table, writes critical_points.png
    python examples/critical_points.py --no-plot --grid 5

f(x, y) = sin(x) cos(y) + 0.1 (x^2 + y^2) has hills, valleys and passes. At a critical point
the gradient vanishes and the second-order Taylor expansion is f(p + d) ~ f(p) + d^T H d / 2,
so the signs of the Hessian's eigenvalues decide what the point is (SEEDS.md, 001):

    all positive  -> local minimum      (f curves up in every direction)
    all negative  -> local maximum      (f curves down in every direction)
    mixed signs   -> saddle point       (up along one eigenvector, down along the other)
    a zero one    -> the test is inconclusive

The points are found by Newton's method on the gradient (solve g(p) = 0 with the Jacobian of
g, i.e. the Hessian) from a grid of starting points; gradient and Hessian both come from
tapegrad's autograd (``autograd.grad`` and ``autograd.functional.hessian``). The plot marks
each kind over the contours of f.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import tapegrad
from tapegrad.autograd import functional as AF

BOX = 4.0  # the square [-BOX, BOX]^2 we search


def f(p):
    """sin(x) cos(y) + 0.1 (x^2 + y^2) on a tensor ``p = (x, y, ...)``."""
    x, y = p[0], p[1]
    return x.sin() * y.cos() + 0.1 * (x * x + y * y)


def gradient(p):
    x = p.detach().requires_grad_()
    (g,) = tapegrad.autograd.grad(f(x), x)
    return g


def newton_root(p0, tol=1e-12, max_steps=50):
    """Newton's method on g(p) = 0; None when it leaves the box or does not converge."""
    p = tapegrad.tensor(p0, dtype=tapegrad.float64)
    for _ in range(max_steps):
        g = gradient(p)
        if float(g.norm()) < tol:
            return p
        h = AF.hessian(f, p).numpy()
        try:
            step = np.linalg.solve(h, g.numpy())
        except np.linalg.LinAlgError:
            return None
        p = p - tapegrad.tensor(step)
        if float(p.abs().max()) > BOX:
            return None
    return p if float(gradient(p).norm()) < 1e-9 else None


def classify(eigenvalues, eps=1e-8) -> str:
    """minimum / maximum / saddle / degenerate from the Hessian's eigenvalues."""
    if np.any(np.abs(eigenvalues) < eps):
        return "degenerate"
    if np.all(eigenvalues > 0):
        return "minimum"
    if np.all(eigenvalues < 0):
        return "maximum"
    return "saddle"


def critical_points(grid: int):
    """Every distinct critical point Newton reaches from a grid x grid set of starts."""
    found = []
    starts = np.linspace(-BOX + 0.3, BOX - 0.3, grid)
    for sx in starts:
        for sy in starts:
            p = newton_root((sx, sy))
            if p is None:
                continue
            q = p.numpy()
            if all(np.abs(q - r["point"]).max() > 1e-6 for r in found):
                h = AF.hessian(f, p).numpy()
                ev = np.linalg.eigvalsh((h + h.T) / 2)  # H is symmetric: real eigenvalues
                found.append({"point": q, "value": f(p).item(), "eigenvalues": ev,
                              "kind": classify(ev), "hessian": h})
    found.sort(key=lambda r: (r["kind"], r["point"][0], r["point"][1]))
    return found


def plot(points, path_out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs, ys = np.meshgrid(np.linspace(-BOX, BOX, 300), np.linspace(-BOX, BOX, 300))
    z = f(tapegrad.tensor(np.stack([xs, ys]))).numpy()
    fig, ax = plt.subplots(figsize=(7, 6))
    cs = ax.contourf(xs, ys, z, levels=30, cmap="coolwarm", alpha=0.8)
    ax.contour(xs, ys, z, levels=30, colors="k", linewidths=0.3)
    fig.colorbar(cs, ax=ax, label="f(x, y)")
    style = {"minimum": ("o", "tab:blue"), "maximum": ("^", "tab:red"),
             "saddle": ("X", "gold"), "degenerate": ("s", "gray")}
    for kind, (marker, color) in style.items():
        pts = np.array([r["point"] for r in points if r["kind"] == kind]).reshape(-1, 2)
        if len(pts):
            ax.scatter(pts[:, 0], pts[:, 1], marker=marker, c=color, s=90, edgecolors="k",
                       label=f"{kind} ({len(pts)})", zorder=3)
    ax.set(xlim=(-BOX, BOX), ylim=(-BOX, BOX), xlabel="x", ylabel="y",
           title="critical points of sin(x) cos(y) + 0.1 (x² + y²)")
    ax.legend(loc="upper right", framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path_out, dpi=110)
    plt.close(fig)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--grid", type=int, default=12, help="starting points per axis")
    p.add_argument("--out", default="critical_points.png")
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)

    points = critical_points(args.grid)
    print(f"{'kind':>10} | {'x':>8} {'y':>8} | {'f':>8} | Hessian eigenvalues")
    for r in points:
        (x, y), (l1, l2) = r["point"], r["eigenvalues"]
        print(f"{r['kind']:>10} | {x:8.4f} {y:8.4f} | {r['value']:8.4f} | "
              f"{l1:9.4f} {l2:9.4f}")
    counts = {k: sum(r["kind"] == k for r in points) for k in ("minimum", "maximum", "saddle")}
    plural = {"minimum": "minima", "maximum": "maxima", "saddle": "saddle points"}
    print(", ".join(f"{v} {k if v == 1 else plural[k]}" for k, v in counts.items()))
    if not args.no_plot:
        plot(points, args.out)
        print(f"wrote {os.path.abspath(args.out)}")
    return {"points": points, "counts": counts, "plot": None if args.no_plot else args.out}


if __name__ == "__main__":
    main()
