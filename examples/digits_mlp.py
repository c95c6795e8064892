"""An MLP on scikit-learn's bundled 8x8 digits, trained with reparameterized Nesterov momentum.

    python examples/digits_mlp.py            # 40 epochs, writes digits_mlp.png

1797 images (shipped inside scikit-learn, nothing is downloaded), a stratified 75/25
train/test split, pixels scaled by the training set's mean and spread, a 64-256-128-10 ReLU
network with cross-entropy, minibatches from ``tapegrad.utils.data.DataLoader`` and
``tapegrad.optim.Nesterov`` (which stores the lookahead point w' = w + mu*v, see its
docstring). Prints a tqdm bar with the running loss, the final test accuracy, and writes a
loss / accuracy curve.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import tapegrad
from tapegrad import nn
from tapegrad.utils.data import DataLoader, TensorDataset

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover
    tqdm = None


def load_split(seed: int = 0, test_fraction: float = 0.25):
    """Standardised digits as tensors: (x_train, y_train), (x_test, y_test)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(data.data, data.target, test_size=test_fraction,
                                              random_state=seed, stratify=data.target)
    mean, std = x_tr.mean(0), x_tr.std(0) + 1.0  # +1: some border pixels are always 0
    prep = lambda x: tapegrad.tensor((x - mean) / std, dtype=tapegrad.float32)
    return ((prep(x_tr), tapegrad.tensor(y_tr, dtype=tapegrad.int64)),
            (prep(x_te), tapegrad.tensor(y_te, dtype=tapegrad.int64)))


def build_model(hidden=(256, 128), dropout: float = 0.1) -> nn.Sequential:
    layers, width = [], 64
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def accuracy(model, x, y) -> float:
    model.eval()
    with tapegrad.no_grad():
        acc = (model(x).argmax(1) == y).double().mean().item()
    model.train()
    return acc


def plot(history: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(epochs, history["loss"], label="train loss")
    a.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="training loss")
    b.plot(epochs, history["train_acc"], label="train")
    b.plot(epochs, history["test_acc"], label="test")
    b.set(xlabel="epoch", ylabel="accuracy", ylim=(0.8, 1.001), title="accuracy")
    b.legend()
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--mu", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="digits_mlp.png")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)

    tapegrad.manual_seed(args.seed)
    (x_tr, y_tr), (x_te, y_te) = load_split(args.seed)
    loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=args.batch_size, shuffle=True,
                        generator=tapegrad.Generator().manual_seed(args.seed))
    model = build_model()
    loss_fn = nn.CrossEntropyLoss()
    opt = tapegrad.optim.Nesterov(model.parameters(), lr=args.lr, momentum=args.mu,
                                  weight_decay=args.weight_decay)
    print(f"digits: {len(x_tr)} train / {len(x_te)} test images, "
          f"{sum(p.numel() for p in model.parameters())} parameters")

    history = {"loss": [], "train_acc": [], "test_acc": []}
    epochs = range(args.epochs)
    if tqdm is not None and not args.quiet:
        epochs = tqdm(epochs, desc="training", unit="epoch")
    start = time.perf_counter()
    for _ in epochs:
        total, count = 0.0, 0
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
            count += len(yb)
        history["loss"].append(total / count)
        history["train_acc"].append(accuracy(model, x_tr, y_tr))
        history["test_acc"].append(accuracy(model, x_te, y_te))
        if tqdm is not None and not args.quiet:
            epochs.set_postfix(loss=f"{history['loss'][-1]:.4f}",
                               test_acc=f"{history['test_acc'][-1]:.4f}")
    seconds = time.perf_counter() - start

    print(f"test accuracy {history['test_acc'][-1]:.4f} after {args.epochs} epochs "
          f"({seconds:.1f} s, final train loss {history['loss'][-1]:.4f})")
    if not args.no_plot:
        plot(history, args.out)
        print(f"wrote {os.path.abspath(args.out)}")
    return {**history, "seconds": seconds, "plot": None if args.no_plot else args.out}


if __name__ == "__main__":
    main()
