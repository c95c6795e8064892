"""Matrix products (BLAS through the backend's array module) and ``einsum``."""

from __future__ import annotations

import numpy as np

from tapegrad.autograd.node import Node
from tapegrad.ops.matmul_t import (Product, check_inner, matmul_nt, matmul_tn, reused_nt,
                                   rows_matmul)

__all__ = ["matmul", "mm", "bmm", "mv", "outer", "dot", "einsum", "addmm", "inner"]


def _mt(x):
    from tapegrad.ops.shape import transpose

    return transpose(x, -1, -2)


class MatMul(Product):
    """Batched, broadcasting product of two tensors of at least 2 dims: dA = dC B^T and
    dB = A^T dC, each one op (no transpose view to record and undo)."""

    kernel = staticmethod(lambda xp, a, b: rows_matmul(xp, a, b))
    call = staticmethod(lambda a, b: matmul(a, b))
    grad_a = staticmethod(lambda g, b: reused_nt(g, b))
    grad_b = staticmethod(lambda g, a: matmul_tn(a, g))
    summed_a = staticmethod(lambda g, b: _summed_nt(g, b))


def _summed_nt(g, b):
    """The sum over the batch of ``g @ b^T``: the gradient of a matrix ``a`` (O x K, O < K)
    applied to every matrix of a batch, a convolution's weight (K = C * kernel size).

    Computed as the transpose of the sum of ``b @ g^T``: with the longer side as the rows,
    OpenBLAS runs these products up to 40% faster (16 x 144 x 1024 by 16 x 32 x 1024 in
    float32: 4.3 ms against 7.0 ms). Of eight convolution shapes measured, it was never
    slower on the five with O < K and slower on two of the three with O > K, which keep the
    direct form (``Product.vjp``). The same ops either way, so a graph of it differentiates
    as usual.
    """
    from tapegrad.ops.shape import transpose

    t = matmul_nt(b, g)
    t = t.sum(dim=tuple(range(t.ndim - 2)))
    return transpose(t, 0, 1).contiguous()


def _check(op, a, b):
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"{op}: both arguments to matmul need to be at least 1D, but they "
                           f"are {a.ndim}D and {b.ndim}D (shapes {tuple(a.shape)} and "
                           f"{tuple(b.shape)})")
    check_inner(op, a, b, a.shape[-1], b.shape[-2] if b.ndim > 1 else b.shape[0])
    if a.ndim > 2 and b.ndim > 2:
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise RuntimeError(f"{op}: batch dimensions of shapes {tuple(a.shape)} and "
                               f"{tuple(b.shape)} cannot be broadcast") from None


def matmul(input, other):
    """Matrix product with NumPy/PyTorch rules for 1-D and batched operands.

    >>> matmul(ones(3, 4), ones(4, 5)).shape
    tapegrad.Size([3, 5])
    """
    a, b = getattr(input, "_data", None), getattr(other, "_data", None)
    if a is not None and b is not None and a.ndim == 2 and b.ndim == 2 and \
            a.shape[1] == b.shape[0] and input._dtype is other._dtype:
        return MatMul.apply2(input, other)  # the common case, checked without _check's work
    _check("matmul", input, other)
    from tapegrad.ops.shape import squeeze, unsqueeze

    if input.ndim >= 2 and other.ndim >= 2:
        return MatMul.apply(input, other)
    a = unsqueeze(input, 0) if input.ndim == 1 else input
    b = unsqueeze(other, -1) if other.ndim == 1 else other
    r = MatMul.apply(a, b)
    if other.ndim == 1:
        r = squeeze(r, -1)
    if input.ndim == 1:
        r = squeeze(r, -2 if other.ndim > 1 else -1)
    return r


