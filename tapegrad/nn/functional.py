"""``tapegrad.nn.functional``: the stateless forms of every layer, activation and loss.

>>> import tapegrad.nn.functional as F
>>> F.relu(tapegrad.tensor([-1.0, 2.0]))
tensor([0., 2.])

Activations, linear maps, dropout, embedding and normalisation live here; padding,
convolution and pooling in ``_functional_conv.py``; losses in ``_functional_loss.py``. All
are re-exported from this module.
"""

from __future__ import annotations

import warnings

import numpy as np

from tapegrad.autograd.node import bump_inplace
from tapegrad import _dtype as D
from tapegrad import backends
from tapegrad.autograd.grad_mode import no_grad
from tapegrad.nn._functional_conv import (adaptive_avg_pool1d, adaptive_avg_pool2d,  # noqa: F401
                                          avg_pool1d, avg_pool2d, conv1d, conv2d, fold,
                                          max_pool1d, max_pool2d, pad, unfold)
from tapegrad.nn._functional_loss import (binary_cross_entropy,  # noqa: F401
                                          binary_cross_entropy_with_logits, cross_entropy,
                                          huber_loss, kl_div, l1_loss, mse_loss, nll_loss,
                                          smooth_l1_loss)
from tapegrad.ops import batch_norm_op, embedding_op, nn_ops, norm_ops
from tapegrad.ops import unary as U
from tapegrad.ops._util import norm_dim
from tapegrad.ops.elementwise import minimum
from tapegrad.ops.select import clamp, where
from tapegrad.ops.linalg import einsum, matmul
from tapegrad.ops.matmul_t import matmul_nt
from tapegrad.ops.linear_op import linear_bias
from tapegrad.tensor import Tensor

__all__ = [
    "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "gelu", "tanh", "sigmoid",
    "softmax", "log_softmax", "softmin", "softplus", "softsign", "elu", "selu", "celu", "silu",
    "mish", "hardtanh", "hardsigmoid", "hardswish", "logsigmoid", "tanhshrink", "threshold",
    "glu", "prelu", "linear", "bilinear", "dropout", "dropout1d", "dropout2d", "embedding",
    "one_hot", "layer_norm", "batch_norm", "group_norm", "normalize", "cosine_similarity",
    "pairwise_distance", "pad", "conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d",
    "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "unfold", "fold",
    "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "cross_entropy", "nll_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
]


def _inplace(input, fn, op, saves_input=True):
    """``fn(input)`` written back into ``input``. When the graph of ``fn`` would save the
    input itself, it runs on a copy so that overwriting ``input`` leaves backward intact."""
    from tapegrad.autograd.grad_mode import is_grad_enabled
    from tapegrad.ops.inplace import check_inplace, commit

    check_inplace(input, op)
    src = input.clone() if saves_input and input.requires_grad and is_grad_enabled() else input
    return commit(input, fn(src), op)


