"""Tensor operators and methods: thin forwards to the op registry in ``tapegrad.ops``.

Kept apart from ``tensor.py`` so that each file reads on its own; ``Tensor`` inherits this.
"""

from __future__ import annotations

from tapegrad.ops import activation as A
from tapegrad.ops import convert as C
from tapegrad.ops import elementwise as E
from tapegrad.ops import index as I
from tapegrad.ops import inplace as P
from tapegrad.ops import linalg as L
from tapegrad.ops import reduce as R
from tapegrad.ops import select as W
from tapegrad.ops import shape as S
from tapegrad.ops import unary as U
from tapegrad._tensor_compare import CompareMethods
from tapegrad._tensor_inplace import InplaceMethods
from tapegrad.ops._util import check_number_or_tensor


_PLAIN = (float, int)  # Python numbers (bool is not among them: it promotes differently)
_CPU = E._CPU
_Add = E.Add
_Mul = E.Mul


def _other(op, x):
    check_number_or_tensor(op, x)
    return x


class TensorMethods(CompareMethods, InplaceMethods):
    __slots__ = ()

    # ---- operators ---------------------------------------------------------------------
    # The four arithmetic operators skip the public functions' argument handling when the
    # other operand is a tensor or a Python number: they run on every op of a model.
    # A float CPU tensor with a Python number keeps the tensor's dtype: _arith's first rule,
    # tested here too, as it is the commonest case of all (a call less per op).
    def __add__(self, other):
        if type(other) in _PLAIN:
            if self._dtype.is_floating_point and self._device is _CPU:
                return _Add.apply2(self, other)
            return E._arith(E.Add, self, other)
        if isinstance(other, TensorMethods):
            return E._arith(E.Add, self, other)
        return E.add(self, _other("add", other))

    def __radd__(self, other):
        if type(other) in _PLAIN:
            if self._dtype.is_floating_point and self._device is _CPU:
                return _Add.apply2(other, self)
            return E._arith(E.Add, other, self)
        return E.add(_other("add", other), self)

    def __sub__(self, other):
        if type(other) in _PLAIN or isinstance(other, TensorMethods):
            return E.sub(self, other)
        return E.sub(self, _other("sub", other))

    def __rsub__(self, other):
        if type(other) in _PLAIN:
            return E.sub(other, self)
        return E.sub(_other("sub", other), self)

    def __mul__(self, other):
        if type(other) in _PLAIN:
            if self._dtype.is_floating_point and self._device is _CPU:
                return _Mul.apply2(self, other)
            return E._arith(E.Mul, self, other)
        if isinstance(other, TensorMethods):
            return E._arith(E.Mul, self, other)
        return E.mul(self, _other("mul", other))

    def __rmul__(self, other):
        if type(other) in _PLAIN:
            if self._dtype.is_floating_point and self._device is _CPU:
                return _Mul.apply2(other, self)
            return E._arith(E.Mul, other, self)
        return E.mul(_other("mul", other), self)

    def __truediv__(self, other):
        if type(other) in _PLAIN or isinstance(other, TensorMethods):
            return E.div(self, other)
        return E.div(self, _other("div", other))

    def __rtruediv__(self, other):
        if type(other) in _PLAIN:
            return E.div(other, self)
        return E.div(_other("div", other), self)

    def __floordiv__(self, other):
        return E.floor_divide(self, _other("floor_divide", other))

    def __rfloordiv__(self, other):
        return E.floor_divide(_other("floor_divide", other), self)

    def __mod__(self, other):
        return E.remainder(self, _other("remainder", other))

    def __rmod__(self, other):
        return E.remainder(_other("remainder", other), self)

    def __pow__(self, other):
        return E.pow(self, _other("pow", other))

    def __rpow__(self, other):
        return E.pow(_other("pow", other), self)

    def __matmul__(self, other):
        return L.matmul(self, other)

    def __rmatmul__(self, other):
        return L.matmul(other, self)

    def __neg__(self):
        return U.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return U.abs(self)

    def __getitem__(self, idx):
        return I.getitem(self, idx)

    def __setitem__(self, idx, value):
        P.setitem(self, idx, value)

    # ---- arithmetic methods ------------------------------------------------------------
    def add(self, other, *, alpha=1):
        return E.add(self, other, alpha=alpha)

    def sub(self, other, *, alpha=1):
        return E.sub(self, other, alpha=alpha)

    def mul(self, other):
        return E.mul(self, other)

    def div(self, other, *, rounding_mode=None):
        return E.div(self, other, rounding_mode=rounding_mode)

    multiply = mul
    divide = true_divide = div
    subtract = sub

    def pow(self, exponent):
        return E.pow(self, exponent)

    def remainder(self, other):
        return E.remainder(self, other)

    def fmod(self, other):
        return E.fmod(self, other)

    def floor_divide(self, other):
        return E.floor_divide(self, other)

    def maximum(self, other):
        return E.maximum(self, other)

    def minimum(self, other):
        return E.minimum(self, other)

    def atan2(self, other):
        return E.atan2(self, other)

    def clamp(self, min=None, max=None):
        return W.clamp(self, min, max)

    clip = clamp

    def clamp_min(self, min):
        return W.clamp(self, min, None)

    def clamp_max(self, max):
        return W.clamp(self, None, max)

    def float_power(self, exponent):
        return E.float_power(self, exponent)

    def addmm(self, mat1, mat2, *, beta=1, alpha=1):
        return L.addmm(self, mat1, mat2, beta=beta, alpha=alpha)

    def where(self, condition, other):
        return W.where(condition, self, other)

    def lerp(self, end, weight):
        return self + weight * (end - self)

    def addcmul(self, tensor1, tensor2, *, value=1):
        return self + value * tensor1 * tensor2

    def addcdiv(self, tensor1, tensor2, *, value=1):
        return self + value * tensor1 / tensor2

    def matmul(self, other):
        return L.matmul(self, other)

    def mm(self, mat2):
        return L.mm(self, mat2)

    def bmm(self, mat2):
        return L.bmm(self, mat2)

    def mv(self, vec):
        return L.mv(self, vec)

    def dot(self, tensor):
        return L.dot(self, tensor)

    def outer(self, vec2):
        return L.outer(self, vec2)

    # ---- unary math --------------------------------------------------------------------
    def neg(self):
        return U.neg(self)

    negative = neg

    def abs(self):
        return U.abs(self)

    absolute = abs

    def exp(self):
        return U.exp(self)

    def exp2(self):
        return U.exp2(self)

    def log(self):
        return U.log(self)

    def log2(self):
        return U.log2(self)

    def log10(self):
        return U.log10(self)

    def log1p(self):
        return U.log1p(self)

    def expm1(self):
        return U.expm1(self)

    def sqrt(self):
        return U.sqrt(self)

    def rsqrt(self):
        return U.rsqrt(self)

    def square(self):
        return U.square(self)

    def reciprocal(self):
        return U.reciprocal(self)

    def sin(self):
        return U.sin(self)

    def cos(self):
        return U.cos(self)

    def tan(self):
        return U.tan(self)

    def asin(self):
        return U.asin(self)

    def acos(self):
        return U.acos(self)

    def atan(self):
        return U.atan(self)

    def sinh(self):
        return U.sinh(self)

    def cosh(self):
        return U.cosh(self)

    # The activations go straight to their ops (what U.tanh etc. call): one call less on
    # ops that run once per layer and step.
    def tanh(self):
        return A.Tanh.apply1(self)

    def sigmoid(self):
        return A.Sigmoid.apply1(self)

    def relu(self):
        return A.Relu.apply1(self)

    def erf(self):
        return U.erf(self)

    def sign(self):
        return U.sign(self)

    def floor(self):
        return U.floor(self)

    def ceil(self):
        return U.ceil(self)

    def trunc(self):
        return U.trunc(self)

    def frac(self):
        return U.frac(self)

    def round(self, *, decimals=0):
        return U.round(self, decimals=decimals)

    def softmax(self, dim, dtype=None):
        from tapegrad.nn.functional import softmax

        return softmax(self, dim, dtype=dtype)

    def log_softmax(self, dim, dtype=None):
        from tapegrad.nn.functional import log_softmax

        return log_softmax(self, dim, dtype=dtype)

    # ---- reductions --------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False, *, dtype=None):
        return R.sum(self, dim, keepdim, dtype=dtype)

    def nansum(self, dim=None, keepdim=False, *, dtype=None):
        return R.nansum(self, dim, keepdim, dtype=dtype)

    def mean(self, dim=None, keepdim=False, *, dtype=None):
        return R.mean(self, dim, keepdim, dtype=dtype)

    def prod(self, dim=None, keepdim=False, *, dtype=None):
        return R.prod(self, dim, keepdim, dtype=dtype)

    def max(self, dim=None, keepdim=False):
        return R.max(self, dim, keepdim)

    def min(self, dim=None, keepdim=False):
        return R.min(self, dim, keepdim)

    def amax(self, dim=(), keepdim=False):
        return R.amax(self, dim, keepdim)

    def amin(self, dim=(), keepdim=False):
        return R.amin(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        return R.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return R.argmin(self, dim, keepdim)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return R.var(self, dim, unbiased, keepdim, correction=correction)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return R.std(self, dim, unbiased, keepdim, correction=correction)

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        return R.norm(self, p, dim, keepdim, dtype)

    def logsumexp(self, dim, keepdim=False):
        return R.logsumexp(self, dim, keepdim)

    def cumsum(self, dim, *, dtype=None):
        return R.cumsum(self, dim, dtype=dtype)

    def cumprod(self, dim, *, dtype=None):
        return R.cumprod(self, dim, dtype=dtype)

    def all(self, dim=None, keepdim=False):
        return R.all(self, dim, keepdim)

    def any(self, dim=None, keepdim=False):
        return R.any(self, dim, keepdim)

    def count_nonzero(self, dim=None):
        return R.count_nonzero(self, dim)

    # ---- shape -------------------------------------------------------------------------
    def reshape(self, *shape):
        return S.reshape(self, *shape)

    def view(self, *shape):
        return S.view(self, *shape)

    def view_as(self, other):
        return S.view_as(self, other)

    def reshape_as(self, other):
        return S.reshape_as(self, other)

    def flatten(self, start_dim=0, end_dim=-1):
        return S.flatten(self, start_dim, end_dim)

    def ravel(self):
        return S.ravel(self)

    def unflatten(self, dim, sizes):
        return S.unflatten(self, dim, sizes)

    def squeeze(self, dim=None, *more_dims):
        # PyTorch also takes the dims spread out: x.squeeze(0, 1) == x.squeeze((0, 1)).
        return S.squeeze(self, (dim, *more_dims) if more_dims else dim)

    def unsqueeze(self, dim):
        return S.unsqueeze(self, dim)

    def transpose(self, dim0, dim1):
        return S.transpose(self, dim0, dim1)

    swapaxes = transpose

    def permute(self, *dims):
        return S.permute(self, *dims)

    def movedim(self, source, destination):
        return S.movedim(self, source, destination)

    def t(self):
        return S.t(self)

    @property
    def T(self):
        return S.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self):
        return S.transpose(self, -2, -1)

    def expand(self, *sizes):
        return S.expand(self, *sizes)

    def expand_as(self, other):
        return S.expand_as(self, other)

    def broadcast_to(self, size, *more_sizes):
        return S.broadcast_to(self, (size, *more_sizes) if more_sizes else size)

    def repeat(self, *repeats):
        return S.repeat(self, *repeats)

    def tile(self, dims):
        return S.tile(self, dims)

    def flip(self, dims, *more_dims):
        return S.flip(self, (dims, *more_dims) if more_dims else dims)

    def split(self, split_size, dim=0):
        return S.split(self, split_size, dim)

    def chunk(self, chunks, dim=0):
        return S.chunk(self, chunks, dim)

    def unbind(self, dim=0):
        return S.unbind(self, dim)

    def narrow(self, dim, start, length):
        return S.narrow(self, dim, start, length)

    # ---- indexing ----------------------------------------------------------------------
    def gather(self, dim, index):
        return I.gather(self, dim, index)

    def scatter(self, dim, index, src=None, *, value=None, reduce=None):
        return I.scatter(self, dim, index, src, value=value, reduce=reduce)

    def scatter_add(self, dim, index, src):
        return I.scatter_add(self, dim, index, src)

    def index_select(self, dim, index):
        return I.index_select(self, dim, index)

    def index_add(self, dim, index, source, *, alpha=1):
        return I.index_add(self, dim, index, source, alpha=alpha)

    def masked_fill(self, mask, value):
        return I.masked_fill(self, mask, value)

    def masked_select(self, mask):
        return I.masked_select(self, mask)

    def take_along_dim(self, indices, dim=None):
        return I.take_along_dim(self, indices, dim)

    def nonzero(self, *, as_tuple=False):
        return I.nonzero(self, as_tuple=as_tuple)

    # ---- copies and new tensors --------------------------------------------------------
    def clone(self, *, memory_format=None):
        return C.clone(self)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        from tapegrad.creation import zeros

        return zeros(*size, dtype=dtype or self.dtype, device=device or self.device,
                     requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        from tapegrad.creation import ones

        return ones(*size, dtype=dtype or self.dtype, device=device or self.device,
                    requires_grad=requires_grad)

    def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
        from tapegrad.creation import full

        return full(size, fill_value, dtype=dtype or self.dtype, device=device or self.device,
                    requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        from tapegrad.creation import empty

        return empty(*size, dtype=dtype or self.dtype, device=device or self.device,
                     requires_grad=requires_grad)

    def new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
        from tapegrad.creation import tensor

        return tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                      requires_grad=requires_grad)
