"""Comparisons, logical and bitwise ops, and the NaN/Inf tests: ops with no gradient.

They share the binary family's promotion and broadcasting (``_NonDiff`` in
``elementwise.py``); their results are bool (comparisons, logical ops, tests) or the
promoted integer dtype (bitwise ops).

>>> eq(tensor([1, 2]), 2).tolist()
[False, True]
"""

from __future__ import annotations

import numpy as np

from tapegrad import _dtype as D
from tapegrad.autograd.node import Node
from tapegrad.ops.elementwise import _binary, _NonDiff

__all__ = ["eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
           "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not",
           "isnan", "isinf", "isfinite", "greater", "less", "greater_equal", "less_equal",
           "not_equal"]


class Eq(_NonDiff):
    name = "eq"
    fn = staticmethod(np.equal)

class Ne(_NonDiff):
    name = "ne"
    fn = staticmethod(np.not_equal)

class Lt(_NonDiff):
    name = "lt"
    fn = staticmethod(np.less)

class Le(_NonDiff):
    name = "le"
    fn = staticmethod(np.less_equal)

class Gt(_NonDiff):
    name = "gt"
    fn = staticmethod(np.greater)

class Ge(_NonDiff):
    name = "ge"
    fn = staticmethod(np.greater_equal)

class LogicalAnd(_NonDiff):
    name = "logical_and"
    fn = staticmethod(np.logical_and)

class LogicalOr(_NonDiff):
    name = "logical_or"
    fn = staticmethod(np.logical_or)

class LogicalXor(_NonDiff):
    name = "logical_xor"
    fn = staticmethod(np.logical_xor)


class _Bitwise(_NonDiff):
    out_dtype = None

    @classmethod
    def forward(cls, ctx, be, a, b, dt):
        if dt.is_floating_point:
            raise NotImplementedError(f"{cls.name}: not implemented for {dt} (bitwise "
                                      "operations need integer or bool tensors)")
        return super().forward(ctx, be, a, b, dt)


class BitwiseAnd(_Bitwise):
    name = "bitwise_and"
    fn = staticmethod(np.bitwise_and)

class BitwiseOr(_Bitwise):
    name = "bitwise_or"
    fn = staticmethod(np.bitwise_or)

class BitwiseXor(_Bitwise):
    name = "bitwise_xor"
    fn = staticmethod(np.bitwise_xor)


def eq(input, other):
    return _binary(Eq, input, other)


def ne(input, other):
    return _binary(Ne, input, other)


def lt(input, other):
    return _binary(Lt, input, other)


def le(input, other):
    return _binary(Le, input, other)


def gt(input, other):
    return _binary(Gt, input, other)


def ge(input, other):
    return _binary(Ge, input, other)


greater, less, greater_equal, less_equal, not_equal = gt, lt, ge, le, ne


def logical_and(input, other):
    return _binary(LogicalAnd, input, other)


def logical_or(input, other):
    return _binary(LogicalOr, input, other)


def logical_xor(input, other):
    return _binary(LogicalXor, input, other)


def bitwise_and(input, other):
    return _binary(BitwiseAnd, input, other)


def bitwise_or(input, other):
    return _binary(BitwiseOr, input, other)


def bitwise_xor(input, other):
    return _binary(BitwiseXor, input, other)


class _UnaryNonDiff(Node):
    differentiable = False
    fn = None

    @classmethod
    def forward(cls, ctx, be, x):
        return cls.fn(x)


class LogicalNot(_UnaryNonDiff):
    name = "logical_not"
    fn = staticmethod(np.logical_not)

class IsNan(_UnaryNonDiff):
    name = "isnan"
    fn = staticmethod(np.isnan)

class IsInf(_UnaryNonDiff):
    name = "isinf"
    fn = staticmethod(np.isinf)

class IsFinite(_UnaryNonDiff):
    name = "isfinite"
    fn = staticmethod(np.isfinite)


class BitwiseNot(_UnaryNonDiff):
    name = "bitwise_not"

    @staticmethod
    def forward(ctx, be, x):
        if x.dtype.kind == "f":
            raise NotImplementedError(f"bitwise_not: not implemented for "
                                      f"{D.from_numpy_dtype(x.dtype)} (bitwise operations need "
                                      "integer or bool tensors)")
        return np.invert(x)


def logical_not(input):
    return LogicalNot.apply(input)


def bitwise_not(input):
    return BitwiseNot.apply(input)


def isnan(input):
    return IsNan.apply(input)


def isinf(input):
    return IsInf.apply(input)


def isfinite(input):
    return IsFinite.apply(input)
