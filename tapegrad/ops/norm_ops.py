"""Layer norm as one op (forward) and one op (its derivative).

Composed from tensor ops (mean, subtract, square, mean, add, rsqrt, multiply, scale, shift)
a layer norm records about ten ops forward and twenty backward; as :class:`LayerNorm` and
:class:`LayerNormBackward` it is one kernel each way (``be.k["layer_norm"]``,
``be.k["layer_norm_backward"]``: one loop over the rows on the numba backend). The math is
stated once more below with tapegrad's differentiable ops, and that statement is what the
rules that need a graph use: the derivative's own vjp (double backward) differentiates it,
the jvp (forward mode) is written with it, and while forward-mode AD is on the vjp runs it
instead of the kernel, so tangents ride on the gradients. The kernels are an optimisation
underneath, never a second definition of the derivative. :class:`FusedNorm` and
:func:`composite_vjp` hold what layer norm and batch norm (``ops/batch_norm_op.py``) share.

>>> layer_norm(tensor([[1.0, 3.0]]), 1, None, None, 0.0)
tensor([[-1.,  1.]])
"""

from __future__ import annotations

import math

from tapegrad.autograd import hooks_state as _hs
from tapegrad.autograd.grad_mode import STATE as _GRAD
from tapegrad.autograd.node import Node

__all__ = ["layer_norm", "layer_norm_backward"]


def _flat(xp, a, k):
    """``a`` as C-contiguous (rows, features), the last ``k`` dims being the features (the
    fast kernels take only those: a broadcast gradient or a transposed input is copied)."""
    lead = a.shape[:a.ndim - k]
    return xp.ascontiguousarray(a.reshape(math.prod(lead), math.prod(a.shape[a.ndim - k:])))


def _vec(xp, p):
    return None if p is None else xp.ascontiguousarray(p.reshape(-1))


# ---- the math with tapegrad ops (for the rules that need a graph) ----------------------------
def _normalized(x, k, eps):
    """``(xhat, rstd, dims)``: ``x`` centred and scaled over its last ``k`` dims."""
    dims = tuple(range(x.ndim - k, x.ndim))
    return normalized_over(x, dims, eps) + (dims,)


def normalized_over(x, dims, eps):
    """``(xhat, rstd)``: ``x`` centred and scaled over ``dims`` (biased variance)."""
    from tapegrad.ops.unary import rsqrt

    xc = x - x.mean(dims, keepdim=True)
    rstd = rsqrt((xc * xc).mean(dims, keepdim=True) + eps)
    return xc * rstd, rstd


def _d_xhat(t, xhat, rstd, dims):
    """The derivative of ``xhat`` along ``t`` (and, being self-adjoint, its transpose)."""
    return rstd * (t - t.mean(dims, keepdim=True) - xhat * (t * xhat).mean(dims, keepdim=True))


def _grads(g, x, w, k, eps):
    """``(dx, dw, db)`` for the output gradient ``g``, with tapegrad ops."""
    xhat, rstd, dims = _normalized(x, k, eps)
    dx = _d_xhat(g if w is None else g * w, xhat, rstd, dims)
    lead = tuple(range(x.ndim - k))
    gx = g * xhat
    return dx, (gx.sum(lead) if lead else gx), (g.sum(lead) if lead else g)


