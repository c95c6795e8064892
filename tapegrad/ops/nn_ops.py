"""Neural-network primitives: softmax, log_softmax, gelu, softplus, leaky_relu, padding,
unfold/fold (im2col, the heart of convolution), max pooling, dropout's mask (embedding
lookup: ``embedding_op.py``).

Each op runs a backend kernel (``backends/ref_nn.py`` is the reference) and states its vjp
and jvp with tapegrad's own ops, so double backward and forward mode come for free.
Everything else in ``nn.functional`` is composed from these and the core ops.
"""

from __future__ import annotations

import math

import numpy as np

from tapegrad.autograd.node import Node
from tapegrad.ops.select import where
from tapegrad.ops.reduce import sum as _sum
from tapegrad.ops.unary import exp, sigmoid

__all__ = ["softmax", "log_softmax", "gelu", "gelu_backward", "silu", "silu_backward",
           "softplus", "leaky_relu",
           "leaky_relu_backward", "pad_constant", "unfold_nd", "fold_nd", "max_pool2d_values",
           "max_pool2d_indices", "pool_gather", "pool_scatter"]

_SQRT_2_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = 0.044715


# ---- softmax family ----------------------------------------------------------------------
class Softmax(Node):
    name = "softmax"
    save = ("out",)

    @staticmethod
    def forward(ctx, be, x, dim):
        ctx.dim = dim
        return be.k["softmax"](x, dim)

    def vjp(self, g):
        (y,) = self.saved
        return (SoftmaxBackward.apply(g, y, dim=self.dim),)

    def jvp(self, inputs, out, t):
        return SoftmaxBackward.apply(t, out, dim=self.dim)  # (the same linear map of t)


class _FromOutput(Node):
    """The vjp of a softmax-family op from the output gradient ``g`` and the op's output
    ``y``, as one kernel named like the op (a reduction and a write per row)."""

    save = (0, 1)

    @classmethod
    def forward(cls, ctx, be, g, y, dim):
        ctx.dim = dim
        return be.k[cls.name](g, y, dim)


class SoftmaxBackward(_FromOutput):
    """``y * (g - sum(g * y, dim))``."""

    name = "softmax_backward"

    def vjp(self, gg):
        g, y = self.saved
        d = self.dim
        # d/dg: this op applied to gg; d/dy_j: gg_j (g_j - sum(g y)) - g_j sum(gg y)
        dg = SoftmaxBackward.apply(gg, y, dim=d) if self.next[0] is not None else None
        dy = None
        if self.next[1] is not None:
            dy = gg * (g - _sum(g * y, d, True)) - g * _sum(gg * y, d, True)
        return dg, dy

    def jvp(self, inputs, out, tg, ty):
        g, y = inputs
        d = self.dim
        r = None if tg is None else SoftmaxBackward.apply(tg, y, dim=d)
        if ty is not None:
            t = ty * (g - _sum(g * y, d, True)) - y * _sum(g * ty, d, True)
            r = t if r is None else r + t
        return r


class LogSoftmax(Node):
    name = "log_softmax"
    save = ("out",)

    @staticmethod
    def forward(ctx, be, x, dim):
        ctx.dim = dim
        return be.k["log_softmax"](x, dim)

    def vjp(self, g):
        (y,) = self.saved
        return (LogSoftmaxBackward.apply(g, y, dim=self.dim),)

    def jvp(self, inputs, out, t):
        return t - _sum(exp(out) * t, self.dim, True)


class LogSoftmaxBackward(_FromOutput):
    """``g - exp(y) * sum(g, dim)``."""

    name = "log_softmax_backward"

    def vjp(self, gg):
        g, y = self.saved
        d = self.dim
        e = exp(y)
        # d/dg_j: gg_j - sum(gg exp(y)); d/dy_j: -gg_j exp(y_j) sum(g)
        dg = gg - _sum(gg * e, d, True) if self.next[0] is not None else None
        dy = -(gg * e) * _sum(g, d, True) if self.next[1] is not None else None
        return dg, dy

    def jvp(self, inputs, out, tg, ty):
        g, y = inputs
        d = self.dim
        r = None if tg is None else LogSoftmaxBackward.apply(tg, y, dim=d)
        if ty is not None:
            t = -(exp(y) * ty) * _sum(g, d, True)
            r = t if r is None else r + t
        return r


