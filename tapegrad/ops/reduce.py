"""Reductions: every one takes ``dim`` (int, tuple or None) and ``keepdim`` like PyTorch."""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from tapegrad import _device
from tapegrad import _dtype as D
from tapegrad.autograd import hooks_state as _hs
from tapegrad.autograd import node as _node
from tapegrad.autograd.grad_mode import STATE as _GRAD
from tapegrad.autograd.node import Node
from tapegrad.ops._util import norm_dim, norm_dims
from tapegrad.ops.shape import broadcast_to, reshape

__all__ = ["sum", "mean", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "var",
           "std", "norm", "logsumexp", "cumsum", "cumprod", "all", "any", "var_mean",
           "std_mean", "count_nonzero", "nansum"]

values_indices = namedtuple("values_indices", ["values", "indices"])

_b_sum, _b_max, _b_min, _b_all, _b_any = sum, max, min, all, any


# Up to this many elements a 0-d gradient is filled out instead of broadcast (see below);
# above it, the view saves the memory.
_FILL_MAX = 1 << 16
_CPU = _device.CPU
_prod = math.prod


def _kept_shape(in_shape, dims):
    return tuple(1 if i in dims else s for i, s in enumerate(in_shape))


def _expand_back(g, in_shape, dims, keepdim):
    """Broadcast a reduced gradient back over the reduced dims."""
    a = g._data
    if not a.ndim and not _GRAD.grad_enabled and type(a) is np.ndarray and \
            g._device is _CPU and not _hs.FORWARD_AD and not _hs.ANOMALY and \
            _prod(in_shape) <= _FILL_MAX:
        # A plain backward of ``x.sum()`` (nothing recorded): a small filled array costs less
        # than recording a broadcast view, and the engine may then add the next gradient into
        # it in place (a read-only view never can).
        r = np.empty(in_shape, a.dtype)
        r.fill(a)
        return _node.Tensor._make(r, False, None, 0, _CPU)
    if not keepdim and a.ndim:  # (a 0-d gradient broadcasts as it is: one op less)
        g = reshape(g, _kept_shape(in_shape, dims))
    return broadcast_to(g, in_shape)


class Sum(Node):
    name = "sum"

    @staticmethod
    def forward(ctx, be, x, dims, keepdim, dt):
        ctx.in_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        r = x.sum(axis=dims, keepdims=keepdim, dtype=dt.np)
        return r

    def vjp(self, g):
        return (_expand_back(g, self.in_shape, self.dims, self.keepdim),)

    def jvp(self, inputs, out, t):
        return sum(t, self.dims, self.keepdim)


class SumAll(Sum):
    """``x.sum()`` of a float tensor: every dim, no attributes (so ``apply1`` takes it, the
    cheap path: ``loss = loss + h.sum()`` runs once per step of a recurrent loop). The
    gradient of a full sum is 0-d, so ``Sum.vjp`` never reads ``dims``."""

    dims = None
    keepdim = False

    @staticmethod
    def forward(ctx, be, x):
        ctx.in_shape = x.shape
        return be.k["sum_all"](x)


def _sum_dtype(x, dtype):
    if dtype is not None:
        return D.to_dtype(dtype)
    return x._dtype if x._dtype.is_floating_point else D.int64


def sum(input, dim=None, keepdim=False, *, dtype=None):
    """Sum over ``dim`` (all dims when None); integers sum to int64."""
    if dim is None and dtype is None and input._dtype.is_floating_point:  # x.sum(): no checks
        if not keepdim:
            return SumAll.apply1(input)
        return Sum.apply(input, dims=tuple(range(input._data.ndim)), keepdim=keepdim,
                         dt=input._dtype)
    dims = norm_dims(dim, input.ndim, "sum") if not (isinstance(dim, (tuple, list)) and
                                                     len(dim) == 0) else tuple(range(input.ndim))
    return Sum.apply(input, dims=dims, keepdim=keepdim, dt=_sum_dtype(input, dtype))


