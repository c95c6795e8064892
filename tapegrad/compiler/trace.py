"""Tracing: run a function eagerly once and write down every primitive op it ran, forward and
backward, as a flat program over arrays.

While a trace records, ``hooks_state.FORWARD_AD`` is on with the tracer as its hook: every op
then takes ``Node.apply``'s general path (the fast paths defer to it whenever forward AD is
on) and reports ``(node, inputs, outputs, attrs)`` after computing. The tracer names every
array it sees by identity: an argument, the output of a recorded op, a gradient seed, or an
*external* (a tensor the function reads from its closure, a parameter say, read again at
every replay; or a constant it made). The backward half is traced the same way, by running
``autograd.grad(..., create_graph=True)`` on the eager graph: with a graph being built, every
vjp and every gradient sum is made of recorded ops too.

What a replay cannot reproduce ends the trace with :class:`Unreplayable` (the function then
runs eagerly): a value read back into Python (``item()``, ``bool()``, ``numpy()``...), an
in-place change, random numbers, hooks on the graph, a backward inside the function.
"""

from __future__ import annotations

import contextlib
import sys
import threading

import numpy as np

from tapegrad import backends as _backends
from tapegrad._device import CPU
from tapegrad.autograd import hooks_state as _hs
from tapegrad.autograd import order as _order
from tapegrad.autograd.node import Node

__all__ = ["Unreplayable", "Op", "Trace", "run_trace"]


class Unreplayable(Exception):
    """The traced function did something a replay would not repeat (the message says what)."""


class Op:
    """One recorded primitive: ``outs = cls.forward(new ctx, be, *ins, **attrs)``.

    ``ins`` holds ``("s", slot)`` for an array and ``("c", value)`` for a constant (a Python
    number, ``None``); ``cls`` None: a helper that ``direct`` computes; ``scalar`` marks
    the outputs that were 0-d (a kernel may hand back a NumPy scalar there, which ``apply``
    turns into an array)."""

    __slots__ = ("cls", "be", "attrs", "ins", "outs", "scalar", "multi", "direct", "into",
                 "kw", "ctx_outs")

    def __init__(self, cls, be, attrs, ins, outs, scalar, multi):
        self.cls, self.be, self.attrs, self.ins = cls, be, attrs, ins
        self.outs, self.scalar, self.multi = outs, scalar, multi
        self.direct = None  # an array function to call instead (compiler/passes.py)
        self.into = None    # the input it writes its result into (passes.in_place)
        self.kw = None      # {attribute: slot}: attributes that are arrays of the program
        self.ctx_outs = None  # [(name, slot)]: arrays its forward leaves on its node

    def reads(self):
        """Every slot the op reads."""
        for kind, v in self.ins:
            if kind == "s":
                yield v
        if self.kw:
            yield from self.kw.values()

    def writes(self) -> list:
        return self.outs + [s for _, s in self.ctx_outs] if self.ctx_outs else self.outs


