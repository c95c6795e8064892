"""Forward-mode AD: tangents pushed through every op while the forward code runs.

Inside ``dual_level()``, a *dual tensor* carries a tangent (the direction ``v`` in which we
differentiate). Every op, as it runs, asks its own ``jvp`` rule for the tangent of its output
from the tangents of its inputs (:func:`_push_tangents`, installed as the hook that
``Node.apply`` calls). Nothing is recorded and nothing is replayed: this is true forward mode,
one pass, cost a small multiple of the forward pass, whatever the number of outputs.

>>> from tapegrad.autograd import forward_ad as fwAD
>>> x = tapegrad.tensor([1.0, 2.0])
>>> with fwAD.dual_level():
...     y = fwAD.make_dual(x, tapegrad.ones(2)).sin()
...     fwAD.unpack_dual(y).tangent          # cos(x), the derivative along v = 1
tensor([0.5403, -0.4161])

Tangents live in ``Tensor._fw``, a dict ``{level: tangent}``. Tangents are ordinary tensors,
so everything composes: a tangent may require grad (reverse over forward), the backward pass
of a dual tensor pushes tangents through the vjp ops (forward over reverse: Hessian-vector
products), and levels nest (forward over forward). While the tangent of level ``k`` is
computed, levels ``>= k`` are hidden, so the rule's own arithmetic only carries the tangents
of the outer levels: no perturbation confusion. When no level is open the hook is never
called (``hooks_state.FORWARD_AD`` is False): forward mode costs nothing then.
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

from tapegrad.autograd import hooks_state as _hs
from tapegrad.autograd.grad_mode import _DecoratorContextManager
from tapegrad.autograd.node import _T, Node, SavedOutput

__all__ = ["dual_level", "enter_dual_level", "exit_dual_level", "make_dual", "unpack_dual",
           "UnpackedDualTensor"]


class _State:
    levels = 0      # how many dual levels are open; the current level is levels - 1
    visible = 0     # levels >= visible are hidden (set while a tangent is being computed)
    tracked = []    # per level: weak references to the tensors holding a tangent there


_S = _State()


class UnpackedDualTensor(NamedTuple):
    """``(primal, tangent)`` as returned by :func:`unpack_dual`."""

    primal: object
    tangent: object


# ---- levels -------------------------------------------------------------------------------
def enter_dual_level() -> int:
    """Open a new forward-AD level and return its index (0 for the outermost).

    >>> lvl = enter_dual_level(); ...; exit_dual_level(level=lvl)
    """
    level = _S.levels
    _S.levels += 1
    _S.visible = _S.levels
    _S.tracked.append([])
    _hs.forward_ad_hook = _push_tangents
    _hs.FORWARD_AD = _hs.DUAL = True
    return level


def exit_dual_level(*, level: int | None = None) -> None:
    """Close the innermost level; every tangent of that level is dropped.

    >>> exit_dual_level()
    """
    current = _S.levels - 1
    if level is None:
        level = current
    if current < 0:
        raise RuntimeError("exit_dual_level: no forward AD level is open")
    if level != current:
        raise RuntimeError(f"exit_dual_level: trying to exit forward AD level {level}, which is "
                           f"not the last one that was created (level {current}). This is not "
                           "supported.")
    for ref in _S.tracked.pop():
        t = ref()
        if t is not None and t._fw:
            t._fw.pop(level, None)
    _S.levels = current
    _S.visible = current
    if current == 0:
        _hs.FORWARD_AD = _hs.DUAL = False


class dual_level(_DecoratorContextManager):
    """Context manager (or decorator) that opens a forward-AD level for its body.

    >>> with dual_level():
    ...     y = f(make_dual(x, v))
    ...     jvp = unpack_dual(y).tangent
    """

    def __enter__(self) -> int:
        self.level = enter_dual_level()
        return self.level

    def __exit__(self, *exc) -> bool:
        exit_dual_level(level=self.level)
        return False


def _level(level, op):
    if level is None:
        level = _S.levels - 1
    if level >= _S.levels:
        raise RuntimeError(f"{op}: forward AD level {level} is not open (open levels: "
                           f"{_S.levels})")
    return level


# ---- dual tensors -------------------------------------------------------------------------
class _Alias(Node):
    """The same values as a new tensor (a view): the carrier for a primal or a dual tensor.

    Its jvp is the identity, so tangents of the other (outer) levels pass through it."""

    name = "alias"
    is_view = True

    @staticmethod
    def forward(ctx, be, x):
        return x.view()

    def vjp(self, g):
        return (g,)

    def jvp(self, inputs, out, t):
        return t


def make_dual(tensor, tangent, *, level: int | None = None):
    """A view of ``tensor`` that carries ``tangent`` at the current (or given) level.

    Differentiable in reverse mode (gradients flow back to ``tensor``); the tangent must have
    the primal's shape and a floating dtype (it is cast to the primal's dtype).

    >>> with dual_level():
    ...     d = make_dual(tapegrad.tensor([3.0]), tapegrad.tensor([1.0]))
    ...     unpack_dual(d * d).tangent
    tensor([6.])
    """
    from tapegrad.tensor import Tensor

    if _S.levels == 0 and level is None:
        raise RuntimeError("make_dual: trying to create a dual Tensor for forward AD but no "
                           "level exists, make sure to enter_dual_level() (or use "
                           "`with forward_ad.dual_level():`) first.")
    level = _level(level, "make_dual")
    if not isinstance(tensor, Tensor) or not isinstance(tangent, Tensor):
        raise TypeError(f"make_dual: expected primal and tangent to be Tensors, got "
                        f"{type(tensor).__name__} and {type(tangent).__name__}")
    if not tensor.dtype.is_floating_point:
        raise ValueError(f"make_dual: expected primal to be floating point, but got: "
                         f"{tensor.dtype} (shape {tuple(tensor.shape)})")
    if not tangent.dtype.is_floating_point:
        raise ValueError(f"make_dual: expected tangent to be floating point, but got: "
                         f"{tangent.dtype} (shape {tuple(tangent.shape)})")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise RuntimeError(f"make_dual: trying to set a forward gradient that has a different "
                           f"size than that of the original Tensor, this is not supported. "
                           f"Tensor is of size {list(tensor.shape)} while the given forward "
                           f"gradient is of size {list(tangent.shape)}.")
    if tangent.device != tensor.device:
        raise RuntimeError(f"make_dual: the tangent is on {tangent.device} but the primal is on "
                           f"{tensor.device}; both must be on the same device")
    if tensor._fw and level in tensor._fw:
        raise RuntimeError(f"make_dual: making a dual Tensor based on a Tensor that already has "
                           f"a forward gradient at the same level {level} is not supported.")
    if tangent.dtype is not tensor.dtype:
        tangent = tangent.to(tensor.dtype)
    out = _Alias.apply(tensor)
    _attach(out, level, tangent)
    return out


def unpack_dual(tensor, *, level: int | None = None) -> UnpackedDualTensor:
    """``(primal, tangent)`` of a dual tensor at the current (or given) level.

    ``primal`` is a view of ``tensor`` without that level's tangent; ``tangent`` is None when
    the tensor has none (zero), or when no level is open.

    >>> with dual_level():
    ...     y = make_dual(x, v).exp()
    ...     value, jvp = unpack_dual(y)
    """
    if level is None and _S.levels == 0:
        return UnpackedDualTensor(tensor, None)
    level = _level(level, "unpack_dual")
    fw = tensor._fw
    if not fw or level not in fw:
        return UnpackedDualTensor(tensor, None)
    primal = _Alias.apply(tensor)
    if primal._fw:
        primal._fw.pop(level, None)
    return UnpackedDualTensor(primal, fw[level])


# ---- the hook every op calls while a level is open ------------------------------------------
def _attach(out, level, tangent):
    fw = out._fw
    if fw is None:
        fw = out._fw = {}
    fw[level] = tangent
    _S.tracked[level].append(weakref.ref(out))


def copy_tangents(fw, dst) -> None:
    """Give tensor ``dst`` the tangents in ``fw`` (a ``Tensor._fw`` dict), dropped at exit."""
    for level, t in fw.items():
        if level < _S.levels:
            _attach(dst, level, t)


def _link_saved(ctx, outs):
    # A node keeps its own output as a SavedOutput (no reference to the tensor), and rebuilds
    # it for the vjp; the rebuilt tensor must carry the same tangents, or the backward pass of
    # a dual tensor (forward over reverse) would lose them.
    saved = getattr(ctx, "_saved", None)
    if not saved:
        return
    for s in saved:
        if type(s) is SavedOutput and s.fw is None:
            o = outs[s.nr]
            if o._fw is None:
                o._fw = {}
            s.fw = o._fw


def _push_tangents(ctx, inputs, outs, attrs=None):
    """Give ``outs`` the tangents ``ctx.jvp`` computes from those of ``inputs``."""
    Tensor = _T[0]
    visible = _S.visible
    levels = None
    for x in inputs:
        if isinstance(x, Tensor) and x._fw:
            for lv in x._fw:
                if lv < visible:
                    if levels is None:
                        levels = {lv}
                    else:
                        levels.add(lv)
    if levels is None or not ctx.differentiable:
        return
    multi = isinstance(outs, tuple)
    out_list = outs if multi else (outs,)
    _link_saved(ctx, out_list)
    # Outer levels first: the tangent of an inner level is computed from the output, whose
    # outer-level tangents must already be in place (forward over forward).
    for lv in sorted(levels):
        tangents = [x._fw.get(lv) if isinstance(x, Tensor) and x._fw else None for x in inputs]
        _S.visible = lv
        try:
            if all(t is None for t in tangents):
                res = None
            else:
                res = ctx.jvp(inputs, outs, *tangents)
            if res is None:
                res = (None,) * len(out_list)
            elif not multi:
                res = (res,)
            for o, t in zip(out_list, res):
                if not isinstance(o, Tensor) or not o._dtype.is_floating_point:
                    continue
                if t is None:
                    if o._fw:
                        o._fw.pop(lv, None)  # a custom Function's forward may have left one
                    continue
                t = _fit(t, o, ctx)
                _attach(o, lv, t)
        finally:
            _S.visible = visible


def _fit(t, o, ctx):
    """The tangent ``t`` as a tensor of the output's shape and dtype."""
    from tapegrad.tensor import Tensor

    if not isinstance(t, Tensor):
        from tapegrad.creation import full

        return full(tuple(o.shape), float(t), dtype=o.dtype, device=o.device)
    if t._data.shape != o._data.shape:
        from tapegrad.ops.shape import broadcast_to

        try:
            t = broadcast_to(t, tuple(o.shape))
        except RuntimeError:
            raise RuntimeError(f"{ctx.name}: the jvp rule returned a tangent of shape "
                               f"{tuple(t.shape)} for an output of shape "
                               f"{tuple(o.shape)}") from None
    if t._dtype is not o._dtype:
        t = t.to(o._dtype)
    return t
