"""Rewrites of a traced program before it becomes Python (each one bit-for-bit or, for the
transposed copy, the same rounding as eager mode's backward).

A replay knows what eager mode cannot: every shape, every later use of every array. So:

* ``fold_broadcasts``: an ``expand`` read only by broadcasting binary ops (``x.sum()``'s
  vjp spreading a 0-d gradient, added to the next one) is dropped; the op broadcasts its
  input itself. ``np.broadcast_to`` costs ~15 us of Python per call here.
* ``hoist_transposes``: a matrix that backward multiplies by, transposed, again and again
  (a recurrent weight, once per time step) is copied transposed once per call; OpenBLAS is
  slower on a transposed right operand (eager mode's backward does the same:
  ``matmul_t.reused_nt``).
* ``in_place``: an ``add`` / ``mul`` whose operand dies there, and that the program itself
  allocated, writes into it (a weight's gradient summed over time steps: one array, not one
  per step), as the eager engine's ``sum_in_place`` does.
"""

from __future__ import annotations

import numpy as np

from tapegrad.backends import aligned
from tapegrad.compiler.trace import Op

__all__ = ["slot_meta", "plain_binary", "fold_broadcasts", "hoist_transposes", "in_place"]


def slot_meta(tr) -> tuple[list, set]:
    """``(shapes and dtypes, owned)``: each slot's ``(shape, dtype)``, and the slots whose
    array an op allocated and nothing else can see (no view of it, no second name)."""
    meta = [(a.shape, a.dtype) if hasattr(a, "dtype") else ((), None) for a in tr.keep]
    viewed, seen, twice = set(), set(), set()
    for a in tr.keep:
        if id(a) in seen:
            twice.add(id(a))
        seen.add(id(a))
        b = getattr(a, "base", None)
        while b is not None:
            viewed.add(id(b))
            b = getattr(b, "base", None)
    owned = {s for s, a in enumerate(tr.keep)
             if tr.sources[s] is None and getattr(a, "base", 0) is None and
             id(a) not in viewed and id(a) not in twice}
    return meta, owned


def _uses(ops) -> dict:
    uses: dict = {}
    for op in ops:
        for v in op.reads():
            uses.setdefault(v, []).append(op)
    return uses


def plain_binary(op) -> bool:
    """A broadcasting binary op whose forward is its array function (no dtype to cast to)."""
    from tapegrad.ops.elementwise import _Binary

    return op.cls is not None and issubclass(op.cls, _Binary) and not op.attrs and \
        not op.kw and not op.ctx_outs and op.cls.fn is not None


def fold_broadcasts(ops: list, meta: list, keep: set) -> list:
    from tapegrad.ops.shape import BroadcastTo

    uses = _uses(ops)
    drop, swap = set(), {}
    for op in ops:
        if op.cls is not BroadcastTo or op.ins[0][0] != "s" or op.outs[0] in keep:
            continue
        out, src = op.outs[0], op.ins[0][1]
        shape, dtype = meta[out]
        users = uses.get(out, [])
        ok = bool(users)
        for u in users:
            other = [v for k, v in u.ins if not (k == "s" and v == out)]
            if not (plain_binary(u) and len(other) == 1 and u.ins[0][0] == u.ins[1][0] == "s"
                    and meta[other[0]] == (shape, dtype) and meta[src][1] == dtype):
                ok = False
                break
        if ok:
            drop.add(id(op))
            swap[out] = src
    if not drop:
        return ops
    res = []
    for op in ops:
        if id(op) in drop:
            continue
        if any(k == "s" and v in swap for k, v in op.ins):
            op.ins = [("s", swap[v]) if k == "s" and v in swap else (k, v) for k, v in op.ins]
        res.append(op)
    return res


def _transposed(b):
    t = aligned.empty(b.shape[::-1], b.dtype)
    t[...] = b.T
    return t


def hoist_transposes(ops: list, meta: list, new_slot) -> list:
    from tapegrad.ops.linalg import MatMul
    from tapegrad.ops.matmul_t import MatMulNT

    count: dict = {}
    for op in ops:
        if op.cls is MatMulNT and op.ins[1][0] == "s" and len(meta[op.ins[1][1]][0]) == 2 \
                and op.ins[0][0] == "s" and len(meta[op.ins[0][1]][0]) == 2 \
                and meta[op.ins[1][1]][1] is not None:
            count[op.ins[1][1]] = count.get(op.ins[1][1], 0) + 1
    hot = {s for s, n in count.items() if n > 1}
    if not hot:
        return ops
    made, res = {}, []
    for op in ops:
        if op.cls is MatMulNT and op.ins[1][0] == "s" and op.ins[1][1] in hot \
                and op.ins[0][0] == "s" and len(meta[op.ins[0][1]][0]) == 2:
            b = op.ins[1][1]
            if b not in made:
                shape, dtype = meta[b]
                made[b] = t = new_slot((shape[::-1], dtype))
                cp = Op(None, op.be, None, [("s", b)], [t], [False], False)
                cp.direct = _transposed
                res.append(cp)
            op = Op(MatMul, op.be, None, [op.ins[0], ("s", made[b])], op.outs, op.scalar,
                    False)
        res.append(op)
    return res


def in_place(ops: list, meta: list, owned: set, keep: set) -> None:
    """Mark each ``add`` / ``mul`` that may write into a dying operand (``op.into``)."""
    last: dict = {}
    for i, op in enumerate(ops):
        for v in op.reads():
            last[v] = i
    for i, op in enumerate(ops):
        if not (plain_binary(op) and op.cls.fn in (np.add, np.multiply)) or op.multi:
            continue
        res = meta[op.outs[0]]
        for j, (kind, v) in enumerate(op.ins):
            if kind == "s" and v in owned and v not in keep and last.get(v) == i and \
                    meta[v] == res and sum(1 for k, w in op.ins if k == "s" and w == v) == 1:
                op.into = j
                break