def nansum(input, dim=None, keepdim=False, *, dtype=None):
    from tapegrad.ops.compare import isnan
    from tapegrad.ops.select import where

    return sum(where(isnan(input), 0.0, input), dim, keepdim, dtype=dtype)


def _count(input, dims):
    n = 1
    for d in dims:
        n *= input._data.shape[d]
    return n


def mean(input, dim=None, keepdim=False, *, dtype=None):
    """Average over ``dim``; integer inputs need an explicit float ``dtype``."""
    if dtype is not None:
        input = input.to(dtype)
    if not input._dtype.is_floating_point:
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either "
                           f"a floating point or complex dtype. Got: {input._dtype.name}")
    dims = norm_dims(dim, input.ndim, "mean") if not (isinstance(dim, (tuple, list)) and
                                                      len(dim) == 0) else tuple(range(input.ndim))
    n = _count(input, dims)
    return sum(input, dims, keepdim) / n if n else sum(input, dims, keepdim) * float("nan")


class Prod(Node):
    name = "prod"
    save = (0, "out")

    @staticmethod
    def forward(ctx, be, x, dim, keepdim, dt):
        ctx.in_shape, ctx.dim, ctx.keepdim = x.shape, dim, keepdim
        return x.prod(axis=dim, keepdims=keepdim, dtype=dt.np)

    def _grad_factor(self, x, out):
        # d prod / d x_i = product of the others. out / x fails where x == 0, so the exact
        # product of the others is built from exclusive cumulative products along the dim.
        from tapegrad.ops.shape import flatten

        if self.dim is None:
            flat = flatten(x)
            return reshape(_prod_others(flat, 0), self.in_shape)
        return _prod_others(x, self.dim)

    def vjp(self, g):
        x, out = self.saved
        dims = tuple(range(len(self.in_shape))) if self.dim is None else (self.dim,)
        keep = self.keepdim and self.dim is not None
        return (_expand_back(g, self.in_shape, dims, keep) * self._grad_factor(x, out),)

    def jvp(self, inputs, out, t):
        x = inputs[0]
        return sum(t * self._grad_factor(x, out), self.dim, self.keepdim)


def _prod_others(x, dim):
    """For each position, the product of every other element along ``dim``."""
    from tapegrad.ops.shape import cat, flip, narrow
    from tapegrad.creation import ones

    n = x._data.shape[dim]
    if n == 0:
        return x
    ones_shape = list(x._data.shape)
    ones_shape[dim] = 1
    one = ones(tuple(ones_shape), dtype=x.dtype, device=x.device)
    before = cat([one, narrow(cumprod(x, dim), dim, 0, n - 1)], dim)
    rx = flip(x, dim)
    after = flip(cat([one, narrow(cumprod(rx, dim), dim, 0, n - 1)], dim), dim)
    return before * after


def prod(input, dim=None, keepdim=False, *, dtype=None):
    """Product over all elements or along one ``dim``."""
    d = None if dim is None else norm_dim(dim, input.ndim, "prod")
    return Prod.apply(input, dim=d, keepdim=keepdim, dt=_sum_dtype(input, dtype))


class Cumsum(Node):
    name = "cumsum"

    @staticmethod
    def forward(ctx, be, x, dim, dt):
        ctx.dim = dim
        return be.xp.cumsum(x, axis=dim, dtype=dt.np)

    def vjp(self, g):
        from tapegrad.ops.shape import flip

        return (flip(cumsum(flip(g, self.dim), self.dim), self.dim),)

    def jvp(self, inputs, out, t):
        return cumsum(t, self.dim)


def cumsum(input, dim, *, dtype=None):
    d = norm_dim(dim, input.ndim, "cumsum")
    return Cumsum.apply(input, dim=d, dt=_sum_dtype(input, dtype))


