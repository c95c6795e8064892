"""In-place ops on views of tensors that require grad (PyTorch's CopySlices).

``m = x * 2; m[0].mul_(w)`` writes into ``m``'s memory through the view ``m[0]``. The base
``m`` takes a new grad_fn, :class:`CopySlices`, with two inputs: ``m``'s old history and the
out-of-place result ``r = m[0] * w``. Its vjp sends the gradient of the viewed region to
``r`` (and from there through the in-place op's own vjp) and the rest of the gradient straight
to ``m``'s old history. The view is rebuilt from the base by replaying its recipe
(``Tensor._view_chain``, see :mod:`tapegrad.autograd.view_meta`).

Afterwards every live view of ``m`` (``m[0]`` itself included) gets a new grad_fn,
:class:`ViewOf` ("view of the new base", PyTorch's ``AsStridedBackward``), so that using any of
them later differentiates through the new history; a view PyTorch forbids to rebase (made in
no-grad mode, or one of several views returned together) gets one that raises at backward.
``retain_grad`` follows a tensor to its new grad_fn; hooks stay where they were registered
(they see the gradient of the version they were registered on), as in PyTorch.
"""

from __future__ import annotations

import weakref

from tapegrad._device import CPU
from tapegrad.autograd import hooks_state as _hs
from tapegrad.autograd.node import (Node, SavedOutput, _edge, bump_inplace, number,
                                    set_saved_version, take_number)
from tapegrad.autograd.view_meta import MULTI_OUTPUT, NO_GRAD, markers, views_of

__all__ = ["CopySlices", "ViewOf", "commit_view", "rebase_views", "move_retain", "standin",
           "check_view", "check_overlap", "tangent_follows_base", "replay"]

_new = object.__new__


# ---- replaying a view's recipe ---------------------------------------------------------------
def replay(t, chain, *, exact: bool = True):
    """``chain`` applied to tensor ``t`` with tapegrad's own (differentiable) view ops.

    ``exact=False`` replays ``view`` steps as ``reshape``: a gradient may have other strides
    than the base had, and only its values matter.
    """
    for step in chain:
        if type(step) is str:
            continue
        cls, attrs = step
        if not exact and attrs.get("op") == "view":
            attrs = dict(attrs, op="reshape")
        t = cls.apply(t, **attrs)
    return t


def _backend(dev):
    from tapegrad import backends

    return backends.CPU_BACKEND if dev is CPU else backends.backend_for_device(dev)


def _step_nodes(chain, base_shape, be):
    # Each step's forward run on a stand-in array fills in what its vjp needs (input shape,
    # index...). The stand-in is C-contiguous, so `view` steps run as `reshape`.
    arr = be.xp.empty(base_shape, dtype=bool)
    nodes = []
    for step in chain:
        if type(step) is str:
            continue
        cls, attrs = step
        if attrs.get("op") == "view":
            attrs = dict(attrs, op="reshape")
        n = _new(cls)
        arr = cls.forward(n, be, arr, **attrs)
        nodes.append(n)
    return nodes


def _embed(node, g):
    """Zeros of the base's shape holding ``g`` where the view lies (differentiable)."""
    nodes = node.__dict__.get("_steps")
    if nodes is None:
        nodes = node._steps = _step_nodes(node.chain, node.base_shape, _backend(g._device))
    for n in reversed(nodes):
        (g,) = n.vjp(g)
    return g


def _outside(node, like):
    """Bool array, True outside the viewed region (a constant: no gradient flows to it)."""
    be = _backend(like._device)
    mask = be.xp.ones(node.base_shape, dtype=bool)
    region = mask
    for step in node.chain:  # the fast way: the region itself, as a view of the mask
        if type(step) is str:
            continue
        cls, attrs = step
        if cls.name == "reshape":
            if not region.flags.c_contiguous:
                break  # reshaping might copy: take the general way below
            attrs = dict(attrs, op="reshape")
        region = cls.forward(_new(cls), be, region, **attrs)
    else:
        region[...] = False
        return mask
    from tapegrad.autograd.grad_mode import no_grad
    from tapegrad.creation import ones

    with no_grad():
        inside = _embed(node, ones(node.view_shape, dtype=like.dtype, device=like.device))
    return inside._data == 0


def _where_outside(node, a, b):
    from tapegrad.ops.select import Where

    dt = a.dtype if hasattr(a, "_data") else b.dtype
    return Where.apply(_outside(node, a if hasattr(a, "_data") else b), a, b, dt=dt)


