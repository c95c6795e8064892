"""Shape ops: views (reshape, permute, expand, narrow), copies (flip, cat, repeat) and the
composites built from them (squeeze, stack, split...)."""

from __future__ import annotations

import numpy as np

from tapegrad.autograd.node import Node
from tapegrad.autograd.view_meta import mark_multi_output
from tapegrad.ops._util import norm_dim

__all__ = ["reshape", "view", "flatten", "unflatten", "squeeze", "unsqueeze", "transpose",
           "swapaxes", "permute", "t", "expand", "expand_as", "broadcast_to", "repeat", "flip",
           "cat", "concat", "concatenate", "stack", "split", "chunk", "unbind", "narrow",
           "movedim", "ravel", "tile", "hstack", "vstack", "view_as", "reshape_as"]


def _infer_shape(op, numel, shape, in_shape):
    shape = tuple(int(s) for s in shape)
    neg = [i for i, s in enumerate(shape) if s == -1]
    if len(neg) > 1:
        raise RuntimeError(f"{op}: only one dimension can be inferred, got shape {shape}")
    known = 1
    for s in shape:
        if s != -1:
            if s < 0:
                raise RuntimeError(f"{op}: invalid shape dimension {s} in {shape}")
            known *= s
    if neg:
        if known == 0 or numel % known:
            raise RuntimeError(f"{op}: shape '{list(shape)}' is invalid for input of size "
                               f"{numel} (input shape {tuple(in_shape)})")
        shape = shape[:neg[0]] + (numel // known,) + shape[neg[0] + 1:]
    elif known != numel:
        raise RuntimeError(f"{op}: shape '{list(shape)}' is invalid for input of size {numel} "
                           f"(input shape {tuple(in_shape)})")
    return shape


def _shape_args(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


class Reshape(Node):
    name = "reshape"
    is_view = True

    @staticmethod
    def forward(ctx, be, x, shape, op="reshape"):
        ctx.in_shape = x.shape
        shape = _infer_shape(op, x.size, shape, x.shape)
        if op == "view" and not x.flags.c_contiguous and x.ndim > 1:
            r = x.view()
            try:
                r.shape = shape  # fails instead of copying when strides do not allow it
            except AttributeError:
                raise RuntimeError(f"view: size {list(shape)} is not compatible with input "
                                   f"tensor's size {list(x.shape)} and stride; use .reshape(...) "
                                   "instead.") from None
            return r
        return x.reshape(shape)

    def vjp(self, g):
        return (reshape(g, self.in_shape),)

    def jvp(self, inputs, out, t):
        return reshape(t, out.shape)


class ReshapeCopy(Reshape):
    """A reshape that the strides do not allow without copying: no view (as in PyTorch), so
    the result has its own memory and version counter."""

    is_view = False


def reshape(input, *shape):
    """Same data, new shape; one dimension may be -1."""
    shape = _shape_args(shape)
    a = input._data
    if a.shape == shape:
        return Reshape.apply(input, shape=shape) if input.requires_grad or input._fw else \
            _alias(input)
    if not a.flags.c_contiguous and not _viewable(a, shape):
        return ReshapeCopy.apply(input, shape=shape)
    return Reshape.apply_view(input, {"shape": shape})


def _viewable(a, shape) -> bool:
    v = a.view()
    try:
        v.shape = _infer_shape("reshape", a.size, shape, a.shape)
    except AttributeError:
        return False
    return True


def _alias(x):
    from tapegrad.autograd.view_meta import record_view
    from tapegrad.tensor import Tensor

    t = Tensor._make(x._data, False, None, 0, x._device)
    record_view(t, x, None, None)
    return t


def view(input, *shape):
    """Like ``reshape`` but never copies (raises if the strides do not allow a view)."""
    shape = _shape_args(shape)
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        return input.to(shape[0])  # view(dtype) is out of scope; behave like a cast
    return Reshape.apply_view(input, {"shape": shape, "op": "view"})


def view_as(input, other):
    return view(input, tuple(other.shape))


def reshape_as(input, other):
    return reshape(input, tuple(other.shape))


def flatten(input, start_dim=0, end_dim=-1):
    nd = input.ndim
    if nd == 0:
        return reshape(input, (1,))
    s = norm_dim(start_dim, nd, "flatten")
    e = norm_dim(end_dim, nd, "flatten")
    if s > e:
        raise RuntimeError("flatten: start_dim cannot come after end_dim")
    sh = input._data.shape
    n = 1
    for d in sh[s:e + 1]:
        n *= d
    return reshape(input, sh[:s] + (n,) + sh[e + 1:])


def ravel(input):
    return reshape(input, (-1,))


def unflatten(input, dim, sizes):
    d = norm_dim(dim, input.ndim, "unflatten")
    sh = input._data.shape
    sizes = tuple(sizes)
    if -1 not in sizes and int(np.prod(sizes)) != sh[d]:
        raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the "
                           f"size of dim {dim} ({sh[d]}) in the input tensor of shape {sh}")
    return reshape(input, sh[:d] + sizes + sh[d + 1:])


def squeeze(input, dim=None):
    sh = input._data.shape
    if dim is None:
        new = tuple(s for s in sh if s != 1)
    else:
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        ds = {norm_dim(d, input.ndim, "squeeze") for d in dims}
        new = tuple(s for i, s in enumerate(sh) if not (i in ds and s == 1))
    return reshape(input, new)


def unsqueeze(input, dim):
    d = norm_dim(dim, input.ndim + 1, "unsqueeze")
    sh = input._data.shape
    return reshape(input, sh[:d] + (1,) + sh[d:])


class Permute(Node):
    name = "permute"
    is_view = True

    @staticmethod
    def forward(ctx, be, x, dims):
        ctx.dims = dims
        return x.transpose(dims)

    def vjp(self, g):
        return (permute(g, tuple(np.argsort(self.dims))),)

    def jvp(self, inputs, out, t):
        return permute(t, self.dims)


def permute(input, *dims):
    """Reorder the dimensions (a view)."""
    dims = _shape_args(dims)
    nd = input.ndim
    if len(dims) != nd:
        raise RuntimeError(f"permute: number of dims don't match in permute: input shape "
                           f"{tuple(input.shape)} has {nd} dims but {len(dims)} were given")
    ds = tuple(norm_dim(d, nd, "permute") for d in dims)
    if len(set(ds)) != nd:
        raise RuntimeError(f"permute: repeated dim in {tuple(dims)}")
    return Permute.apply_view(input, {"dims": ds})


def transpose(input, dim0, dim1):
    """Swap two dimensions (a view)."""
    nd = input.ndim
    if nd == 0:
        return permute(input)
    a = norm_dim(dim0, nd, "transpose")
    b = norm_dim(dim1, nd, "transpose")
    dims = list(range(nd))
    dims[a], dims[b] = dims[b], dims[a]
    return Permute.apply_view(input, {"dims": tuple(dims)})


swapaxes = transpose


def t(input):
    """Transpose a tensor of at most 2 dims."""
    if input.ndim > 2:
        raise RuntimeError(f"t: expects a tensor with <= 2 dimensions, but self is "
                           f"{input.ndim}D (shape {tuple(input.shape)})")
    return transpose(input, 0, 1) if input.ndim == 2 else permute(input, *range(input.ndim))


def movedim(input, source, destination):
    src = source if isinstance(source, (tuple, list)) else (source,)
    dst = destination if isinstance(destination, (tuple, list)) else (destination,)
    nd = input.ndim
    src = [norm_dim(s, nd, "movedim") for s in src]
    dst = [norm_dim(d, nd, "movedim") for d in dst]
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute(input, tuple(order))


class BroadcastTo(Node):
    name = "expand"
    is_view = True

    @staticmethod
    def forward(ctx, be, x, shape):
        ctx.in_shape = x.shape
        return be.xp.broadcast_to(x, shape)

    def vjp(self, g):
        from tapegrad.ops.elementwise import sum_to

        return (sum_to(g, self.in_shape),)

    def jvp(self, inputs, out, t):
        return broadcast_to(t, out.shape)


def broadcast_to(input, size):
    """``input`` stretched to ``size`` without copying (a read-only view)."""
    shape = tuple(size)
    sh = input._data.shape
    if sh == shape:
        return input
    nd = len(shape)
    if nd < len(sh):
        raise RuntimeError(f"expand: the number of sizes provided ({nd}) must be greater or "
                           f"equal to the number of dimensions in the tensor ({len(sh)}); "
                           f"shape {sh} to {shape}")
    full = []
    lead = nd - len(sh)
    for i, s in enumerate(shape):
        if s == -1:
            if i < lead:
                raise RuntimeError(f"expand: -1 is not allowed in a leading, non-existing "
                                   f"dimension {i} (shape {sh} to {shape})")
            s = sh[i - lead]
        if i >= lead and sh[i - lead] != 1 and sh[i - lead] != s:
            raise RuntimeError(f"expand: the expanded size of the tensor ({s}) must match the "
                               f"existing size ({sh[i - lead]}) at non-singleton dimension "
                               f"{i}. Target sizes: {list(shape)}. Tensor sizes: {list(sh)}")
        full.append(s)
    full = tuple(full)
    if full == sh:
        return input
    return BroadcastTo.apply_view(input, {"shape": full})


def expand(input, *sizes):
    return broadcast_to(input, _shape_args(sizes))


def expand_as(input, other):
    return broadcast_to(input, tuple(other.shape))


def repeat(input, *repeats):
    """Tile the tensor ``repeats[i]`` times along each dim (PyTorch's ``repeat``)."""
    reps = _shape_args(repeats)
    nd = input.ndim
    if len(reps) < nd:
        raise RuntimeError(f"repeat: Number of dimensions of repeat dims ({len(reps)}) can not "
                           f"be smaller than number of dimensions of tensor ({nd})")
    sh = (1,) * (len(reps) - nd) + tuple(input._data.shape)
    x = reshape(input, sh)
    # Interleave a size-r axis before each dim, broadcast, then merge: no copy in the vjp.
    inter = []
    full = []
    for r, s in zip(reps, sh):
        inter += [1, s]
        full += [r, s]
    x = broadcast_to(reshape(x, tuple(inter)), tuple(full))
    return reshape(x, tuple(r * s for r, s in zip(reps, sh)))


def tile(input, dims):
    dims = tuple(dims)
    if len(dims) < input.ndim:
        dims = (1,) * (input.ndim - len(dims)) + dims
    return repeat(input, dims)


class Flip(Node):
    name = "flip"

    @staticmethod
    def forward(ctx, be, x, dims):
        ctx.dims = dims
        return be.xp.flip(x, dims).copy()

    def vjp(self, g):
        return (flip(g, self.dims),)

    def jvp(self, inputs, out, t):
        return flip(t, self.dims)


def flip(input, dims):
    dims = dims if isinstance(dims, (tuple, list)) else (dims,)
    return Flip.apply(input, dims=tuple(norm_dim(d, input.ndim, "flip") for d in dims))


class Narrow(Node):
    """A contiguous slice along one dim (a view)."""

    name = "narrow"
    is_view = True

    @staticmethod
    def forward(ctx, be, x, dim, start, length):
        ctx.in_shape, ctx.dim, ctx.start = x.shape, dim, start
        idx = [slice(None)] * x.ndim
        idx[dim] = slice(start, start + length)
        return x[tuple(idx)]

    def vjp(self, g):
        from tapegrad.ops.index import pad_slice

        return (pad_slice(g, self.in_shape, self.dim, self.start),)

    def jvp(self, inputs, out, t):
        return narrow(t, self.dim, self.start, out.shape[self.dim])


def narrow(input, dim, start, length):
    """Elements ``start .. start+length`` along ``dim`` (a view)."""
    d = norm_dim(dim, input.ndim, "narrow")
    size = input._data.shape[d]
    start = given = int(start)
    if start < 0:
        start += size
    if start < 0 or start > size:
        raise IndexError(f"narrow: start out of range (expected to be in range of [{-size}, "
                         f"{size}], but got {given}) for dim {dim} in shape "
                         f"{tuple(input.shape)}")
    if length < 0 or start + length > size:
        raise RuntimeError(f"narrow: start ({start}) + length ({length}) exceeds dimension "
                           f"size ({size}) of dim {dim} in shape {tuple(input.shape)}")
    return Narrow.apply_view(input, {"dim": d, "start": start, "length": int(length)})


class Cat(Node):
    name = "cat"

    @staticmethod
    def forward(ctx, be, *xs, dim, dt):
        ctx.dim = dim
        ctx.sizes = [x.shape[dim] for x in xs]
        return be.xp.concatenate([x.astype(dt.np, copy=False) for x in xs], axis=dim)

    def vjp(self, g):
        out = []
        start = 0
        for s, e in zip(self.sizes, self.next):
            out.append(narrow(g, self.dim, start, s) if e is not None else None)
            start += s
        return tuple(out)

    def jvp(self, inputs, out, *ts):
        from tapegrad.creation import zeros_like

        parts = [zeros_like(x) if t is None else t for x, t in zip(inputs, ts)]
        return cat(parts, self.dim)


def cat(tensors, dim=0):
    """Join tensors along an existing dim; every other dim must match."""
    from tapegrad import _dtype as D

    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of Tensors")
    # PyTorch skips legacy empty 1-D tensors of shape (0,) beside tensors of more dims. Among
    # 1-D tensors they join like any other (and stay in the graph: an empty piece of a split
    # may carry the only gradient that requires grad).
    ts = tensors
    if any(x.ndim != 1 for x in tensors):
        ts = [x for x in tensors if not (x.ndim == 1 and x._data.shape[0] == 0)] or tensors
    ref = ts[0]
    if ref.ndim == 0:
        raise RuntimeError("cat: zero-dimensional tensor (at position 0) cannot be "
                           "concatenated")
    d = norm_dim(dim, ref.ndim, "cat")
    for i, x in enumerate(ts[1:], 1):
        if x.ndim != ref.ndim:
            raise RuntimeError(f"cat: Tensors must have same number of dimensions: got "
                               f"{ref.ndim} and {x.ndim} (shapes {tuple(ref.shape)} and "
                               f"{tuple(x.shape)})")
        for k in range(ref.ndim):
            if k != d and x._data.shape[k] != ref._data.shape[k]:
                raise RuntimeError(f"cat: Sizes of tensors must match except in dimension {d}. "
                                   f"Expected size {ref._data.shape[k]} but got size "
                                   f"{x._data.shape[k]} for tensor number {i} in the list "
                                   f"(shapes {tuple(ref.shape)} and {tuple(x.shape)})")
    dt = ts[0].dtype
    for x in ts[1:]:
        dt = D.promote_types(dt, x.dtype)
    return Cat.apply(*ts, dim=d, dt=dt)


concat = concatenate = cat


def stack(tensors, dim=0):
    """Join same-shaped tensors along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack: expects a non-empty TensorList")
    ref = tuple(tensors[0].shape)
    for i, x in enumerate(tensors[1:], 1):
        if tuple(x.shape) != ref:
            raise RuntimeError(f"stack: expects each tensor to be equal size, but got {ref} at "
                               f"entry 0 and {tuple(x.shape)} at entry {i}")
    d = norm_dim(dim, len(ref) + 1, "stack")
    return cat([unsqueeze(x, d) for x in tensors], d)


def hstack(tensors):
    tensors = list(tensors)
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    return cat([x if x.ndim >= 2 else reshape(x, (1, -1)) for x in tensors], 0)


class Split(Node):
    """The pieces of ``x`` along ``dim`` (views), one node for all of them.

    Its vjp joins the pieces' gradients with one ``cat`` (zeros for a piece that got none),
    as PyTorch's SplitBackward does. As separate ``narrow`` views, every piece's gradient
    was padded with zeros to the input's full shape and the padded gradients summed: for
    ``gates.chunk(4, 1)`` (an LSTM cell) four zero-filled arrays of the input's size and
    three additions of them, against one copy; about 2x PyTorch's time (tests:
    test_split_op.py). The pieces are views as before: ``split`` gives each the recipe of a
    ``narrow`` of the input (``view_meta``), so in-place checks and history rewrites treat
    them as they did.
    """

    name = "split"
    multi_output = True
    squeeze = False  # Unbind: each piece loses the split dim
    join = staticmethod(lambda parts, dim: cat(parts, dim))  # the vjp's join of the pieces

    @classmethod
    def forward(cls, ctx, be, x, dim, sizes):
        ctx.dim, ctx.sizes = dim, sizes
        lead = (slice(None),) * dim
        out = []
        start = 0
        for s in sizes:
            out.append(x[lead + (slice(start, start + s),)])
            start += s
        return tuple(out)

    def vjp(self, *grads):
        return (self.join(self._filled(grads), self.dim),)

    def _filled(self, grads) -> list:
        # The engine passes None for a piece that got no gradient: zeros of its shape.
        ref = next(g for g in grads if g is not None)
        parts = list(grads)
        for k, g in enumerate(parts):
            if g is None:
                from tapegrad.creation import zeros

                shape = list(ref.shape)
                if not self.squeeze:  # (an unbound slice has no split dim to resize)
                    shape[self.dim] = self.sizes[k]
                parts[k] = zeros(*shape, dtype=ref.dtype, device=ref.device)
        return parts

    def jvp(self, inputs, out, t):
        return _pieces(type(self), t, self.dim, self.sizes)


class Unbind(Split):
    """The slices of ``x`` along ``dim``, each without that dim; its vjp is one ``stack``."""

    name = "unbind"
    squeeze = True
    join = staticmethod(lambda parts, dim: stack(parts, dim))

    @classmethod
    def forward(cls, ctx, be, x, dim, sizes):
        ctx.dim, ctx.sizes = dim, sizes
        lead = (slice(None),) * dim
        return tuple(x[lead + (k, Ellipsis)] for k in range(len(sizes)))


def _pieces(cls, tensor, d, sizes):
    """``cls.apply`` (Split or Unbind) with each piece made a view of ``tensor``: its recipe
    is the ``narrow`` (or integer index) that rebuilds it from ``tensor``, and it is marked
    as one of several views returned together (not to be modified in place)."""
    from tapegrad.autograd.view_meta import record_view
    from tapegrad.ops.index import IndexView

    out = cls.apply(tensor, dim=d, sizes=tuple(sizes))
    lead = (slice(None),) * d
    start = 0
    for k, (p, s) in enumerate(zip(out, sizes)):
        if cls.squeeze:
            record_view(p, tensor, IndexView, {"idx": lead + (k, Ellipsis), "basic": True})
        else:
            record_view(p, tensor, Narrow, {"dim": d, "start": start, "length": s})
        start += s
    mark_multi_output(out, cls.name)
    return out


def split(tensor, split_size_or_sections, dim=0):
    """Pieces of ``split_size`` (the last may be smaller) or of the listed sizes (views).

    >>> [tuple(p.shape) for p in split(ones(5, 2), 2)]
    [(2, 2), (2, 2), (1, 2)]
    """
    d = norm_dim(dim, tensor.ndim, "split")
    n = tensor._data.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes: expects split_sizes to sum exactly to {n} "
                               f"(input tensor's size at dimension {d}), but got "
                               f"split_sizes={sizes}")
    else:
        s = int(split_size_or_sections)
        if s <= 0 and n:
            raise RuntimeError(f"split: split_size can only be 0 if dimension size is 0, but "
                               f"got {s} for size {n}")
        # PyTorch's count: at least one piece (an empty dim gives one empty piece).
        k = max(-(-n // s), 1) if s else 1
        sizes = [s] * (k - 1) + [n - s * (k - 1)]
    return _pieces(Split, tensor, d, [int(s) for s in sizes])


def chunk(input, chunks, dim=0):
    if chunks <= 0:
        raise RuntimeError(f"chunk: chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = norm_dim(dim, input.ndim, "chunk")
    n = input._data.shape[d]
    if n == 0:
        return split(input, [0] * chunks, d)  # PyTorch: `chunks` empty pieces
    return split(input, -(-n // chunks), d)


def unbind(input, dim=0):
    """The slices along ``dim``, each with that dim removed (views).

    >>> [tuple(p.shape) for p in unbind(ones(3, 2))]
    [(2,), (2,), (2,)]
    """
    d = norm_dim(dim, input.ndim, "unbind")
    return _pieces(Unbind, input, d, [1] * input._data.shape[d])
