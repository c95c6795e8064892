"""Products with one operand transposed, ``a @ b^T`` and ``a^T @ b``, as single ops.

They are what the vjp of a matrix product needs (dA = dC B^T, dB = A^T dC) and what
``nn.functional.linear`` computes (x W^T). As one op each, instead of a transpose view plus a
product, a backward step records and runs half as many ops; BLAS reads the transposed operand
in place either way. The two are closed under differentiation, so double backward stays
within this pair and ``matmul``.

>>> matmul_nt(ones(2, 3), ones(4, 3)).shape
tapegrad.Size([2, 4])
"""

from __future__ import annotations

import math

import numpy as np

from tapegrad import _device
from tapegrad.autograd.grad_mode import STATE as _GRAD
from tapegrad.autograd.node import Node, plain_tensor
from tapegrad.backends.aligned import empty as _aligned_empty
# (A module-level import: inside a vjp, an import statement costs ~1 us per call.)
from tapegrad.ops.elementwise import sum_to

__all__ = ["Product", "matmul_nt", "matmul_tn", "reused_nt", "rows_matmul", "fold_rows"]


def _swap(x, xp):
    # The array's own method: ``xp.swapaxes`` goes through NumPy's Python-level dispatch
    # wrapper, which costs more than the view itself (NumPy and CuPy arrays both have it).
    return x.swapaxes(-1, -2)


def rows_matmul(xp, a, b):
    """``xp.matmul(a, b)``, with the leading dims of a C-contiguous ``a`` of 3 or more dims
    folded into the rows of one product when ``b`` is a matrix.

    NumPy multiplies a stack by a matrix one matrix at a time. A linear layer on a batch of
    sequences, (8, 64, 128) by (128, 384) in float32, took 25-28% longer as eight BLAS calls
    of 64 rows than as one of 512 rows here (its backward's product with the weight 10-13%);
    PyTorch folds them too. Same C-contiguous result, same shape.

    >>> rows_matmul(np, np.ones((2, 3, 4)), np.ones((4, 5))).shape
    (2, 3, 5)
    """
    if a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous:  # (a 2-D a: one test)
        lead = a.shape[:-1]
        r = xp.matmul(a.reshape(_prod(lead), a.shape[-1]), b)
        return r.reshape(lead + (b.shape[1],))
    return xp.matmul(a, b)


def fold_rows(t):
    """Tensor ``t`` as a matrix whose rows run over all its leading dims (the tapegrad-op
    counterpart of ``rows_matmul``'s fold; the row count spelled out, as ``reshape(-1, 0)``
    of an empty tensor is ambiguous)."""
    s = t._data.shape
    return t.reshape(_prod(s[:-1]), s[-1])


def _tn_left(a, b, xp):
    # For a batched ``b``: a matrix applied to every matrix of a batch (a convolution's
    # weight, in its input's gradient) is transposed into a contiguous copy once: BLAS runs
    # ~10% faster on it than on the transposed view, and the copy is one small matrix
    # against a batch of products.
    at = a.swapaxes(-1, -2)
    return xp.ascontiguousarray(at) if a.ndim == 2 else at


class Product(Node):
    """A matrix product of two tensors over their last two dims (batch dims broadcast).

    Subclasses say how to compute it (``kernel``), how to call it on tensors (``call``) and
    what each input's gradient is (``grads``); the rest is shared. A product is bilinear, so
    its tangent is ``call(ta, b) + call(a, tb)``.
    """

    name = "matmul"
    save = ((0, 1), (1, 0))  # each factor only for the other's gradient
    summed_a = None  # the gradient of a 2-D ``a`` broadcast over a batch, if set
    # Whether b's gradient for a matrix b and a batched a is grad_b on a and g with their
    # leading dims folded into rows (true for a @ b and a @ b^T, whose rows are a's rows).
    rows_b = True

    @classmethod
    def forward(cls, ctx, be, a, b):
        ctx.shapes = (a.shape, b.shape)
        return cls.kernel(be.xp, a, b)

    def vjp(self, g):
        a, b = self.saved
        sa, sb = self.shapes
        na, nb = self.next
        # sum_to only where batch dims were broadcast (a call saved per product otherwise).
        ga = gb = None
        if na is not None:
            if len(sb) > 2 and len(sa) == 2 and sa[0] < sa[1] and self.summed_a is not None:
                ga = self.summed_a(g, b)  # a matrix applied across a batch (see MatMul)
            else:
                ga = self.grad_a(g, b)
                if ga._data.shape != sa:
                    ga = sum_to(ga, sa)
        if nb is not None:
            if len(sb) == 2 and len(sa) > 2 and self.rows_b:
                # A matrix b applied to a batch: its gradient sums over the batch, which is
                # one product of the batch folded into rows (not one product per matrix,
                # then a sum).
                gb = self.grad_b(fold_rows(g), fold_rows(a))
            else:
                gb = self.grad_b(g, a)
                if gb._data.shape != sb:
                    gb = sum_to(gb, sb)
        return ga, gb

    def jvp(self, inputs, out, ta, tb):
        a, b = inputs
        call = type(self).call
        r = None if ta is None else call(ta, b)
        if tb is not None:
            d = call(a, tb)
            r = d if r is None else r + d
        return r


