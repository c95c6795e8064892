"""A 3-layer bidirectional RNN labelling every position of a sequence, trained with Nesterov.

    python examples/birnn_sequence.py                # 400 steps, then the timing comparison
    python examples/birnn_sequence.py --compile      # the model under tapegrad.compile

The source article's case (SEEDS.md, 000): a 3-layer bidirectional RNN that took Theano
three hours to compile. Here it is an eager tape, so the first step runs at once.

The task needs both directions: the input is a random sequence of bits, and the label at
position t is how many ones sit in the window t-2 .. t+2 (0 to 5, the window cut at the
ends), so two of the five bits that decide it lie in the future. A fresh batch is drawn every
step; accuracy is measured per position on a held-out batch. At the end the script times a
training step (forward, backward, update) against PyTorch running the same model with the
same weights and batch, when PyTorch is installed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import tapegrad
from tapegrad import nn

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover
    tqdm = None

N_CLASSES = 6


def make_batch(rs: np.random.RandomState, batch: int, length: int, window: int = 2):
    """Inputs (batch, length, 1) of +-1 and labels (batch, length): ones in the window."""
    bits = rs.randint(0, 2, size=(batch, length))
    padded = np.pad(bits, ((0, 0), (window, window)))
    counts = sum(padded[:, k:k + length] for k in range(2 * window + 1))
    return (2.0 * bits - 1.0)[..., None].astype(np.float32), counts.astype(np.int64)


class Tagger(nn.Module):
    """Bidirectional RNN stack, then one linear layer per position."""

    def __init__(self, hidden: int = 32, layers: int = 3, bidirectional: bool = True):
        super().__init__()
        self.rnn = nn.RNN(1, hidden, num_layers=layers, bidirectional=bidirectional,
                          batch_first=True)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), N_CLASSES)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out)


def step(model, opt, loss_fn, x, y) -> float:
    opt.zero_grad()
    logits = model(x)
    loss = loss_fn(logits.reshape(-1, N_CLASSES), y.reshape(-1))
    loss.backward()
    opt.step()
    return loss.item()


def limit_threads(n: int) -> None:
    """Same thread budget for both frameworks, so the timing compares like with like."""
    tapegrad.backends.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:
        pass
    else:
        threadpool_limits(n)  # NumPy's BLAS, which tapegrad's matmul calls
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(n)


def time_steps(fn, n: int) -> float:
    """Seconds per call of ``fn`` over ``n`` calls, after two warm-up calls."""
    fn()
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def compare_with_pytorch(model, args, x_np, y_np) -> dict | None:
    """Time one training step here and in PyTorch, same architecture, weights and batch."""
    try:
        import torch
    except ImportError:
        return None

    tmodel = _torch_tagger(torch, args)
    tmodel.load_state_dict({k: torch.from_numpy(v.detach().numpy().copy())
                            for k, v in model.state_dict().items()})
    # PyTorch has no reparameterized Nesterov; SGD(nesterov=True) does the same amount of work.
    topt = torch.optim.SGD(tmodel.parameters(), lr=args.lr, momentum=args.mu, nesterov=True)
    tloss = torch.nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np)
    ours_model = _copy_model(model, args)
    ours_opt = tapegrad.optim.Nesterov(ours_model.parameters(), lr=args.lr, momentum=args.mu)
    ours_net = tapegrad.compile(ours_model) if args.compile else ours_model
    x, y = tapegrad.tensor(x_np), tapegrad.tensor(y_np)
    loss_fn = nn.CrossEntropyLoss()
    ours = time_steps(lambda: step(ours_net, ours_opt, loss_fn, x, y), args.timing_steps)
    theirs = time_steps(lambda: step(tmodel, topt, tloss, tx, ty), args.timing_steps)
    return {"tapegrad_ms": ours * 1e3, "torch_ms": theirs * 1e3,
            "torch_version": torch.__version__, "torch_threads": torch.get_num_threads()}


def _torch_tagger(torch, args):
    class TorchTagger(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.RNN(1, args.hidden, num_layers=args.layers,
                                    bidirectional=not args.unidirectional, batch_first=True)
            self.head = torch.nn.Linear(args.hidden * (1 if args.unidirectional else 2),
                                        N_CLASSES)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out)

    return TorchTagger()


def _copy_model(model, args):
    twin = Tagger(args.hidden, args.layers, not args.unidirectional)
    twin.load_state_dict(model.state_dict())
    return twin


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--length", type=int, default=24)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--unidirectional", action="store_true", help="the baseline that cannot "
                   "see the future half of each window")
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--mu", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timing-steps", type=int, default=20)
    p.add_argument("--no-compare", action="store_true", help="skip the PyTorch timing")
    p.add_argument("--threads", type=int, default=None, help="limit BLAS, numba and PyTorch "
                   "to this many threads (default: their own defaults)")
    p.add_argument("--compile", action="store_true", help="train the model under "
                   "tapegrad.compile (traced once, then replayed)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)

    if args.threads is not None:
        limit_threads(args.threads)
    tapegrad.manual_seed(args.seed)
    rs = np.random.RandomState(args.seed)
    model = Tagger(args.hidden, args.layers, not args.unidirectional)
    opt = tapegrad.optim.Nesterov(model.parameters(), lr=args.lr, momentum=args.mu)
    net = tapegrad.compile(model) if args.compile else model  # (parameters shared)
    loss_fn = nn.CrossEntropyLoss()
    x_val, y_val = (tapegrad.tensor(a) for a in make_batch(rs, 512, args.length))

    def val_accuracy() -> float:
        with tapegrad.no_grad():
            return (net(x_val).argmax(-1) == y_val).double().mean().item()

    first_acc = val_accuracy()
    steps = range(args.steps)
    if tqdm is not None and not args.quiet:
        steps = tqdm(steps, desc="training", unit="step")
    losses = []
    start = time.perf_counter()
    for i in steps:
        xb, yb = make_batch(rs, args.batch_size, args.length)
        losses.append(step(net, opt, loss_fn, tapegrad.tensor(xb), tapegrad.tensor(yb)))
        if tqdm is not None and not args.quiet and i % 10 == 0:
            steps.set_postfix(loss=f"{losses[-1]:.4f}")
    seconds = time.perf_counter() - start
    acc = val_accuracy()
    kind = ("unidirectional" if args.unidirectional else "bidirectional") + \
        (", compiled" if args.compile else "")
    print(f"{args.layers}-layer {kind} RNN: loss {losses[0]:.3f} -> {losses[-1]:.3f}, "
          f"per-position accuracy {first_acc:.3f} -> {acc:.3f} "
          f"({args.steps} steps in {seconds:.1f} s)")

    result = {"losses": losses, "accuracy": acc, "initial_accuracy": first_acc,
              "seconds": seconds, "timing": None}
    if not args.no_compare:
        xb, yb = make_batch(rs, args.batch_size, args.length)
        timing = compare_with_pytorch(model, args, xb, yb)
        if timing is None:
            print("PyTorch is not installed: no timing comparison")
        else:
            print(f"time per training step (batch {args.batch_size}, length {args.length}): "
                  f"tapegrad{' (compiled)' if args.compile else ''} "
                  f"{timing['tapegrad_ms']:.2f} ms, PyTorch {timing['torch_version']} "
                  f"{timing['torch_ms']:.2f} ms ({timing['torch_threads']} threads)")
        result["timing"] = timing
    return result


if __name__ == "__main__":
    main()
