"""A character-level LSTM trained with truncated backpropagation through time.

    python examples/char_rnn_tbptt.py                   # The Zen of Python, then a sample
    python examples/char_rnn_tbptt.py --corpus docs     # standard-library docstrings, ~3 min

The text ships with Python itself: the Zen of Python, stored ROT13-encoded in the standard
library's ``this.py`` (read from its source, so nothing is printed on import), or the
docstrings of a list of standard-library modules (read with ``ast`` from their source files).

The text is cut into ``batch`` parallel streams, walked ``bptt`` characters at a time. The
LSTM's (h, c) is carried from one chunk to the next but detached, as PyTorch users do it: the
forward pass sees the whole history, while backward stops at the chunk border (SEEDS.md 003
stops after 10 steps; the default here is 32). Gradients are clipped with
``nn.utils.clip_grad_norm_`` before each Adam step. At the end the model writes a sample.
"""

from __future__ import annotations

import argparse
import ast
import codecs
import importlib.util
import math
import time

import numpy as np

import tapegrad
from tapegrad import nn

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover
    tqdm = None

DOC_MODULES = ("this", "textwrap", "string", "json", "collections", "functools", "itertools",
               "heapq", "bisect", "fractions", "decimal", "random", "statistics", "pathlib",
               "argparse", "contextlib", "dataclasses", "difflib", "shutil", "tempfile",
               "threading", "queue", "csv", "zipfile", "unittest", "logging", "pickle",
               "copy", "pprint", "enum", "typing", "abc", "inspect")


def _source(module: str) -> str:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return ""
    with open(spec.origin, encoding="utf-8") as fh:
        return fh.read()


def zen_of_python() -> str:
    """The Zen, decoded from ``this.py``'s ROT13 string without importing the module."""
    tree = ast.parse(_source("this"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "s":
            return codecs.decode(node.value.value, "rot13")
    raise RuntimeError("could not find the Zen of Python in this.py")


def stdlib_docstrings(modules=DOC_MODULES) -> str:
    """Module, class and function docstrings of some standard modules, one after another."""
    parts = [zen_of_python()]
    for name in modules:
        src = _source(name)
        if not src:
            continue
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 40:
                    parts.append(doc.strip())
    return "\n\n".join(parts)


class CharLSTM(nn.Module):
    def __init__(self, vocab: int, embed: int = 32, hidden: int = 128, layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, idx, state=None):
        out, state = self.lstm(self.embed(idx), state)
        return self.head(out), state


def sample(model, stoi: dict, itos: list, prime: str, n: int, temperature: float,
           generator) -> str:
    """Feed ``prime``, then draw ``n`` characters one at a time from the softmax."""
    model.eval()
    out = list(prime)
    with tapegrad.no_grad():
        idx = tapegrad.tensor([[stoi[c] for c in prime]])
        logits, state = model(idx)
        for _ in range(n):
            probs = (logits[0, -1] / temperature).softmax(-1)
            nxt = tapegrad.multinomial(probs, 1, generator=generator).item()
            out.append(itos[nxt])
            logits, state = model(tapegrad.tensor([[nxt]]), state)
    model.train()
    return "".join(out)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", choices=["zen", "docs"], default="zen")
    p.add_argument("--epochs", type=int, default=None, help="default: 120 (zen), 10 (docs)")
    p.add_argument("--max-chars", type=int, default=100_000, help="cap on the corpus size")
    p.add_argument("--batch-size", type=int, default=None, help="parallel streams; "
                   "default: 8 (zen), 32 (docs)")
    p.add_argument("--bptt", type=int, default=32, help="truncation length")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--clip", type=float, default=0.5, help="max gradient norm")
    p.add_argument("--sample-chars", type=int, default=400)
    p.add_argument("--temperature", type=float, default=0.6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    zen = args.corpus == "zen"
    if args.epochs is None:
        args.epochs = 120 if zen else 10
    if args.batch_size is None:
        args.batch_size = 8 if zen else 32

    tapegrad.manual_seed(args.seed)
    text = (zen_of_python() if zen else stdlib_docstrings())[:args.max_chars]
    itos = sorted(set(text))
    stoi = {c: i for i, c in enumerate(itos)}
    data = np.array([stoi[c] for c in text], dtype=np.int64)
    per_stream = (len(data) - 1) // args.batch_size
    streams = tapegrad.tensor(data[:per_stream * args.batch_size + 1])
    inputs = streams[:-1].reshape(args.batch_size, per_stream)
    targets = streams[1:].reshape(args.batch_size, per_stream)
    print(f"corpus '{args.corpus}': {len(text)} characters, {len(itos)} distinct; "
          f"{args.batch_size} streams of {per_stream}, truncated every {args.bptt}")

    model = CharLSTM(len(itos), hidden=args.hidden, layers=args.layers)
    opt = tapegrad.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    epochs = range(args.epochs)
    if tqdm is not None and not args.quiet:
        epochs = tqdm(epochs, desc="training", unit="epoch")
    history, norms = [], []
    start = time.perf_counter()
    for _ in epochs:
        state, total, count = None, 0.0, 0
        for i in range(0, per_stream, args.bptt):
            x, y = inputs[:, i:i + args.bptt], targets[:, i:i + args.bptt]
            if state is not None:  # truncation: keep the values, drop the graph behind them
                state = tuple(s.detach() for s in state)
            logits, state = model(x, state)
            loss = loss_fn(logits.reshape(-1, len(itos)), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), args.clip)))
            opt.step()
            total += loss.item() * y.numel()
            count += y.numel()
        history.append(total / count / math.log(2))  # bits per character
        if tqdm is not None and not args.quiet:
            epochs.set_postfix(bits_per_char=f"{history[-1]:.3f}")
    seconds = time.perf_counter() - start
    clipped = sum(n > args.clip for n in norms) / max(len(norms), 1)
    print(f"bits per character {history[0]:.3f} -> {history[-1]:.3f} in {seconds:.1f} s "
          f"({clipped:.0%} of steps clipped at norm {args.clip})")

    gen = tapegrad.Generator().manual_seed(args.seed)
    prime = text[: text.index(" ") + 1] if " " in text else text[:1]
    text_out = sample(model, stoi, itos, prime, args.sample_chars, args.temperature, gen)
    print("sample:\n" + text_out)
    return {"bits_per_char": history, "sample": text_out, "grad_norms": norms,
            "seconds": seconds}


if __name__ == "__main__":
    main()
