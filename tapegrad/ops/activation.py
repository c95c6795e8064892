"""Activations with fused derivative primitives: tanh, sigmoid, relu.

Each forward goes through the backend's kernel table (``be.k``) so the numba and CUDA
backends can fuse it; each derivative is a primitive of its own (``TanhBackward``...) with
its own vjp, which keeps double backward exact while the fast path stays one pass over
memory.
"""

from __future__ import annotations

import numpy as np

from tapegrad.autograd.node import Node
from tapegrad.ops.unary import _float_input, _Unary

__all__ = ["tanh", "sigmoid", "relu", "tanh_backward", "sigmoid_backward", "relu_backward"]


class Tanh(_Unary):
    name = "tanh"
    save = ("out",)

    @staticmethod
    def forward(ctx, be, x):
        if x.dtype.kind in "biu":  # (tested here: a call saved on float inputs)
            x = _float_input(x, "tanh")
        return be.k["tanh"](x)

    def vjp(self, g):
        # (saved_raw: y is its bare array in a plain backward; apply2 takes arrays.)
        (y,) = self.saved_raw
        return (TanhBackward.apply2(g, y),)  # tanh_backward(g, y), one call less

    def jvp(self, inputs, out, t):
        return tanh_backward(t, out)


class TanhBackward(Node):
    """g * (1 - y^2), the derivative of tanh given its output."""

    name = "tanh_backward"
    save = (0, 1)

    @staticmethod
    def forward(ctx, be, g, y):
        return be.k["tanh_backward"](g, y)

    def vjp(self, gg):
        g, y = self.saved
        ng, ny = self.next
        return (tanh_backward(gg, y) if ng else None, gg * g * y * -2.0 if ny else None)

    def jvp(self, inputs, out, tg, ty):
        g, y = inputs
        r = None if tg is None else tanh_backward(tg, y)
        if ty is not None:
            d = ty * g * y * -2.0
            r = d if r is None else r + d
        return r


class Sigmoid(_Unary):
    name = "sigmoid"
    save = ("out",)

    @staticmethod
    def forward(ctx, be, x):
        return be.k["sigmoid"](_float_input(x, "sigmoid"))

    def vjp(self, g):
        (y,) = self.saved_raw  # (a bare array in a plain backward: see Tanh.vjp)
        return (sigmoid_backward(g, y),)

    def jvp(self, inputs, out, t):
        return sigmoid_backward(t, out)


class SigmoidBackward(Node):
    """g * y * (1 - y), the derivative of sigmoid given its output."""

    name = "sigmoid_backward"
    save = (0, 1)

    @staticmethod
    def forward(ctx, be, g, y):
        return be.k["sigmoid_backward"](g, y)

    def vjp(self, gg):
        g, y = self.saved
        ng, ny = self.next
        return (sigmoid_backward(gg, y) if ng else None,
                gg * g * (1.0 - 2.0 * y) if ny else None)

    def jvp(self, inputs, out, tg, ty):
        g, y = inputs
        r = None if tg is None else sigmoid_backward(tg, y)
        if ty is not None:
            d = ty * g * (1.0 - 2.0 * y)
            r = d if r is None else r + d
        return r


class Relu(Node):
    name = "relu"
    save = ("out",)

    @staticmethod
    def forward(ctx, be, x):
        if x.dtype == np.bool_:
            raise RuntimeError("relu: not implemented for 'Bool'")
        return be.k["relu"](x)

    def vjp(self, g):
        (y,) = self.saved_raw  # (a bare array in a plain backward: see Tanh.vjp)
        return (relu_backward(g, y),)

    def jvp(self, inputs, out, t):
        return relu_backward(t, out)


class ReluBackward(Node):
    """g where the relu output is positive, else 0. Zero derivative in y."""

    name = "relu_backward"
    save = (1,)

    @staticmethod
    def forward(ctx, be, g, y):
        return be.k["relu_backward"](g, y)

    def vjp(self, gg):
        (y,) = self.saved
        return (relu_backward(gg, y) if self.next[0] else None, None)

    def jvp(self, inputs, out, tg, ty):
        return None if tg is None else relu_backward(tg, inputs[1])



# ---- public functions -----------------------------------------------------------------------
def tanh(input):
    """Hyperbolic tangent."""
    return Tanh.apply1(input)


def sigmoid(input):
    """1 / (1 + exp(-x)), computed without overflow."""
    return Sigmoid.apply1(input)


def relu(input):
    """max(x, 0)."""
    return Relu.apply1(input)


def tanh_backward(grad, output):
    return TanhBackward.apply(grad, output)


def sigmoid_backward(grad, output):
    return SigmoidBackward.apply2(grad, output)  # (run by vjps: see Node.apply2)


def relu_backward(grad, output):
    return ReluBackward.apply2(grad, output)  # (run by vjps: see Node.apply2)
