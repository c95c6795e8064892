"""Reference (plain NumPy) kernels for the core ops. Clear over clever: these define the
answer that the numba and CUDA kernels must reproduce."""

from __future__ import annotations

import math

import numpy as np


def sum_to(g, shape):
    """Sum ``g`` over broadcast dims so that it has ``shape``."""
    shape = tuple(shape)
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape)
                                      if s == 1 and g.shape[i + lead] != 1)
    r = g.sum(axis=axes, keepdims=True) if axes else g
    if lead:
        r = r.reshape(r.shape[lead:])
    return r.reshape(shape)


def clamp(x, lo, hi):
    r = x
    if lo is not None:
        r = np.maximum(r, np.asarray(lo, dtype=x.dtype))
    if hi is not None:
        r = np.minimum(r, np.asarray(hi, dtype=x.dtype))
    return r if r is not x else x.copy()


def tanh(x):
    return np.tanh(x)


def tanh_backward(g, y):
    return g * (1 - y * y)


def sigmoid(x):
    # 0.5 * (1 + tanh(x / 2)) is exact and never overflows, unlike 1 / (1 + exp(-x)).
    half = np.asarray(0.5, dtype=x.dtype)
    return half + half * np.tanh(half * x)


def sigmoid_backward(g, y):
    return g * y * (1 - y)


def relu(x):
    return np.maximum(x, np.zeros((), dtype=x.dtype))


def relu_backward(g, y):
    return np.where(y > 0, g, np.zeros((), dtype=np.result_type(g, y)))


_erf_obj = np.frompyfunc(math.erf, 1, 1)
_scipy_erf = []  # filled on first use: importing SciPy costs about a second


def erf(x):
    """The error function; SciPy's vectorised one when installed, else math.erf per element."""
    if not _scipy_erf:
        try:
            from scipy.special import erf as f
        except ImportError:  # pragma: no cover - depends on the environment
            f = None
        _scipy_erf.append(f)
    f = _scipy_erf[0]
    if f is not None:
        return f(x).astype(x.dtype, copy=False)
    return _erf_obj(x).astype(x.dtype)


def index_add(z, idx, g):
    """z[idx] += g in place, with repeated indices accumulating."""
    if all(i is None or i is Ellipsis or isinstance(i, (int, slice, np.integer)) for i in idx):
        z[idx] += g
    else:
        np.add.at(z, idx, g)


def where(cond, a, b):
    """``a`` where ``cond`` holds, else ``b`` (arrays or numbers, already of the result
    dtype), broadcast together."""
    return np.where(cond, a, b)


def sum_all(x):
    """The sum of every element of ``x``, in its dtype (a NumPy scalar or a 0-d array)."""
    return x.sum()


KERNELS = {
    "sum_all": sum_all,
    "index_add": index_add,
    "sum_to": sum_to,
    "clamp": clamp,
    "tanh": np.tanh,  # (the ufunc itself: no wrapper call on a hot path)
    "tanh_backward": tanh_backward,
    "sigmoid": sigmoid,
    "sigmoid_backward": sigmoid_backward,
    "relu": relu,
    "relu_backward": relu_backward,
    "erf": erf,
    "where": where,
}
