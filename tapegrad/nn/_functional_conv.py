"""Functional padding, convolution, pooling, unfold and fold (part of ``nn.functional``).

Convolution is im2col + matmul: the windows of the padded input become columns
(``ops.nn_ops.unfold_nd``, (N, C * K, L)) and one batched matrix product with the flattened
weight gives every output position. Both pieces are differentiable ops, so the vjp (and
double backward) is whatever the chain rule makes of them: no hand-written convolution
gradient.
"""

from __future__ import annotations

import math

import numpy as np

from tapegrad.ops import nn_ops
from tapegrad.ops.linalg import matmul
from tapegrad.tensor import Tensor

__all__ = ["pad", "conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
           "adaptive_avg_pool1d", "adaptive_avg_pool2d", "unfold", "fold"]


def _tuple(v, n: int, name: str) -> tuple:
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return tuple(int(v[0]) for _ in range(n))
        if len(v) != n:
            raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {tuple(v)}")
        return tuple(int(x) for x in v)
    return (int(v),) * n


# ---- padding ---------------------------------------------------------------------------
def pad(input: Tensor, pad: tuple, mode: str = "constant", value: float | None = None):
    """Pad the last dims: ``pad = (left, right, top, bottom, ...)`` starting from the last
    dim. ``mode`` is ``constant`` (negative widths crop), ``reflect``, ``replicate`` or
    ``circular``.

    >>> F.pad(tapegrad.ones(1, 2), (1, 2)).tolist()
    [[0.0, 1.0, 1.0, 0.0, 0.0]]
    """
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise RuntimeError(f"pad: Padding length must be divisible by 2, got {len(pad)}")
    k = len(pad) // 2
    if k > input.ndim:
        raise RuntimeError(f"pad: Padding length too large: {len(pad)} values pad {k} dims but "
                           f"the input of shape {tuple(input.shape)} has {input.ndim}")
    widths = [(0, 0)] * input.ndim
    for i in range(k):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if mode == "constant":
        return nn_ops.pad_constant(input, tuple(widths), 0.0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"pad: unsupported padding mode '{mode}' (use constant, "
                                  "reflect, replicate or circular)")
    from tapegrad.creation import tensor

    x = input
    for d, (lo, hi) in enumerate(widths):
        if not (lo or hi):
            continue
        n = x.shape[d]
        if lo < 0 or hi < 0:
            raise RuntimeError(f"pad: negative padding {(lo, hi)} is only supported in "
                               f"constant mode, got mode '{mode}'")
        if mode == "reflect" and (lo >= n or hi >= n):
            raise RuntimeError(f"pad: padding size should be less than the corresponding input "
                               f"dimension, but got padding ({lo}, {hi}) at dimension {d} of "
                               f"input {tuple(input.shape)}")
        if mode == "circular" and (lo > n or hi > n):
            raise RuntimeError(f"pad: padding value causes wrapping around more than once: "
                               f"padding ({lo}, {hi}) at dimension {d} of input "
                               f"{tuple(input.shape)}")
        i = np.arange(-lo, n + hi)
        if mode == "replicate":
            i = np.clip(i, 0, n - 1)
        elif mode == "reflect":
            i = np.abs(i)
            i = np.where(i > n - 1, 2 * (n - 1) - i, i)
        else:
            i = np.mod(i, n)
        x = x[(slice(None),) * d + (tensor(i, device=x.device),)]
    return x


