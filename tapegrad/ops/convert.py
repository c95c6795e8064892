"""Dtype casts, device moves, copies."""

from __future__ import annotations

from tapegrad import _dtype as D
from tapegrad._device import device as _device_cls
from tapegrad.autograd.node import Node

__all__ = ["to", "contiguous", "clone", "cast"]


class Cast(Node):
    """A dtype change; the gradient is cast back to the input's dtype."""

    name = "to_copy"

    @staticmethod
    def forward(ctx, be, x, dt):
        ctx.in_dt = D.from_numpy_dtype(x.dtype)
        return x.astype(dt.np)

    def vjp(self, g):
        return (cast(g, self.in_dt),)

    def jvp(self, inputs, out, t):
        return cast(t, out.dtype)


class Clone(Node):
    name = "clone"

    @staticmethod
    def forward(ctx, be, x):
        return be.xp.array(x, copy=True, order="C")

    def vjp(self, g):
        return (g,)

    def jvp(self, inputs, out, t):
        return t


def cast(x, dt):
    """``x`` as dtype ``dt`` (the same tensor when it already is)."""
    dt = D.to_dtype(dt)
    if x._dtype is dt:
        return x
    if x.requires_grad and not dt.is_floating_point:
        from tapegrad.autograd.grad_mode import no_grad

        with no_grad():
            return Cast.apply(x, dt=dt)
    return Cast.apply(x, dt=dt)


def clone(input, *, memory_format=None):
    """A copy with its own memory; gradients flow through."""
    return Clone.apply(input)


def contiguous(input):
    return input if input._data.flags.c_contiguous else Clone.apply(input)


def _parse_to(args, kwargs):
    dev = kwargs.pop("device", None)
    dt = kwargs.pop("dtype", None)
    copy = kwargs.pop("copy", False)
    kwargs.pop("non_blocking", None)
    for a in args:
        if isinstance(a, D.dtype):
            dt = a
        elif isinstance(a, (str, _device_cls)):
            dev = _device_cls(a)
        elif hasattr(a, "_data") and hasattr(a, "_dtype"):
            dt, dev = a.dtype, a.device
        elif a is None:
            continue
        else:
            dt = D.to_dtype(a)
    return (None if dev is None else _device_cls(dev)), dt, copy


def to(x, *args, **kwargs):
    """``x.to(dtype)``, ``x.to(device)``, ``x.to(device, dtype)`` or ``x.to(other)``."""
    dev, dt, copy = _parse_to(args, kwargs)
    r = x
    if dev is not None and dev != x.device:
        from tapegrad.ops.device_move import move

        r = move(r, dev)
    if dt is not None:
        r = cast(r, dt)
    if copy and r is x:
        r = clone(x)
    return r
