"""Reference (plain NumPy) kernels for the fused losses of ``ops/loss_ops.py``.

Class-index targets over the last dim of a 2-D input (N, C): the per-row loss is
``logsumexp(x_i) - x_i[t_i]`` (max-subtracted, so it never overflows) and zero for rows whose
target is ignored. These define the answer the numba versions must reproduce.

>>> loss, lse = cross_entropy(np.zeros((1, 4)), np.array([2]), np.array([True]))
>>> float(loss[0])  # log(4)
1.3862943611198906
"""

from __future__ import annotations

import numpy as np


def cross_entropy(x, target, valid):
    """(per-row losses, per-row logsumexp) for logits ``x`` (N, C), int64 ``target`` (N,)
    already made safe (ignored rows hold 0) and the boolean mask ``valid`` (N,)."""
    n = x.shape[0]
    m = x.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]
    picked = x[np.arange(n), target]
    loss = np.where(valid, lse - picked, np.zeros((), x.dtype)).astype(x.dtype, copy=False)
    return loss, lse.astype(x.dtype, copy=False)


def cross_entropy_backward(g, x, lse, target, valid, scale):
    """d loss / dx: ``g_i * scale * (softmax(x_i) - onehot(t_i))`` on valid rows, 0 elsewhere;
    ``g`` is 0-d (mean / sum) or per row (N,)."""
    n = x.shape[0]
    p = np.exp(x - lse[:, None])
    p[np.arange(n), target] -= 1
    rows = np.broadcast_to(g, (n,)) * np.asarray(scale, x.dtype) * valid
    return (p * rows[:, None]).astype(x.dtype, copy=False)


def smooth_l1(d, beta):
    """Elementwise 0.5 d^2 / beta where |d| < beta, else |d| - beta / 2 (beta > 0)."""
    ad = np.abs(d)
    return np.where(ad < beta, 0.5 * d * d / beta, ad - 0.5 * beta).astype(d.dtype, copy=False)


def smooth_l1_backward(g, d, beta):
    """g * (d / beta where |d| < beta, else sign(d))."""
    return np.where(np.abs(d) < beta, g * d / beta, g * np.sign(d)).astype(d.dtype, copy=False)


KERNELS = {
    "smooth_l1": smooth_l1,
    "smooth_l1_backward": smooth_l1_backward,
    "cross_entropy": cross_entropy,
    "cross_entropy_backward": cross_entropy_backward,
}
