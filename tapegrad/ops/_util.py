"""Small helpers shared by the op families: dims, shapes, dtype promotion of operands."""

from __future__ import annotations

import numpy as np

from tapegrad import _dtype as D

_NUMBER = (int, float, bool, np.number, np.bool_)


def norm_dim(dim, ndim: int, op: str) -> int:
    """Wrap a possibly negative ``dim`` into ``[0, ndim)``; IndexError names the op."""
    n = max(ndim, 1)
    try:
        d = int(dim)
    except TypeError:
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}") from None
    if d < -n or d >= n:
        raise IndexError(f"{op}: Dimension out of range (expected to be in range of "
                         f"[{-n}, {n - 1}], but got {dim})")
    return d + n if d < 0 else d


def norm_dims(dim, ndim: int, op: str) -> tuple:
    """``dim`` as a sorted tuple of non-negative dims (None: all of them)."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (list, tuple)):
        ds = tuple(norm_dim(d, ndim, op) for d in dim)
        if len(set(ds)) != len(ds):
            raise RuntimeError(f"{op}: dim {tuple(dim)} appears multiple times in the list of "
                               "dims")
        return tuple(sorted(ds))
    return (norm_dim(dim, ndim, op),)


def broadcast_shapes(op: str, *shapes) -> tuple:
    """The broadcast of ``shapes``; RuntimeError names the op and every shape."""
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        shown = " and ".join(str(tuple(s)) for s in shapes)
        raise RuntimeError(f"{op}: shapes {shown} cannot be broadcast") from None


def shape_str(t) -> str:
    return str(tuple(t.shape)) if hasattr(t, "shape") else repr(t)


def is_number(x) -> bool:
    return isinstance(x, _NUMBER)


def binary_dtype(a, b):
    """PyTorch's result dtype for ``a op b``, with a fast path for the common cases."""
    da = getattr(a, "_dtype", None)
    db = getattr(b, "_dtype", None)
    if da is not None:
        if db is da:
            return da
        if db is None and da.is_floating_point and type(b) in (float, int):
            return da
    elif db is not None and db.is_floating_point and type(a) in (float, int):
        return db
    return D.result_type(a, b)


def cast_array(x, dt):
    """``x`` (array or number) as dtype ``dt``, without copying when it already is."""
    d = getattr(x, "dtype", None)
    if d is None or d is dt.np or d == dt.np:
        return x
    return x.astype(dt.np)


def check_number_or_tensor(op: str, x, name: str = "other"):
    if type(x) in (float, int):
        return
    from tapegrad.tensor import Tensor

    if not isinstance(x, Tensor) and not is_number(x):
        raise TypeError(f"{op}(): argument '{name}' must be Tensor or Number, not "
                        f"{type(x).__name__}")
