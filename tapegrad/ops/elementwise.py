"""Binary elementwise ops (broadcasting, PyTorch dtype promotion) and ``where``/``clamp``.

Each op: forward on arrays, vjp with tapegrad ops (un-broadcast through ``sum_to``), jvp.
"""

from __future__ import annotations

import numpy as np

from tapegrad import _device as _device_mod
from tapegrad import _dtype as D
from tapegrad.autograd import hooks_state as _hs
from tapegrad.autograd.grad_mode import STATE as _GRAD
from tapegrad.autograd.node import Node, plain_tensor
from tapegrad.ops._util import binary_dtype, broadcast_shapes, cast_array, is_number

__all__ = ["add", "sub", "mul", "div", "true_divide", "pow", "maximum", "minimum", "remainder",
           "fmod", "floor_divide", "sum_to", "rsub", "atan2", "float_power", "multiply",
           "divide", "subtract"]


# ---- un-broadcasting ------------------------------------------------------------------------
class SumTo(Node):
    """Sum a broadcast gradient back to an input's shape (the vjp of broadcasting)."""

    name = "sum_to"

    @staticmethod
    def forward(ctx, be, g, shape):
        ctx.in_shape = g.shape
        return be.k["sum_to"](g, shape)

    def vjp(self, gg):
        from tapegrad.ops.shape import broadcast_to

        return (broadcast_to(gg, self.in_shape),)

    def jvp(self, inputs, out, t):
        return sum_to(t, out.shape)


def sum_to(g, shape):
    """``g`` summed over the dims that broadcasting added or stretched, to ``shape``."""
    if shape.__class__ is not tuple:
        shape = tuple(shape)
    if g._data.shape == shape:
        return g
    return SumTo.apply(g, shape=tuple(shape))


def _tsum(*ts):
    """Add tangents, where None stands for zero."""
    r = None
    for t in ts:
        if t is not None:
            r = t if r is None else r + t
    return r


# ---- the binary family ----------------------------------------------------------------------
class _Binary(Node):
    """Shared forward of broadcasting binary ops: promote, compute, name shapes on error."""

    __slots__ = ("shapes",)  # a slot: no per-node __dict__ on the hottest ops
    fn = None  # the array function, e.g. np.add; subclasses set it

    @classmethod
    def forward(cls, ctx, be, a, b, dt=None):
        if dt is None:
            # _binary's fast path: a float array with an array of its dtype or a Python
            # number, whose NumPy result already has the right dtype.
            sh = (a.shape if type(a) is _ndarray else (), b.shape if type(b) is _ndarray else ())
            ctx.shapes = _SHAPES.get(sh) or _intern(sh)
            try:
                return cls.fn(a, b)
            except ValueError:
                broadcast_shapes(cls.name, np.shape(a), np.shape(b))
                raise
        npdt = dt.np
        # NumPy arrays already of the result dtype and Python numbers (NumPy keeps the
        # array's dtype for those) pass untouched: the common cases.
        if type(a) is _ndarray and a.dtype is npdt:
            sa = a.shape
        elif type(a) in _PLAIN:
            sa = ()
        else:
            sa = _shape(a)
            a = cast_array(a, dt)
        if type(b) is _ndarray and b.dtype is npdt:
            sb = b.shape
        elif type(b) in _PLAIN:
            sb = ()
        else:
            sb = _shape(b)
            b = cast_array(b, dt)
        sh = (sa, sb)
        ctx.shapes = _SHAPES.get(sh) or _intern(sh)
        try:
            r = cls.fn(a, b)
        except ValueError:
            broadcast_shapes(cls.name, np.shape(a), np.shape(b))
            raise
        if r.dtype is not npdt and r.dtype != npdt:
            r = r.astype(npdt)
        return r


def _shape(x):
    s = getattr(x, "shape", None)
    return () if s is None else s


# Shape pairs seen so far, each kept once: a node holds the shared pair instead of two new
# tuples, which the garbage collector would track until backward (its young-generation passes
# cost ~0.5 us per op on a chain of tiny ops, in proportion to the objects ops leave behind).
_SHAPES: dict = {}


def _intern(sh: tuple) -> tuple:
    if len(_SHAPES) < 1024:  # bounded: programs of ever-new shapes keep their own tuples
        _SHAPES[sh] = sh
    return sh


_PLAIN = (float, int)
_ndarray = np.ndarray
_CPU = _device_mod.CPU


def _binary(cls, a, b):
    return cls.apply(a, b, dt=binary_dtype(a, b))


