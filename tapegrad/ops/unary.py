"""Unary elementwise math and activations.

Activations go through the backend's kernel table (``be.k``) so that the numba backend can
fuse them; their derivatives are separate primitives (``TanhBackward``...) with their own
vjp, which keeps double backward exact while the fast path stays one pass over memory.
"""

from __future__ import annotations

import math

import numpy as np

from tapegrad import _dtype as D
from tapegrad.autograd.node import Node

__all__ = ["neg", "negative", "exp", "log", "log2", "log10", "log1p", "expm1", "sqrt", "rsqrt",
           "square", "sin", "cos", "tan", "tanh", "sigmoid", "relu", "abs", "absolute",
           "sign", "floor", "ceil", "round", "trunc", "frac", "erf", "reciprocal",
           "asin", "acos", "atan",
           "sinh", "cosh", "exp2"]

_SQRT_PI_2 = 2.0 / math.sqrt(math.pi)


def _float_input(x, op):
    """Integer inputs of float-valued math are computed in the default dtype (PyTorch)."""
    if x.dtype.kind in "biu":
        return x.astype(D.get_default_dtype().np)
    return x


class _Unary(Node):
    """A float-valued unary op on one array (``fn`` from the array module)."""

    fn = None

    @classmethod
    def forward(cls, ctx, be, x):
        return cls.fn(_float_input(x, cls.name))


class Neg(Node):
    name = "neg"

    @staticmethod
    def forward(ctx, be, x):
        if x.dtype == np.bool_:
            raise TypeError("neg: Negation, the `-` operator, on a bool tensor is not "
                            "supported. If you are trying to invert a mask, use the `~` or "
                            "`logical_not()` operator instead.")
        return np.negative(x)

    def vjp(self, g):
        return (-g,)

    def jvp(self, inputs, out, t):
        return -t


class Exp(_Unary):
    name = "exp"
    save = ("out",)
    fn = staticmethod(np.exp)

    def vjp(self, g):
        (y,) = self.saved
        return (g * y,)

    def jvp(self, inputs, out, t):
        return t * out


class Exp2(_Unary):
    name = "exp2"
    save = ("out",)
    fn = staticmethod(np.exp2)

    def vjp(self, g):
        (y,) = self.saved
        return (g * y * math.log(2.0),)

    def jvp(self, inputs, out, t):
        return t * out * math.log(2.0)


class Log(_Unary):
    name = "log"
    save = (0,)
    fn = staticmethod(np.log)

    def vjp(self, g):
        (x,) = self.saved
        return (g / x,)

    def jvp(self, inputs, out, t):
        return t / inputs[0]


class Log2(Log):
    name = "log2"
    fn = staticmethod(np.log2)

    def vjp(self, g):
        (x,) = self.saved
        return (g / (x * math.log(2.0)),)

    def jvp(self, inputs, out, t):
        return t / (inputs[0] * math.log(2.0))


class Log10(Log):
    name = "log10"
    fn = staticmethod(np.log10)

    def vjp(self, g):
        (x,) = self.saved
        return (g / (x * math.log(10.0)),)

    def jvp(self, inputs, out, t):
        return t / (inputs[0] * math.log(10.0))


class Log1p(_Unary):
    name = "log1p"
    save = (0,)
    fn = staticmethod(np.log1p)

    def vjp(self, g):
        (x,) = self.saved
        return (g / (x + 1.0),)

    def jvp(self, inputs, out, t):
        return t / (inputs[0] + 1.0)


class Expm1(_Unary):
    name = "expm1"
    save = ("out",)
    fn = staticmethod(np.expm1)

    def vjp(self, g):
        (y,) = self.saved
        return (g * (y + 1.0),)

    def jvp(self, inputs, out, t):
        return t * (out + 1.0)


class Sqrt(_Unary):
    name = "sqrt"
    save = ("out",)
    fn = staticmethod(np.sqrt)

    def vjp(self, g):
        (y,) = self.saved
        return (g / (2.0 * y),)

    def jvp(self, inputs, out, t):
        return t / (2.0 * out)


class Rsqrt(_Unary):
    name = "rsqrt"
    save = ("out",)

    @staticmethod
    def forward(ctx, be, x):
        return 1.0 / np.sqrt(_float_input(x, "rsqrt"))

    def vjp(self, g):
        (y,) = self.saved
        return (g * -0.5 * y * y * y,)

    def jvp(self, inputs, out, t):
        return t * -0.5 * out * out * out


class Reciprocal(_Unary):
    name = "reciprocal"
    save = ("out",)

    @staticmethod
    def forward(ctx, be, x):
        return 1.0 / _float_input(x, "reciprocal")

    def vjp(self, g):
        (y,) = self.saved
        return (-g * y * y,)

    def jvp(self, inputs, out, t):
        return -t * out * out


class Sin(_Unary):
    name = "sin"
    save = (0,)
    fn = staticmethod(np.sin)

    def vjp(self, g):
        (x,) = self.saved
        return (g * cos(x),)

    def jvp(self, inputs, out, t):
        return t * cos(inputs[0])


class Cos(_Unary):
    name = "cos"
    save = (0,)
    fn = staticmethod(np.cos)

    def vjp(self, g):
        (x,) = self.saved
        return (-g * sin(x),)

    def jvp(self, inputs, out, t):
        return -t * sin(inputs[0])


