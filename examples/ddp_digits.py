"""Data-parallel training of an MLP on scikit-learn's digits, over MPI.

    mpiexec -n 2 python examples/ddp_digits.py          # two processes, one model each
    python examples/ddp_digits.py                       # one process works too

Each rank trains on its own slice of every epoch (DistributedSampler); DistributedDataParallel
averages gradients with all-reduces started from backward hooks. Rank 0 prints loss, test
accuracy and throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import tapegrad as tg
import tapegrad.distributed as dist
from tapegrad import nn
from tapegrad.nn.parallel import DistributedDataParallel
from tapegrad.utils.data import DataLoader, TensorDataset
from tapegrad.utils.data.distributed import DistributedSampler


def load_digits(seed=0):
    from sklearn.datasets import load_digits as _load

    d = _load()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    idx = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.8 * len(x))
    tr, te = idx[:cut], idx[cut:]
    return (tg.tensor(x[tr]), tg.tensor(y[tr])), (tg.tensor(x[te]), tg.tensor(y[te]))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64, help="global batch (all ranks)")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON line of results")
    args = p.parse_args(argv)

    tg.set_num_threads(args.threads) if hasattr(tg, "set_num_threads") else None
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    (xtr, ytr), (xte, yte) = load_digits()
    train = TensorDataset(xtr, ytr)
    sampler = DistributedSampler(train, shuffle=True, seed=0)
    loader = DataLoader(train, batch_size=args.batch_size // world, sampler=sampler)

    tg.manual_seed(0)
    model = DistributedDataParallel(nn.Sequential(nn.Linear(64, 128), nn.ReLU(),
                                                  nn.Linear(128, 10)))
    opt = tg.optim.Nesterov(model.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    seen = 0
    start = time.perf_counter()
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            seen += len(xb)
        if rank == 0 and not args.json:
            with tg.no_grad():
                acc = (model(xte).argmax(1) == yte).float().mean().item()
            print(f"epoch {epoch + 1:3d}  loss {loss.item():.4f}  test accuracy {acc:.4f}")
    elapsed = time.perf_counter() - start
    total = tg.tensor(float(seen))
    dist.all_reduce(total)
    with tg.no_grad():
        acc = (model(xte).argmax(1) == yte).float().mean().item()
    result = {"ranks": world, "samples_per_s": total.item() / elapsed, "accuracy": acc}
    if rank == 0:
        print(json.dumps(result) if args.json else
              f"{world} rank(s): {result['samples_per_s']:.0f} samples/s, test accuracy "
              f"{acc:.4f}")
    dist.destroy_process_group()
    return result


if __name__ == "__main__":
    main()