# ---- activations ---------------------------------------------------------------------------
def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0).

    >>> F.relu(tapegrad.tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    return _inplace(input, U.relu, "relu_", saves_input=False) if inplace else U.relu(input)


def relu_(input: Tensor) -> Tensor:
    return relu(input, inplace=True)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    f = lambda x: nn_ops.leaky_relu(x, negative_slope)
    return _inplace(input, f, "leaky_relu_") if inplace else f(input)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return leaky_relu(input, negative_slope, inplace=True)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) (``approximate="tanh"``: the tanh approximation).

    >>> F.gelu(tapegrad.tensor([0.0])).tolist()
    [0.0]
    """
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"gelu: approximate argument must be either none or tanh, got "
                           f"'{approximate}'")
    return nn_ops.gelu(input, approximate)


def tanh(input: Tensor) -> Tensor:
    return U.tanh(input)


def sigmoid(input: Tensor) -> Tensor:
    return U.sigmoid(input)


def _softmax_dim(ndim: int) -> int:
    warnings.warn("Implicit dimension choice for softmax has been deprecated. Change the call "
                  "to include dim=X as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def _softmax_input(input, dim, dtype, op):
    if dim is None:
        dim = _softmax_dim(input.ndim)
    if dtype is not None:
        input = input.to(dtype)
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"{op}: not implemented for integer dtype {input.dtype} (shape "
                           f"{tuple(input.shape)}); pass dtype= or convert with .float()")
    return input, norm_dim(dim, input.ndim, op) if input.ndim else 0


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``.

    >>> F.softmax(tapegrad.zeros(2), dim=0).tolist()
    [0.5, 0.5]
    """
    x, d = _softmax_input(input, dim, dtype, "softmax")
    if x.ndim == 0:
        return nn_ops.softmax(x.reshape(1), 0).reshape(())
    return nn_ops.softmax(x, d)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype=None) -> Tensor:
    """x - logsumexp(x) along ``dim``, computed stably."""
    x, d = _softmax_input(input, dim, dtype, "log_softmax")
    if x.ndim == 0:
        return nn_ops.log_softmax(x.reshape(1), 0).reshape(())
    return nn_ops.log_softmax(x, d)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype=None) -> Tensor:
    return softmax(-input if dtype is None else -input.to(dtype), dim)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, linear above ``threshold``."""
    return nn_ops.softplus(input, beta, threshold)


def softsign(input: Tensor) -> Tensor:
    return input / (1.0 + U.abs(input))


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), exact for any x."""
    return minimum(input, input.new_zeros(())) - U.log1p(U.exp(-U.abs(input)))


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, else alpha * (exp(x) - 1)."""
    # expm1 of min(x, 0): the branch not taken must stay finite or its zero gradient
    # would turn into 0 * inf = nan.
    f = lambda x: where(x > 0, x, alpha * U.expm1(clamp(x, max=0.0)))
    return _inplace(input, f, "elu_") if inplace else f(input)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    f = lambda x: where(x > 0, x, alpha * U.expm1(clamp(x, max=0.0) / alpha))
    return _inplace(input, f, "celu_") if inplace else f(input)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    f = lambda x: _SELU_SCALE * elu(x, _SELU_ALPHA)
    return _inplace(input, f, "selu_") if inplace else f(input)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x)."""
    f = nn_ops.silu  # (one fused op each way; the composite ran ~10 ops backward)
    return _inplace(input, f, "silu_") if inplace else f(input)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    f = lambda x: x * U.tanh(nn_ops.softplus(x))
    return _inplace(input, f, "mish_") if inplace else f(input)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """x clipped to [min_val, max_val]; gradient 1 strictly inside, as PyTorch."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val "
                         f"({max_val})")
    f = lambda x: where(x <= min_val, min_val, where(x >= max_val, max_val, x))
    return _inplace(input, f, "hardtanh_") if inplace else f(input)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(input, 0.0, 6.0, inplace)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    f = lambda x: hardtanh(x + 3.0, 0.0, 6.0) / 6.0
    return _inplace(input, f, "hardsigmoid_") if inplace else f(input)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    f = lambda x: x * hardtanh(x + 3.0, 0.0, 6.0) / 6.0
    return _inplace(input, f, "hardswish_") if inplace else f(input)


def tanhshrink(input: Tensor) -> Tensor:
    return input - U.tanh(input)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else value."""
    f = lambda x: where(x > threshold, x, value)
    return _inplace(input, f, "threshold_") if inplace else f(input)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """a * sigmoid(b) where (a, b) are the halves of ``input`` along ``dim``."""
    d = norm_dim(dim, input.ndim, "glu")
    if input.shape[d] % 2:
        raise RuntimeError(f"glu: Halving dimension must be even, but dimension {d} is size "
                           f"{input.shape[d]}")
    a, b = input.chunk(2, d)
    return a * U.sigmoid(b)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, else weight * x (weight per channel, dim 1)."""
    w = weight
    if weight.numel() > 1 and input.ndim >= 2:
        w = weight.reshape((1, -1) + (1,) * (input.ndim - 2))
    return where(input > 0, input, w * input)


# ---- linear maps ----------------------------------------------------------------------------
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, with weight of shape (out_features, in_features).

    >>> F.linear(tapegrad.ones(2, 3), tapegrad.ones(4, 3)).shape
    tapegrad.Size([2, 4])
    """
    # The common case, decided on the arrays' shapes (a Size per .shape costs ~0.4 us): one
    # fused op with a bias (ops/linear_op.py), x W^T as one op without.
    xs = getattr(getattr(input, "_data", None), "shape", ())
    ws = getattr(getattr(weight, "_data", None), "shape", ())
    if len(ws) == 2 and len(xs) >= 2 and xs[-1] == ws[1] and input._dtype is weight._dtype:
        if bias is None:
            return matmul_nt(input, weight)
        if getattr(bias, "_dtype", None) is weight._dtype and bias._data.shape == ws[:1]:
            return linear_bias(input, weight, bias)
    if input.shape[-1:] != weight.shape[-1:]:
        raise RuntimeError(f"linear: input of shape {tuple(input.shape)} and weight of shape "
                           f"{tuple(weight.shape)} cannot be multiplied (the input's last dim "
                           f"{_last(input)} != in_features {_last(weight)})")
    if weight.ndim == 2 and input.ndim >= 2:
        y = matmul_nt(input, weight)  # x W^T as one op: no transpose view, grads contiguous
    else:
        y = matmul(input, weight.t() if weight.ndim == 2 else weight)
    return y if bias is None else y + bias