# ---- the nodes -------------------------------------------------------------------------------
class CopySlices(Node):
    """The new history of a base written through one of its views.

    Inputs: the base before the write and the value written into the view region.
    """

    name = "copy_slices"

    def name_backward(self) -> str:
        return "CopySlices"

    @staticmethod
    def forward(ctx, be, base, src, chain, dst):
        # dst is the view's own array: the base's memory, so writing it is the in-place op.
        ctx.chain = chain
        ctx.base_shape = base.shape
        ctx.view_shape = dst.shape
        dst[...] = src
        return base

    def vjp(self, g):
        nb, ns = self.next
        gb = _where_outside(self, g, 0.0) if nb else None
        gs = replay(g, self.chain, exact=False) if ns else None
        return gb, gs

    def jvp(self, inputs, out, tb, ts):
        inside = 0.0 if ts is None else _embed(self, ts)
        return _where_outside(self, 0.0 if tb is None else tb, inside)


class ViewOf(Node):
    """A view's grad_fn rebuilt on its base's current history (PyTorch's AsStridedBackward):
    the view's gradient, put in place in zeros of the base's shape."""

    name = "as_strided"

    def vjp(self, g):
        return (_embed(self, g),)


def view_of(base, chain):
    """A :class:`ViewOf` node from ``base``'s current place on the tape."""
    n = _new(ViewOf)
    n.next = (_edge(base),)
    number(n, n.next)
    n._saved = n._versions = ()
    n._freed = False
    n._pre_hooks = n._post_hooks = None
    n._nout = 1
    n.chain = chain
    n.base_shape = tuple(base._data.shape)
    return n


class InvalidView(Node):
    """The grad_fn of a view PyTorch refuses to rebase: backward through it raises (before
    any gradient is written: the engine checks ``saved`` of every node first)."""

    name = "invalid_view"

    @property
    def saved(self):
        raise RuntimeError(self.message)

    def vjp(self, *grads):
        raise RuntimeError(self.message)


def _invalid(message):
    n = _new(InvalidView)
    n.next = ()
    n._seq = take_number()
    n._min = -1  # backward always runs its pre-check over a graph holding one
    n._saved = n._versions = ()
    n._freed = True  # makes the engine's pre-check read `saved`, which raises
    n._pre_hooks = n._post_hooks = None
    n._nout = 1
    n.message = message
    return n


# ---- checks ----------------------------------------------------------------------------------
def _marker_message(chain, indirect):
    ms = markers(chain)
    m = ms[-1]
    what = "its base or another view of its base has been" if indirect else "is being"
    if m == NO_GRAD:
        return (f"A view was created in no_grad mode and {what} modified inplace with grad "
                "mode enabled. Given that this use case is ambiguous and error-prone, it is "
                "forbidden. You can clarify your code by moving both the view and the inplace "
                "either both inside the no_grad block (if you don't want the inplace to be "
                "tracked) or both outside (if you want the inplace to be tracked).")
    name, k = m[len(MULTI_OUTPUT):].split(":")
    return (f"Output {k} of {name.capitalize()} is a view and {what} modified inplace. This "
            "view is the output of a function that returns multiple views. Such functions do "
            "not allow the output views to be modified inplace. You should replace the inplace "
            "operation by an out-of-place one.")


def check_view(x, op: str) -> None:
    """Raise, as PyTorch does, if the view ``x`` may not be written while recording."""
    chain = getattr(x, "_view_chain", None)
    base = x._base
    if chain is None:
        raise RuntimeError(f"{op}: in-place modification of a view (shape {tuple(x.shape)}) of "
                           f"a tensor (shape {tuple(base.shape)}) that tapegrad cannot rebuild "
                           "from its base; use an out-of-place operation")
    if markers(chain):
        raise RuntimeError(f"{op}: " + _marker_message(chain, False))
    if base._requires_grad and base.grad_fn is None:
        raise RuntimeError(f"{op}: a view of a leaf Variable that requires grad (shape "
                           f"{tuple(base.shape)}) is being used in an in-place operation.")
    check_overlap(x, op)
    if not getattr(x._data.flags, "writeable", True):
        raise RuntimeError(f"{op}: cannot write into the read-only view of shape "
                           f"{tuple(x.shape)} (an expanded tensor); clone() it first")


def check_overlap(x, op: str) -> None:
    """Raise PyTorch's error for a write into an expanded view (elements sharing memory)."""
    a = x._data
    if any(s == 0 and n > 1 for s, n in zip(a.strides, a.shape)):
        raise RuntimeError(f"{op}: unsupported operation: more than one element of the "
                           f"written-to tensor (shape {tuple(x.shape)}, an expanded view) "
                           "refers to a single memory location. Please clone() the tensor "
                           "before performing the operation.")


def tangent_follows_base(x) -> bool:
    """Forward AD without grad: True when a write into the view ``x`` changes its base's
    tangent (then it goes through :func:`commit_view` too)."""
    chain = getattr(x, "_view_chain", None)
    a = x._data
    if chain is None or markers(chain) or not getattr(a.flags, "writeable", True) or \
            any(s == 0 and n > 1 for s, n in zip(a.strides, a.shape)):
        return False
    return not _through_dual(chain)


