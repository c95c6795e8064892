"""Forward mode and reverse mode on the computational-graph article's example, then where each
one wins.

    python examples/forward_vs_reverse.py            # the example, then timings for n = 300
    python examples/forward_vs_reverse.py --n 50 --repeats 1

Part 1 (SEEDS.md, 002): e = (a + b) * (b + 1) at a = 2, b = 1, so c = a + b = 3, d = b + 1 = 2
and e = 6. Forward mode pushes a derivative d/da (or d/db) from the inputs to the output along
with the values: one pass per input, each giving one column of the Jacobian (de/da = 2, then
de/db = 5). Reverse mode runs the graph once, then pulls de/d(everything) back from the output:
one backward pass gives de/da and de/db together.

Part 2: the same Jacobian computed both ways, timed, for
  * f: R^n -> R   (many inputs, one output, like a loss): reverse needs 1 backward pass,
    forward needs n passes;
  * g: R -> R^n   (one input, many outputs, like a trajectory over time): forward needs 1 pass,
    reverse needs n backward passes.
Each mode wins where it needs one pass and the other needs n.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import tapegrad
from tapegrad.autograd import forward_ad as fwAD
from tapegrad.autograd import functional as AF


def article_example(a0: float = 2.0, b0: float = 1.0) -> dict:
    """e = (a + b) * (b + 1) by forward mode (one pass per input) and reverse mode (one pass)."""
    def e_of(a, b):
        c = a + b
        d = b + 1
        return c * d, c, d

    f64 = tapegrad.float64
    a, b = tapegrad.tensor(a0, dtype=f64), tapegrad.tensor(b0, dtype=f64)
    forward = {}
    for name, (ta, tb) in {"a": (1.0, 0.0), "b": (0.0, 1.0)}.items():
        with fwAD.dual_level():
            e, c, d = e_of(fwAD.make_dual(a, tapegrad.tensor(ta, dtype=f64)),
                           fwAD.make_dual(b, tapegrad.tensor(tb, dtype=f64)))
            dc, dd = fwAD.unpack_dual(c).tangent, fwAD.unpack_dual(d).tangent
            value, de = fwAD.unpack_dual(e)
        forward[name] = de.item()
        print(f"forward mode, seed d{name} = 1:  c = {c.item():g} (dc = {dc.item():g}),  "
              f"d = {d.item():g} (dd = {dd.item():g}),  e = {value.item():g} "
              f"(de/d{name} = {de.item():g})")
    ar, br = a.clone().requires_grad_(), b.clone().requires_grad_()
    e, _, _ = e_of(ar, br)
    e.backward()
    reverse = {"a": ar.grad.item(), "b": br.grad.item()}
    print(f"reverse mode, one backward pass:  e = {e.item():g},  de/da = {reverse['a']:g}, "
          f"de/db = {reverse['b']:g}")
    return {"e": e.item(), "forward": forward, "reverse": reverse}


def many_to_one(n: int):
    """f: R^n -> R, a smooth scalar of all inputs (think: a loss)."""
    w = tapegrad.tensor(np.random.default_rng(0).standard_normal((n, n)) / np.sqrt(n))

    def f(x):
        return ((w @ x.tanh()).sin() * x).sum()
    return f


def one_to_many(n: int):
    """g: R -> R^n, one input spread over n outputs (think: a trajectory x(t_k))."""
    t = tapegrad.tensor(np.linspace(0.0, 3.0, n))

    def g(s):
        return (s * t).sin() * (1 + s * s).sqrt() + (t - s).tanh()
    return g


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def race(name, fn, x, repeats):
    """Time the full Jacobian by both strategies; check they agree."""
    res, secs = {}, {}
    for mode in ("forward-mode", "reverse-mode"):
        secs[mode] = best_time(lambda m=mode: res.__setitem__(
            m, AF.jacobian(fn, x, strategy=m)), repeats)
    np.testing.assert_allclose(res["forward-mode"].numpy(), res["reverse-mode"].numpy(),
                               rtol=1e-9, atol=1e-12)
    fw, rv = secs["forward-mode"], secs["reverse-mode"]
    winner = "forward" if fw < rv else "reverse"
    print(f"{name:<34} forward {fw * 1e3:9.2f} ms   reverse {rv * 1e3:9.2f} ms   "
          f"-> {winner} mode wins, {max(fw, rv) / min(fw, rv):5.1f}x")
    return {"forward_s": fw, "reverse_s": rv, "winner": winner}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=300, help="inputs of f, outputs of g")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    print("Part 1: e = (a + b) * (b + 1) at a = 2, b = 1")
    example = article_example()
    print(f"\nPart 2: full Jacobians with n = {args.n} (best of {args.repeats})")
    x = tapegrad.tensor(np.random.default_rng(1).standard_normal(args.n))
    wide = race(f"f: R^{args.n} -> R   (J is 1 x {args.n})", many_to_one(args.n), x,
                args.repeats)
    tall = race(f"g: R -> R^{args.n}   (J is {args.n} x 1)", one_to_many(args.n),
                tapegrad.tensor(np.array([0.7])), args.repeats)
    return {"example": example, "many_inputs": wide, "many_outputs": tall}


if __name__ == "__main__":
    main()
