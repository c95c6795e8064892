"""A trace turned into two straight-line Python functions over arrays, and the one tape node
that a replay records.

The forward function runs each recorded primitive's ``forward`` on the arrays, one line per
op with every intermediate in a local (no tensors, no node per op, no checks: the trace's
guard has fixed every shape, dtype and device); it returns the outputs and what the
backward function reads. The backward function is the recorded vjps and gradient sums,
run the same way. Ops whose results nothing reads are dropped, and each local is deleted
after its last use, so intermediates are freed as early as in eager mode.
"""

from __future__ import annotations

import numpy as np

from tapegrad.autograd import hooks_state as _hs
from tapegrad.autograd.grad_mode import STATE as _GRAD
from tapegrad.autograd.node import Node
from tapegrad.compiler.passes import (fold_broadcasts, hoist_transposes, in_place,
                                      plain_binary, slot_meta)

__all__ = ["Program", "CompiledFunctionBackward"]

_new = object.__new__


def _live(ops, needed: set) -> list:
    """The ops of ``ops`` that ``needed`` (slots) depends on; ``needed`` grows to their inputs."""
    keep = []
    for op in reversed(ops):
        # (an op that draws random numbers stays: the draws after it must not move)
        if any(s in needed for s in op.writes()) or (op.cls is not None and op.cls.random):
            keep.append(op)
            needed.update(op.reads())
    keep.reverse()
    return keep


def _root(a):
    b = getattr(a, "base", None)
    return a if b is None else b  # (NumPy and CuPy point a view at the array owning memory)


def _read_sources(tr, saved: list) -> set:
    """The arguments and outside tensors that backward reads, themselves or through a view
    (``xs[t]`` of an argument ``xs``): a replay's node checks that they were not changed in
    place before its backward, as eager mode checks its saved tensors."""
    roots = {}
    for s, src in enumerate(tr.sources):
        if src is not None and src[0] in ("arg", "ext"):
            roots.setdefault(id(_root(tr.keep[s])), []).append(s)
    out = set()
    for s in saved:
        if s < len(tr.keep):
            out.update(roots.get(id(_root(tr.keep[s])), ()))
    return out


def _call(i: int, op, ns: dict) -> str:
    """The right-hand side of op ``i``'s line (its callables and constants go into ``ns``)."""
    from tapegrad.ops.matmul_t import Product

    args = []
    for j, (kind, v) in enumerate(op.ins):
        if kind == "s":
            args.append(f"v{v}")
        else:
            ns[f"K{i}_{j}"] = v
            args.append(f"K{i}_{j}")
    if op.direct is not None:
        ns[f"F{i}"] = op.direct
    elif plain_binary(op):
        # Its forward is its array function plus bookkeeping that only eager mode reads.
        ns[f"F{i}"] = op.cls.fn
        if op.into is not None:
            args.append(f"out={args[op.into]}")
    elif issubclass(op.cls, Product) and not op.kw and not op.ctx_outs:
        ns[f"F{i}"], ns[f"X{i}"] = op.cls.kernel, op.be.xp
        args.insert(0, f"X{i}")
    else:
        ns[f"F{i}"], ns[f"C{i}"], ns[f"B{i}"] = op.cls.forward, op.cls, op.be
        args[:0] = [f"c{i}" if op.ctx_outs else f"new(C{i})", f"B{i}"]
        for k, v in (op.kw or {}).items():
            args.append(f"{k}=v{v}")
        if op.attrs:
            ns[f"A{i}"] = op.attrs
            args.append(f"**A{i}")
    return f"F{i}({', '.join(args)})"


def _codegen(name: str, params: list, ops: list, unpack: list, returns: str, keep: set):
    """Python source for ``def name(*params)``: ``unpack`` lines, one line per op, deletes
    after last use (except ``keep``), then ``return returns``; with its namespace."""
    ns = {"new": _new, "asarray": np.asarray, "ndarray": np.ndarray}
    last = {}
    for i, op in enumerate(ops):
        for v in op.reads():
            last[v] = i
    lines = [f"def {name}({', '.join(params)}):"] + ["    " + u for u in unpack]
    for i, op in enumerate(ops):
        lhs = ", ".join(f"v{s}" for s in op.outs) + ("," if op.multi else "")
        if op.ctx_outs:
            lines.append(f"    c{i} = new(C{i})")
        lines.append(f"    {lhs} = {_call(i, op, ns)}")
        if op.ctx_outs:  # the arrays its forward left on its node
            lines += [f"    v{s} = c{i}.{k}" for k, s in op.ctx_outs] + [f"    del c{i}"]
        for s, scalar in zip(op.outs, op.scalar):
            if scalar:  # (a kernel may hand back a NumPy scalar: see Node.apply)
                lines.append(f"    if v{s}.__class__ is not ndarray: v{s} = asarray(v{s})")
        dead = [v for v, k in last.items() if k == i and v not in keep]
        dead += [v for v in op.writes() if v not in last and v not in keep]
        if dead:
            lines.append("    del " + ", ".join(f"v{v}" for v in sorted(dead)))
    lines.append(f"    return {returns}")
    src = "\n".join(lines) + "\n"
    code = compile(src, f"<tapegrad.compile {name}>", "exec")
    exec(code, ns)  # noqa: S102 - the source is generated above from the trace, nothing else
    return ns[name], src