def _last(t):
    return t.shape[-1] if t.ndim else None


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None):
    """y_o = x1^T W_o x2 + b_o, with weight of shape (out, in1, in2)."""
    if input1.shape[:-1] != input2.shape[:-1]:
        raise RuntimeError(f"bilinear: input1 and input2 must have the same size except the "
                           f"last dimension, got {tuple(input1.shape)} and "
                           f"{tuple(input2.shape)}")
    if weight.ndim != 3 or weight.shape[1] != input1.shape[-1] or \
            weight.shape[2] != input2.shape[-1]:
        raise RuntimeError(f"bilinear: weight of shape {tuple(weight.shape)} does not match "
                           f"inputs of shape {tuple(input1.shape)} and {tuple(input2.shape)}")
    lead = tuple(input1.shape[:-1])
    y = einsum("bi,oij,bj->bo", input1.reshape(-1, input1.shape[-1]), weight,
               input2.reshape(-1, input2.shape[-1])).reshape(lead + (weight.shape[0],))
    return y if bias is None else y + bias


# ---- dropout ----------------------------------------------------------------------------------
def _check_p(p):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _keep_mask(shape, p, like):
    """A {0, 1/(1-p)} mask drawn from the global generator (``nn_ops.DropoutMask``)."""
    return nn_ops.DropoutMask.apply(like, shape=shape, p=p)


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p) while
    ``training``; the identity otherwise.

    >>> F.dropout(tapegrad.ones(3), 0.5, training=False).tolist()
    [1.0, 1.0, 1.0]
    """
    _check_p(p)
    if not training or p == 0.0:
        return input
    mask = _keep_mask(tuple(input.shape), p, input)
    return _inplace(input, lambda x: x * mask, "dropout_") if inplace else input * mask


def _channel_dropout(input, p, training, inplace, lead, op):
    _check_p(p)
    if not training or p == 0.0:
        return input
    shape = tuple(input.shape[:lead]) + (1,) * (input.ndim - lead)
    mask = _keep_mask(shape, p, input)
    return _inplace(input, lambda x: x * mask, op) if inplace else input * mask


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, L) or (C, L)."""
    if input.ndim not in (2, 3):
        raise RuntimeError(f"dropout1d: Expected 2D or 3D input, but received a "
                           f"{input.ndim}D input of shape {tuple(input.shape)}")
    return _channel_dropout(input, p, training, inplace, input.ndim - 1, "dropout1d_")


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, H, W) or (C, H, W)."""
    if input.ndim not in (3, 4):
        raise RuntimeError(f"dropout2d: Expected 3D or 4D input, but received a "
                           f"{input.ndim}D input of shape {tuple(input.shape)}")
    return _channel_dropout(input, p, training, inplace, input.ndim - 2, "dropout2d_")


# ---- embedding ---------------------------------------------------------------------------------
def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` picked by the integer tensor ``input``. The gradient is dense
    (``sparse`` is accepted for compatibility), zero at ``padding_idx``.

    >>> F.embedding(tapegrad.tensor([1, 0]), tapegrad.eye(3)).tolist()
    [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    """
    if not isinstance(input, Tensor) or input.dtype.is_floating_point or \
            input.dtype is D.bool:
        got = input.dtype if isinstance(input, Tensor) else type(input).__name__
        raise RuntimeError(f"embedding: Expected tensor for argument #1 'indices' to have one "
                           f"of the following scalar types: Long, Int; but got {got} instead")
    n = weight.shape[0]
    idx = embedding_op.EmbeddingIndices.apply(input, n=n, weight_shape=tuple(weight.shape))._data
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise AssertionError(f"embedding: padding_idx {padding_idx} must be within "
                                 f"num_embeddings {n}")
        padding_idx = padding_idx % n
    if max_norm is not None:
        _renorm_rows(weight, backends.to_host(idx), max_norm, norm_type)
    return embedding_op.embedding_lookup(weight, idx, padding_idx, scale_grad_by_freq)