def softmax(input, dim: int):
    """exp(x) / sum(exp(x)) along ``dim`` (``dim`` already normalised)."""
    return Softmax.apply(input, dim=dim)


def log_softmax(input, dim: int):
    """x - logsumexp(x) along ``dim`` (``dim`` already normalised)."""
    return LogSoftmax.apply(input, dim=dim)


# ---- gelu --------------------------------------------------------------------------------
class Pointwise(Node):
    """A pointwise ``f`` whose derivative is an op of its own (a
    :class:`PointwiseDerivative`): the vjp and the jvp both run it (``derivative(g, x)``)."""

    save = (0,)

    def derivative(self, g, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def vjp(self, g):
        (x,) = self.saved
        return (self.derivative(g, x),)

    def jvp(self, inputs, out, t):
        return self.derivative(t, inputs[0])


class PointwiseDerivative(Node):
    """``g * f'(x)`` for a pointwise ``f``, as an op of its own (``GeluBackward``,
    ``SiluBackward``, ``SmoothL1Backward``): one kernel for the first derivative, whose own
    derivative is the op again in ``g`` and ``g * f''(x)`` in ``x``. A subclass says how to
    run itself on another ``g`` (``again``) and what ``f''`` is (``second``, with tapegrad
    ops, so higher orders follow)."""

    save = (0, 1)

    def again(self, g, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def second(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def vjp(self, gg):
        g, x = self.saved
        ng, nx = self.next
        return (self.again(gg, x) if ng else None, gg * g * self.second(x) if nx else None)

    def jvp(self, inputs, out, tg, tx):
        g, x = inputs
        r = None if tg is None else self.again(tg, x)
        if tx is not None:
            d = tx * g * self.second(x)
            r = d if r is None else r + d
        return r


class Gelu(Pointwise):
    name = "gelu"

    @staticmethod
    def forward(ctx, be, x, approximate):
        ctx.approximate = approximate
        return be.k["gelu"](x, approximate)

    def derivative(self, g, x):
        return gelu_backward(g, x, self.approximate)


class GeluBackward(PointwiseDerivative):
    """g * gelu'(x); its own derivative in x is g * gelu''(x), composed below."""

    name = "gelu_backward"

    @staticmethod
    def forward(ctx, be, g, x, approximate):
        ctx.approximate = approximate
        return be.k["gelu_backward"](g, x, approximate)

    def again(self, g, x):
        return gelu_backward(g, x, self.approximate)

    def second(self, x):
        if self.approximate == "tanh":
            from tapegrad.ops.unary import tanh

            u = _SQRT_2_PI * (x + _GELU_C * x * x * x)
            t = tanh(u)
            du = _SQRT_2_PI * (1.0 + 3.0 * _GELU_C * x * x)
            ddu = _SQRT_2_PI * 6.0 * _GELU_C * x
            return (1.0 - t * t) * (du - x * t * du * du + 0.5 * x * ddu)
        pdf = exp(-0.5 * x * x) * _INV_SQRT_2PI
        return pdf * (2.0 - x * x)


class Silu(Pointwise):
    """x * sigmoid(x) as one op (its derivative another: ``SiluBackward``)."""

    name = "silu"

    @staticmethod
    def forward(ctx, be, x):
        return be.k["silu"](x)

    def derivative(self, g, x):
        return silu_backward(g, x)


class SiluBackward(PointwiseDerivative):
    """g * silu'(x) = g * s (1 + x (1 - s)); its derivative in x is g * silu''(x) =
    g * s (1 - s) (2 + x (1 - 2 s)), composed below."""

    name = "silu_backward"

    @staticmethod
    def forward(ctx, be, g, x):
        return be.k["silu_backward"](g, x)

    def again(self, g, x):
        return silu_backward(g, x)

    def second(self, x):
        s = sigmoid(x)
        return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))


def silu(input):
    """x * sigmoid(x), one op each way."""
    return Silu.apply(input)


def silu_backward(grad, input):
    return SiluBackward.apply(grad, input)


def gelu(input, approximate: str = "none"):
    return Gelu.apply(input, approximate=approximate)


def gelu_backward(grad, input, approximate: str = "none"):
    return GeluBackward.apply(grad, input, approximate=approximate)


# ---- softplus and leaky_relu -------------------------------------------------------------
class Softplus(Node):
    name = "softplus"
    save = (0,)

    @staticmethod
    def forward(ctx, be, x, beta, threshold):
        ctx.beta, ctx.threshold = beta, threshold
        return be.k["softplus"](x, beta, threshold)

    def _slope(self, x):
        bx = x * self.beta
        return where(bx > self.threshold, 1.0, sigmoid(bx))

    def vjp(self, g):
        (x,) = self.saved
        return (g * self._slope(x),)

    def jvp(self, inputs, out, t):
        return t * self._slope(inputs[0])


def softplus(input, beta: float = 1.0, threshold: float = 20.0):
    return Softplus.apply(input, beta=beta, threshold=threshold)


class LeakyRelu(Node):
    name = "leaky_relu"
    save = (0,)

    @staticmethod
    def forward(ctx, be, x, slope):
        ctx.slope = slope
        return be.k["leaky_relu"](x, slope)

    def vjp(self, g):
        (x,) = self.saved
        return (leaky_relu_backward(g, x, self.slope),)

    def jvp(self, inputs, out, t):
        return leaky_relu_backward(t, inputs[0], self.slope)


class LeakyReluBackward(Node):
    """g where x > 0, else slope * g. Piecewise linear: zero derivative in x."""

    name = "leaky_relu_backward"
    save = (1,)

    @staticmethod
    def forward(ctx, be, g, x, slope):
        ctx.slope = slope
        return be.k["leaky_relu_backward"](g, x, slope)

    def vjp(self, gg):
        (x,) = self.saved
        return (leaky_relu_backward(gg, x, self.slope) if self.next[0] else None, None)

    def jvp(self, inputs, out, tg, tx):
        return None if tg is None else leaky_relu_backward(tg, inputs[1], self.slope)


def leaky_relu(input, negative_slope: float = 0.01):
    return LeakyRelu.apply(input, slope=negative_slope)


def leaky_relu_backward(grad, input, negative_slope: float):
    return LeakyReluBackward.apply(grad, input, slope=negative_slope)


# ---- constant padding --------------------------------------------------------------------
class PadConstant(Node):
    """Pad (or, with negative widths, crop) each dim. Its adjoint is the same op with the
    widths negated and zero fill: padding and cropping are transposes of each other."""

    name = "constant_pad_nd"

    @staticmethod
    def forward(ctx, be, x, widths, value):
        ctx.widths = widths
        crop = tuple(slice(max(-lo, 0), x.shape[d] - max(-hi, 0))
                     for d, (lo, hi) in enumerate(widths))
        x = x[crop]
        grow = tuple((max(lo, 0), max(hi, 0)) for lo, hi in widths)
        if not any(lo or hi for lo, hi in grow):
            return x.copy()
        return be.xp.pad(x, grow, mode="constant", constant_values=value)

    def vjp(self, g):
        return (pad_constant(g, tuple((-lo, -hi) for lo, hi in self.widths), 0.0),)

    def jvp(self, inputs, out, t):
        return pad_constant(t, self.widths, 0.0)


def pad_constant(input, widths: tuple, value=0.0):
    """``widths`` holds one ``(before, after)`` pair per dim of ``input``."""
    return PadConstant.apply(input, widths=tuple(widths), value=value)


# ---- unfold / fold (im2col / col2im) ------------------------------------------------------
class UnfoldNd(Node):
    """(N, C, *spatial) -> (N, C * prod(kernel), L): every window as a column, so that a
    convolution is one batched matrix product, its output already (N, O, L)."""

    name = "im2col"

    @staticmethod
    def forward(ctx, be, x, kernel_size, stride, dilation):
        ctx.shape = x.shape
        ctx.args = (kernel_size, stride, dilation)
        return be.k["im2col"](x, kernel_size, stride, dilation)

    def vjp(self, g):
        return (fold_nd(g, self.shape, *self.args),)

    def jvp(self, inputs, out, t):
        return unfold_nd(t, *self.args)


class FoldNd(Node):
    """The adjoint of :class:`UnfoldNd`: columns summed back into their windows."""

    name = "col2im"

    @staticmethod
    def forward(ctx, be, cols, shape, kernel_size, stride, dilation):
        ctx.args = (kernel_size, stride, dilation)
        return be.k["col2im"](cols, shape, kernel_size, stride, dilation)

    def vjp(self, g):
        return (unfold_nd(g, *self.args),)

    def jvp(self, inputs, out, t):
        return fold_nd(t, tuple(out.shape), *self.args)


def unfold_nd(input, kernel_size: tuple, stride: tuple, dilation: tuple):
    return UnfoldNd.apply(input, kernel_size=tuple(kernel_size), stride=tuple(stride),
                          dilation=tuple(dilation))


def fold_nd(cols, shape: tuple, kernel_size: tuple, stride: tuple, dilation: tuple):
    return FoldNd.apply(cols, shape=tuple(shape), kernel_size=tuple(kernel_size),
                        stride=tuple(stride), dilation=tuple(dilation))


# ---- max pooling ---------------------------------------------------------------------------
class DropoutMask(Node):
    """A {0, 1/(1-p)} mask of ``shape`` drawn from the global generator, in the dtype and on
    the device of ``like``. An op (``random``), not Python between ops, so that a compiled
    replay draws a fresh mask at every call: the numbers eager mode would draw."""

    name = "dropout_mask"
    differentiable = False
    random = True

    @staticmethod
    def forward(ctx, be, like, shape, p):
        from tapegrad.creation import default_generator

        keep = default_generator.rng.random(shape) >= p
        m = (keep * (0.0 if p >= 1.0 else 1.0 / (1.0 - p))).astype(like.dtype, copy=False)
        return m if be.xp is np else be.xp.asarray(m)


class MaxPool2d(Node):
    """Window maxima of (N, C, H, W); the winners' flat indices are kept for the vjp."""

    name = "max_pool2d"

    @staticmethod
    def forward(ctx, be, x, kernel_size, stride, padding, dilation, out_size):
        out, idx = be.k["max_pool2d"](x, kernel_size, stride, padding, dilation, out_size)
        ctx.idx, ctx.in_shape = idx, x.shape
        return out

    def vjp(self, g):
        return (pool_scatter(g, self.idx, self.in_shape),)

    def jvp(self, inputs, out, t):
        return pool_gather(t, self.idx)


class MaxPool2dIndices(Node):
    name = "max_pool2d_indices"
    differentiable = False

    @staticmethod
    def forward(ctx, be, x, kernel_size, stride, padding, dilation, out_size):
        return be.k["max_pool2d"](x, kernel_size, stride, padding, dilation, out_size)[1]


class PoolGather(Node):
    """out[n, c, i, j] = x[n, c].flat[idx[n, c, i, j]]."""

    name = "pool_gather"

    @staticmethod
    def forward(ctx, be, x, idx):
        ctx.idx, ctx.in_shape = idx, x.shape
        return be.k["pool_gather"](x, idx)

    def vjp(self, g):
        return (pool_scatter(g, self.idx, self.in_shape),)

    def jvp(self, inputs, out, t):
        return pool_gather(t, self.idx)


class PoolScatter(Node):
    """The adjoint of :class:`PoolGather`: values added into zeros at their indices."""

    name = "max_pool2d_backward"

    @staticmethod
    def forward(ctx, be, g, idx, shape):
        ctx.idx = idx
        return be.k["max_pool2d_backward"](g, idx, shape)

    def vjp(self, gg):
        return (pool_gather(gg, self.idx),)

    def jvp(self, inputs, out, t):
        return pool_scatter(t, self.idx, tuple(out.shape))


def max_pool2d_values(input, kernel_size, stride, padding, dilation, out_size):
    return MaxPool2d.apply(input, kernel_size=kernel_size, stride=stride, padding=padding,
                           dilation=dilation, out_size=out_size)


def max_pool2d_indices(input, kernel_size, stride, padding, dilation, out_size):
    return MaxPool2dIndices.apply(input, kernel_size=kernel_size, stride=stride,
                                  padding=padding, dilation=dilation, out_size=out_size)


def pool_gather(input, idx):
    """``idx`` is a backend int64 array (N, C, oh, ow) of flat indices into H * W."""
    return PoolGather.apply(input, idx=idx)


def pool_scatter(grad, idx, shape):
    return PoolScatter.apply(grad, idx=idx, shape=tuple(shape))