class Cumprod(Node):
    name = "cumprod"
    save = (0, "out")

    @staticmethod
    def forward(ctx, be, x, dim, dt):
        ctx.dim = dim
        return be.xp.cumprod(x, axis=dim, dtype=dt.np)

    def vjp(self, g):
        from tapegrad.ops.shape import movedim, unsqueeze

        x, _ = self.saved
        p = _cumprod_partials(x, self.dim)
        gi = sum(unsqueeze(movedim(g, self.dim, -1), -1) * p, -2)  # sum over k
        return (movedim(gi, -1, self.dim),)

    def jvp(self, inputs, out, t):
        # d out_k = sum_{i<=k} t_i * prod_{j<=k, j!=i} x_j; out * cumsum(t / x) is the same
        # where no x is 0, and much cheaper.
        from tapegrad.ops.shape import movedim, unsqueeze

        x = inputs[0]
        if bool((x != 0).all()):
            return out * cumsum(t / x, self.dim)
        p = _cumprod_partials(x, self.dim)
        dk = sum(p * unsqueeze(movedim(t, self.dim, -1), -2), -1)  # sum over i
        return movedim(dk, -1, self.dim)


def _cumprod_partials(x, d):
    """``p[..., k, i] = d out_k / d x_i = prod_{j<=k, j!=i} x_j`` (0 for i > k), with the
    cumprod dim ``d`` moved last. No division by x, which may be 0; n is small in practice,
    so it is built as a masked product over an [n, n, n] block."""
    from tapegrad.creation import tensor
    from tapegrad.ops.select import where
    from tapegrad.ops.shape import movedim, unsqueeze

    xm = movedim(x, d, -1)
    n = xm.shape[-1]
    tri = np.tril(np.ones((n, n), dtype=bool))  # [k, i]: i <= k (and [k, j]: j <= k)
    xe = unsqueeze(unsqueeze(xm, -2), -2)  # [..., 1, 1, j]
    keep = tri[:, None, :] & ~np.eye(n, dtype=bool)[None, :, :]  # [k, i, j]
    factors = where(tensor(keep, device=x.device), xe, 1.0)
    return prod(factors, -1) * tensor(tri, device=x.device).to(x.dtype)  # [..., k, i]


def cumprod(input, dim, *, dtype=None):
    d = norm_dim(dim, input.ndim, "cumprod")
    return Cumprod.apply(input, dim=d, dt=_sum_dtype(input, dtype))


# ---- max / min ------------------------------------------------------------------------------
class Amax(Node):
    """max over dims; the gradient is shared evenly among tied maxima (PyTorch's amax)."""

    name = "amax"
    save = (0, "out")
    fn = staticmethod(np.max)

    @classmethod
    def forward(cls, ctx, be, x, dims, keepdim):
        if x.size == 0:
            raise IndexError(f"{cls.name}(): Expected reduction dim to be specified for "
                             f"input.numel() == 0 (shape {x.shape})")
        ctx.in_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        return cls.fn(x, axis=dims, keepdims=keepdim)

    def _mask(self, x, out):
        o = out if self.keepdim else reshape(out, _kept_shape(self.in_shape, self.dims))
        m = (x == o).to(x.dtype)
        return m / sum(m, self.dims, True)

    def vjp(self, g):
        x, out = self.saved
        return (_expand_back(g, self.in_shape, self.dims, self.keepdim) * self._mask(x, out),)

    def jvp(self, inputs, out, t):
        return sum(t * self._mask(inputs[0], out), self.dims, self.keepdim)


class Amin(Amax):
    name = "amin"
    fn = staticmethod(np.min)


def amax(input, dim=(), keepdim=False):
    dims = norm_dims(None if dim == () else dim, input.ndim, "amax")
    return Amax.apply(input, dims=dims, keepdim=keepdim)


def amin(input, dim=(), keepdim=False):
    dims = norm_dims(None if dim == () else dim, input.ndim, "amin")
    return Amin.apply(input, dims=dims, keepdim=keepdim)