def _through_dual(chain) -> bool:
    # A dual tensor (make_dual) is a view of its primal for backward but its own base for
    # tangents, as in PyTorch. Views through one keep the simple rule: a write changes the
    # tangent of the view alone (its dual base's tangent is not updated: a known limit).
    return any(type(step) is tuple and step[0].name == "alias" for step in chain)


# ---- committing a write through a view ------------------------------------------------------
def standin(x):
    """What an in-place op on ``x`` computes from: ``x``'s memory, at ``x``'s place on the
    tape, with a version counter of its own (the commit bumps x's). For a view that requires
    grad, the place is a fresh view of the base's history, so hooks registered on the view's
    old grad_fn see only the gradients of the view's earlier uses, as in PyTorch."""
    base = x._base
    if base is not None and x._requires_grad and base.grad_fn is not None:
        chain = getattr(x, "_view_chain", None)
        if chain is not None and not markers(chain):
            xa = x._make(x._data, True, view_of(base, chain), 0, x._device)
            xa._fw = x._fw
            return xa
    xa = x._make(x._data, x._requires_grad, x.grad_fn, x._out_nr, x._device)
    xa._fw = x._fw  # forward AD: the stand-in carries x's tangents into the op
    return xa


def commit_view(x, r, op: str, where: str):
    """Write ``r`` into the view ``x`` and give its base the history of that write (when
    nothing requires grad, forward AD still needs the base's new tangent)."""
    if r.grad_fn is not None:
        check_view(x, op)
    base = x._base
    if r._dtype is not x._dtype:
        r = r.to(x._dtype)
        rewrite = False  # the cast's input, not x's memory, is what r's node saved
    else:
        rewrite = True
    out = CopySlices.apply(base, r, chain=x._view_chain, dst=x._data)
    vc = x._vc
    bump_inplace(vc)
    vc[1] = where
    node = r.grad_fn
    if rewrite and node is not None:
        _rewrite_saved_output(node, r, x)
    old_fn, old_nr = base.grad_fn, base._out_nr
    if out.grad_fn is not None:
        base.grad_fn = out.grad_fn
        base._out_nr = 0
        base._requires_grad = True
        move_retain(base, old_fn, old_nr)
    if _through_dual(x._view_chain):
        if x._fw or r._fw:
            x._fw = r._fw
    elif out._fw:
        from tapegrad.autograd.forward_ad import copy_tangents

        base._fw = None
        copy_tangents(out._fw, base)
    rebase_views(base)
    return x


def _rewrite_saved_output(node, r, x):
    # A node that saved its output r now finds it in x's memory, checked against x's
    # version counter: a later in-place change of x is caught at backward.
    saved = node._saved
    for i, s in enumerate(saved):
        if type(s) is SavedOutput and s.nr == r._out_nr:
            saved[i] = SavedOutput(x._data, x._vc, s.nr, x._device, s.fw)
            set_saved_version(node, i, x._vc[0])


def move_retain(t, old_fn, old_nr) -> None:
    """``retain_grad`` follows ``t`` to its new grad_fn (PyTorch moves it on in-place)."""
    if not t._retains_grad:
        return
    ref = None
    if old_fn is not None and old_fn._pre_hooks:
        ref = old_fn._pre_hooks.pop(("retain", old_nr), None)
    node = t.grad_fn
    if node._pre_hooks is None:
        node._pre_hooks = {}
    node._pre_hooks[("retain", t._out_nr)] = ref if ref is not None else weakref.ref(t)


def rebase_views(base) -> None:
    """Give every live view of ``base`` a grad_fn on ``base``'s current history (and, under
    forward AD, the matching part of the base's tangent)."""
    views = views_of(base)
    if not views:
        return
    fw = base._fw if _hs.FORWARD_AD else None
    rg = base._requires_grad
    for v in views:
        old_fn, old_nr = v.grad_fn, v._out_nr
        chain = v._view_chain
        if fw and not markers(chain) and not _through_dual(chain):
            _view_tangents(v, fw, chain)
        if not rg:
            continue
        if markers(chain):
            if type(old_fn) is InvalidView:
                continue
            v.grad_fn = _invalid("backward: " + _marker_message(chain, True))
        else:
            v.grad_fn = view_of(base, chain)
        v._out_nr = 0
        v._requires_grad = True
        move_retain(v, old_fn, old_nr)


def _view_tangents(v, fw, chain):
    from tapegrad.autograd.forward_ad import copy_tangents

    v._fw = None
    copy_tangents({lv: replay(t, chain, exact=False) for lv, t in fw.items()}, v)
