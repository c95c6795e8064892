"""Indexing: ``x[...]`` reads and writes, gather / scatter and friends.

Reads with only ints, slices, None and Ellipsis are views; integer-tensor and bool-mask
indices copy. The vjp of a read scatters the gradient back with ``index_add`` semantics, so
repeated indices accumulate.
"""

from __future__ import annotations

import numpy as np

from tapegrad.autograd.node import Node
from tapegrad.ops._util import norm_dim

__all__ = ["getitem", "index_put", "pad_slice", "gather", "scatter", "scatter_add",
           "index_select", "masked_fill", "masked_select", "take_along_dim", "nonzero",
           "index_add"]


def _host_index(i):
    from tapegrad.tensor import Tensor

    if isinstance(i, Tensor):
        a = i._host()
        if a.dtype.kind == "f":
            raise IndexError(f"index: tensors used as indices must be long, int, byte or bool "
                             f"tensors, got {i.dtype}")
        return a
    if isinstance(i, list):
        a = np.asarray([_host_index(v) for v in i])
        if a.dtype.kind == "f":
            raise IndexError("index: tensors used as indices must be long, int, byte or bool")
        return a
    return i


def normalize_index(idx):
    """Turn a user index into a NumPy one; returns (index, is_basic)."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    out = tuple(_host_index(i) for i in idx)
    return out, is_basic(out)


def is_basic(idx) -> bool:
    """Whether NumPy index tuple ``idx`` is basic indexing (integers, slices, None,
    Ellipsis): a view, reaching each element at most once."""
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice, np.integer))
               and not isinstance(i, bool) for i in idx)


def _index_error(shape, idx, err):
    err = str(err).replace("for axis", "for dimension")  # PyTorch's word for NumPy's axis
    raise IndexError(f"index: {err} (indexing a tensor of shape {tuple(shape)})") from None


class Index(Node):
    name = "index"

    @staticmethod
    def forward(ctx, be, x, idx, basic):
        ctx.in_shape, ctx.idx = x.shape, idx
        try:
            r = x[idx]
        except IndexError as e:
            _index_error(x.shape, idx, e)
        if basic and r.ndim == 0 and type(r) is not type(x):
            r = x[idx + (Ellipsis,)]  # NumPy answers x[i, j] with a copied scalar, not a view
        # ascontiguousarray turns a 0-d result (x[i, j] with integer tensors) into shape (1,)
        return r if basic or r.ndim == 0 else be.xp.ascontiguousarray(r)

    def vjp(self, g):
        return (index_add_into(g, self.in_shape, self.idx),)

    def jvp(self, inputs, out, t):
        return Index.apply(t, idx=self.idx, basic=False)


class IndexView(Index):
    """Basic indexing: the result is a view sharing memory and version counter."""

    is_view = True


def getitem(x, idx):
    """``x[idx]`` (differentiable)."""
    if type(idx) is int or type(idx) is slice:  # x[t], x[a:b]: basic, nothing to convert
        return IndexView.apply_view(x, {"idx": (idx,), "basic": True})
    idx, basic = normalize_index(idx)
    cls = IndexView if basic else Index
    return cls.apply(x, idx=idx, basic=basic)


class IndexAddInto(Node):
    """Zeros of ``shape`` with ``g`` added at ``idx`` (repeats accumulate)."""

    name = "index_backward"

    @staticmethod
    def forward(ctx, be, g, shape, idx):
        ctx.idx = idx
        z = be.xp.zeros(shape, dtype=g.dtype)
        if is_basic(idx):
            # Each element is reached at most once: g is written, not added (the zeros are
            # not read back: 146 -> 71 us for half of 256 x 1024 float32).
            z[idx] = g
        else:
            be.k["index_add"](z, idx, g)
        return z

    def vjp(self, gg):
        return (Index.apply(gg, idx=self.idx, basic=False),)

    def jvp(self, inputs, out, t):
        return index_add_into(t, out.shape, self.idx)


def index_add_into(g, shape, idx):
    return IndexAddInto.apply(g, shape=tuple(shape), idx=idx)


def pad_slice(g, shape, dim, start):
    """Zeros of ``shape`` holding ``g`` at ``start`` along ``dim`` (the vjp of narrow)."""
    idx = [slice(None)] * len(shape)
    idx[dim] = slice(start, start + g.shape[dim])
    return index_add_into(g, shape, tuple(idx))


class IndexPut(Node):
    """Out-of-place ``x[idx] = v``; ``Tensor.__setitem__`` commits it in place."""

    name = "index_put"

    @staticmethod
    def forward(ctx, be, x, v, idx, accumulate, dt):
        ctx.idx, ctx.accumulate = idx, accumulate
        ctx.v_shape = np.shape(v)
        r = x.copy()
        v = v.astype(r.dtype, copy=False) if hasattr(v, "astype") else v
        try:
            if accumulate:
                be.k["index_add"](r, idx, be.xp.broadcast_to(v, r[idx].shape))
            else:
                r[idx] = v
        except IndexError as e:
            _index_error(x.shape, idx, e)
        except ValueError:
            raise RuntimeError(f"index_put: shape mismatch: value tensor of shape "
                               f"{tuple(np.shape(v))} cannot be broadcast to indexing result of "
                               f"shape {x[idx].shape}") from None
        return r

    def vjp(self, g):
        from tapegrad.ops.elementwise import sum_to

        nx, nv = self.next
        gx = gv = None
        if nx:
            gx = g if self.accumulate else index_put(g, self.idx, 0.0)
        if nv:
            gv = sum_to(Index.apply(g, idx=self.idx, basic=False), self.v_shape)
        return gx, gv

    def jvp(self, inputs, out, tx, tv):
        from tapegrad.creation import zeros_like

        tx = zeros_like(inputs[0]) if tx is None else tx
        if tv is None:
            return index_put(tx, self.idx, 0.0) if not self.accumulate else tx
        return index_put(tx, self.idx, tv, self.accumulate)


def index_put(x, idx, value, accumulate=False):
    """A copy of ``x`` with ``x[idx] = value`` (or ``+=`` when ``accumulate``)."""
    if not (isinstance(idx, tuple) and all(not hasattr(i, "_data") for i in idx)):
        idx, _ = normalize_index(idx)
    return IndexPut.apply(x, value, idx=idx, accumulate=accumulate, dt=x.dtype)


def _index_along(dim, index, ndim):
    """NumPy fancy index selecting ``index`` along ``dim`` (take_along_axis style)."""
    idx = []
    for d in range(ndim):
        if d == dim:
            idx.append(index)
        else:
            shape = [1] * ndim
            shape[d] = index.shape[d]
            idx.append(np.arange(index.shape[d]).reshape(shape))
    return tuple(idx)


def _check_gather(op, x, dim, index):
    if index.dtype.name != "int64" and index.dtype.name != "int32":
        raise RuntimeError(f"{op}(): Expected dtype int64 for index, got {index.dtype}")
    if index.ndim != x.ndim:
        raise RuntimeError(f"{op}(): Index tensor must have the same number of dimensions as "
                           f"input tensor (index shape {tuple(index.shape)}, input shape "
                           f"{tuple(x.shape)})")
    d = norm_dim(dim, x.ndim, op)
    for k in range(x.ndim):
        if k != d and index.shape[k] > x.shape[k]:
            raise RuntimeError(f"{op}(): Size does not match at dimension {k} expected index "
                               f"{tuple(index.shape)} to be smaller than self "
                               f"{tuple(x.shape)} apart from dimension {d}")
    ia = index._host()
    if ia.size and (ia.min() < 0 or ia.max() >= x.shape[d]):  # PyTorch: no negative wrap
        bad = ia.max() if ia.max() >= x.shape[d] else ia.min()
        raise RuntimeError(f"{op}(): index {bad} is out of bounds for dimension {d} with size "
                           f"{x.shape[d]}")
    return d, _index_along(d, ia, x.ndim)


def gather(input, dim, index):
    """``out[i][j] = input[index[i][j]][j]`` along ``dim``."""
    _, idx = _check_gather("gather", input, dim, index)
    return Index.apply(input, idx=idx, basic=False)


def take_along_dim(input, indices, dim=None):
    from tapegrad.ops.shape import broadcast_to, reshape

    if dim is None:
        return gather(reshape(input, (-1,)), 0, reshape(indices, (-1,)))
    d = norm_dim(dim, input.ndim, "take_along_dim")
    shp_i = list(np.broadcast_shapes(tuple(s for k, s in enumerate(input.shape) if k != d),
                                     tuple(s for k, s in enumerate(indices.shape) if k != d)))
    si = shp_i.copy()
    si.insert(d, input.shape[d])
    sx = shp_i.copy()
    sx.insert(d, indices.shape[d])
    return gather(broadcast_to(input, tuple(si)), d, broadcast_to(indices, tuple(sx)))


def scatter(input, dim, index, src=None, *, value=None, reduce=None):
    """A copy of ``input`` with ``src`` (or ``value``) written at ``index`` along ``dim``."""
    if reduce is not None:
        if reduce == "add":
            return scatter_add(input, dim, index, src)
        raise NotImplementedError(f"scatter: reduce={reduce!r} is not supported")
    if src is None:
        src = value
    _, idx = _check_gather("scatter", input, dim, index)
    if hasattr(src, "_data"):
        from tapegrad.ops.shape import narrow

        for k in range(index.ndim):
            src = narrow(src, k, 0, index.shape[k]) if src.shape[k] != index.shape[k] else src
    return IndexPut.apply(input, src, idx=idx, accumulate=False, dt=input.dtype)


def scatter_add(input, dim, index, src):
    """A copy of ``input`` with ``src`` added at ``index`` along ``dim`` (repeats add up)."""
    _, idx = _check_gather("scatter_add", input, dim, index)
    from tapegrad.ops.shape import narrow

    for k in range(index.ndim):
        src = narrow(src, k, 0, index.shape[k]) if src.shape[k] != index.shape[k] else src
    return IndexPut.apply(input, src, idx=idx, accumulate=True, dt=input.dtype)


def index_add(input, dim, index, source, *, alpha=1):
    d = norm_dim(dim, input.ndim, "index_add")
    idx = (slice(None),) * d + (index._host(),)
    if alpha != 1:
        source = source * alpha
    return IndexPut.apply(input, source, idx=idx, accumulate=True, dt=input.dtype)


def index_select(input, dim, index):
    """The slices ``index`` (a 1-D integer tensor) along ``dim``."""
    d = norm_dim(dim, input.ndim, "index_select")
    if index.ndim > 1:
        raise IndexError(f"index_select(): Index is supposed to be a vector, got shape "
                         f"{tuple(index.shape)}")
    ia = index._host().reshape(-1)
    n = input.shape[d] if input.ndim else 1
    if ia.size and (ia.max() >= n or ia.min() < 0):  # PyTorch: no negative wrap
        bad = int(ia.max()) if ia.max() >= n else int(ia.min())
        raise IndexError(f"index_select(): index {bad} out of range for "
                         f"dimension {d} of size {n} (input shape {tuple(input.shape)})")
    return Index.apply(input, idx=(slice(None),) * d + (ia,), basic=False)


def masked_fill(input, mask, value):
    """``input`` with ``value`` where ``mask`` is True (mask broadcasts)."""
    from tapegrad.ops.select import where

    if getattr(mask, "dtype", None) is None or mask.dtype.name != "bool":
        raise RuntimeError(f"masked_fill: expected mask to be a bool tensor, got "
                           f"{getattr(mask, 'dtype', type(mask).__name__)}")
    from tapegrad.ops._util import broadcast_shapes

    if broadcast_shapes("masked_fill", tuple(input.shape), tuple(mask.shape)) != \
            tuple(input.shape):
        raise RuntimeError(f"masked_fill: mask of shape {tuple(mask.shape)} cannot be "
                           f"broadcast to input of shape {tuple(input.shape)}")
    if hasattr(value, "_data"):
        if value.ndim:
            raise RuntimeError(f"masked_fill: only supports a 0-dimensional value tensor, but "
                               f"got tensor with {value.ndim} dimension(s)")
        value = value.to(input.dtype)
    r = where(mask, value, input)
    return r if r.dtype is input.dtype else r.to(input.dtype)


def masked_select(input, mask):
    from tapegrad.ops.shape import broadcast_to

    shape = np.broadcast_shapes(tuple(input.shape), tuple(mask.shape))
    return getitem(broadcast_to(input, shape), broadcast_to(mask, shape))


def nonzero(input, *, as_tuple=False):
    from tapegrad.creation import tensor

    nz = np.nonzero(input._host())
    if as_tuple:
        return tuple(tensor(a.astype(np.int64), device=input.device) for a in nz)
    return tensor(np.stack(nz, axis=1).astype(np.int64), device=input.device)
