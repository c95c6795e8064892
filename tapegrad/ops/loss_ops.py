"""Cross-entropy with class-index targets as one op (forward) and one op (its derivative).

Composed from ``log_softmax``, a gather, a mask and a mean, a cross-entropy records about ten
ops forward and twenty backward; as :class:`CrossEntropy` and :class:`CrossEntropyBackward`
it is one kernel each way (one pass per row on the numba backend), which matters on every
training step of a classifier. The math is unchanged: the forward is
``mean_i(logsumexp(x_i) - x_i[t_i])`` over the rows whose target is not ignored, its
derivative ``scale * g * (softmax(x) - onehot(t))``, and the derivative's own vjp and both
jvps are written with tapegrad ops below, so double backward and forward mode still work.

>>> cross_entropy_idx(zeros(1, 4), np.array([2]), np.array([True]), "mean").item()  # log(4)
1.3862943611198906
"""

from __future__ import annotations

import numpy as np

from tapegrad.autograd.node import Node
from tapegrad.ops.nn_ops import Pointwise, PointwiseDerivative

__all__ = ["cross_entropy_idx"]


def _consts(x, target, valid):
    """One-hot targets and the valid-row mask as constant tensors of ``x``'s dtype."""
    from tapegrad.creation import tensor

    n, c = x.shape
    onehot = np.zeros((n, c), dtype=x.dtype.np)
    onehot[np.arange(n), target] = 1
    return (tensor(onehot, device=x.device),
            tensor(valid.astype(x.dtype.np).reshape(n, 1), device=x.device))


def _softmax(x):
    from tapegrad.ops.nn_ops import softmax

    return softmax(x, 1)


class ClassTargets(Node):
    """Class-index targets as ``(safe, valid)``: int64 indices with ignored entries set to 0,
    and the mask of the others; raises IndexError naming the first out-of-range target.

    An op (on CPU tensors), not Python between ops, so that a compiled replay converts and
    checks each call's new targets (tapegrad.compile)."""

    name = "class_targets"
    differentiable = False
    multi_output = True

    @staticmethod
    def forward(ctx, be, t, n_classes, ignore_index, op):
        t = t.astype(np.int64, copy=False)
        valid = t != ignore_index
        bad = t[valid & ((t < 0) | (t >= n_classes))]
        if bad.size:
            raise IndexError(f"{op}: Target {int(bad.flat[0])} is out of bounds for "
                             f"{n_classes} classes (valid targets are 0..{n_classes - 1} or "
                             f"ignore_index={ignore_index})")
        return np.where(valid, t, 0), valid


class CrossEntropy(Node):
    """Per-row ``logsumexp(x_i) - x_i[t_i]`` (0 on ignored rows), then the reduction."""

    name = "cross_entropy"
    save = (0,)

    @staticmethod
    def forward(ctx, be, x, target, valid, reduction):
        loss, lse = be.k["cross_entropy"](x, target, valid)
        ctx.lse, ctx.target, ctx.valid, ctx.reduction = lse, target, valid, reduction
        count = int(valid.sum())
        if reduction == "none":
            return loss
        total = loss.sum(dtype=np.float64)
        if reduction == "sum":
            return np.asarray(total, dtype=x.dtype)
        with np.errstate(invalid="ignore", divide="ignore"):  # all ignored: nan, as PyTorch
            return np.asarray(total / count if count else np.nan, dtype=x.dtype)

    def vjp(self, g):
        (x,) = self.saved
        return (CrossEntropyBackward.apply(g, x, lse=self.lse, target=self.target,
                                           valid=self.valid, reduction=self.reduction),)

    def jvp(self, inputs, out, t):
        (x,) = inputs
        onehot, keep = _consts(x, self.target, self.valid)
        d = ((_softmax(x) - onehot) * keep * t).sum(1)
        if self.reduction == "none":
            return d
        return d.sum() * _scale(self.valid, self.reduction)


