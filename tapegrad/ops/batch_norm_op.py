"""Training-mode batch norm as one op (forward) and one op (its derivative).

Composed from tensor ops, a batch norm records about ten ops forward and twenty backward,
each a full pass over the activations; :class:`BatchNorm` and :class:`BatchNormBackward`
are one kernel each way (``be.k["batch_norm"]``, ``be.k["batch_norm_backward"]``: on the
numba backend, two sweeps per channel for the statistics and one over the array). As with
layer norm (``ops/norm_ops.py``), the math is stated once more with tapegrad's ops
(:func:`_grads`), and the rules that need a graph use that statement: the derivative's vjp
(double backward) differentiates it, the jvp is written with it, and with forward-mode AD
on the vjp runs it instead of the kernel.

>>> y, mean, var = batch_norm(tensor([[1.0], [3.0]]), None, None, 0.0)
>>> y.tolist(), mean.tolist(), var.tolist()
([[-1.0], [1.0]], [2.0], [1.0])
"""

from __future__ import annotations

import math

from tapegrad.autograd.node import Node
from tapegrad.ops.norm_ops import FusedNorm, _d_xhat, _vec, composite_vjp, normalized_over

__all__ = ["batch_norm"]


def _ncl(xp, a):
    """``a`` (N, C, *spatial) as a C-contiguous (N, C, L) array."""
    return xp.ascontiguousarray(a.reshape(a.shape[0], a.shape[1], math.prod(a.shape[2:])))


def _dims(x):
    return (0,) + tuple(range(2, x.ndim))


def _per_channel(p, x):
    return p.reshape((1, -1) + (1,) * (x.ndim - 2))


def _grads(g, x, w, eps):
    """``(dx, dw, db)`` for the output gradient ``g``, with tapegrad ops."""
    dims = _dims(x)
    xhat, rstd = normalized_over(x, dims, eps)
    dx = _d_xhat(g if w is None else g * _per_channel(w, x), xhat, rstd, dims)
    return dx, (g * xhat).sum(dims), g.sum(dims)


class BatchNorm(FusedNorm):
    """``(x - mean) / sqrt(var + eps) * w + b`` per channel (dim 1) of ``x``, with the
    batch's mean and biased variance over every other dim; inputs ``(x, w, b)``, ``w`` and
    ``b`` optional (None). The statistics are kept for the running averages."""

    name = "native_batch_norm"

    @staticmethod
    def forward(ctx, be, x, w, b, eps, stats):
        xp = be.xp
        y, mean, var, ctx.rstd = be.k["batch_norm"](_ncl(xp, x), _vec(xp, w), _vec(xp, b),
                                                   eps)
        ctx.mean, ctx.eps = mean, eps
        stats.extend((mean, var))  # (for the running statistics, recorded or not)
        return y.reshape(x.shape)

    def grads(self, g, x, w):
        return _grads(g, x, w, self.eps)

    def backward_attrs(self) -> dict:
        return {"eps": self.eps}

    def jvp(self, inputs, out, tx, tw, tb):
        x, w, _ = inputs
        dims = _dims(x)
        xhat, rstd = normalized_over(x, dims, self.eps)
        r = None
        if tx is not None:
            r = _d_xhat(tx, xhat, rstd, dims)
            if w is not None:
                r = r * _per_channel(w, x)
        if tw is not None:
            t = xhat * _per_channel(tw, x)
            r = t if r is None else r + t
        if tb is not None:
            t = _per_channel(tb, x).expand(*x.shape)
            r = t if r is None else r + t
        return r


class BatchNormBackward(Node):
    """``(dx, dw, db)`` of :class:`BatchNorm` from its inputs ``(g, x, w)``, one kernel
    (``dw`` and ``db`` come out even without a weight or bias; the caller drops them)."""

    name = "native_batch_norm_backward"
    multi_output = True
    save = (0, 1, 2)

    @staticmethod
    def forward(ctx, be, g, x, w, mean, rstd, eps):
        ctx.eps = eps
        xp = be.xp
        dx, dw, db = be.k["batch_norm_backward"](_ncl(xp, g), _ncl(xp, x), _vec(xp, w), mean,
                                                  rstd)
        return dx.reshape(x.shape), dw, db

    def vjp(self, ggx, ggw, ggb):
        return composite_vjp(self, lambda g, x, w: _grads(g, x, w, self.eps), (ggx, ggw, ggb))


BatchNorm.backward_op = BatchNormBackward


def batch_norm(input, weight=None, bias=None, eps: float = 1e-5):
    """Training-mode batch norm of ``input`` (N, C, ...) with the batch statistics (shapes
    already checked by ``F.batch_norm``). Returns ``(y, mean, var)``: the output and the
    batch mean and biased variance per channel, as arrays of the compute dtype (for the
    running statistics; no gradient flows through them)."""
    stats: list = []
    y = BatchNorm.apply(input, weight, bias, eps=eps, stats=stats)
    return y, stats[0], stats[1]
