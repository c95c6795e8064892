"""In-place ops: compute out of place, then commit into the tensor's own memory.

Committing bumps the version counter (shared with every view), so a node that saved the old
value notices at backward time, and records where the change happened so the error can name
that line. The tensor then takes the result's place on the tape. In-place on a leaf that
requires grad, or on a view of one, raises, as in PyTorch. Writing through a view of a tensor
that requires grad rewrites the base's history (:mod:`tapegrad.autograd.copy_slices`).
"""

from __future__ import annotations

import os
import sys

import numpy as np

from tapegrad.autograd import copy_slices as _CS
from tapegrad.autograd.grad_mode import STATE as _GRAD
from tapegrad.autograd.node import Node, SavedOutput, bump_inplace, set_saved_version

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_location() -> str:
    """``file:line`` of the innermost caller outside tapegrad."""
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_PKG):
        f = f.f_back
    if f is None:
        return "<unknown>"
    return f"{f.f_code.co_filename}:{f.f_lineno}"


def check_inplace(x, op: str) -> None:
    """Raise if ``x`` may not be changed in place while recording."""
    if not _GRAD.grad_enabled:
        return
    base = x._base
    if base is not None and (x._requires_grad or base._requires_grad):
        _CS.check_view(x, op)  # views made in no_grad mode, split pieces, views of leaves
    if x.requires_grad and x.grad_fn is None:
        raise RuntimeError(f"{op}: a leaf Variable that requires grad (shape "
                           f"{tuple(x.shape)}) is being used in an in-place operation.")


def commit(x, r, op: str):
    """Write result ``r`` into ``x`` in place and move ``x`` onto ``r``'s place in the tape."""
    if r._data.shape != x._data.shape:
        raise RuntimeError(f"{op}: output with shape {tuple(x.shape)} doesn't match the "
                           f"broadcast shape {tuple(r.shape)}")
    if r._dtype is not x._dtype and r._dtype._cat > x._dtype._cat:
        raise RuntimeError(f"{op}: result type {r._dtype.name} can't be cast to the desired "
                           f"output type {x._dtype.name}")
    if x._base is not None and (r.grad_fn is not None or x._fw or r._fw):
        # Through a view: the base takes the history (checks first, nothing written yet).
        if r.grad_fn is not None or _CS.tangent_follows_base(x):
            return _CS.commit_view(x, r, op, f"{op} at {user_location()}")
    if r._data is not x._data:
        try:
            x._data[...] = r._data
        except ValueError as e:
            _CS.check_overlap(x, op)
            raise RuntimeError(f"{op}: cannot write into tensor of shape {tuple(x.shape)}: "
                               f"{e}") from None
    bump_inplace(x._vc)
    x._vc[1] = f"{op} at {user_location()}"
    if x._fw or r._fw:
        x._fw = r._fw  # forward AD: x now holds r's value, so it takes r's tangents
    node = r.grad_fn
    if node is not None:
        saved = node._saved
        for i, s in enumerate(saved):
            if type(s) is SavedOutput and s.nr == r._out_nr:
                saved[i] = SavedOutput(x._data, x._vc, s.nr, x._device, s.fw)
                set_saved_version(node, i, x._vc[0])
        old_fn, old_nr = x.grad_fn, x._out_nr
        x.grad_fn = node
        x._out_nr = r._out_nr
        x._requires_grad = True
        _CS.move_retain(x, old_fn, old_nr)
    if len(x._vc) > 2 and (node is not None or x._fw):
        _CS.rebase_views(x)  # x has views: they now see x's new history and tangent
    return x


def inplace(x, fn, op: str, *args, **kwargs):
    """Run out-of-place ``fn(x, *args)`` and commit it into ``x``."""
    check_inplace(x, op)
    if not _GRAD.grad_enabled:
        return commit(x, fn(x, *args, **kwargs), op)
    # The op sees a stand-in for x (same place on the tape, same memory). If the op saved
    # it for backward, the stand-in keeps a private copy of the old values, as PyTorch's
    # ``original_self``: otherwise the commit below would overwrite what backward needs.
    xa = _CS.standin(x)  # forward AD: the stand-in carries x's tangents into the op
    refs = sys.getrefcount(xa)  # measured, not assumed: the count's base varies by Python
    r = fn(xa, *args, **kwargs)
    if r is not xa and sys.getrefcount(xa) > refs:
        xa._data = x._data.copy()
    return commit(x, r, op)