def _arith(cls, a, b, in_vjp=False):
    """``_binary`` for add, sub, mul and div (ops using ``_Binary.forward`` as is); vjps pass
    ``in_vjp``: their ops usually run with grad mode off, where less is needed."""
    # A float tensor with a Python number keeps the tensor's dtype (PyTorch's rule), and so
    # do two CPU tensors of one float dtype: decided here without the general promotion code
    # (and without passing ``dt``), as these are the most common cases of all.
    if type(b) in _PLAIN:
        if type(a) not in _PLAIN:
            da = getattr(a, "_dtype", None)
            if da is not None and da.is_floating_point and a._device is _CPU:
                return _unrecorded(cls, a, b) if in_vjp else cls.apply2(a, b)
    elif type(a) in _PLAIN:
        db = getattr(b, "_dtype", None)
        if db is not None and db.is_floating_point and b._device is _CPU:
            return _unrecorded(cls, a, b) if in_vjp else cls.apply2(a, b)
    else:
        da = getattr(a, "_dtype", None)
        if da is not None and da.is_floating_point and a._device is _CPU and \
                getattr(b, "_dtype", None) is da and b._device is _CPU:
            return _unrecorded(cls, a, b) if in_vjp else cls.apply2(a, b)
    return cls.apply(a, b, dt=binary_dtype(a, b))


def _unrecorded(cls, a, b):
    """``cls.apply(a, b)`` for operands that ``_arith`` has checked (CPU tensors of one float
    dtype, or one of them a Python number: the array function's result has the right dtype).
    With nothing to record (grad mode off, as in a plain backward's vjps, and no anomaly
    mode or forward AD), the array function runs on the arrays and its result is wrapped:
    no node, no shapes kept (half the cost of ``apply`` on small arrays)."""
    if _GRAD.grad_enabled or _hs.ANOMALY or _hs.FORWARD_AD:
        return cls.apply(a, b)
    try:
        out = cls.fn(a if a.__class__ in _PLAIN else a._data,
                     b if b.__class__ in _PLAIN else b._data)
    except ValueError:
        return cls.apply(a, b)  # raises, naming both shapes
    if out.__class__ is not _ndarray:
        out = np.asarray(out)  # NumPy hands back scalars, not 0-d arrays (see Tensor._make)
    return plain_tensor(out)


class Add(_Binary):
    name = "add"
    fn = staticmethod(np.add)

    def vjp(self, g):
        sa, sb = self.shapes
        na, nb = self.next
        s = g._data.shape  # (sum_to only where broadcasting happened: a call saved per add)
        return (None if na is None else g if s == sa else sum_to(g, sa),
                None if nb is None else g if s == sb else sum_to(g, sb))

    def jvp(self, inputs, out, ta, tb):
        return _tsum(ta, tb)


class Sub(_Binary):
    name = "sub"
    fn = staticmethod(np.subtract)

    def vjp(self, g):
        sa, sb = self.shapes
        na, nb = self.next
        return (sum_to(g, sa) if na else None, sum_to(-g, sb) if nb else None)

    def jvp(self, inputs, out, ta, tb):
        return _tsum(ta, None if tb is None else -tb)


class Mul(_Binary):
    name = "mul"
    save = ((0, 1), (1, 0))  # each factor only for the other's gradient
    fn = staticmethod(np.multiply)

    def vjp(self, g):
        a, b = self.saved
        sa, sb = self.shapes
        na, nb = self.next
        # _arith is what ``g * b`` runs (a saved factor is a tensor or a Python number).
        ga = gb = None
        if na is not None:
            ga = _arith(Mul, g, b, True)
            if ga._data.shape != sa:
                ga = sum_to(ga, sa)
        if nb is not None:
            gb = _arith(Mul, g, a, True)
            if gb._data.shape != sb:
                gb = sum_to(gb, sb)
        return ga, gb

    def jvp(self, inputs, out, ta, tb):
        a, b = inputs
        return _tsum(None if ta is None else ta * b, None if tb is None else a * tb)


class Div(_Binary):
    name = "div"
    save = ((0, 1), 1)  # the numerator only for the denominator's gradient
    fn = staticmethod(np.true_divide)

    def vjp(self, g):
        a, b = self.saved
        sa, sb = self.shapes
        na, nb = self.next
        ga = sum_to(g / b, sa) if na else None
        gb = sum_to(-g * a / (b * b), sb) if nb else None
        return ga, gb

    def jvp(self, inputs, out, ta, tb):
        a, b = inputs
        return _tsum(None if ta is None else ta / b, None if tb is None else -tb * a / (b * b))