def _scale(valid, reduction: str) -> float:
    """The derivative's factor: 1 / the number of valid rows for a mean (nan if none), else 1.
    Counted from ``valid`` by the op that uses it, never handed on as a number: a compiled
    replay (tapegrad.compile) runs the ops again on new targets, not the Python between."""
    if reduction != "mean":
        return 1.0
    n = int(valid.sum())
    return 1.0 / n if n else float("nan")


class CrossEntropyBackward(Node):
    """``g * scale * (softmax(x) - onehot(t))`` on valid rows: the derivative above."""

    name = "cross_entropy_backward"
    save = (0, 1)

    @staticmethod
    def forward(ctx, be, g, x, lse, target, valid, reduction):
        scale = _scale(valid, reduction)
        ctx.target, ctx.valid, ctx.scale = target, valid, scale
        return be.k["cross_entropy_backward"](g, x, lse, target, valid, scale)

    def _rows(self, g, keep):
        # The per-row factor c_i = g_i * scale * valid_i as an (N, 1) tensor.
        gb = g.reshape(-1, 1) if g.ndim else g
        return gb * keep * self.scale

    def vjp(self, gg):
        g, x = self.saved
        ng, nx = self.next
        onehot, keep = _consts(x, self.target, self.valid)
        p = _softmax(x)
        grad_g = grad_x = None
        if ng:
            d = gg * (p - onehot) * keep * self.scale
            grad_g = d.sum(1) if g.ndim else d.sum()
        if nx:
            h = gg * self._rows(g, keep)
            grad_x = p * (h - (h * p).sum(1, keepdim=True))
        return grad_g, grad_x

    def jvp(self, inputs, out, tg, tx):
        g, x = inputs
        onehot, keep = _consts(x, self.target, self.valid)
        p = _softmax(x)
        r = None
        if tg is not None:
            r = self._rows(tg, keep) * (p - onehot)
        if tx is not None:
            d = self._rows(g, keep) * p * (tx - (tx * p).sum(1, keepdim=True))
            r = d if r is None else r + d
        return r


class SmoothL1(Pointwise):
    """The elementwise smooth L1 of ``d`` (= input - target): 0.5 d^2 / beta where
    |d| < beta, else |d| - beta / 2. One kernel each way; as a composite it recorded nine
    ops forward and about fifteen backward (2.7x-3.2x PyTorch's time on 256 x 1024)."""

    name = "smooth_l1"

    @staticmethod
    def forward(ctx, be, d, beta):
        ctx.beta = beta
        return be.k["smooth_l1"](d, beta)

    def derivative(self, g, d):
        return smooth_l1_backward(g, d, self.beta)


class SmoothL1Backward(PointwiseDerivative):
    """``g * (d / beta where |d| < beta, else sign(d))``; in ``d`` its derivative is
    ``g / beta`` where |d| < beta and 0 elsewhere."""

    name = "smooth_l1_backward"

    @staticmethod
    def forward(ctx, be, g, d, beta):
        ctx.beta = beta
        return be.k["smooth_l1_backward"](g, d, beta)

    def again(self, g, d):
        return smooth_l1_backward(g, d, self.beta)

    def second(self, d):
        from tapegrad.ops.unary import abs as _abs

        return (_abs(d) < self.beta).to(d.dtype) / self.beta


def smooth_l1(d, beta: float):
    """Elementwise smooth L1 of ``d`` (``beta > 0``), one op each way."""
    return SmoothL1.apply(d, beta=float(beta))


def smooth_l1_backward(g, d, beta: float):
    return SmoothL1Backward.apply(g, d, beta=float(beta))


def cross_entropy_idx(input, target, valid, reduction: str):
    """Cross-entropy of logits ``input`` (N, C) with int64 class indices ``target`` (N,),
    already range-checked with ignored rows set to 0, ``valid`` (N,) marking the rest.

    >>> cross_entropy_idx(zeros(2, 3), np.array([0, 2]), np.array([True, True]), "sum")
    tensor(2.1972)
    """
    return CrossEntropy.apply(input, target=target, valid=valid, reduction=reduction)
