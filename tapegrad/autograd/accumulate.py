"""Who owns a gradient: summing in place, and accumulating into a leaf's ``.grad``.

The engine may write into a gradient's memory, or keep it as a leaf's ``.grad`` without a
copy, only when nothing else can see that memory; the rule (``_sole_array``) counts
references, as PyTorch's InputBuffer and AccumulateGrad do.
"""

from __future__ import annotations

import sys
import threading

from numpy import generic as _np_generic

from tapegrad.autograd.node import bump_inplace

__all__ = ["accumulate", "sum_in_place"]


def sum_in_place(old, g) -> bool:
    """``old += g`` when nothing but the engine can see ``old`` (PyTorch's InputBuffer does
    the same): a shared weight used at every step of an RNN collects one gradient per step,
    and an op per step would cost more than the addition itself. Returns False (and does
    nothing) when ``old`` may be seen elsewhere or the addition would change its shape or
    dtype."""
    a = old._data
    b = g._data
    # References to ``old``: the buffer (or, for a fresh vjp result, the vjp's output
    # tuple), the walk's local, this argument, getrefcount's.
    if sys.getrefcount(old) > 4 or a.shape != b.shape or a.dtype != b.dtype or \
            type(a) is not type(b) or not _sole_array(a):
        return False
    a += b
    return True


# Backward passes in several threads may meet at one leaf (shared weights): NumPy releases
# the GIL inside a large `+=`, so unguarded accumulation loses updates (PyTorch holds a mutex
# in AccumulateGrad for the same reason).
_ACC_LOCK = threading.Lock()


def accumulate(var, g, create_graph) -> None:
    """Add ``g`` into ``var.grad`` (PyTorch's AccumulateGrad, leaf hooks first)."""
    if g is None:
        return
    if var._hooks:
        for hook in tuple(var._hooks.values()):
            r = hook(g)
            if r is not None:
                g = r
    if g._data.shape != var._data.shape:
        raise RuntimeError(f"backward: function returned a gradient of shape {tuple(g.shape)} "
                           f"for a leaf of shape {tuple(var.shape)}")
    if g._dtype is not var._dtype:
        g = g.to(var._dtype)
    with _ACC_LOCK:
        old = var.grad
        if old is None:
            if create_graph:
                var.grad = g
            elif _exclusive(g):
                var.grad = g.detach()
            else:
                var.grad = g.detach().clone()
        elif create_graph or old.requires_grad:
            var.grad = old + g
        else:
            old._data += g._data
            bump_inplace(old._vc)
    post = getattr(var, "_post_acc_hooks", None)
    if post:
        for hook in tuple(post.values()):
            hook(var)


def _exclusive(g) -> bool:
    # A gradient may be stored as .grad without a copy only if nothing else can see its
    # memory (_sole_array) and the tensor object is held only by the engine's locals (a vjp
    # may hand one tensor to two inputs). References to the tensor: the walk's local,
    # accumulate's and this function's arguments, getrefcount's.
    a = g._data
    return sys.getrefcount(g) <= 4 and _sole_array(a)


def _sole_array(a) -> bool:
    """Whether nothing but one tensor can see the memory of its array ``a`` (the caller holds
    ``a`` in a local): so the engine may write into it or hand it on without a copy."""
    # References to ``a``: the tensor's, the caller's local, this argument, getrefcount's.
    if sys.getrefcount(a) > 4 or isinstance(a, _np_generic):
        return False  # (``+=`` on a NumPy scalar rebinds instead of writing)
    b = a.base
    if b is None:
        return True
    # A fresh result reshaped (a kernel's rows x features put back into the input's shape,
    # say) is a view of an array nothing else holds: it counts if it is all of that array,
    # in order. References to the base: the view's, the local ``b``, getrefcount's.
    return type(b) is type(a) and b.base is None and sys.getrefcount(b) <= 3 and \
        a.size == b.size and a.flags.c_contiguous