class Pow(_Binary):
    name = "pow"
    save = (0, 1, "out")
    fn = staticmethod(np.power)

    @classmethod
    def forward(cls, ctx, be, a, b, dt):
        if not dt.is_floating_point and is_number(b) and b < 0:
            raise RuntimeError("pow: Integers to negative integer powers are not allowed.")
        return super().forward(ctx, be, a, b, dt)

    def vjp(self, g):
        a, b, y = self.saved
        sa, sb = self.shapes
        na, nb = self.next
        ga = gb = None
        if na:
            if is_number(b):
                # (b == 2, the commonest, without the a ** 1 pass: 3 ops -> 2)
                ga = g * b * (a if b == 2 else a ** (b - 1)) if b != 0 else g * 0.0
            else:
                # PyTorch masks exponent 0 so that 0 ** 0 has derivative 0, not nan.
                ga = _S.where(b == 0, 0.0, g * b * a ** (b - 1))
            ga = sum_to(ga, sa)
        if nb:
            # d(a^b)/db = a^b log a; defined as 0 where a == 0 and b >= 0 (PyTorch's choice).
            from tapegrad.ops.unary import log

            safe = _S.where(a == 0, 1.0, a) if not is_number(a) else (a if a != 0 else 1.0)
            gb = g * y * (log(safe) if not is_number(safe) else float(np.log(safe)))
            if not is_number(a):
                gb = _S.where((a == 0) & (b >= 0), 0.0, gb)
            gb = sum_to(gb, sb)
        return ga, gb

    def jvp(self, inputs, out, ta, tb):
        a, b = inputs
        r = None
        if ta is not None:
            r = ta * b * a ** (b - 1) if not (is_number(b) and b == 0) else ta * 0.0
        if tb is not None:
            from tapegrad.ops.unary import log

            # a number base (2.0 ** x) takes its log in float64, not as a float32 tensor
            la = float(np.log(a if a != 0 else 1.0)) if is_number(a) else \
                log(_S.where(a == 0, 1.0, a))
            r = _tsum(r, tb * out * la)
        return r


class Maximum(_Binary):
    name = "maximum"
    save = (0, 1)
    fn = staticmethod(np.maximum)

    def vjp(self, g):
        return _minmax_vjp(self, g, _K.gt)

    def jvp(self, inputs, out, ta, tb):
        return _minmax_jvp(inputs, ta, tb, _K.gt)


class Minimum(_Binary):
    name = "minimum"
    save = (0, 1)
    fn = staticmethod(np.minimum)

    def vjp(self, g):
        return _minmax_vjp(self, g, _K.lt)

    def jvp(self, inputs, out, ta, tb):
        return _minmax_jvp(inputs, ta, tb, _K.lt)


def _minmax_vjp(node, g, wins):
    # Ties split the gradient in half, as PyTorch does.
    a, b = node.saved
    sa, sb = node.shapes
    na, nb = node.next
    w = wins(a, b).to(g.dtype) + (a == b).to(g.dtype) * 0.5
    ga = sum_to(g * w, sa) if na else None
    gb = sum_to(g * (1.0 - w), sb) if nb else None
    return ga, gb


def _minmax_jvp(inputs, ta, tb, wins):
    a, b = inputs
    w = wins(a, b).to(a.dtype if hasattr(a, "dtype") else b.dtype) + (a == b) * 0.5
    return _tsum(None if ta is None else ta * w, None if tb is None else tb * (1.0 - w))


class Remainder(_Binary):
    name = "remainder"
    save = (0, 1)
    fn = staticmethod(np.remainder)

    def vjp(self, g):
        a, b = self.saved
        sa, sb = self.shapes
        na, nb = self.next
        gb = sum_to(-g * floor_divide(a, b), sb) if nb else None
        return (sum_to(g, sa) if na else None), gb

    def jvp(self, inputs, out, ta, tb):
        a, b = inputs
        return _tsum(ta, None if tb is None else -tb * floor_divide(a, b))


class Fmod(Remainder):
    name = "fmod"
    fn = staticmethod(np.fmod)

    def vjp(self, g):
        a, b = self.saved
        sa, sb = self.shapes
        na, nb = self.next
        from tapegrad.ops.unary import trunc

        gb = sum_to(-g * trunc(a / b), sb) if nb else None
        return (sum_to(g, sa) if na else None), gb

    def jvp(self, inputs, out, ta, tb):
        from tapegrad.ops.unary import trunc

        a, b = inputs
        return _tsum(ta, None if tb is None else -tb * trunc(a / b))


class Atan2(_Binary):
    name = "atan2"
    save = (0, 1)
    fn = staticmethod(np.arctan2)

    def vjp(self, g):
        a, b = self.saved
        sa, sb = self.shapes
        na, nb = self.next
        den = a * a + b * b
        return (sum_to(g * b / den, sa) if na else None,
                sum_to(-g * a / den, sb) if nb else None)

    def jvp(self, inputs, out, ta, tb):
        a, b = inputs
        den = a * a + b * b
        return _tsum(None if ta is None else ta * b / den, None if tb is None else -tb * a / den)