# ---- convolution ---------------------------------------------------------------------------
def _conv(input, weight, bias, stride, padding, dilation, groups, nd: int, name: str):
    unbatched = input.ndim == nd + 1
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"{name}: Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) "
                           f"input, but got input of size: {tuple(input.shape)}")
    if unbatched:
        input = input.unsqueeze(0)
    if weight.ndim != nd + 2:
        raise RuntimeError(f"{name}: expected weight to be {nd + 2}-dimensional, but got "
                           f"weight of size {tuple(weight.shape)}")
    if input.dtype is not weight.dtype:
        raise RuntimeError(f"{name}: Input type ({input.dtype}) and weight type "
                           f"({weight.dtype}) should be the same")
    groups = int(groups)
    n, c = input.shape[:2]
    o, cg = weight.shape[:2]
    if groups <= 0:
        raise RuntimeError(f"{name}: non-positive groups is not supported, got {groups}")
    if c != cg * groups:
        raise RuntimeError(f"{name}: Given groups={groups}, weight of size "
                           f"{list(weight.shape)}, expected input{list(input.shape)} to have "
                           f"{cg * groups} channels, but got {c} channels instead")
    if o % groups:
        raise RuntimeError(f"{name}: out_channels ({o}) must be divisible by groups ({groups})")
    if bias is not None and tuple(bias.shape) != (o,):
        raise RuntimeError(f"{name}: Given weight of size {list(weight.shape)}, expected bias "
                           f"to be 1-dimensional with {o} elements, but got bias of size "
                           f"{list(bias.shape)} instead")
    ks = tuple(weight.shape[2:])
    stride = _tuple(stride, nd, "stride")
    dilation = _tuple(dilation, nd, "dilation")
    if any(s <= 0 for s in stride):
        raise RuntimeError(f"{name}: non-positive stride is not supported, got {stride}")
    if isinstance(padding, str):
        if padding == "valid":
            widths = ((0, 0),) * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 "convolutions")
            tot = [d * (k - 1) for d, k in zip(dilation, ks)]
            widths = tuple((t // 2, t - t // 2) for t in tot)
        else:
            raise ValueError(f"{name}: Invalid padding string '{padding}', should be one of "
                             "'valid' or 'same'")
    else:
        widths = tuple((p, p) for p in _tuple(padding, nd, "padding"))
    x = input
    if any(lo or hi for lo, hi in widths):
        x = nn_ops.pad_constant(x, ((0, 0), (0, 0)) + widths, 0.0)
    sp = tuple(x.shape[2:])
    eff = tuple(d * (k - 1) + 1 for d, k in zip(dilation, ks))
    if any(e > s for e, s in zip(eff, sp)):
        raise RuntimeError(f"{name}: Calculated padded input size per channel: {sp}. Kernel "
                           f"size: {eff}. Kernel size can't be greater than actual input size")
    out_sp = tuple((s - e) // st + 1 for s, e, st in zip(sp, eff, stride))
    cols = nn_ops.unfold_nd(x, ks, stride, dilation)  # (N, C * K, L)
    kk = math.prod(ks)
    # A product per sample (NumPy's batched matmul: one GEMM each, on a matrix that stays in
    # cache), written straight into the (N, O, L) layout the output has, as in PyTorch.
    if groups == 1:
        out = matmul(weight.reshape(o, cg * kk), cols)
    else:
        out = matmul(weight.reshape(groups, o // groups, cg * kk),
                     cols.reshape(n, groups, cg * kk, -1))
    out = out.reshape((n, o) + out_sp)
    if bias is not None:
        out = out + bias.reshape((1, o) + (1,) * nd)
    return out.squeeze(0) if unbatched else out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation of (N, C, L) with weight (O, C / groups, k).

    >>> F.conv1d(tapegrad.ones(1, 1, 5), tapegrad.ones(1, 1, 3)).tolist()
    [[[3.0, 3.0, 3.0]]]
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation of (N, C, H, W) with weight (O, C / groups, kh, kw);
    ``padding`` may be an int, a pair, ``"valid"`` or ``"same"``.

    >>> F.conv2d(tapegrad.ones(1, 1, 4, 4), tapegrad.ones(2, 1, 3, 3)).shape
    tapegrad.Size([1, 2, 2, 2])
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


# ---- pooling --------------------------------------------------------------------------------
def _pool_out(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling_output_shape (with its ceil-mode correction)."""
    num = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = num // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_args(name, input, kernel_size, stride, padding, dilation, ceil_mode):
    if input.ndim not in (3, 4):
        raise RuntimeError(f"{name}: Expected 3D or 4D (batch mode) tensor for input, but got "
                           f"input of size {tuple(input.shape)}")
    ks = _tuple(kernel_size, 2, "kernel_size")
    st = ks if stride is None or (isinstance(stride, (tuple, list)) and not stride) else \
        _tuple(stride, 2, "stride")
    pd = _tuple(padding, 2, "padding")
    dl = _tuple(dilation, 2, "dilation")
    for p, k, d in zip(pd, ks, dl):
        if p > (d * (k - 1) + 1) // 2:
            raise RuntimeError(f"{name}: pad should be at most half of effective kernel size, "
                               f"but got pad={p}, kernel_size={k} and dilation={d}")
    h, w = input.shape[-2:]
    out = (_pool_out(h, ks[0], st[0], pd[0], dl[0], ceil_mode),
           _pool_out(w, ks[1], st[1], pd[1], dl[1], ceil_mode))
    if out[0] <= 0 or out[1] <= 0:
        raise RuntimeError(f"{name}: Given input size: {tuple(input.shape[-3:])}. Calculated "
                           f"output size: {(input.shape[-3],) + out}. Output size is too small")
    return ks, st, pd, dl, out


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over (kh, kw) windows of (N, C, H, W) or (C, H, W). With ``return_indices`` also
    the flat H*W index of each maximum (what ``MaxUnpool2d`` takes).

    >>> F.max_pool2d(tapegrad.arange(16.).reshape(1, 1, 4, 4), 2).tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
    """
    ks, st, pd, dl, out = _pool_args("max_pool2d", input, kernel_size, stride, padding,
                                     dilation, ceil_mode)
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    if return_indices:
        idx = nn_ops.max_pool2d_indices(x, ks, st, pd, dl, out)
        vals = nn_ops.pool_gather(x, idx._data)
        if unbatched:
            vals, idx = vals.squeeze(0), idx.squeeze(0)
        return vals, idx
    vals = nn_ops.max_pool2d_values(x, ks, st, pd, dl, out)
    return vals.squeeze(0) if unbatched else vals


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over windows of (N, C, L) or (C, L)."""
    if input.ndim not in (2, 3):
        raise RuntimeError(f"max_pool1d: Expected 2D or 3D (batch mode) tensor for input, but "
                           f"got input of size {tuple(input.shape)}")
    one = lambda v: (1, _tuple(v, 1, "max_pool1d")[0])
    st = None if stride is None or (isinstance(stride, (tuple, list)) and not stride) else \
        one(stride)
    r = max_pool2d(input.unsqueeze(-2), one(kernel_size), st, (0, _tuple(padding, 1, "p")[0]),
                   one(dilation), ceil_mode, return_indices)
    if return_indices:
        return r[0].squeeze(-2), r[1].squeeze(-2)
    return r.squeeze(-2)


def _avg_divisor(size, k, s, p, n_out, count_include_pad):
    """Per output position along one dim: (window length incl. pad, length inside input)."""
    start = np.arange(n_out) * s - p
    end = np.minimum(start + k, size + p)
    full = end - start
    inside = np.minimum(end, size) - np.maximum(start, 0)
    return full if count_include_pad else inside


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Mean over (kh, kw) windows of (N, C, H, W) or (C, H, W), with PyTorch's divisor
    rules for padding and ceil mode."""
    from tapegrad.creation import tensor

    ks, st, pd, _, out = _pool_args("avg_pool2d", input, kernel_size, stride, padding, 1,
                                    ceil_mode)
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    n, c, h, w = x.shape
    need = [(o - 1) * s + k for o, s, k in zip(out, st, ks)]
    widths = ((0, 0), (0, 0), (pd[0], max(need[0] - h - pd[0], pd[0])),
              (pd[1], max(need[1] - w - pd[1], pd[1])))
    xp = nn_ops.pad_constant(x, widths, 0.0) if any(a or b for a, b in widths) else x
    cols = nn_ops.unfold_nd(xp, ks, st, (1, 1)).reshape(n, c, ks[0] * ks[1], -1).sum(2)
    if divisor_override:
        div = np.full(out, float(divisor_override))
    else:
        dh = _avg_divisor(h, ks[0], st[0], pd[0], out[0], count_include_pad)
        dw = _avg_divisor(w, ks[1], st[1], pd[1], out[1], count_include_pad)
        div = np.outer(dh, dw).astype(np.float64)
    r = (cols / tensor(div.reshape(-1), dtype=x.dtype, device=x.device)).reshape(n, c, *out)
    return r.squeeze(0) if unbatched else r


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """Mean over windows of (N, C, L) or (C, L)."""
    one = lambda v: (1, _tuple(v, 1, "avg_pool1d")[0])
    st = None if stride is None else one(stride)
    return avg_pool2d(input.unsqueeze(-2), one(kernel_size), st,
                      (0, _tuple(padding, 1, "p")[0]), ceil_mode,
                      count_include_pad).squeeze(-2)


def _adaptive_matrix(size, n_out, dtype, device):
    """(n_out, size) averaging weights: row i covers [floor(i*size/n), ceil((i+1)*size/n))."""
    from tapegrad.creation import tensor

    a = np.zeros((n_out, size))
    for i in range(n_out):
        lo = (i * size) // n_out
        hi = -((-(i + 1) * size) // n_out)
        a[i, lo:hi] = 1.0 / (hi - lo)
    return tensor(a, dtype=dtype, device=device)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed (oh, ow) whatever the input size (``None`` keeps a dim).

    >>> F.adaptive_avg_pool2d(tapegrad.ones(1, 3, 7, 5), 1).shape
    tapegrad.Size([1, 3, 1, 1])
    """
    if input.ndim not in (3, 4):
        raise RuntimeError(f"adaptive_avg_pool2d: Expected 3D or 4D tensor, but got input of "
                           f"size {tuple(input.shape)}")
    h, w = input.shape[-2:]
    oh, ow = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    oh = h if oh is None else int(oh)
    ow = w if ow is None else int(ow)
    ah = _adaptive_matrix(h, oh, input.dtype, input.device)
    aw = _adaptive_matrix(w, ow, input.dtype, input.device)
    return matmul(matmul(ah, input), aw.t())


def adaptive_avg_pool1d(input, output_size):
    n_out = output_size[0] if isinstance(output_size, (tuple, list)) else int(output_size)
    a = _adaptive_matrix(input.shape[-1], n_out, input.dtype, input.device)
    return matmul(input, a.t())


# ---- unfold / fold ----------------------------------------------------------------------------
def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding (kh, kw) blocks of (N, C, H, W) as columns: (N, C * kh * kw, L).

    >>> F.unfold(tapegrad.ones(1, 2, 3, 3), 2).shape
    tapegrad.Size([1, 8, 4])
    """
    if input.ndim not in (3, 4):
        raise RuntimeError(f"unfold: Input Error: Only 3D or 4D input Tensors are supported "
                           f"(got {input.ndim}D, shape {tuple(input.shape)})")
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    ks, dl = _tuple(kernel_size, 2, "kernel_size"), _tuple(dilation, 2, "dilation")
    pd, st = _tuple(padding, 2, "padding"), _tuple(stride, 2, "stride")
    if any(pd):
        x = nn_ops.pad_constant(x, ((0, 0), (0, 0), (pd[0], pd[0]), (pd[1], pd[1])), 0.0)
    r = nn_ops.unfold_nd(x, ks, st, dl)  # (N, C * K, L)
    return r.squeeze(0) if unbatched else r


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """The adjoint of :func:`unfold`: sum columns (N, C * kh * kw, L) into (N, C, H, W)."""
    unbatched = input.ndim == 2
    x = input.unsqueeze(0) if unbatched else input
    ks, dl = _tuple(kernel_size, 2, "kernel_size"), _tuple(dilation, 2, "dilation")
    pd, st = _tuple(padding, 2, "padding"), _tuple(stride, 2, "stride")
    osz = _tuple(output_size, 2, "output_size")
    kk = ks[0] * ks[1]
    if x.shape[1] % kk:
        raise RuntimeError(f"fold: Expected size of input's dimension 1 to be divisible by the "
                           f"product of kernel_size, but got input.size(1)={x.shape[1]} and "
                           f"kernel_size={ks}")
    shape = (x.shape[0], x.shape[1] // kk, osz[0] + 2 * pd[0], osz[1] + 2 * pd[1])
    blocks = [(s - d * (k - 1) - 1) // t + 1 for s, d, k, t in zip(shape[2:], dl, ks, st)]
    if blocks[0] * blocks[1] != x.shape[2]:
        raise RuntimeError(f"fold: Given output_size={osz}, kernel_size={ks}, dilation={dl}, "
                           f"padding={pd}, stride={st}, expected size of input's dimension 2 "
                           f"to match the calculated number of sliding blocks "
                           f"{blocks[0]} * {blocks[1]} = {blocks[0] * blocks[1]}, but got "
                           f"input.size(2)={x.shape[2]}.")
    r = nn_ops.fold_nd(x, shape, ks, st, dl)
    if any(pd):
        r = nn_ops.pad_constant(r, ((0, 0), (0, 0), (-pd[0], -pd[0]), (-pd[1], -pd[1])), 0.0)
    return r.squeeze(0) if unbatched else r