def _mm(a, b):
    return _linalg.matmul(a, b)  # (bound at the end of this module: linalg imports it)


class MatMulNT(Product):
    """``a @ b^T``: dA = dC B, dB = dC^T A."""

    kernel = staticmethod(lambda xp, a, b: rows_matmul(xp, a, _swap(b, xp)))
    call = staticmethod(lambda a, b: matmul_nt(a, b))
    grad_a = staticmethod(lambda g, b: _mm(g, b))
    grad_b = staticmethod(lambda g, a: matmul_tn(g, a))


class MatMulTN(Product):
    """``a^T @ b``: dA = B dC^T, dB = A dC."""

    rows_b = False  # (a^T's rows are a's columns)
    kernel = staticmethod(lambda xp, a, b: xp.matmul(
        a.swapaxes(-1, -2) if b.ndim == 2 else _tn_left(a, b, xp), b))
    call = staticmethod(lambda a, b: matmul_tn(a, b))
    grad_a = staticmethod(lambda g, b: matmul_nt(b, g))
    grad_b = staticmethod(lambda g, a: _mm(a, g))


def _check(op, a, b, ka, kb):
    if a.ndim < 2 or b.ndim < 2:
        raise RuntimeError(f"{op}: both arguments need at least 2 dims, got shapes "
                           f"{tuple(a.shape)} and {tuple(b.shape)}")
    check_inner(op, a, b, ka, kb)


def check_inner(op, a, b, ka, kb) -> None:
    """Raise naming both shapes when the contracted sizes ``ka``/``kb`` or dtypes differ."""
    if ka != kb:
        raise RuntimeError(f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be "
                           f"multiplied ({ka} != {kb})")
    if a.dtype is not b.dtype:
        raise RuntimeError(f"{op}: expected both operands to have the same dtype, but got "
                           f"{a.dtype} and {b.dtype} (shapes {tuple(a.shape)} and "
                           f"{tuple(b.shape)})")


def matmul_nt(a, b):
    """``a @ b^T`` (``b^T`` swaps the last two dims of ``b``).

    >>> matmul_nt(ones(2, 3), ones(4, 3)).shape
    tapegrad.Size([2, 4])
    """
    sa, sb = a._data.shape, b._data.shape
    if len(sa) < 2 or len(sb) < 2 or sa[-1] != sb[-1] or a._dtype is not b._dtype:
        _check("matmul", a, b, sa[-1] if sa else None, sb[-1] if sb else None)
    return MatMulNT.apply2(a, b)


def matmul_tn(a, b):
    """``a^T @ b`` (``a^T`` swaps the last two dims of ``a``).

    >>> matmul_tn(ones(3, 2), ones(3, 4)).shape
    tapegrad.Size([2, 4])
    """
    sa, sb = a._data.shape, b._data.shape
    if len(sa) < 2 or len(sb) < 2 or sa[-2] != sb[-2] or a._dtype is not b._dtype:
        _check("matmul", a, b, sa[-2] if len(sa) > 1 else None,
               sb[-2] if len(sb) > 1 else None)
    return MatMulTN.apply2(a, b)


def reused_nt(g, b):
    """``matmul_nt(g, b)`` in a vjp, faster when a plain backward pass meets ``b`` again.

    BLAS multiplies by a transposed operand markedly slower than by a contiguous one when
    the other operand has few rows (here, 32 x 128 times 128 x 128 in float32: 26 us
    against 15 us). The gradient of ``h @ W`` with respect to ``h`` is ``g @ W^T``, and a
    recurrent net meets the same ``W`` at every time step: from its second use in one
    backward pass, ``W^T`` is copied once (13 us) and multiplied as is. The copy lives only
    as long as the pass (``grad_mode.STATE.transposes``, set by the engine), is keyed by the
    array and checked against the tensor's version, and is never used while a graph is
    being built (``create_graph``), where the product must stay differentiable in ``b``.
    """
    cache = _GRAD.transposes
    x = b._data
    if cache is None or _GRAD.grad_enabled or type(x) is not _ndarray or x.ndim != 2 or \
            b._device is not _CPU or g._device is not _CPU or g._data.ndim != 2:
        return matmul_nt(g, b)
    key = id(x)
    v = b._vc[0]
    e = cache.get(key)
    if e is None or e[0] is not x or e[1] != v:
        cache[key] = (x, v, None)  # first use in this pass: no copy yet
        return matmul_nt(g, b)
    xt = e[2]
    if xt is None:
        xt = _aligned_empty(x.shape[::-1], x.dtype)  # (BLAS: see backends/aligned.py)
        xt[...] = x.T
        cache[key] = (x, v, xt)
    gd = g._data
    if gd.shape[1] != x.shape[1] or gd.dtype is not x.dtype:
        return matmul_nt(g, b)  # (raises, naming both shapes)
    return plain_tensor(np.matmul(gd, xt))


_ndarray = np.ndarray
_CPU = _device.CPU
_prod = math.prod

# linalg imports this module first thing; ``_mm`` reads ``matmul`` from it at call time (an
# import statement inside a vjp costs about 1 us per call).
from tapegrad.ops import linalg as _linalg  # noqa: E402
