"""Functional losses (part of ``nn.functional``), each with ``reduction`` in
``"none" | "mean" | "sum"`` and PyTorch's exact weighting and normalisation rules.

All are compositions of differentiable ops: the gradients, and their gradients, follow.
"""

from __future__ import annotations

import warnings

import numpy as np

from tapegrad import _dtype as D
from tapegrad.ops import nn_ops
from tapegrad.ops import unary as U
from tapegrad.ops.select import clamp, where
from tapegrad.ops.loss_ops import ClassTargets, cross_entropy_idx, smooth_l1
from tapegrad.tensor import Tensor

__all__ = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "cross_entropy", "nll_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"]


def legacy_reduction(size_average, reduce) -> str:
    """PyTorch's mapping of the deprecated ``size_average`` / ``reduce`` flags."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if size_average and reduce:
        return "mean"
    return "sum" if reduce else "none"


def _resolve(size_average, reduce, reduction):
    if size_average is not None or reduce is not None:
        return legacy_reduction(size_average, reduce)
    return reduction


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"{op}: {reduction} is not a valid value for reduction")


def _check_reduction(reduction, op, extra=()):
    if reduction not in ("none", "mean", "sum") + tuple(extra):
        raise ValueError(f"{op}: {reduction} is not a valid value for reduction")


def _warn_size(input, target, op):
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"{op}: Using a target size ({tuple(target.shape)}) that is different to "
                      f"the input size ({tuple(input.shape)}). This will likely lead to "
                      "incorrect results due to broadcasting. Please ensure they have the same "
                      "size.", stacklevel=3)


# ---- regression ---------------------------------------------------------------------------
def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """(input - target)^2, reduced.

    >>> F.mse_loss(tapegrad.tensor([1.0, 3.0]), tapegrad.tensor([0.0, 0.0])).item()
    5.0
    """
    reduction = _resolve(size_average, reduce, reduction)
    _check_reduction(reduction, "mse_loss")
    _warn_size(input, target, "mse_loss")
    d = input - target
    loss = d * d
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "mse_loss")


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """|input - target|, reduced."""
    reduction = _resolve(size_average, reduce, reduction)
    _check_reduction(reduction, "l1_loss")
    _warn_size(input, target, "l1_loss")
    loss = U.abs(input - target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "l1_loss")


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta (|d| - delta / 2), with d = input - target."""
    _check_reduction(reduction, "huber_loss")
    if delta <= 0:
        raise RuntimeError(f"huber_loss does not support non-positive values for delta, got "
                           f"{delta}")
    _warn_size(input, target, "huber_loss")
    d = input - target
    ad = U.abs(d)
    loss = where(ad < delta, 0.5 * d * d, delta * (ad - 0.5 * delta))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "huber_loss")


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - beta / 2."""
    reduction = _resolve(size_average, reduce, reduction)
    _check_reduction(reduction, "smooth_l1_loss")
    if beta < 0:
        raise RuntimeError(f"smooth_l1_loss does not support negative values for beta, got "
                           f"{beta}")
    _warn_size(input, target, "smooth_l1_loss")
    d = input - target
    if beta == 0.0:
        return _reduce(U.abs(d), reduction, "smooth_l1_loss")
    return _reduce(smooth_l1(d, beta), reduction, "smooth_l1_loss")


# ---- classification -------------------------------------------------------------------------
def _class_dim(input, op):
    if input.ndim < 1:
        raise ValueError(f"{op}: Expected 1 or more dimensions (got {input.ndim})")
    return 0 if input.ndim == 1 else 1


def _check_target(input, target, op):
    """Shape and value checks for class-index targets; returns (class dim, valid mask)."""
    cdim = _class_dim(input, op)
    if target.dtype.is_floating_point or target.dtype is D.bool:
        raise RuntimeError(f"{op}: expected scalar type Long for the class-index target but "
                           f"found {target.dtype} (target shape {tuple(target.shape)})")
    expect = tuple(input.shape[:cdim]) + tuple(input.shape[cdim + 1:])
    if input.ndim >= 2 and target.ndim >= 1 and target.shape[0] != input.shape[0]:
        raise ValueError(f"{op}: Expected input batch_size ({input.shape[0]}) to match target "
                         f"batch_size ({target.shape[0]}) (input shape {tuple(input.shape)}, "
                         f"target shape {tuple(target.shape)})")
    if tuple(target.shape) != expect:
        raise RuntimeError(f"{op}: Expected target size {list(expect)}, got "
                           f"{list(target.shape)} (input shape {tuple(input.shape)})")
    return cdim


def _target_arrays(target, n_classes, ignore_index, op):
    """(safe indices, valid mask) as host arrays (see ``ClassTargets``)."""
    if target.device.type == "cpu":
        safe, valid = ClassTargets.apply(target, n_classes=n_classes,
                                         ignore_index=ignore_index, op=op)
        return safe._data, valid._data
    return ClassTargets.forward(None, None, target._host(), n_classes, ignore_index, op)


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """-input[n, target[n]] * weight[target[n]]; ``mean`` divides by the sum of the weights
    of the targets that are not ``ignore_index``.

    >>> F.nll_loss(tapegrad.tensor([[-1.0, -2.0]]), tapegrad.tensor([1])).item()
    2.0
    """
    from tapegrad.creation import tensor

    reduction = _resolve(size_average, reduce, reduction)
    _check_reduction(reduction, "nll_loss")
    cdim = _check_target(input, target, "nll_loss")
    c = input.shape[cdim]
    if weight is not None and tuple(weight.shape) != (c,):
        raise RuntimeError(f"nll_loss: weight tensor should be defined either for all {c} "
                           f"classes or no classes but got weight tensor of shape: "
                           f"{tuple(weight.shape)}")
    safe, valid = _target_arrays(target, c, ignore_index, "nll_loss")
    dev = input.device
    idx = tensor(np.expand_dims(safe, cdim), device=dev)
    picked = input.gather(cdim, idx).squeeze(cdim)
    mask = tensor(valid.astype(input.dtype.np), device=dev)
    w = mask if weight is None else weight[tensor(safe, device=dev)] * mask
    loss = -picked * w
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    with np.errstate(invalid="ignore"):  # every target ignored: 0 / 0 = nan, as PyTorch
        return loss.sum() / w.sum()


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """log_softmax over the class dim (1, or 0 for unbatched input) followed by the
    negative log likelihood. ``target`` holds class indices (with ``ignore_index``) or,
    when it has the input's shape and a float dtype, class probabilities.

    >>> F.cross_entropy(tapegrad.zeros(1, 4), tapegrad.tensor([2])).item()  # log(4)
    1.3862943611198906
    """
    reduction = _resolve(size_average, reduce, reduction)
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0. Got: "
                         f"{label_smoothing}")
    cdim = _class_dim(input, "cross_entropy")
    c = input.shape[cdim]
    if weight is None and label_smoothing == 0.0 and input.ndim == 2 and c > 0 and \
            not target.dtype.is_floating_point and input.device.type == "cpu":
        # The common case as one fused op each way (ops/loss_ops.py), same checks first.
        _check_target(input, target, "nll_loss")
        safe, valid = _target_arrays(target, c, ignore_index, "nll_loss")
        return cross_entropy_idx(input, safe, valid, reduction)
    wshape = (c,) + (1,) * (input.ndim - cdim - 1)
    logp = nn_ops.log_softmax(input, cdim)
    if target.dtype.is_floating_point:
        if tuple(target.shape) != tuple(input.shape):
            raise RuntimeError(f"cross_entropy: with probability targets the target shape "
                               f"{tuple(target.shape)} must equal the input shape "
                               f"{tuple(input.shape)}")
        t = target * (1.0 - label_smoothing) + label_smoothing / c if label_smoothing > 0 \
            else target
        prod = logp * t if weight is None else logp * t * weight.reshape(wshape)
        if reduction == "none":
            return -prod.sum(cdim)
        if reduction == "sum":
            return -prod.sum()
        return -prod.sum() / (input.numel() / c)
    nll = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0.0:
        return nll
    from tapegrad.creation import tensor

    safe, valid = _target_arrays(target, c, ignore_index, "cross_entropy")
    keep = tensor(valid.astype(input.dtype.np), device=input.device)
    lw = logp if weight is None else logp * weight.reshape(wshape)
    smooth = -lw.sum(cdim) * keep
    if reduction == "none":
        ret = smooth
    elif reduction == "sum":
        ret = smooth.sum()
    elif weight is None:
        ret = smooth.sum() / float(valid.sum())
    else:
        ret = smooth.sum() / (weight[tensor(safe, device=input.device)] * keep).sum()
    return (1.0 - label_smoothing) * nll + ret * (label_smoothing / c)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """-(t log x + (1 - t) log(1 - x)), each log clamped at -100 as PyTorch does."""
    reduction = _resolve(size_average, reduce, reduction)
    _check_reduction(reduction, "binary_cross_entropy")
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"binary_cross_entropy: Using a target size ({tuple(target.shape)}) "
                         f"that is different to the input size ({tuple(input.shape)}) is "
                         "deprecated. Please ensure they have the same size.")
    x = input._host()
    if x.size and not ((x >= 0) & (x <= 1)).all():
        raise RuntimeError(f"binary_cross_entropy: all elements of input should be between 0 "
                           f"and 1 (input shape {tuple(input.shape)}, found "
                           f"{float(x[(x < 0) | (x > 1) | np.isnan(x)].flat[0])})")
    with np.errstate(divide="ignore"):  # log(0) = -inf is expected; the clamp handles it
        lx = clamp(U.log(input), min=-100.0)
        l1x = clamp(U.log(1.0 - input), min=-100.0)
    loss = -(target * lx + (1.0 - target) * l1x)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """BCE on logits, stable for any x:
    (1 - t) x - (1 + (pos_weight - 1) t) log_sigmoid(x)."""
    reduction = _resolve(size_average, reduce, reduction)
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"binary_cross_entropy_with_logits: Target size "
                         f"({tuple(target.shape)}) must be the same as input size "
                         f"({tuple(input.shape)})")
    # log_sigmoid(x) = min(x, 0) - log1p(exp(-|x|)) = -softplus(-x) with no threshold: the
    # same formula as one fused op (seven ops and their temporaries before).
    log_sig = -nn_ops.softplus(-input, 1.0, float("inf"))
    if pos_weight is not None:
        log_w = (pos_weight - 1.0) * target + 1.0
        loss = (1.0 - target) * input - log_w * log_sig
    else:
        loss = (1.0 - target) * input - log_sig
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """target * (log target - input) pointwise (input holds log-probabilities);
    ``batchmean`` divides the sum by the batch size."""
    reduction = _resolve(size_average, reduce, reduction)
    _check_reduction(reduction, "kl_div", ("batchmean",))
    if log_target:
        loss = U.exp(target) * (target - input)
    else:
        pos = target > 0
        safe_log = U.log(where(pos, target, 1.0))
        loss = where(pos, target * safe_log, 0.0) - target * input
    if reduction == "mean":
        warnings.warn("kl_div: reduction: 'mean' divides the total loss by both the batch size "
                      "and the support size. 'batchmean' divides only by the batch size, and "
                      "aligns with the KL div math definition.", stacklevel=2)
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, "kl_div")