def _renorm_rows(weight, idx, max_norm, norm_type):
    """Scale the used rows whose norm exceeds ``max_norm`` down to it, in place (as
    PyTorch's embedding_renorm_, outside autograd)."""
    rows = np.unique(idx)
    with no_grad():
        w = weight._data
        sub = w[rows]
        norms = np.linalg.norm(sub.astype(np.float64), ord=norm_type, axis=1)
        scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        w[rows] = (sub * scale[:, None]).astype(w.dtype)
        bump_inplace(weight._vc)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """(…,) int64 labels to (…, num_classes) int64 one-hot rows."""
    from tapegrad.creation import tensor as _tensor

    if tensor.dtype is not D.int64:
        raise RuntimeError(f"one_hot is only applicable to index tensor of type LongTensor, "
                           f"got {tensor.dtype}")
    a = tensor._host()
    if num_classes == -1:
        num_classes = int(a.max()) + 1 if a.size else 0
    if a.size and (a.min() < 0 or a.max() >= num_classes):
        raise RuntimeError(f"one_hot: Class values must be smaller than num_classes "
                           f"({num_classes}) and non-negative, got {int(a.max())} / "
                           f"{int(a.min())}")
    out = (a[..., None] == np.arange(num_classes)).astype(np.int64)
    return _tensor(out, device=tensor.device)