class Argmax(Node):
    name = "argmax"
    differentiable = False
    fn = staticmethod(np.argmax)

    @classmethod
    def forward(cls, ctx, be, x, dim, keepdim):
        if x.size == 0:
            raise IndexError(f"{cls.name}(): Expected reduction dim to be specified for "
                             f"input.numel() == 0 (shape {x.shape})")
        if dim is None:
            r = cls.fn(x)
            return np.asarray(r, dtype=np.int64).reshape((1,) * x.ndim if keepdim else ())
        return cls.fn(x, axis=dim, keepdims=keepdim).astype(np.int64, copy=False)


class Argmin(Argmax):
    name = "argmin"
    fn = staticmethod(np.argmin)


def argmax(input, dim=None, keepdim=False):
    d = None if dim is None else norm_dim(dim, input.ndim, "argmax")
    return Argmax.apply(input, dim=d, keepdim=keepdim)


def argmin(input, dim=None, keepdim=False):
    d = None if dim is None else norm_dim(dim, input.ndim, "argmin")
    return Argmin.apply(input, dim=d, keepdim=keepdim)


def _max_min(input, dim, keepdim, other, reduce_all, arg, op):
    from tapegrad.tensor import Tensor

    if isinstance(dim, Tensor):
        return other(input, dim)
    if dim is None:
        return reduce_all(input)
    d = norm_dim(dim, input.ndim, op)
    idx = arg(input, d, True)
    from tapegrad.ops.index import gather
    from tapegrad.ops.shape import squeeze

    vals = gather(input, d, idx)
    if not keepdim:
        vals, idx = squeeze(vals, d), squeeze(idx, d)
    return values_indices(vals, idx)


def max(input, dim=None, keepdim=False):
    """The largest value; with ``dim``, a ``(values, indices)`` named tuple; with a tensor,
    the elementwise maximum."""
    from tapegrad.ops.elementwise import maximum

    return _max_min(input, dim, keepdim, maximum, lambda x: amax(x), argmax, "max")


def min(input, dim=None, keepdim=False):
    """The smallest value; with ``dim``, a ``(values, indices)`` named tuple."""
    from tapegrad.ops.elementwise import minimum

    return _max_min(input, dim, keepdim, minimum, lambda x: amin(x), argmin, "min")


# ---- statistics and norms -------------------------------------------------------------------
def _correction(unbiased, correction):
    if correction is not None:
        return correction
    if unbiased is None:
        return 1
    return 1 if unbiased else 0


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance with Bessel's correction by default (``correction=1``).

    >>> var(tensor([1.0, 2.0, 3.0])).item()
    1.0
    """
    return _var(input, dim, unbiased, keepdim, correction, "var")


def _var(input, dim, unbiased, keepdim, correction, op):
    if isinstance(dim, bool):  # var(x, False): the old positional unbiased flag
        unbiased, dim = dim, None
    c = _correction(unbiased, correction)
    dims = norm_dims(dim, input.ndim, op)
    n = _count(input, dims)
    if n - c <= 0:
        import sys
        import warnings

        level, f = 1, sys._getframe(0)  # point the warning at the user's line
        while f is not None and f.f_globals.get("__name__", "").startswith("tapegrad."):
            level, f = level + 1, f.f_back
        warnings.warn(f"{op}(): degrees of freedom is <= 0 ({n} values per result, "
                      f"correction {c}): the result is nan or inf", UserWarning,
                      stacklevel=level)
    mu = mean(input, dims, True)
    d = input - mu
    return sum(d * d, dims, keepdim) / _builtin_max(n - c, 0)


_builtin_max = _b_max


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation: ``sqrt(var(...))``."""
    from tapegrad.ops.unary import sqrt

    return sqrt(_var(input, dim, unbiased, keepdim, correction, "std"))


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return (var(input, dim, unbiased, keepdim, correction=correction),
            mean(input, dim, keepdim))


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return (std(input, dim, unbiased, keepdim, correction=correction),
            mean(input, dim, keepdim))