class Trace:
    """The recording state of one trace (see the module docstring)."""

    def __init__(self):
        self.slot_of: dict[int, int] = {}  # id(array) -> slot
        self.keep: list = []               # slot -> its array (ids stay unique meanwhile)
        self.alive: list = []              # the arrays of ``born``, for the same reason
        self.sources: list = []            # slot -> ("arg", i) / ("ext", obj) / ("seed", k) / None
        self.ops: list[Op] = []
        self.phase = "forward"
        self.escape: str | None = None   # what was read into Python
        self.problem: str | None = None  # any other reason a replay would differ
        self.born: dict[int, bool] = {}   # id(array) -> made by tapegrad.creation
        self.rng_before = self.rng_after = None  # the global generator's state around it
        self.tid = threading.get_ident()

    # ---- naming arrays -----------------------------------------------------------------
    def new_slot(self, arr, source=None) -> int:
        s = len(self.sources)
        self.sources.append(source)
        self.slot_of[id(arr)] = s
        self.keep.append(arr)
        return s

    def ref(self, x):
        """The program's name for op input ``x``."""
        from tapegrad.tensor import Tensor

        if isinstance(x, Tensor):
            arr = x._data
        elif isinstance(x, np.ndarray) or hasattr(x, "__cuda_array_interface__"):
            arr = x  # (a vjp handing a kernel a saved array: see Node.saved_raw)
        else:
            return ("c", x)
        s = self.slot_of.get(id(arr))
        if s is None:
            # Read from outside the traced ops: a parameter, a closed-over tensor, a constant
            # made inside the function (read again at every replay: its current data). What
            # was computed from data outside the ops would be frozen instead: refused.
            if self.born.get(id(arr)) is False:
                self.problem = "an op reads a tensor made outside the traced ops"
            elif not isinstance(x, Tensor):
                self.problem = "an op reads an array made outside the traced ops"
            s = self.new_slot(arr, ("ext", x))
        return ("s", s)

    # ---- the hook ----------------------------------------------------------------------
    def record(self, ctx, inputs, outs, attrs=None) -> None:
        if threading.get_ident() != self.tid:
            return  # another thread's op: not part of this function
        if not isinstance(ctx, Node) or getattr(ctx, "_fn_cls", None) is not None:
            # A custom autograd.Function: the ops inside its forward (and, in the backward
            # trace, its backward) were recorded one by one; its outputs are their arrays.
            return
        ins = [self.ref(x) for x in inputs]
        multi = isinstance(outs, tuple)
        outs_t = outs if multi else (outs,)
        dev = outs_t[0]._device
        be = _backends.CPU_BACKEND if dev is CPU else _backends.backend_for_device(dev)
        kw = None
        if attrs:
            attrs = dict(attrs)
            for k, v in list(attrs.items()):
                if _is_array(v):
                    # (an index array the vjp of max_pool left on its forward's node, say)
                    kw = kw or {}
                    kw[k] = self.ref(v)[1]
                    del attrs[k]
                elif isinstance(v, (tuple, list, dict)) and _holds_array(v):
                    self.problem = f"an attribute of {ctx.name} holds arrays"
        slots = [self.new_slot(o._data) for o in outs_t]
        op = Op(type(ctx), be, attrs or None, ins, slots, [o._data.ndim == 0 for o in outs_t],
                multi)
        op.kw = kw
        # Arrays the forward leaves on its node (indices for the vjp) are results too.
        d = getattr(ctx, "__dict__", None)
        if d:
            for k, v in d.items():
                if _is_array(v) and id(v) not in self.slot_of:
                    op.ctx_outs = op.ctx_outs or []
                    op.ctx_outs.append((k, self.new_slot(v)))
        self.ops.append(op)


def _is_array(v) -> bool:
    return isinstance(v, np.ndarray) or hasattr(v, "__cuda_array_interface__")


def _holds_array(v) -> bool:
    items = v.values() if isinstance(v, dict) else v
    return any(_is_array(x) or (isinstance(x, (tuple, list)) and _holds_array(x))
               for x in items)


_new = object.__new__
BUSY = "another thread is tracing"  # (not the function's fault: the next call tries again)
_ACTIVE = threading.Lock()  # one trace at a time: the switches it sets are process-wide


_ALIASES = {"detach", "_alias"}  # make a tensor around an array that exists already


@contextlib.contextmanager
def _recording(tr: Trace):
    """Every op reports to ``tr`` meanwhile (yields False if another trace is running)."""
    from tapegrad.tensor import Tensor

    if not _ACTIVE.acquire(blocking=False):
        yield False
        return
    make = Tensor.__dict__["_make"]

    def traced_make(cls, arr, *a, **k):
        # Tensors made outside the ops: constants when tapegrad.creation makes them,
        # otherwise values computed from data that a replay could not recompute (ref()).
        t = make.__func__(cls, arr, *a, **k)
        if threading.get_ident() == tr.tid:
            f = sys._getframe(1)
            if f.f_code.co_name not in _ALIASES:
                tr.born.setdefault(id(t._data), f.f_globals.get("__name__") == _CREATION)
                tr.alive.append(t._data)  # (its id stays unique while the trace runs)
        return t

    prev = (_hs.FORWARD_AD, _hs.forward_ad_hook)
    try:
        _hs.TRACER = tr
        _hs.FORWARD_AD, _hs.forward_ad_hook = True, tr.record
        Tensor._make = classmethod(traced_make)
        yield True
    finally:
        Tensor._make = make
        _hs.FORWARD_AD, _hs.forward_ad_hook = prev
        _hs.TRACER = None
        _ACTIVE.release()


_CREATION = "tapegrad.creation"