def mm(input, mat2):
    """Product of two 2-D matrices."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"mm: expected 2-D tensors, got shapes {tuple(input.shape)} and "
                           f"{tuple(mat2.shape)}")
    _check("mm", input, mat2)
    return MatMul.apply(input, mat2)


def bmm(input, mat2):
    """Batched product of two 3-D tensors with equal batch size."""
    if input.ndim != 3 or mat2.ndim != 3:
        raise RuntimeError(f"bmm: expected 3-D tensors, got shapes {tuple(input.shape)} and "
                           f"{tuple(mat2.shape)}")
    if input.shape[0] != mat2.shape[0]:
        raise RuntimeError(f"bmm: batch sizes differ: shapes {tuple(input.shape)} and "
                           f"{tuple(mat2.shape)}")
    _check("bmm", input, mat2)
    return MatMul.apply(input, mat2)


def mv(input, vec):
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"mv: expected a 2-D matrix and a 1-D vector, got shapes "
                           f"{tuple(input.shape)} and {tuple(vec.shape)}")
    return matmul(input, vec)


def dot(input, tensor):
    """Inner product of two 1-D tensors (PyTorch names the second one ``tensor``)."""
    other = tensor
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"dot: 1D tensors expected, but got {input.ndim}D and {other.ndim}D "
                           f"tensors (shapes {tuple(input.shape)} and {tuple(other.shape)})")
    if input.shape[0] != other.shape[0]:
        raise RuntimeError(f"dot: inconsistent tensor size, expected tensor [{input.shape[0]}] "
                           f"and src [{other.shape[0]}] to have the same number of elements")
    return matmul(input, other)


def inner(input, other):
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    return matmul(input, _mt(other) if other.ndim > 1 else other)


def outer(input, vec2):
    """``input[:, None] * vec2[None, :]``."""
    from tapegrad.ops.shape import unsqueeze

    if input.ndim != 1 or vec2.ndim != 1:
        raise RuntimeError(f"outer: expected 1-D tensors, got shapes {tuple(input.shape)} and "
                           f"{tuple(vec2.shape)}")
    return unsqueeze(input, 1) * unsqueeze(vec2, 0)


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    r = mm(mat1, mat2)
    if alpha != 1:
        r = r * alpha
    return r + (input if beta == 1 else input * beta)


# ---- einsum ---------------------------------------------------------------------------------
def _parse(equation, shapes):
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, out = eq.split("->")
    else:
        lhs = eq
        letters = lhs.replace(",", "")
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c != "."))
    ins = lhs.split(",")
    if len(ins) != len(shapes):
        raise RuntimeError(f"einsum: equation '{equation}' names {len(ins)} operands but "
                           f"{len(shapes)} were given")
    if "." in eq:
        raise NotImplementedError("einsum: ellipsis ('...') is not supported yet")
    sizes = {}
    for sub, shp in zip(ins, shapes):
        if len(sub) != len(shp):
            raise RuntimeError(f"einsum: the number of subscripts in '{sub}' does not match "
                               f"the number of dimensions ({len(shp)}) of operand shape "
                               f"{tuple(shp)}")
        for c, s in zip(sub, shp):
            if sizes.setdefault(c, s) != s and s != 1 and sizes[c] != 1:
                raise RuntimeError(f"einsum: subscript '{c}' has size {s} in operand shape "
                                   f"{tuple(shp)} but size {sizes[c]} elsewhere")
    return ins, out, sizes


class Einsum(Node):
    name = "einsum"
    save = tuple(range(16))

    @staticmethod
    def forward(ctx, be, *ops, ins, out):
        ctx.ins, ctx.out = ins, out
        ctx.shapes = [o.shape for o in ops]
        return be.xp.einsum(",".join(ins) + "->" + out, *ops, optimize=len(ops) > 2)

    def vjp(self, g):
        from tapegrad.ops.shape import broadcast_to, reshape

        saved = self.saved[:len(self.ins)]
        grads = []
        for i, (sub, shp) in enumerate(zip(self.ins, self.shapes)):
            if self.next[i] is None:
                grads.append(None)
                continue
            uniq = "".join(dict.fromkeys(sub))  # 'ii' -> 'i': a repeated subscript
            others = [(s, t) for j, (s, t) in enumerate(zip(self.ins, saved)) if j != i]
            have = set(self.out).union(*[set(s) for s, _ in others])
            keep = "".join(c for c in uniq if c in have)
            subs = [self.out] + [s for s, _ in others]
            r = einsum(",".join(subs) + "->" + keep, g, *[t for _, t in others])
            if keep != uniq:
                full = tuple(shp[sub.index(c)] if c in keep else 1 for c in uniq)
                r = broadcast_to(reshape(r, full), tuple(shp[sub.index(c)] for c in uniq))
            if uniq != sub:
                r = _spread_diagonal(r, uniq, sub, shp, set("".join(self.ins) + self.out))
            grads.append(r)
        return tuple(grads)

    def jvp(self, inputs, out, *ts):
        eq = ",".join(self.ins) + "->" + self.out
        r = None
        for i, t in enumerate(ts):
            if t is None:
                continue
            ops = list(inputs)
            ops[i] = t
            d = einsum(eq, *ops)
            r = d if r is None else r + d
        return r


def _spread_diagonal(r, uniq, sub, shape, used):
    """Place ``r`` (subscripts ``uniq``) on the diagonals of an operand written ``sub`` with
    repeated subscripts: ``r[i]`` -> ``r[i] * eye[i, j]`` for ``'ii'``, and so on."""
    import string

    from tapegrad.creation import eye

    fresh = [c for c in string.ascii_letters if c not in used]
    new_sub, eyes, seen = list(sub), [], set()
    for pos, c in enumerate(sub):
        if c in seen:
            f = fresh.pop()
            new_sub[pos] = f
            eyes.append((c + f, eye(shape[pos], dtype=r.dtype, device=r.device)))
        seen.add(c)
    eq = ",".join([uniq] + [e for e, _ in eyes]) + "->" + "".join(new_sub)
    return einsum(eq, r, *[t for _, t in eyes])


def einsum(equation, *operands):
    """Einstein summation, e.g. ``einsum('ij,jk->ik', a, b)``."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    ins, out, _ = _parse(equation, [tuple(o.shape) for o in operands])
    return Einsum.apply(*operands, ins=ins, out=out)
