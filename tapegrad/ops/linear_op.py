"""``x @ w^T + b`` as one op: what ``nn.functional.linear`` runs when it has a bias.

As a product and an addition it records two ops and allocates the output twice; as one op
the bias goes into the product's fresh output in place, and backward runs one node: dX = dY W,
dW = dY^T X (leading dims flattened into rows), db = dY summed over the leading dims. The
vjp and jvp are written with tapegrad ops, so double backward and forward mode still work.

>>> linear_bias(ones(2, 3), ones(4, 3), ones(4)).shape
tapegrad.Size([2, 4])
"""

from __future__ import annotations

from tapegrad.autograd.node import Node
from tapegrad.ops import linalg as _linalg
from tapegrad.ops.elementwise import sum_to
from tapegrad.ops.matmul_t import fold_rows, matmul_nt, matmul_tn, rows_matmul

__all__ = ["LinearBias", "linear_bias"]


class LinearBias(Node):
    """``x @ w^T + b`` for ``x`` of at least 2 dims, ``w`` (out, in) and ``b`` (out,)."""

    name = "linear"
    save = ((0, 1), (1, 0))  # x for w's gradient, w for x's; b's needs neither

    @staticmethod
    def forward(ctx, be, x, w, b):
        out = rows_matmul(be.xp, x, w.swapaxes(-1, -2))  # (a batch of rows: one product)
        out += b  # (a fresh array of the right dtype: written in place)
        return out

    def vjp(self, g):
        x, w = self.saved
        nx, nw, nb = self.next
        gx = _linalg.matmul(g, w) if nx is not None else None
        gw = None
        if nw is not None:
            if g._data.ndim == 2:
                gw = matmul_tn(g, x)
            else:  # every leading dim is a row of the product
                gw = matmul_tn(fold_rows(g), fold_rows(x))
        gb = sum_to(g, (g._data.shape[-1],)) if nb is not None else None
        return gx, gw, gb

    def jvp(self, inputs, out, tx, tw, tb):
        x, w, _ = inputs
        r = None if tx is None else matmul_nt(tx, w)
        if tw is not None:
            d = matmul_nt(x, tw)
            r = d if r is None else r + d
        if tb is not None:
            r = tb.expand(out.shape) if r is None else r + tb
        return r


def linear_bias(x, w, b):
    """``x @ w^T + b`` as one op; the caller has checked the shapes and dtypes (see
    ``nn.functional.linear``)."""
    return LinearBias.apply(x, w, b)