def escape(what: str) -> None:
    """Called where a traced function reads data back into Python (see hooks_state)."""
    tr = _hs.TRACER
    if tr is not None and tr.escape is None and threading.get_ident() == tr.tid:
        tr.escape = what


def run_trace(fn, args, kwargs, flat):
    """Run ``fn(*args, **kwargs)`` eagerly, recording it (``flat``: the arguments, keyword
    ones last): ``(trace, result, reason)``, ``reason`` saying what a replay would not
    repeat (None if nothing)."""
    from tapegrad.creation import default_generator
    from tapegrad.tensor import Tensor

    tr = Trace()
    reason = None
    for i, a in enumerate(flat):
        if isinstance(a, Tensor):
            if id(a._data) in tr.slot_of:
                reason = "two arguments share one array"
            tr.new_slot(a._data, ("arg", i))
    gen = default_generator.rng.bit_generator
    tr.rng_before = gen.state
    inplace = _order.LAST_INPLACE[0]
    with _recording(tr) as ok:
        if not ok:
            return tr, fn(*args, **kwargs), BUSY
        result = fn(*args, **kwargs)
    tr.rng_after = gen.state
    if tr.escape is not None:
        reason = f"it reads a value into Python ({tr.escape})"
    elif tr.problem is not None:
        reason = tr.problem
    elif _order.LAST_INPLACE[0] != inplace:
        reason = "it changes a tensor in place"
    elif tr.rng_after != tr.rng_before and not _draws_replayed(tr):
        reason = ("it draws random numbers outside the ops that a replay repeats (a creation "
                  "function such as randn inside it)")
    return tr, result, reason


def _draws_replayed(tr) -> bool:
    """Whether the ops marked ``random`` made every draw of the trace: drawn again from the
    state before it, they must leave the generator where the trace left it."""
    from tapegrad.creation import default_generator

    gen = default_generator.rng.bit_generator
    gen.state = tr.rng_before
    try:
        for op in tr.ops:
            if op.cls is not None and op.cls.random:
                args = [tr.keep[v] if k == "s" else v for k, v in op.ins]
                op.cls.forward(_new(op.cls), op.be, *args, **(op.attrs or {}))
        return gen.state == tr.rng_after
    finally:
        gen.state = tr.rng_after


def trace_backward(tr: Trace, outs, wrt) -> tuple:
    """Record the backward of ``outs`` (those needing grad) with respect to ``wrt`` into
    ``tr``: returns ``(slots, grads, seeds)``, the slot of each gradient (None: no gradient
    reaches it), the traced gradients, and the seed tensors fed to the outputs."""
    from tapegrad.autograd import engine
    from tapegrad.tensor import Tensor

    _check_hooks(outs, wrt)
    seeds = []
    for k, o in enumerate(outs):
        s = Tensor._make(np.ones(o.shape, o._data.dtype) if o._device is CPU else
                         _backends.backend_for_device(o._device).xp.ones(o.shape, o._data.dtype),
                         False, None, 0, o._device)
        tr.new_slot(s._data, ("seed", k))
        seeds.append(s)
    tr.phase = "backward"
    inplace = _order.LAST_INPLACE[0]
    with _recording(tr) as ok:
        if not ok:
            raise Unreplayable(BUSY)
        grads = engine.grad(outs, wrt, seeds, retain_graph=True, create_graph=True,
                            allow_unused=True)
    if tr.escape is not None or tr.problem is not None:
        raise Unreplayable(f"{tr.escape or tr.problem} (in its backward)")
    if _order.LAST_INPLACE[0] != inplace:
        raise Unreplayable("its backward changes a tensor in place")
    return [None if g is None else tr.ref(g)[1] for g in grads], grads, seeds


def _check_hooks(outs, wrt) -> None:
    """Hooks on the graph between ``outs`` and ``wrt`` would run once, in the trace."""
    stop = {id(w.grad_fn) for w in wrt if w.grad_fn is not None}
    seen = set()
    todo = [o.grad_fn for o in outs if o.grad_fn is not None]
    while todo:
        n = todo.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if getattr(n, "_pre_hooks", None) or getattr(n, "_post_hooks", None):
            raise Unreplayable(f"a hook is registered on its graph ({n.name_backward()})")
        if id(n) in stop:
            continue
        for e in n.next:
            if e is not None:
                todo.append(e[0])
