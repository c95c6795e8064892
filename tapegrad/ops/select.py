"""``where`` and ``clamp``: ops that pick or bound values, with the gradient flowing to the
picked (or unclamped) elements only.

>>> clamp(tensor([-2.0, 0.5, 3.0]), -1, 1).tolist()
[-1.0, 0.5, 1.0]
"""

from __future__ import annotations

import numpy as np

from tapegrad.autograd.node import Node
from tapegrad.ops._util import binary_dtype, broadcast_shapes, cast_array
from tapegrad.ops.elementwise import maximum, minimum, sum_to

__all__ = ["where", "clamp", "clip", "clamp_min", "clamp_max"]


class Where(Node):
    name = "where"
    save = (0,)

    @staticmethod
    def forward(ctx, be, cond, a, b, dt):
        ctx.shapes = (np.shape(a), np.shape(b))
        if getattr(cond, "dtype", None) != np.bool_:
            raise RuntimeError(f"where: expected condition to be a bool tensor, got "
                               f"{getattr(cond, 'dtype', type(cond).__name__)}")
        try:
            return be.k["where"](cond, cast_array(a, dt), cast_array(b, dt)).astype(dt.np,
                                                                                   copy=False)
        except ValueError:
            broadcast_shapes("where", np.shape(cond), np.shape(a), np.shape(b))
            raise

    def vjp(self, g):
        (cond,) = self.saved
        sa, sb = self.shapes
        _, na, nb = self.next
        zero = g.new_zeros(())
        ga = sum_to(where(cond, g, zero), sa) if na else None
        gb = sum_to(where(cond, zero, g), sb) if nb else None
        return None, ga, gb

    def jvp(self, inputs, out, tc, ta, tb):
        cond = inputs[0]
        if ta is None and tb is None:
            return None
        zero = out.new_zeros(())
        return where(cond, zero if ta is None else ta, zero if tb is None else tb)


def where(condition, input=None, other=None):
    """Pick ``input`` where ``condition`` holds, else ``other`` (either may be a number)."""
    if input is None and other is None:
        from tapegrad.ops.index import nonzero

        return nonzero(condition, as_tuple=True)
    from tapegrad.tensor import Tensor

    if not isinstance(condition, Tensor):
        from tapegrad.creation import tensor

        condition = tensor(condition)
    return Where.apply(condition, input, other, dt=binary_dtype(input, other))


class Clamp(Node):
    name = "clamp"
    save = (0,)

    @staticmethod
    def forward(ctx, be, x, lo, hi):
        ctx.lo, ctx.hi = lo, hi
        return be.k["clamp"](x, lo, hi)

    def _mask(self, x):
        m = None
        if self.lo is not None:
            m = x >= self.lo
        if self.hi is not None:
            m2 = x <= self.hi
            m = m2 if m is None else m & m2
        return m

    def vjp(self, g):
        (x,) = self.saved
        return (g * self._mask(x),)

    def jvp(self, inputs, out, t):
        return t * self._mask(inputs[0])


def clamp(input, min=None, max=None):
    """Limit values to ``[min, max]``; tensors bounds broadcast like ``maximum``/``minimum``."""
    from tapegrad.tensor import Tensor

    if min is None and max is None:
        raise RuntimeError("clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        r = input
        if min is not None:
            r = maximum(r, min)
        if max is not None:
            r = minimum(r, max)
        return r
    return Clamp.apply(input, lo=min, hi=max)


clip = clamp


def clamp_min(input, min):
    """``clamp(input, min=min)``.

    >>> clamp_min(tapegrad.tensor([-1.0, 2.0]), 0.0)
    tensor([0., 2.])
    """
    return clamp(input, min=min)


def clamp_max(input, max):
    """``clamp(input, max=max)``."""
    return clamp(input, max=max)