class Tan(_Unary):
    name = "tan"
    save = ("out",)
    fn = staticmethod(np.tan)

    def vjp(self, g):
        (y,) = self.saved
        return (g * (1.0 + y * y),)

    def jvp(self, inputs, out, t):
        return t * (1.0 + out * out)


class Asin(_Unary):
    name = "asin"
    save = (0,)
    fn = staticmethod(np.arcsin)

    def vjp(self, g):
        (x,) = self.saved
        return (g * rsqrt(1.0 - x * x),)

    def jvp(self, inputs, out, t):
        return t * rsqrt(1.0 - inputs[0] * inputs[0])


class Acos(Asin):
    name = "acos"
    fn = staticmethod(np.arccos)

    def vjp(self, g):
        (x,) = self.saved
        return (-g * rsqrt(1.0 - x * x),)

    def jvp(self, inputs, out, t):
        return -t * rsqrt(1.0 - inputs[0] * inputs[0])


class Atan(_Unary):
    name = "atan"
    save = (0,)
    fn = staticmethod(np.arctan)

    def vjp(self, g):
        (x,) = self.saved
        return (g / (1.0 + x * x),)

    def jvp(self, inputs, out, t):
        return t / (1.0 + inputs[0] * inputs[0])


class Sinh(_Unary):
    name = "sinh"
    save = (0,)
    fn = staticmethod(np.sinh)

    def vjp(self, g):
        (x,) = self.saved
        return (g * cosh(x),)

    def jvp(self, inputs, out, t):
        return t * cosh(inputs[0])


class Cosh(_Unary):
    name = "cosh"
    save = (0,)
    fn = staticmethod(np.cosh)

    def vjp(self, g):
        (x,) = self.saved
        return (g * sinh(x),)

    def jvp(self, inputs, out, t):
        return t * sinh(inputs[0])


class Erf(_Unary):
    name = "erf"
    save = (0,)

    @staticmethod
    def forward(ctx, be, x):
        return be.k["erf"](_float_input(x, "erf"))

    def vjp(self, g):
        (x,) = self.saved
        return (g * _SQRT_PI_2 * exp(-(x * x)),)

    def jvp(self, inputs, out, t):
        x = inputs[0]
        return t * _SQRT_PI_2 * exp(-(x * x))


class Abs(Node):
    name = "abs"
    save = (0,)

    @staticmethod
    def forward(ctx, be, x):
        return np.abs(x)

    def vjp(self, g):
        (x,) = self.saved
        return (g * sign(x),)

    def jvp(self, inputs, out, t):
        return t * sign(inputs[0])


class _Piecewise(Node):
    """Piecewise-constant functions: derivative zero almost everywhere (as PyTorch)."""

    fn = None

    @classmethod
    def forward(cls, ctx, be, x):
        return cls.fn(x)

    def vjp(self, g):
        return (g * 0.0,)

    def jvp(self, inputs, out, t):
        return t * 0.0


class Sign(_Piecewise):
    name = "sign"
    fn = staticmethod(np.sign)


class Floor(_Piecewise):
    name = "floor"
    fn = staticmethod(np.floor)


class Ceil(_Piecewise):
    name = "ceil"
    fn = staticmethod(np.ceil)


class Trunc(_Piecewise):
    name = "trunc"
    fn = staticmethod(np.trunc)


class Round(_Piecewise):
    name = "round"

    @staticmethod
    def forward(ctx, be, x, decimals=0):
        return np.round(x, decimals)  # half to even, like PyTorch


# ---- public functions -----------------------------------------------------------------------
def neg(input):
    """``-input``."""
    return Neg.apply(input)


negative = neg


def exp(input):
    """Elementwise e**x."""
    return Exp.apply(input)


def exp2(input):
    return Exp2.apply(input)


def log(input):
    """Natural logarithm."""
    return Log.apply(input)


def log2(input):
    return Log2.apply(input)


def log10(input):
    return Log10.apply(input)


def log1p(input):
    """log(1 + x), accurate for small x."""
    return Log1p.apply(input)


def expm1(input):
    """exp(x) - 1, accurate for small x."""
    return Expm1.apply(input)


def sqrt(input):
    return Sqrt.apply(input)


def rsqrt(input):
    """1 / sqrt(x)."""
    return Rsqrt.apply(input)


def reciprocal(input):
    return Reciprocal.apply(input)


def square(input):
    return input * input


def sin(input):
    return Sin.apply(input)


def cos(input):
    return Cos.apply(input)


def tan(input):
    return Tan.apply(input)


def asin(input):
    return Asin.apply(input)


def acos(input):
    return Acos.apply(input)


def atan(input):
    return Atan.apply(input)


def sinh(input):
    return Sinh.apply(input)


def cosh(input):
    return Cosh.apply(input)


def erf(input):
    """The Gauss error function."""
    return Erf.apply(input)


def abs(input):
    return Abs.apply(input)


absolute = abs


def sign(input):
    return Sign.apply(input)


def floor(input):
    return Floor.apply(input)


def ceil(input):
    return Ceil.apply(input)


def trunc(input):
    return Trunc.apply(input)


def frac(input):
    return input - trunc(input)


def round(input, *, decimals=0):
    """Round half to even, optionally to ``decimals`` places."""
    return Round.apply(input, decimals=decimals)


# The activations live in ops/activation.py; re-exported for ``from ops.unary import tanh``.
from tapegrad.ops.activation import (  # noqa: E402,F401
    relu, relu_backward, sigmoid, sigmoid_backward, tanh, tanh_backward)
