"""In-place Tensor methods (``add_``, ``+=``, ``zero_``, ``exp_``...): each runs the
out-of-place op and commits the result into the tensor's memory through
:mod:`tapegrad.ops.inplace`, which bumps the version counter and moves the tensor onto the
result's place on the tape. ``TensorMethods`` inherits this mixin.
"""

from __future__ import annotations

from tapegrad.ops import elementwise as E
from tapegrad.ops import index as I
from tapegrad.ops import inplace as P
from tapegrad.ops import select as W
from tapegrad.ops import unary as U


class InplaceMethods:
    __slots__ = ()

    def __iadd__(self, other):
        return P.inplace(self, E.add, "add_", other)

    def __isub__(self, other):
        return P.inplace(self, E.sub, "sub_", other)

    def __imul__(self, other):
        return P.inplace(self, E.mul, "mul_", other)

    def __itruediv__(self, other):
        return P.inplace(self, E.div, "div_", other)

    def __ipow__(self, other):
        return P.inplace(self, E.pow, "pow_", other)

    def add_(self, other, *, alpha=1):
        return P.inplace(self, E.add, "add_", other, alpha=alpha)

    def sub_(self, other, *, alpha=1):
        return P.inplace(self, E.sub, "sub_", other, alpha=alpha)

    def mul_(self, other):
        return P.inplace(self, E.mul, "mul_", other)

    def div_(self, other, *, rounding_mode=None):
        return P.inplace(self, E.div, "div_", other, rounding_mode=rounding_mode)

    def pow_(self, exponent):
        return P.inplace(self, E.pow, "pow_", exponent)

    def clamp_(self, min=None, max=None):
        return P.inplace(self, W.clamp, "clamp_", min, max)

    clip_ = clamp_

    def clamp_min_(self, min):
        return P.inplace(self, W.clamp, "clamp_min_", min, None)

    def clamp_max_(self, max):
        return P.inplace(self, W.clamp, "clamp_max_", None, max)

    def fmod_(self, other):
        return P.inplace(self, E.fmod, "fmod_", other)

    def remainder_(self, other):
        return P.inplace(self, E.remainder, "remainder_", other)

    def log_(self):
        return P.inplace(self, U.log, "log_")

    def log1p_(self):
        return P.inplace(self, U.log1p, "log1p_")

    def expm1_(self):
        return P.inplace(self, U.expm1, "expm1_")

    def rsqrt_(self):
        return P.inplace(self, U.rsqrt, "rsqrt_")

    def reciprocal_(self):
        return P.inplace(self, U.reciprocal, "reciprocal_")

    def sin_(self):
        return P.inplace(self, U.sin, "sin_")

    def cos_(self):
        return P.inplace(self, U.cos, "cos_")

    def erf_(self):
        return P.inplace(self, U.erf, "erf_")

    def floor_(self):
        return P.inplace(self, U.floor, "floor_")

    def ceil_(self):
        return P.inplace(self, U.ceil, "ceil_")

    def round_(self, *, decimals=0):
        return P.inplace(self, U.round, "round_", decimals=decimals)

    def sign_(self):
        return P.inplace(self, U.sign, "sign_")

    def neg_(self):
        return P.inplace(self, U.neg, "neg_")

    def exp_(self):
        return P.inplace(self, U.exp, "exp_")

    def sqrt_(self):
        return P.inplace(self, U.sqrt, "sqrt_")

    def tanh_(self):
        return P.inplace(self, U.tanh, "tanh_")

    def sigmoid_(self):
        return P.inplace(self, U.sigmoid, "sigmoid_")

    def relu_(self):
        return P.inplace(self, U.relu, "relu_")

    def abs_(self):
        return P.inplace(self, U.abs, "abs_")

    def masked_fill_(self, mask, value):
        return P.inplace(self, I.masked_fill, "masked_fill_", mask, value)

    def addcmul_(self, tensor1, tensor2, *, value=1):
        return P.inplace(self, lambda x: x + value * tensor1 * tensor2, "addcmul_")

    def addcdiv_(self, tensor1, tensor2, *, value=1):
        return P.inplace(self, lambda x: x + value * tensor1 / tensor2, "addcdiv_")

    def lerp_(self, end, weight):
        return P.inplace(self, lambda x: x + weight * (end - x), "lerp_")

    def scatter_(self, dim, index, src=None, *, value=None, reduce=None):
        return P.inplace(self, I.scatter, "scatter_", dim, index, src, value=value,
                         reduce=reduce)

    def scatter_add_(self, dim, index, src):
        return P.inplace(self, I.scatter_add, "scatter_add_", dim, index, src)

    def index_add_(self, dim, index, source, *, alpha=1):
        return P.inplace(self, I.index_add, "index_add_", dim, index, source, alpha=alpha)

    def zero_(self):
        return P.zero_(self)

    def fill_(self, value):
        return P.fill_(self, value)

    def copy_(self, other, non_blocking=False):
        return P.copy_(self, other, non_blocking)

    def uniform_(self, a=0.0, b=1.0, *, generator=None):
        from tapegrad.nn.init import uniform_

        return uniform_(self, a, b, generator=generator)

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        from tapegrad.nn.init import normal_

        return normal_(self, mean, std, generator=generator)
