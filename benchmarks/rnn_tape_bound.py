"""How close can any eager tape get to the hand-written NumPy floor on the RNN BPTT
workload (``wl_rnn.py``)? A bound, measured:

    python benchmarks/rnn_tape_bound.py

The tape here has four op kinds and nothing else: an op appends a 4-tuple to a list and
makes an object with three slots; backward walks the list in reverse. No dtype, device,
shape or version checks, no hooks, views, graph freeing, higher order or thread safety:
the least bookkeeping an eager tape can do per op (with tapegrad's BLAS tricks, so that
only the bookkeeping differs). It prints its time, tapegrad's and the
floor's, interleaved, with the ratios to the floor.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wl_rnn as W  # noqa: E402
from harness import interleaved, pin_threads  # noqa: E402

import tapegrad  # noqa: E402

_TAPE: list = []


class _V:
    __slots__ = ("d", "g", "const")

    def __init__(self, d, const=False):
        self.d, self.g, self.const = d, None, const

    def __matmul__(self, o):
        r = _V(self.d @ o.d)
        _TAPE.append((0, r, self, o))
        return r

    def __add__(self, o):
        r = _V(self.d + o.d)
        _TAPE.append((1, r, self, o))
        return r


def _tanh(x):
    r = _V(np.tanh(x.d))
    _TAPE.append((2, r, x, None))
    return r


def _sum(x):
    r = _V(x.d.sum())
    _TAPE.append((3, r, x, None))
    return r


def _acc(v, g):
    if not v.const:
        v.g = g if v.g is None else v.g + g


def _backward(root):
    # With tapegrad's two BLAS tricks, so that only the bookkeeping differs: each weight's
    # transpose made contiguous once per pass (OpenBLAS is slower on a transposed right
    # operand at these sizes), and the weights' gradients summed in place.
    root.g = np.float32(1.0)
    transposed = {}
    for kind, r, a, b in reversed(_TAPE):
        g = r.g
        if g is None:
            continue
        if kind == 0:
            if not a.const:
                bt = transposed.get(id(b))
                if bt is None:
                    bt = transposed[id(b)] = np.ascontiguousarray(b.d.T)
                _acc(a, g @ bt)
            gb = a.d.T @ g
            if b.g is None:
                b.g = gb
            else:
                b.g += gb
        elif kind == 1:
            _acc(a, g)
            _acc(b, g)
        elif kind == 2:
            _acc(a, g * (1 - r.d * r.d))
        else:
            _acc(a, np.broadcast_to(g, a.d.shape))
    _TAPE.clear()


def toy_step():
    wx0, wh0, xs0 = _DATA
    wx, wh = _V(wx0), _V(wh0)
    h = _V(np.zeros((W.B, W.H), np.float32), const=True)
    total = None
    for t in range(W.T):
        h = _tanh(_V(xs0[t], const=True) @ wx + h @ wh)
        s = _sum(h)
        total = s if total is None else total + s
    _backward(total)
    return wx.g


_DATA = W._data()


def main() -> None:
    pin_threads(1)
    tapegrad.set_num_threads(1)
    assert np.allclose(toy_step(), W._numpy()(), rtol=1e-3, atol=1e-3)
    med = interleaved({"toy tape": toy_step, "tapegrad": W._framework(tapegrad),
                       "numpy floor": W._numpy()}, repeats=30)
    floor = med["numpy floor"]
    for name, v in med.items():
        print(f"{name:<12} {v * 1e3:7.2f} ms  {v / floor:5.2f}x the floor")


if __name__ == "__main__":
    main()
