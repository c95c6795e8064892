"""``tapegrad.compile``: trace a function once, then replay it without the per-op bookkeeping.

An eager tape pays Python for every op: checks, a tensor, a node, saved-tensor versions,
then the engine's walk in backward. On a loop of small ops (an RNN written with tensor ops)
that costs more than the arithmetic. ``tapegrad.compile(fn)`` runs ``fn`` eagerly the first
time it sees a new *guard* (the shapes, dtypes, devices and requires_grad of the tensor
arguments, the other arguments' values, grad mode, the backend and, for a module, its
train / eval flags), recording every primitive op, forward and backward (``trace.py``),
and checks the recording (``check.py``). Later calls with the same guard run the recorded
ops as two straight-line Python functions over arrays (``program.py``, rewritten by
``passes.py``), and put ONE node on the tape for the whole call.

Like ``torch.compile``, a function is compiled whole or not at all: when a trace shows
something a replay would not repeat (a value read into Python with ``item()`` /
``bool()``, an in-place change, random numbers, hooks on its graph), that guard runs
eagerly from then on, with one warning saying why (``fullgraph=True`` raises instead).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from tapegrad import _dtype
from tapegrad import backends as _backends
from tapegrad._device import CPU
from tapegrad.autograd import hooks_state as _hs
from tapegrad.autograd.grad_mode import STATE as _GRAD
from tapegrad.autograd.node import SavedOutput, _edge, number
from tapegrad.compiler.check import check_trace
from tapegrad.compiler.program import CompiledFunctionBackward, Program
from tapegrad.compiler.trace import BUSY, Unreplayable, run_trace, trace_backward

__all__ = ["compile", "CompiledFunction", "OptimizedModule", "Unreplayable"]

CACHE_SIZE_LIMIT = 8  # guards kept per function (torch._dynamo.config.cache_size_limit)
_new = object.__new__


def compile(model=None, *, fullgraph: bool = False, dynamic=None, backend="replay",  # noqa: A001
            mode=None, options=None, disable: bool = False):
    """Compile a function or module: trace once per guard, replay afterwards.

    Takes ``torch.compile``'s arguments; ``dynamic``, ``backend``, ``mode`` and ``options``
    are accepted and ignored (there is one backend: replay). Usable as a decorator, with or
    without arguments.

    >>> @tapegrad.compile
    ... def loss_fn(x):
    ...     return (x @ w).tanh().sum()
    """
    if model is None:
        return lambda m: compile(m, fullgraph=fullgraph, disable=disable)
    if disable:
        return model
    from tapegrad.nn.module import Module

    if isinstance(model, Module):
        return __getattr__("OptimizedModule")(model, fullgraph)
    if not callable(model):
        raise TypeError(f"compile: expected a function or an nn.Module, got "
                        f"{type(model).__name__}")
    return CompiledFunction(model, fullgraph)


class _Entry:
    """What one guard compiled to (or why it runs eagerly: ``reason``)."""

    __slots__ = ("reason", "prog", "src", "ext", "wrt", "kind", "req", "meta",
                 "devices", "out_devs", "versions", "out_saved")


def _eager(reason: str) -> _Entry:
    e = _new(_Entry)
    e.reason = reason
    return e


class CompiledFunction:
    """A function under ``tapegrad.compile`` (see the module docstring)."""

    def __init__(self, fn, fullgraph: bool = False, module=None):
        self._fn = fn
        self._fullgraph = fullgraph
        self._module = module
        self._cache: dict = {}
        self._warned: set = set()
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        fn = self._fn
        if _hs.TRACER is not None or _hs.FORWARD_AD or _hs.ANOMALY:
            # Inside another trace (it records these ops), under forward AD or anomaly
            # detection (they need every op): eager.
            return fn(*args, **kwargs)
        flat = args + tuple(kwargs[k] for k in sorted(kwargs)) if kwargs else args
        key = self._key(flat, kwargs)
        if key is None:
            return self._eager_call(None, "an argument is neither a tensor nor hashable",
                                    args, kwargs)
        e = self._cache.get(key)
        if e is not None:
            if e.reason is not None:
                return fn(*args, **kwargs)
            for t, shape, dtype, dev, rg in e.ext:
                if t._data.shape != shape or t._dtype is not dtype or t._device != dev or \
                        t._requires_grad != rg:
                    break  # a closed-over tensor changed: trace again
            else:
                return _replay(e, flat)
        elif len(self._cache) >= CACHE_SIZE_LIMIT:
            return self._eager_call(key, f"more than {CACHE_SIZE_LIMIT} guards (shapes, "
                                    "dtypes, argument values) were seen", args, kwargs)
        return self._trace(key, flat, args, kwargs)

    def _key(self, flat, kwargs):
        from tapegrad.tensor import Tensor

        key = [_GRAD.grad_enabled, id(_backends.CPU_BACKEND), _dtype.get_default_dtype(),
               tuple(sorted(kwargs))]
        for a in flat:
            if isinstance(a, Tensor):
                d = a._data
                key.append((d.shape, d.strides, a._dtype, a._device, a._requires_grad))
            else:
                try:
                    hash(a)
                except TypeError:
                    return None
                key.append((type(a), a))
        if self._module is not None:
            key.append(tuple(m.training for m in self._module.modules()))
        return tuple(key)

    def _eager_call(self, key, reason, args, kwargs):
        self._give_up(key, reason)
        return self._fn(*args, **kwargs)

    def _give_up(self, key, reason) -> None:
        name = getattr(self._fn, "__qualname__", None) or type(self._fn).__name__
        msg = f"tapegrad.compile: {name} runs eagerly for these arguments: {reason}"
        if self._fullgraph:
            raise RuntimeError(msg + " (fullgraph=True)")
        if (key, reason) not in self._warned:  # once per guard (per reason without one)
            self._warned.add((key, reason))
            warnings.warn(msg, stacklevel=4)
        if key is not None and len(self._cache) < CACHE_SIZE_LIMIT:
            self._cache[key] = _eager(reason)

    def _trace(self, key, flat, args, kwargs):
        tr, result, reason = run_trace(self._fn, args, kwargs, flat)
        if reason is None:
            try:
                self._cache[key] = _build(tr, result, self._fn, args, kwargs, flat)
                return result
            except Unreplayable as exc:
                reason = str(exc)
        if reason != BUSY:
            self._give_up(key, reason)
        return result


def _outputs(result):
    """``(tensors, structure)``: the tensors of a result that is a tensor or (nested)
    tuples / lists of them, and how to rebuild it (``_rebuild``)."""
    from tapegrad.tensor import Tensor

    flat = []

    def walk(r):
        if isinstance(r, Tensor):
            flat.append(r)
            return None
        if isinstance(r, (tuple, list)) and r:
            return (type(r), [walk(x) for x in r])
        raise Unreplayable(f"it returns {type(r).__name__} (a replay returns tensors, in "
                           "tuples or lists)")

    return flat, walk(result)


def _rebuild(structure, it):
    if structure is None:
        return next(it)
    kind, parts = structure
    return kind(_rebuild(p, it) for p in parts)


def _build(tr, result, fn, args, kwargs, flat) -> _Entry:
    """Turn the trace of one eager call into an entry, checked by replaying it."""
    from tapegrad.tensor import Tensor

    outs, kind = _outputs(result)
    out_slots = []
    for o in outs:
        s = tr.slot_of.get(id(o._data))
        if s is None or tr.sources[s] is not None:
            raise Unreplayable("it returns a tensor that no traced op computed")
        out_slots.append(s)
    n_forward = len(tr.ops)
    req = [o._requires_grad for o in outs]
    src_tensor = {s: (flat[src[1]] if src[0] == "arg" else src[1])
                  for s, src in enumerate(tr.sources) if src is not None}
    wrt, grad_slots, seed_slots, traced = [], None, [], None
    if _GRAD.grad_enabled and any(req):
        for s, t in src_tensor.items():
            if isinstance(t, Tensor) and t._requires_grad:
                wrt.append((s, t))
        grad_slots, traced, seeds = trace_backward(
            tr, [o for o, r in zip(outs, req) if r], [t for _, t in wrt])
        used = [k for k, g in enumerate(grad_slots) if g is not None]
        wrt, grad_slots = [wrt[k] for k in used], [grad_slots[k] for k in used]
        traced = [traced[k] for k in used]
        seed_slots = [tr.slot_of[id(s._data)] for s in seeds]
    prog = Program(tr, n_forward, out_slots, grad_slots, seed_slots)
    e = _new(_Entry)
    e.reason = None
    e.prog = prog
    # Where each forward parameter comes from: ("arg", index) or a tensor / array to read.
    e.src = [(True, src[1]) if src[0] == "arg" else (False, src[1]) for _, src in prog.sources]
    e.ext = [(t, t._data.shape, t._dtype, t._device, t._requires_grad)
             for _, src in prog.sources if src[0] == "ext"
             for t in (src[1],) if isinstance(t, Tensor)]
    e.wrt = [(True, src[1]) if src[0] == "arg" else (False, src[1])
             for s, _ in wrt for src in (tr.sources[s],)]
    e.kind, e.req = kind, req
    e.out_devs = [o._device for o in outs]
    e.meta = [(tuple(o.shape), o._data.dtype, _xp(o._device)) for o, r in zip(outs, req) if r]
    e.devices = [t._device for _, t in wrt]
    e.versions = [k for k, (s, _) in enumerate(prog.sources) if s in prog.checked]
    e.out_saved = [k for k, s in enumerate(out_slots) if s in set(prog.saved)]
    check_trace(e, tr, fn, args, kwargs, flat, outs, traced)
    return e


def _xp(dev):
    return np if dev is CPU else _backends.backend_for_device(dev).xp


def _replay(e: _Entry, flat):
    """One call of a compiled guard: the forward function, and one node on the tape."""
    from tapegrad.tensor import Tensor

    srcs = []
    for is_arg, v in e.src:
        srcs.append(flat[v]._data if is_arg else v._data if isinstance(v, Tensor) else v)
    outs, saved = e.prog.forward(*srcs)
    make = Tensor._make
    node = None
    if e.meta and _GRAD.grad_enabled:
        node = _new(CompiledFunctionBackward)
        node.prog = e.prog
        node.vals = saved
        node.out_meta = e.meta
        node.devices = e.devices
        edges = []
        for is_arg, v in e.wrt:
            edges.append(_edge(flat[v] if is_arg else v))
        node.next = edges = tuple(edges)
        number(node, edges)
        node._nout = len(e.meta)
        node._freed = False
        node._pre_hooks = node._post_hooks = None
    res = []
    k = 0
    for o, r, dev in zip(outs, e.req, e.out_devs):
        if r and node is not None:
            res.append(make(o, True, node, k, dev))
            k += 1
        else:
            res.append(make(o, False, None, 0, dev))
    if node is not None:
        _save(node, e, flat, res)
    return _rebuild(e.kind, iter(res))


def _save(node, e, flat, res) -> None:
    """The node's saved entries: the inputs and outputs its backward reads, at their versions
    now (``Node.saved`` checks them as for any op)."""
    saved = [SavedOutput(res[k]._data, res[k]._vc, res[k]._out_nr, res[k]._device)
             for k in e.out_saved]
    for k in e.versions:
        is_arg, v = e.src[k]
        t = flat[v] if is_arg else v
        if getattr(t, "_vc", None) is not None:
            saved.append(t)
    node._saved = saved
    node._versions = tuple(0 if x.__class__ is SavedOutput else x._vc[0] for x in saved)


def _module_class():
    from tapegrad.nn.module import Module

    class OptimizedModule(Module):
        """An ``nn.Module`` under ``tapegrad.compile`` (PyTorch's class of the same name): a
        call goes through the compiled function; parameters, ``train()``, ``state_dict()``
        (keys under ``_orig_mod.``, as in PyTorch) are the module's own."""

        def __init__(self, mod, fullgraph: bool = False):
            super().__init__()
            self._orig_mod = mod
            self._compiled = CompiledFunction(mod.__call__, fullgraph, mod)

        def forward(self, *args, **kwargs):
            return self._compiled(*args, **kwargs)

        def __getattr__(self, name: str):
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self.__dict__["_modules"]["_orig_mod"], name)

    return OptimizedModule


def __getattr__(name: str):
    # (built on first use: nn imports the package that imports this one)
    if name == "OptimizedModule":
        cls = globals()["OptimizedModule"] = _module_class()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
