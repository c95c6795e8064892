"""Embedding lookup: the rows of a weight picked by integer indices, and the two ops around
it that keep its Python-side work inside ops (so that a compiled replay repeats it): the
range check of the indices, and the backward's scatter of rows.
"""

from __future__ import annotations

import numpy as np

from tapegrad.autograd.node import Node

__all__ = ["EmbeddingLookup", "EmbeddingBackward", "EmbeddingIndices", "embedding_lookup"]

_new = object.__new__


class EmbeddingLookup(Node):
    """Rows ``weight[indices]``; the vjp scatters rows back with index ops (repeated indices
    add up), skipping ``padding_idx`` and optionally scaling by inverse frequency."""

    name = "embedding"

    @staticmethod
    def forward(ctx, be, weight, indices, padding_idx, scale_grad_by_freq):
        ctx.indices = indices
        ctx.num = weight.shape[0]
        ctx.padding_idx = padding_idx
        ctx.scale = scale_grad_by_freq
        return be.xp.take(weight, indices, axis=0)

    def vjp(self, g):
        return (EmbeddingBackward.apply(g, indices=self.indices, num=self.num,
                                        padding_idx=self.padding_idx,
                                        scale_grad_by_freq=self.scale),)

    def jvp(self, inputs, out, t):
        return embedding_lookup(t, self.indices, None, False)


def _row_weights(flat, num, padding_idx, scale_grad_by_freq):
    """Each looked-up row's factor in the gradient (None: all 1): 0 at ``padding_idx``,
    1 / its index's count with ``scale_grad_by_freq``."""
    keep = None
    if padding_idx is not None:
        keep = flat != padding_idx
    if scale_grad_by_freq:
        counts = np.bincount(flat, minlength=num)[flat].astype(np.float64)
        keep = (1.0 if keep is None else keep) / counts
    return keep


class EmbeddingBackward(Node):
    """Zeros of (num, dim) with the rows of ``g`` added at ``indices`` (repeats add up),
    weighted by ``_row_weights``. One op, so that a compile trace records it with the
    indices as an array of its program (tapegrad.compile)."""

    name = "embedding_backward"

    @staticmethod
    def forward(ctx, be, g, indices, num, padding_idx, scale_grad_by_freq):
        from tapegrad.backends import to_host
        from tapegrad.ops.index import IndexAddInto

        ctx.indices, ctx.num, ctx.padding_idx = indices, num, padding_idx
        ctx.scale = scale_grad_by_freq
        dim = g.shape[-1]
        g = g.reshape(-1, dim)
        flat = to_host(indices).reshape(-1)
        keep = _row_weights(flat, num, padding_idx, scale_grad_by_freq)
        if keep is not None:
            g = g * be.xp.asarray(np.asarray(keep, dtype=g.dtype).reshape(-1, 1))
        return IndexAddInto.forward(_new(IndexAddInto), be, g, (num, dim), (flat,))

    def vjp(self, gg):
        from tapegrad.backends import to_host
        from tapegrad.creation import tensor

        rows = embedding_lookup(gg, self.indices)
        keep = _row_weights(to_host(self.indices).reshape(-1), self.num, self.padding_idx,
                            self.scale)
        if keep is not None:
            shape = tuple(self.indices.shape) + (1,)
            rows = rows * tensor(np.asarray(keep, dtype=gg.dtype.np).reshape(shape),
                                 device=gg.device)
        return (rows,)

    def jvp(self, inputs, out, t):
        return EmbeddingBackward.apply(t, indices=self.indices, num=self.num,
                                       padding_idx=self.padding_idx,
                                       scale_grad_by_freq=self.scale)


class EmbeddingIndices(Node):
    """The int64 indices of a lookup into ``n`` rows, range-checked (IndexError naming the
    embedding's shape). An op, so that a compiled replay checks each call's indices."""

    name = "embedding_indices"
    differentiable = False

    @staticmethod
    def forward(ctx, be, idx, n, weight_shape):
        from tapegrad.backends import to_host

        h = to_host(idx)
        if h.size and (h.min() < 0 or h.max() >= n):
            bad = int(h.max()) if h.max() >= n else int(h.min())
            raise IndexError(f"embedding: index {bad} is out of range for an embedding with "
                             f"{n} rows (weight shape {weight_shape})")
        return idx.astype(np.int64, copy=False)


def embedding_lookup(weight, indices, padding_idx=None, scale_grad_by_freq=False):
    """``weight[indices]`` for a backend integer array ``indices`` already range-checked."""
    return EmbeddingLookup.apply(weight, indices=indices, padding_idx=padding_idx,
                                 scale_grad_by_freq=scale_grad_by_freq)
