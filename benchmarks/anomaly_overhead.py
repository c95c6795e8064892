"""What debugging aids cost per op, on a chain of small ops (`x = x * c`, forward + backward).

Three settings:

* ``off``: the default; anomaly mode costs one flag read per op;
* ``user line per op``: what always recording the user's source line for every node (so that
  in-place errors could name where a tensor was saved without anomaly mode) would cost: the
  frame walk, with nothing else;
* ``anomaly mode``: ``detect_anomaly()``: a forward stack per node plus NaN/Inf scans.

Run: ``python benchmarks/anomaly_overhead.py [n_ops]``. CPU time (``process_time``), best of
several interleaved rounds, so that a busy machine distorts the comparison less.
"""

from __future__ import annotations

import os
import sys
import time

import tapegrad
from tapegrad.autograd import anomaly
from tapegrad.autograd import hooks_state as hs

_PKG = os.path.dirname(tapegrad.__file__)


def chain(x0, n):
    x = x0
    for _ in range(n):
        x = x * 1.0001
    x.sum().backward()


def per_op_us(n, reps=5):
    x0 = tapegrad.ones(4, requires_grad=True)
    best = float("inf")
    for _ in range(reps):
        t = time.process_time()
        chain(x0, n)
        best = min(best, time.process_time() - t)
    return best / n * 1e6


def record_user_line(ctx, inputs, outs):
    f = sys._getframe(2)
    while f.f_code.co_filename.startswith(_PKG):
        f = f.f_back
    ctx._trace = (f.f_code.co_filename, f.f_lineno)


def main(n=2000, rounds=10):
    results = {"off": [], "user line per op": [], "anomaly mode": []}
    for _ in range(rounds):
        hs.ANOMALY = False
        results["off"].append(per_op_us(n))
        hs.ANOMALY, hs.anomaly_after, hs.anomaly_vjp = True, record_user_line, \
            (lambda node, grads: node.vjp(*grads))
        results["user line per op"].append(per_op_us(n))
        hs.anomaly_after, hs.anomaly_vjp = anomaly.anomaly_after, anomaly.anomaly_vjp
        hs.ANOMALY = False
        with tapegrad.autograd.detect_anomaly():
            results["anomaly mode"].append(per_op_us(n, reps=2))
    base = min(results["off"])
    print(f"chain of {n} ops (x = x * c on 4 floats), forward + backward, CPU us per op:")
    for k, v in results.items():
        print(f"  {k:<18} {min(v):6.2f} us  ({min(v) / base - 1:+.0%})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