class _NonDiff(_Binary):
    """Comparison, logical and integer ops: no gradient flows through them."""

    differentiable = False
    out_dtype = D.bool

    @classmethod
    def forward(cls, ctx, be, a, b, dt):
        a = cast_array(a, dt)
        b = cast_array(b, dt)
        try:
            r = cls.fn(a, b)
        except ValueError:
            broadcast_shapes(cls.name, np.shape(a), np.shape(b))
            raise
        want = cls.out_dtype.np if cls.out_dtype is not None else dt.np
        return r if r.dtype == want else r.astype(want)


class FloorDivide(_NonDiff):
    name = "floor_divide"
    fn = staticmethod(np.floor_divide)
    out_dtype = None



# ---- the public functions -------------------------------------------------------------------
def add(input, other, *, alpha=1):
    """``input + alpha * other``, broadcasting, with PyTorch's dtype promotion."""
    if alpha != 1:
        other = other * alpha
    return _arith(Add, input, other)


def sub(input, other, *, alpha=1):
    """``input - alpha * other``."""
    if alpha != 1:
        other = other * alpha
    if (input.__class__ is bool or other.__class__ is bool
            or getattr(input, "_dtype", None) is D.bool
            or getattr(other, "_dtype", None) is D.bool):
        _bool_sub_error(input, other)
    return _arith(Sub, input, other)


def _bool_sub_error(input, other):
    if getattr(input, "_dtype", None) is D.bool and getattr(other, "_dtype", None) is D.bool:
        raise RuntimeError("sub: Subtraction, the `-` operator, with two bool tensors is not "
                           "supported. Use the `^` or `logical_xor()` operator instead.")
    raise RuntimeError("sub: Subtraction, the `-` operator, with a bool tensor is not "
                       "supported. If you are trying to invert a mask, use the `~` or "
                       "`logical_not()` operator instead.")


def _no_bool(cls, a, b):
    """Arithmetic that PyTorch does not define on bool results (pow, //, %)."""
    dt = binary_dtype(a, b)
    if dt is D.bool and not (cls is Pow and b.__class__ is bool):  # bool ** True is fine
        raise NotImplementedError(f"{cls.name}: \"{cls.name}\" not implemented for 'Bool' "
                                  f"(shapes {tuple(_shape(a))} and {tuple(_shape(b))})")
    if cls is not Pow and not dt.is_floating_point and _any_zero(b):
        # NumPy would warn and return 0; PyTorch raises, as Python does for ints.
        raise RuntimeError(f"{cls.name}: ZeroDivisionError (integer division by zero; shapes "
                           f"{tuple(_shape(a))} and {tuple(_shape(b))})")
    return cls.apply(a, b, dt=dt)


def _any_zero(b) -> bool:
    d = getattr(b, "_data", None)
    return bool((d == 0).any()) if d is not None else b == 0


def rsub(input, other, *, alpha=1):
    return sub(other, input, alpha=alpha)


def mul(input, other):
    """Elementwise product."""
    return _arith(Mul, input, other)


def div(input, other, *, rounding_mode=None):
    """True division (``rounding_mode='floor'`` or ``'trunc'`` round the quotient)."""
    if rounding_mode is None:
        dt = binary_dtype(input, other)
        if not dt.is_floating_point:
            dt = D.get_default_dtype()
        return Div.apply(input, other, dt=dt)
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode == "trunc":
        from tapegrad.ops.unary import trunc

        q = div(input, other)
        r = trunc(q)
        dt = binary_dtype(input, other)
        return r if dt.is_floating_point else r.to(dt)
    raise ValueError(f"div: expected rounding_mode to be one of None, 'trunc', or 'floor' but "
                     f"found '{rounding_mode}'")


true_divide = divide = div
multiply = mul
subtract = sub


def pow(input, exponent):
    """``input ** exponent`` (either may be a number)."""
    return _no_bool(Pow, input, exponent)


def float_power(input, exponent):
    from tapegrad.tensor import Tensor

    if isinstance(input, Tensor):
        input = input.double()
    if isinstance(exponent, Tensor):
        exponent = exponent.double()
    return pow(input, exponent)


def maximum(input, other):
    """Elementwise maximum; ties share the gradient."""
    return _binary(Maximum, input, other)


def minimum(input, other):
    """Elementwise minimum; ties share the gradient."""
    return _binary(Minimum, input, other)


def remainder(input, other):
    """Python-style modulus (sign of the divisor)."""
    return _no_bool(Remainder, input, other)


def fmod(input, other):
    """C-style modulus (sign of the dividend)."""
    return _no_bool(Fmod, input, other)


def atan2(input, other):
    return _binary(Atan2, input, other)


def floor_divide(input, other):
    return _no_bool(FloorDivide, input, other)


# The gradient rules above use comparisons and ``where``, which build on this module's
# classes: their modules are bound here, at the end, and looked up when a rule runs.
from tapegrad.ops import compare as _K  # noqa: E402
from tapegrad.ops import select as _S  # noqa: E402