def _tuple(names: list) -> str:
    return "(" + "".join(f"{n}, " for n in names) + ")"


def _optimize(ops: list, meta: list, owned: set, keep: set) -> list:
    def new_slot(m):
        meta.append(m)
        return len(meta) - 1

    ops = hoist_transposes(fold_broadcasts(ops, meta, keep), meta, new_slot)
    in_place(ops, meta, owned, keep)
    return ops


class Program:
    """Forward and backward of one trace (see the module docstring).

    ``sources``: the forward's parameters, as (slot, source) pairs; ``outs``: the slot of each
    output; ``grads``: the slot of each gradient (None where none reaches); ``seeds``: the
    slot of each output gradient fed to backward (outputs needing grad, in order)."""

    def __init__(self, tr, n_forward: int, outs: list, grads: list | None, seeds: list):
        f_ops, b_ops = tr.ops[:n_forward], tr.ops[n_forward:]
        meta, owned = slot_meta(tr)
        produced = {s for op in f_ops for s in op.writes()}
        self.saved = []
        if grads is not None:
            b_ops = _live(b_ops, {s for s in grads if s is not None})
            b_made = {s for op in b_ops for s in op.writes()}
            b_ops = _optimize(b_ops, meta, owned & b_made, set(grads))
            b_made = {s for op in b_ops for s in op.writes()}
            seed_set = set(seeds)
            # What backward reads from before it: forward results and the sources (read at
            # forward time, as eager mode saves them then).
            read = {v for op in b_ops for v in op.reads()}
            read |= {s for s in grads if s is not None}
            self.saved = sorted(s for s in read if s not in b_made and s not in seed_set)
        else:
            b_ops = []
        f_keep = set(outs) | set(self.saved)
        f_ops = _live(f_ops, set(f_keep))
        f_ops = _optimize(f_ops, meta, owned & produced, f_keep)
        self.checked = _read_sources(tr, self.saved)
        produced = {s for op in f_ops for s in op.writes()}  # (with the passes' own slots)
        used = {v for op in f_ops for v in op.reads()} | f_keep
        self.sources = [(s, tr.sources[s]) for s in sorted(used)
                        if s not in produced and tr.sources[s][0] != "seed"]
        params = [f"v{s}" for s, _ in self.sources]
        ret = f"{_tuple([f'v{s}' for s in outs])}, {_tuple([f'v{s}' for s in self.saved])}"
        self.forward, self.forward_src = _codegen("forward", params, f_ops, [], ret, f_keep)
        self.n_ops = (len(f_ops), len(b_ops))
        self.random = any(op.cls is not None and op.cls.random for op in f_ops)
        self.backward = None
        if grads is not None:
            unpack = []
            if self.saved:
                unpack.append(f"{_tuple([f'v{s}' for s in self.saved])} = saved")
            unpack.append(f"{_tuple([f'v{s}' for s in seeds])} = seeds")
            ext_consts = {s for s, src in enumerate(tr.sources) if src and src[0] == "ext"}
            # A gradient that is a constant of the trace would be one array shared by every
            # call (and the engine may add into it): copied.
            rets = ["None" if s is None else f"v{s}.copy()" if s in ext_consts else f"v{s}"
                    for s in grads]
            self.backward, self.backward_src = _codegen(
                "backward", ["seeds", "saved"], b_ops, unpack, _tuple(rets), set(grads))


class CompiledFunctionBackward(Node):
    """The tape entry of one replayed call: its vjp runs the program's backward function."""

    name = "compiled_function"
    multi_output = True

    def name_backward(self) -> str:
        return "CompiledFunctionBackward"

    def release(self) -> None:
        self.vals = None
        self._saved = ()
        self._freed = True

    def vjp(self, *grads):
        # What the replay read and backward needs (arguments, outside tensors, outputs) is
        # kept as any node keeps its saved tensors: reading it checks that it was not freed
        # or changed in place since, with eager mode's errors.
        _ = self.saved_raw
        if _GRAD.grad_enabled or _hs.FORWARD_AD:
            raise RuntimeError(
                "compiled_function: double backward (create_graph=True) and forward-mode AD "
                "through a tapegrad.compile'd function are not supported; call the function "
                "itself (not compiled) for higher-order derivatives")
        from tapegrad.tensor import Tensor

        seeds = []
        for g, (shape, dtype, xp) in zip(grads, self.out_meta):
            seeds.append(xp.zeros(shape, dtype) if g is None else g._data)
        res = self.prog.backward(seeds, self.vals)
        make = Tensor._make
        return tuple(None if r is None else make(r, False, None, 0, d)
                     for r, d in zip(res, self.devices))
