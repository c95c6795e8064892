"""Newton's method with the exact Hessian against gradient descent, on Rosenbrock's function.

    python examples/newton.py                  # prints both runs side by side, writes newton.png
    python examples/newton.py --no-plot --gd-steps 500

f(x, y) = (1 - x)^2 + 100 (y - x^2)^2 is smooth but far from quadratic: its minimum (1, 1)
lies at the bottom of a long curved valley. Newton's method models f by its second-order
Taylor expansion and jumps to that model's minimum,

    x <- x - H(x)^{-1} g(x),

with g the gradient and H the exact Hessian, both from tapegrad's autograd (the Hessian is
``autograd.functional.hessian``: the Jacobian of the gradient, a derivative of a derivative).
Near the minimum the error squares at every step, so from the classic start (-1.2, 1) it
converges in a handful of steps. Gradient descent (with a backtracking line search, so that it
gets its best possible step) only knows the slope: it zig-zags down the valley and needs
hundreds to thousands of steps for the same accuracy (SEEDS.md, 001: the Hessian, Newton's
method, and why curvature matters).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import tapegrad
from tapegrad.autograd import functional as AF


def rosenbrock(p):
    """f(x, y) = (1 - x)^2 + 100 (y - x^2)^2 on a tensor ``p = (x, y)``."""
    x, y = p[0], p[1]
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def value_and_grad(f, p):
    x = p.detach().requires_grad_()
    fx = f(x)
    (g,) = tapegrad.autograd.grad(fx, x)
    return fx.item(), g


def newton(f, start, tol=1e-10, max_steps=50):
    """Pure Newton steps with the exact Hessian; returns the path and the gradient norms."""
    p = tapegrad.tensor(start, dtype=tapegrad.float64)
    path, gnorms = [p.numpy().copy()], []
    for _ in range(max_steps):
        _, g = value_and_grad(f, p)
        gnorms.append(float(g.norm()))
        if gnorms[-1] < tol:
            break
        h = AF.hessian(f, p)
        step = np.linalg.solve(h.numpy(), g.numpy())  # H d = g, a 2x2 system
        p = p - tapegrad.tensor(step)
        path.append(p.numpy().copy())
    return np.array(path), gnorms


def gradient_descent(f, start, tol=1e-10, max_steps=5000):
    """Steepest descent with Armijo backtracking (the step halves until f drops enough)."""
    p = tapegrad.tensor(start, dtype=tapegrad.float64)
    path, gnorms = [p.numpy().copy()], []
    for _ in range(max_steps):
        fx, g = value_and_grad(f, p)
        gg = float((g * g).sum())
        gnorms.append(gg ** 0.5)
        if gnorms[-1] < tol:
            break
        t = 1.0
        with tapegrad.no_grad():
            while f(p - t * g).item() > fx - 0.5 * t * gg:
                t *= 0.5
            p = p - t * g
        path.append(p.numpy().copy())
    return np.array(path), gnorms


def plot(f, newton_path, gd_path, path_out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs, ys = np.meshgrid(np.linspace(-2, 2, 300), np.linspace(-3.5, 3, 300))
    grid = tapegrad.tensor(np.stack([xs, ys]))
    z = f(grid).numpy()
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.contour(xs, ys, np.log10(z + 1e-3), levels=30, cmap="viridis", linewidths=0.7)
    ax.plot(gd_path[:, 0], gd_path[:, 1], ".-", color="tab:orange", ms=2, lw=0.6,
            label=f"gradient descent ({len(gd_path) - 1} steps)")
    ax.plot(newton_path[:, 0], newton_path[:, 1], "o-", color="tab:red", ms=5,
            label=f"Newton ({len(newton_path) - 1} steps)")
    ax.plot([1], [1], "k*", ms=14, label="minimum (1, 1)")
    ax.set(xlabel="x", ylabel="y", title="Rosenbrock's function: Newton vs gradient descent")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path_out, dpi=110)
    plt.close(fig)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--start", type=float, nargs=2, default=(-1.2, 1.0))
    p.add_argument("--tol", type=float, default=1e-6, help="stop when |gradient| < tol")
    p.add_argument("--gd-steps", type=int, default=5000, help="cap on gradient-descent steps")
    p.add_argument("--rows", type=int, default=12, help="iterations shown side by side")
    p.add_argument("--out", default="newton.png")
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)

    n_path, n_g = newton(rosenbrock, args.start, args.tol)
    g_path, g_g = gradient_descent(rosenbrock, args.start, args.tol, args.gd_steps)

    def f_at(q):
        return rosenbrock(tapegrad.tensor(q)).item()

    print(f"minimising Rosenbrock's function from {tuple(args.start)}; stop at |grad| < "
          f"{args.tol:g}")
    print(f"{'step':>5} | {'Newton f':>12} {'|grad|':>10} | {'grad. descent f':>15} "
          f"{'|grad|':>10}")
    for k in range(args.rows):
        left = (f"{f_at(n_path[k]):12.4e} {n_g[k]:10.2e}" if k < len(n_g) else
                f"{'(converged)':>23}")
        right = f"{f_at(g_path[k]):15.4e} {g_g[k]:10.2e}" if k < len(g_g) else ""
        print(f"{k:5d} | {left} | {right}")
    n_steps, g_steps = len(n_path) - 1, len(g_path) - 1
    g_done = g_g[-1] < args.tol
    print(f"Newton: {n_steps} steps to ({n_path[-1][0]:.10f}, {n_path[-1][1]:.10f})")
    print(f"gradient descent: {g_steps} steps to ({g_path[-1][0]:.10f}, {g_path[-1][1]:.10f})"
          + ("" if g_done else f", not converged (|grad| = {g_g[-1]:.1e})"))
    if not args.no_plot:
        plot(rosenbrock, n_path, g_path, args.out)
        print(f"wrote {os.path.abspath(args.out)}")
    return {"newton_steps": n_steps, "gd_steps": g_steps, "gd_converged": g_done,
            "newton_point": n_path[-1], "gd_point": g_path[-1],
            "plot": None if args.no_plot else args.out}


if __name__ == "__main__":
    main()