class Norm2(Node):
    """The Euclidean norm; its gradient at the zero vector is 0 (PyTorch's subgradient)."""

    name = "norm"
    save = (0, "out")

    @staticmethod
    def forward(ctx, be, x, dims, keepdim):
        ctx.in_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        return be.xp.sqrt((x * x).sum(axis=dims, keepdims=keepdim))

    def _scaled(self, x, out):
        from tapegrad.ops.select import where
        o = out if self.keepdim else reshape(out, _kept_shape(self.in_shape, self.dims))
        return where(o == 0, 0.0, x / where(o == 0, 1.0, o))

    def vjp(self, g):
        x, out = self.saved
        return (_expand_back(g, self.in_shape, self.dims, self.keepdim) * self._scaled(x, out),)

    def jvp(self, inputs, out, t):
        return sum(t * self._scaled(inputs[0], out), self.dims, self.keepdim)


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """Vector p-norm over ``dim`` (all elements by default): p = 2, 1, inf, -inf, 0 or any."""
    from tapegrad.ops.unary import abs as _abs

    if dtype is not None:
        input = input.to(dtype)
    if not input._dtype.is_floating_point:
        raise RuntimeError(f"norm(): input dtype should be floating point, got {input.dtype}")
    dims = norm_dims(dim, input.ndim, "norm")
    if p in ("fro", 2, 2.0, None):
        return Norm2.apply(input, dims=dims, keepdim=keepdim)
    if p in (float("inf"), "inf"):
        return amax(_abs(input), dims, keepdim)
    if p in (float("-inf"), "-inf"):
        return amin(_abs(input), dims, keepdim)
    if p == 0:
        return sum((input != 0).to(input.dtype), dims, keepdim)
    if p == 1:
        return sum(_abs(input), dims, keepdim)
    if isinstance(p, str):
        raise RuntimeError(f"norm: unsupported norm type {p!r}")
    return sum(_abs(input) ** p, dims, keepdim) ** (1.0 / p)


class LogSumExp(Node):
    name = "logsumexp"
    save = (0, "out")

    @staticmethod
    def forward(ctx, be, x, dims, keepdim):
        ctx.in_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        xp = be.xp
        m = x.max(axis=dims, keepdims=True) if x.size else xp.zeros(
            _kept_shape(x.shape, dims), x.dtype)
        m = xp.where(xp.isfinite(m), m, 0)  # all -inf rows stay -inf, not nan
        r = xp.log(xp.exp(x - m).sum(axis=dims, keepdims=True)) + m
        return r if keepdim else r.reshape(tuple(s for i, s in enumerate(r.shape)
                                                 if i not in dims))

    def _softmax(self, x, out):
        from tapegrad.ops.shape import reshape
        from tapegrad.ops.unary import exp

        o = out if self.keepdim else reshape(out, _kept_shape(self.in_shape, self.dims))
        return exp(x - o)

    def vjp(self, g):
        x, out = self.saved
        return (_expand_back(g, self.in_shape, self.dims, self.keepdim) * self._softmax(x, out),)

    def jvp(self, inputs, out, t):
        return sum(t * self._softmax(inputs[0], out), self.dims, self.keepdim)


def logsumexp(input, dim, keepdim=False):
    """log(sum(exp(x))) over ``dim``, computed stably (subtract the max)."""
    if not input._dtype.is_floating_point:
        input = input.to(D.get_default_dtype())
    return LogSumExp.apply(input, dims=norm_dims(dim, input.ndim, "logsumexp"),
                           keepdim=keepdim)


class _BoolReduce(Node):
    differentiable = False
    fn = None

    @classmethod
    def forward(cls, ctx, be, x, dims, keepdim):
        return cls.fn(x, axis=dims, keepdims=keepdim)


class All(_BoolReduce):
    name = "all"
    fn = staticmethod(np.all)


class Any(_BoolReduce):
    name = "any"
    fn = staticmethod(np.any)


def all(input, dim=None, keepdim=False):
    return All.apply(input, dims=norm_dims(dim, input.ndim, "all"), keepdim=keepdim)


def any(input, dim=None, keepdim=False):
    return Any.apply(input, dims=norm_dims(dim, input.ndim, "any"), keepdim=keepdim)


def count_nonzero(input, dim=None):
    return sum((input != 0).to(D.int64), dim)