# ---- normalisation -------------------------------------------------------------------------
def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` dims (biased variance), then scale
    and shift.

    >>> F.layer_norm(tapegrad.tensor([[1.0, 3.0]]), (2,)).tolist()
    [[-0.9999950000374997, 0.9999950000374997]]
    """
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(ns)
    shape = input._data.shape  # the raw shapes: building Size objects costs microseconds
    if shape[len(shape) - k:] != ns or len(shape) < k:
        raise RuntimeError(f"layer_norm: Given normalized_shape={list(ns)}, expected input "
                           f"with shape [*, {', '.join(map(str, ns))}], but got input of size "
                           f"{list(shape)}")
    if not k:
        raise RuntimeError("layer_norm: Expected normalized_shape to be at least 1-dimensional, "
                           "i.e., containing at least one element, but got normalized_shape = "
                           "[]")
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f"layer_norm: not implemented for {input.dtype} input "
                                  f"(shape {list(shape)}); it needs a floating dtype")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is None:
            continue
        if p._data.shape != ns:
            raise RuntimeError(f"layer_norm: Expected {name} to be of same shape as "
                               f"normalized_shape, but got {name} of shape {list(p.shape)} and "
                               f"normalized_shape = {list(ns)}")
        if p.dtype is not input.dtype:
            raise RuntimeError(f"layer_norm: mixed dtype: expected {name} to have the input's "
                               f"dtype {input.dtype}, got {p.dtype}")
    # One fused primitive each way (ops/norm_ops.py) instead of ~10 recorded ops forward.
    return norm_ops.layer_norm(input, k, weight, bias, eps)


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel (dim 1) with the batch statistics (``training``; the running
    ones are updated in place) or with the running statistics (evaluation)."""
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected at least 2D input (N, C, ...), got input of "
                         f"shape {tuple(input.shape)}")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and t.numel() != c:  # checked before the running stats change
            raise RuntimeError(f"batch_norm: {name} should contain {c} elements not "
                               f"{t.numel()} (input shape {tuple(input.shape)})")
    shape = (1, c) + (1,) * (input.ndim - 2)
    if training:
        count = input.numel() // c
        if count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input "
                             f"size {tuple(input.shape)}")
        # One fused primitive each way (ops/batch_norm_op.py); it also hands back the batch
        # mean and biased variance for the running statistics.
        w, b = (p if p is None or p._data.shape == (c,) else p.reshape(c)
                for p in (weight, bias))
        y, mean, var = batch_norm_op.batch_norm(input, w, b, eps)
        if running_mean is not None or running_var is not None:
            dev = input.device
            with no_grad():
                if running_mean is not None:
                    m = Tensor._make(mean, False, None, 0, dev)
                    running_mean.mul_(1.0 - momentum).add_(m * momentum)
                if running_var is not None:
                    unbiased = Tensor._make(var, False, None, 0, dev) * (count / (count - 1))
                    running_var.mul_(1.0 - momentum).add_(unbiased * momentum)
        return y
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("batch_norm: running_mean and running_var must be defined in "
                               "evaluation mode")
        if tuple(running_mean.shape) != (c,):
            raise RuntimeError(f"batch_norm: running_mean should contain {c} elements not "
                               f"{running_mean.numel()} (input shape {tuple(input.shape)})")
        y = (input - running_mean.reshape(shape)) * U.rsqrt(running_var.reshape(shape) + eps)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over groups of channels (and all spatial dims) per sample."""
    n, c = input.shape[:2]
    if c % num_groups:
        raise RuntimeError(f"group_norm: Expected number of channels in input to be divisible "
                           f"by num_groups, but got input of shape {tuple(input.shape)} and "
                           f"num_groups={num_groups}")
    x = input.reshape(n, num_groups, -1)
    mean = x.mean(2, keepdim=True)
    xc = x - mean
    var = (xc * xc).mean(2, keepdim=True)
    y = (xc * U.rsqrt(var + eps)).reshape(tuple(input.shape))
    shape = (1, c) + (1,) * (input.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,
              out: Tensor | None = None) -> Tensor:
    """x / max(||x||_p, eps) along ``dim`` (written into ``out`` when given, untracked)."""
    r = input / clamp(input.norm(p, dim, keepdim=True), min=eps)
    if out is None:
        return r
    with no_grad():
        return out.copy_(r)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1 * x2) / (max(||x1||, eps) * max(||x2||, eps)) along ``dim``."""
    n1 = clamp(x1.norm(2, dim, keepdim=True), min=eps)
    n2 = clamp(x2.norm(2, dim, keepdim=True), min=eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """||x1 - x2 + eps||_p along the last dim."""
    return (x1 - x2 + eps).norm(p, -1, keepdim=keepdim)