# ---- the primitives --------------------------------------------------------------------------
class FusedNorm(Node):
    """A norm of inputs ``(x, w, b)`` computed by one kernel that leaves the statistics
    ``mean`` and ``rstd`` on the node. Its vjp runs the fused derivative ``backward_op``
    (with forward-mode AD on: ``grads``, the derivative stated with tapegrad ops)."""

    save = (0, 1)
    backward_op: type = None

    def grads(self, g, x, w):  # pragma: no cover - abstract
        """``(dx, dw, db)`` with tapegrad ops."""
        raise NotImplementedError

    def backward_attrs(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def release(self) -> None:
        super().release()
        self.__dict__.pop("mean", None)
        self.__dict__.pop("rstd", None)

    def vjp(self, g):
        x, w = self.saved
        if _hs.DUAL:  # (tangents need the composite; a compile trace records the fused op)
            grads = self.grads(g, x, w)
        else:
            grads = self.backward_op.apply(g, x, w, mean=self.mean, rstd=self.rstd,
                                           **self.backward_attrs())
        return tuple(None if e is None else d for d, e in zip(grads, self.next))


class LayerNorm(FusedNorm):
    """``(x - mean) / sqrt(var + eps) * w + b`` over the last ``k`` dims of ``x``; the
    inputs are ``(x, w, b)`` with ``w`` and ``b`` optional (None)."""

    name = "native_layer_norm"

    @staticmethod
    def forward(ctx, be, x, w, b, k, eps):
        y, ctx.mean, ctx.rstd = be.k["layer_norm"](_flat(be.xp, x, k), _vec(be.xp, w),
                                                 _vec(be.xp, b), eps)
        ctx.k, ctx.eps = k, eps
        return y.reshape(x.shape)

    def grads(self, g, x, w):
        return _grads(g, x, w, self.k, self.eps)

    def backward_attrs(self) -> dict:
        return {"k": self.k, "eps": self.eps}

    def jvp(self, inputs, out, tx, tw, tb):
        x, w, _ = inputs
        xhat, rstd, dims = _normalized(x, self.k, self.eps)
        r = None
        if tx is not None:
            r = _d_xhat(tx, xhat, rstd, dims)
            if w is not None:
                r = r * w
        if tw is not None:
            r = xhat * tw if r is None else r + xhat * tw
        if tb is not None:
            r = tb.expand(*x.shape) if r is None else r + tb
        return r


class LayerNormBackward(Node):
    """``(dx, dw, db)`` of :class:`LayerNorm` from its inputs ``(g, x, w)``, one kernel.

    ``dw`` and ``db`` come out even when the layer has no weight or bias (the caller drops
    them). The vjp differentiates :func:`_grads` re-run on the saved inputs."""

    name = "native_layer_norm_backward"
    multi_output = True
    save = (0, 1, 2)

    @staticmethod
    def forward(ctx, be, g, x, w, mean, rstd, k, eps):
        ctx.k, ctx.eps = k, eps
        xp = be.xp
        dx, dw, db = be.k["layer_norm_backward"](_flat(xp, g, k), _flat(xp, x, k), _vec(xp, w),
                                                  mean, rstd)
        ns = x.shape[x.ndim - k:]
        return dx.reshape(x.shape), dw.reshape(ns), db.reshape(ns)

    def vjp(self, ggx, ggw, ggb):
        return composite_vjp(self, lambda g, x, w: _grads(g, x, w, self.k, self.eps),
                             (ggx, ggw, ggb))


LayerNorm.backward_op = LayerNormBackward


def composite_vjp(node, grads, ggs) -> tuple:
    """The vjp of a fused derivative ``node`` (inputs ``(g, x, w)``, outputs ``(dx, dw,
    db)``): ``grads``, its statement with tapegrad ops, re-run on the saved inputs and
    differentiated with ``autograd.grad`` for the output gradients ``ggs``."""
    from tapegrad.autograd.engine import grad
    from tapegrad.autograd.grad_mode import enable_grad
    from tapegrad.ops.shape import view_as

    inputs = list(node.saved)
    wanted = [i for i, e in enumerate(node.next) if e is not None]
    create = _GRAD.grad_enabled
    with enable_grad():
        for i in wanted:
            # With a graph wanted, a fresh view per input: the inner grad stops there
            # while the result stays connected to the input's own history.
            a = inputs[i]
            inputs[i] = view_as(a, a) if create else a.detach().requires_grad_()
        outs = grads(*inputs)
        pairs = [(o, gg) for o, gg in zip(outs, ggs) if gg is not None and o.requires_grad]
        full = [None, None, None]
        if pairs:
            res = grad([o for o, _ in pairs], [inputs[i] for i in wanted],
                       [gg for _, gg in pairs], create_graph=create, allow_unused=True)
            for i, r in zip(wanted, res):
                full[i] = r
    return tuple(full)


# ---- public functions ------------------------------------------------------------------------
def layer_norm(input, k: int, weight=None, bias=None, eps: float = 1e-5):
    """Layer norm of ``input`` over its last ``k`` dims (shapes already checked by
    ``F.layer_norm``); ``weight`` and ``bias`` have the shape of those dims, or are None.

    >>> layer_norm(tensor([[1.0, 2.0, 3.0]]), 1).shape
    tapegrad.Size([1, 3])
    """
    return LayerNorm.apply(input, weight, bias, k=k, eps=eps)


def layer_norm_backward(grad, input, weight, mean, rstd, k: int, eps: float):
    """``(d input, d weight, d bias)`` of :func:`layer_norm` for the output gradient ``grad``,
    given the forward's per-row ``mean`` and ``rstd`` arrays."""
    return LayerNormBackward.apply(grad, input, weight, mean=mean, rstd=rstd, k=k, eps=eps)