class Fill(Node):
    """Overwrite every element with ``value`` (a number or a broadcastable tensor): the old
    values get a zero gradient, ``value`` gets the gradient summed to its shape."""

    name = "fill"

    @staticmethod
    def forward(ctx, be, x, v):
        ctx.v_shape = np.shape(v)
        r = be.xp.empty_like(x)
        r[...] = v
        return r

    def vjp(self, g):
        from tapegrad.creation import zeros_like
        from tapegrad.ops.elementwise import sum_to

        nx, nv = self.next
        return (zeros_like(g) if nx else None, sum_to(g, self.v_shape) if nv else None)

    def jvp(self, inputs, out, tx, tv):
        from tapegrad.creation import zeros_like

        return zeros_like(out) if tv is None else tv.expand_as(out).clone()


def _overwrite(x, value, op):
    """Write ``value`` into all of ``x``, recording a Fill node when grad mode needs one."""
    v_rg = getattr(value, "_requires_grad", False)
    if _GRAD.grad_enabled and (x._requires_grad or v_rg) or x._fw or \
            getattr(value, "_fw", None):  # forward AD: the tangent is overwritten too
        return commit(x, Fill.apply(_CS.standin(x), value), op)
    x._data[...] = value._data if hasattr(value, "_data") else value
    bump_inplace(x._vc)
    x._vc[1] = f"{op} at {user_location()}"
    return x


def fill_(x, value, op: str = "fill_"):
    """Set every element to ``value`` (a number or a 0-d tensor)."""
    check_inplace(x, op)
    if hasattr(value, "_data"):
        if value.ndim:
            raise RuntimeError(f"{op}: only supports 0-dimension value tensor but got tensor "
                               f"with {value.ndim} dimensions")
        if value._dtype is not x._dtype:
            value = value.to(x.dtype)
    return _overwrite(x, value, op)


def zero_(x):
    return fill_(x, 0, "zero_")


def copy_(x, src, non_blocking=False):
    """Copy ``src`` (broadcast, cast, moved) into ``x``; gradients flow to ``src``."""
    check_inplace(x, "copy_")
    from tapegrad.ops.shape import broadcast_to

    if not hasattr(src, "_data"):
        raise TypeError(f"copy_(): argument 'other' must be Tensor, not {type(src).__name__}")
    try:
        s = broadcast_to(src.to(x.device).to(x.dtype), tuple(x.shape))
    except RuntimeError:
        raise RuntimeError(f"copy_: the source of shape {tuple(src.shape)} cannot be broadcast "
                           f"to the destination of shape {tuple(x.shape)}") from None
    return _overwrite(x, s, "copy_")


def setitem(x, idx, value):
    """``x[idx] = value``: differentiable with respect to both (``x`` must not be a leaf
    that requires grad)."""
    from tapegrad.ops.index import index_put, normalize_index
    from tapegrad.tensor import Tensor

    check_inplace(x, "setitem")
    nidx, basic = normalize_index(idx)
    recording = _GRAD.grad_enabled and (x.requires_grad or getattr(value, "requires_grad",
                                                                   False))
    if x._fw or getattr(value, "_fw", None):
        recording = True  # forward AD: the tangent of x changes too (index_put's jvp)
    if not recording:
        v = value._data if isinstance(value, Tensor) else value
        try:
            x._data[nidx] = v
        except IndexError as e:
            raise IndexError(f"setitem: {e} (indexing a tensor of shape "
                             f"{tuple(x.shape)})") from None
        except ValueError:
            raise RuntimeError(f"setitem: shape mismatch: value of shape {np.shape(v)} cannot "
                               f"be broadcast to indexing result of shape "
                               f"{x._data[nidx].shape}") from None
        bump_inplace(x._vc)
        x._vc[1] = f"setitem at {user_location()}"
        return x
    return commit(x, index_put(_CS.standin(x), nidx, value), "setitem")
