"""The Theano tutorial's classifier, in tapegrad: two 2-D Gaussian clouds, an MLP with sigmoid
layers, squared error, and the tutorial's momentum update.

    python examples/gaussians_mlp.py                 # 100 iterations, writes gaussians_mlp.png
    python examples/gaussians_mlp.py --iterations 20 --dtype float64   # the tutorial's run

Same data, same initial weights and same update rule as the tutorial (SEEDS.md, 004): NumPy's
legacy generator seeded with 0 draws 1000 labels, the two clouds (means -1 and +1, a random
spread in [1, 2) per axis and class) and the weights (standard normal, biases 1); the cost is
the SUM of squared errors over the whole training set, and the update is the tutorial's
leaky integrator u <- mu*u + (1-mu)*g; w <- w - lr*u_old with lr=0.01, mu=0.9, which is
``tapegrad.optim.Momentum(dampening=mu)``. Each iteration prints the cost and the accuracy;
the PNG shows the network's output over the plane with the points on top.

The clouds overlap, so no classifier is perfect: the script also prints the Bayes-optimal
accuracy (the true class densities compared point by point), the ceiling to measure against.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import tapegrad
from tapegrad import nn

try:  # tqdm is in the "examples" extra; without it the script still runs
    from tqdm import tqdm
except ImportError:  # pragma: no cover
    tqdm = None


def make_data(n: int = 1000, seed: int = 0):
    """The tutorial's data and initial weights, drawn in its order from NumPy's legacy RNG."""
    rs = np.random.RandomState(seed)
    y = rs.randint(0, 2, n)  # np.random.random_integers(0, 1, n) draws the same numbers
    means = np.array([[-1.0, 1.0], [-1.0, 1.0]])
    spread = rs.random_sample((2, 2)) + 1  # the tutorial calls these "covariances"
    x = np.vstack([rs.randn(n) * spread[0, y] + means[0, y],
                   rs.randn(n) * spread[1, y] + means[1, y]]).T
    sizes = [2, 4, 1]
    init = [(rs.randn(n_out, n_in), np.ones(n_out)) for n_in, n_out in zip(sizes, sizes[1:])]
    return x, y.astype(np.float64), init, (means, spread)


def bayes_accuracy(x, y, means, spread) -> float:
    """Accuracy of the best possible classifier: pick the class with the higher density."""
    def log_density(c):
        z = (x - means[:, c]) / spread[:, c]
        return -0.5 * (z ** 2).sum(1) - np.log(spread[:, c]).sum()

    return float(((log_density(1) > log_density(0)) == (y == 1)).mean())


def build_model(init, dtype) -> nn.Sequential:
    """2 -> 4 -> 1, a sigmoid after every layer, loaded with the tutorial's weights."""
    model = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 1), nn.Sigmoid())
    model.to(dtype)
    with tapegrad.no_grad():
        for layer, (w, b) in zip([model[0], model[2]], init):
            layer.weight.copy_(tapegrad.tensor(w, dtype=dtype))
            layer.bias.copy_(tapegrad.tensor(b, dtype=dtype))
    return model


def plot(model, x, y, title: str, path: str, dtype) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(-6, 6, 241)
    gx, gy = np.meshgrid(grid, grid)
    plane = tapegrad.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=dtype)
    with tapegrad.no_grad():
        out = model(plane).reshape(gx.shape).numpy()
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(out, extent=(-6, 6, -6, 6), origin="lower", cmap="cool", vmin=0, vmax=1,
                   alpha=0.55)
    ax.contour(gx, gy, out, levels=[0.5], colors="k", linewidths=1)
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="cool", s=6, lw=0.3, edgecolors="k", vmin=0, vmax=1)
    ax.set(xlim=(-6, 6), ylim=(-6, 6), title=title)
    fig.colorbar(im, ax=ax, label="network output")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--mu", type=float, default=0.9)
    p.add_argument("--points", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--out", default="gaussians_mlp.png", help="where to write the plot")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no per-iteration lines or bar")
    args = p.parse_args(argv)

    dtype = getattr(tapegrad, args.dtype)
    x_np, y_np, init, (means, spread) = make_data(args.points, args.seed)
    x = tapegrad.tensor(x_np, dtype=dtype)
    y = tapegrad.tensor(y_np, dtype=dtype).unsqueeze(1)
    model = build_model(init, dtype)
    loss_fn = nn.MSELoss(reduction="sum")  # the tutorial's T.sum((output - y)**2)
    opt = tapegrad.optim.Momentum(model.parameters(), lr=args.lr, momentum=args.mu,
                                  dampening=args.mu)

    say = print
    steps = range(args.iterations)
    if tqdm is not None and not args.quiet:
        steps = tqdm(steps, desc="training", unit="it")
        say = tqdm.write
    costs, accs = [], []
    for it in steps:
        opt.zero_grad()
        cost = loss_fn(model(x), y)
        cost.backward()
        opt.step()
        with tapegrad.no_grad():  # the tutorial scores the network after the update
            acc = ((model(x) > 0.5) == (y > 0.5)).double().mean().item()
        costs.append(cost.item())
        accs.append(acc)
        if not args.quiet:
            say(f"iteration {it + 1:4d}  cost {costs[-1]:9.3f}  accuracy {acc:.3f}")

    bayes = bayes_accuracy(x_np, y_np, means, spread)
    print(f"final: cost {costs[-1]:.3f}, accuracy {accs[-1]:.3f} "
          f"(Bayes-optimal accuracy on these points: {bayes:.3f})")
    if not args.no_plot:
        plot(model, x_np, y_np, f"Cost: {costs[-1]:.3f}, Accuracy: {accs[-1]:.3f}", args.out,
             dtype)
        print(f"wrote {os.path.abspath(args.out)}")
    return {"costs": costs, "accuracies": accs, "bayes_accuracy": bayes,
            "plot": None if args.no_plot else args.out}


if __name__ == "__main__":
    main()
