"""The math of one recurrent step, and fused primitives that run a whole sequence.

The step functions (:func:`rnn_step`, :func:`lstm_step`, :func:`gru_step`) state the math
once, with tapegrad's differentiable ops, in PyTorch's gate order: LSTM ``i, f, g, o``; GRU
``r, z, n`` with ``b_hn`` inside ``r * (W_hn h + b_hn)``. The cells call them directly.

A layer runs each direction through one fused primitive (:class:`RnnScan`,
:class:`LstmScan`, :class:`GruScan`): its forward and its backward are backend kernels
(``backends/ref_rnn.py``) that loop over time, so one recorded op replaces a dozen per step.
The kernels are an optimisation underneath, not a second definition: when a graph of the
gradient is wanted (``create_graph=True``, or tangents ride on the gradients) the vjp re-runs
the step functions and differentiates them, and under forward-mode AD the scans run the step
functions directly.

>>> xw = tapegrad.randn(5, 2, 3)        # (T, B, H): x_t W_ih^T + b_ih for every step
>>> h0 = tapegrad.zeros(2, 3)
>>> w_hh = tapegrad.randn(3, 3)
>>> rnn_scan(xw, h0, w_hh).shape         # every hidden state, in time order
tapegrad.Size([5, 2, 3])
"""

from __future__ import annotations

from tapegrad.autograd import hooks_state as _hs
from tapegrad.autograd.grad_mode import STATE as _GRAD
from tapegrad.autograd.node import Node
# ``x @ w.T + b``: the functional linear (one fused op with its bias), named here for the
# step functions and the layers (``ops.linear``).
from tapegrad.nn.functional import linear
from tapegrad.ops.shape import chunk, stack
from tapegrad.ops.unary import relu, sigmoid, tanh

__all__ = ["rnn_step", "lstm_step", "gru_step", "rnn_tanh_cell", "rnn_relu_cell",
           "lstm_cell", "gru_cell", "rnn_scan", "lstm_scan", "gru_scan", "linear"]


# ---- one step (the single statement of the math) --------------------------------------------
def rnn_step(xw, h, w_hh, b_hh=None, nonlinearity: str = "tanh"):
    """``act(xw + h W_hh^T + b_hh)`` where ``xw = x W_ih^T + b_ih``.

    >>> rnn_step(tapegrad.zeros(2, 3), tapegrad.zeros(2, 3), tapegrad.eye(3)).shape
    tapegrad.Size([2, 3])
    """
    a = xw + linear(h, w_hh, b_hh)
    return tanh(a) if nonlinearity == "tanh" else relu(a)


def lstm_step(xw, h, c, w_hh, b_hh=None):
    """One LSTM step from the input projection ``xw`` (gates ``i, f, g, o``); returns ``(h, c)``.

    >>> h, c = lstm_step(tapegrad.zeros(2, 12), tapegrad.zeros(2, 3), tapegrad.zeros(2, 3),
    ...                  tapegrad.zeros(12, 3))
    """
    i, f, g, o = chunk(xw + linear(h, w_hh, b_hh), 4, -1)
    c = sigmoid(f) * c + sigmoid(i) * tanh(g)
    return sigmoid(o) * tanh(c), c


def gru_step(xw, h, w_hh, b_hh=None):
    """One GRU step from the input projection ``xw`` (gates ``r, z, n``).

    ``n = tanh(x_n + r * (W_hn h + b_hn))`` and ``h' = (1 - z) * n + z * h``.

    >>> gru_step(tapegrad.zeros(2, 9), tapegrad.zeros(2, 3), tapegrad.zeros(9, 3)).shape
    tapegrad.Size([2, 3])
    """
    xr, xz, xn = chunk(xw, 3, -1)
    hr, hz, hn = chunk(linear(h, w_hh, b_hh), 3, -1)
    r = sigmoid(xr + hr)
    z = sigmoid(xz + hz)
    n = tanh(xn + r * hn)
    return n + z * (h - n)


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """``tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (PyTorch's ``rnn_tanh_cell``)."""
    return rnn_step(linear(input, w_ih, b_ih), hx, w_hh, b_hh, "tanh")


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """``relu(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (PyTorch's ``rnn_relu_cell``)."""
    return rnn_step(linear(input, w_ih, b_ih), hx, w_hh, b_hh, "relu")


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step; ``hx = (h, c)``; returns ``(h', c')`` (PyTorch's ``lstm_cell``)."""
    return lstm_step(linear(input, w_ih, b_ih), hx[0], hx[1], w_hh, b_hh)


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step (PyTorch's ``gru_cell``)."""
    return gru_step(linear(input, w_ih, b_ih), hx, w_hh, b_hh)


# ---- whole sequences -------------------------------------------------------------------------
def _order(n, reverse):
    return range(n - 1, -1, -1) if reverse else range(n)


def rnn_scan(xw, h0, w_hh, b_hh=None, nonlinearity: str = "tanh", reverse: bool = False):
    """Every hidden state ``(T, B, H)`` of an Elman RNN over the projections ``xw``.

    ``reverse`` walks from the last step to the first (the backward direction of a
    bidirectional layer); states stay in time order either way.
    """
    if _hs.DUAL:  # tangents: the steps as ops, each with its jvp
        return _rnn_steps(xw, h0, w_hh, b_hh, nonlinearity, reverse)
    return RnnScan.apply(xw, h0, w_hh, b_hh, nonlinearity=nonlinearity, reverse=reverse)


def lstm_scan(xw, h0, c0, w_hh, b_hh=None, reverse: bool = False):
    """Every ``h`` and every ``c`` ``(T, B, H)`` of an LSTM over the projections ``xw``."""
    if _hs.DUAL:
        return _lstm_steps(xw, h0, c0, w_hh, b_hh, reverse)
    return LstmScan.apply(xw, h0, c0, w_hh, b_hh, reverse=reverse)


def gru_scan(xw, h0, w_hh, b_hh=None, reverse: bool = False):
    """Every hidden state ``(T, B, H)`` of a GRU over the projections ``xw``."""
    if _hs.DUAL:
        return _gru_steps(xw, h0, w_hh, b_hh, reverse)
    return GruScan.apply(xw, h0, w_hh, b_hh, reverse=reverse)


def _rnn_steps(xw, h0, w_hh, b_hh, nonlinearity, reverse):
    ys = [None] * xw.shape[0]
    h = h0
    for t in _order(len(ys), reverse):
        h = ys[t] = rnn_step(xw[t], h, w_hh, b_hh, nonlinearity)
    return stack(ys)


def _lstm_steps(xw, h0, c0, w_hh, b_hh, reverse):
    ys = [None] * xw.shape[0]
    cs = [None] * len(ys)
    h, c = h0, c0
    for t in _order(len(ys), reverse):
        h, c = lstm_step(xw[t], h, c, w_hh, b_hh)
        ys[t], cs[t] = h, c
    return stack(ys), stack(cs)


def _gru_steps(xw, h0, w_hh, b_hh, reverse):
    ys = [None] * xw.shape[0]
    h = h0
    for t in _order(len(ys), reverse):
        h = ys[t] = gru_step(xw[t], h, w_hh, b_hh)
    return stack(ys)


# ---- fused primitives ------------------------------------------------------------------------
def _prev_states(xp, ys, h0, reverse):
    """The state each step read, in time order: ``h0`` then ``ys`` shifted by one step."""
    if reverse:
        return xp.concatenate([ys[1:], h0[None]])
    return xp.concatenate([h0[None], ys[:-1]])


def _hidden_grads(xp, g_h, ys, h0, reverse) -> tuple:
    """Gradients of ``w_hh`` and ``b_hh`` from the hidden-side gate grads."""
    hp = _prev_states(xp, ys, h0, reverse)
    return g_h.reshape(-1, g_h.shape[-1]).T @ hp.reshape(-1, hp.shape[-1]), \
        g_h.sum(axis=(0, 1))


def _graph_vjp(node, grads, steps):
    """The vjp as a graph: differentiate the step functions re-run on the saved inputs."""
    from tapegrad.autograd.engine import grad
    from tapegrad.ops.shape import view_as

    inputs = list(node.saved[:len(node.next)])
    wanted = [i for i, e in enumerate(node.next) if e is not None]
    for i in wanted:
        # A fresh view per input: the inner backward stops there instead of running on into
        # the inputs' own history, which the outer backward walks itself.
        inputs[i] = view_as(inputs[i], inputs[i])
    outs = steps(node, *inputs)
    if not isinstance(outs, tuple):
        outs = (outs,)
    pairs = [(o, g) for o, g in zip(outs, grads) if g is not None]
    res = grad([o for o, _ in pairs], [inputs[i] for i in wanted], [g for _, g in pairs],
               create_graph=True, allow_unused=True)
    full = [None] * len(inputs)
    for i, r in zip(wanted, res):
        full[i] = r
    return tuple(full)


class _Scan(Node):
    """Shared bookkeeping of the fused scans."""

    def release(self) -> None:
        # The kernels' private intermediates go with the saved tensors.
        super().release()
        self.__dict__.pop("acts", None)
        self.__dict__.pop("hns", None)


class RnnScan(_Scan):
    """All steps of an Elman RNN: inputs ``(xw, h0, w_hh, b_hh)``, output ``(T, B, H)``."""

    name = "rnn_scan"
    save = (0, 1, 2, 3, "out")

    @staticmethod
    def forward(ctx, be, xw, h0, w_hh, b_hh, nonlinearity, reverse):
        ctx.be, ctx.nonlinearity, ctx.reverse = be, nonlinearity, reverse
        if b_hh is not None:
            xw = xw + b_hh
        return be.k[f"rnn_{nonlinearity}_seq"](xw, h0, w_hh, reverse)

    def vjp(self, gy):
        if _graph_needed():
            return _graph_vjp(self, (gy,), _rnn_steps_of)
        _, h0, w_hh, _, ys = self.saved
        return _masked(RnnScanGrad.apply(gy, ys, h0, w_hh, nonlinearity=self.nonlinearity,
                                         reverse=self.reverse), self.next)


class LstmScan(_Scan):
    """All steps of an LSTM: inputs ``(xw, h0, c0, w_hh, b_hh)``, outputs ``(hs, cs)``."""

    name = "lstm_scan"
    multi_output = True
    save = (0, 1, 2, 3, 4, ("out", 0), ("out", 1))

    @staticmethod
    def forward(ctx, be, xw, h0, c0, w_hh, b_hh, reverse):
        ctx.be, ctx.reverse = be, reverse
        if b_hh is not None:
            xw = xw + b_hh
        ys, cs, ctx.acts = be.k["lstm_seq"](xw, h0, c0, w_hh, reverse)
        return ys, cs

    def vjp(self, gy, gc):
        if _graph_needed():
            return _graph_vjp(self, (gy, gc), _lstm_steps_of)
        _, h0, c0, w_hh, _, ys, cs = self.saved
        return _masked(LstmScanGrad.apply(gy, gc, cs, self.acts, h0, c0, w_hh, ys,
                                          reverse=self.reverse), self.next)


class GruScan(_Scan):
    """All steps of a GRU: inputs ``(xw, h0, w_hh, b_hh)``, output ``(T, B, H)``."""

    name = "gru_scan"
    save = (0, 1, 2, 3, "out")

    @staticmethod
    def forward(ctx, be, xw, h0, w_hh, b_hh, reverse):
        ctx.be, ctx.reverse = be, reverse
        if b_hh is None:
            b_hh = be.xp.zeros_like(w_hh, shape=w_hh.shape[:1])
        ys, ctx.acts, ctx.hns = be.k["gru_seq"](xw, h0, w_hh, b_hh, reverse)
        return ys

    def vjp(self, gy):
        if _graph_needed():
            return _graph_vjp(self, (gy,), _gru_steps_of)
        _, h0, w_hh, _, ys = self.saved
        return _masked(GruScanGrad.apply(gy, ys, self.acts, self.hns, h0, w_hh,
                                         reverse=self.reverse), self.next)


def _graph_needed() -> bool:
    """Whether a scan's vjp must be a graph of the steps (for gradients of gradients, or
    tangents) rather than the fused kernel. A compile trace's backward records the fused
    one: the graph that trace builds is never differentiated."""
    if _hs.DUAL:
        return True
    if not _GRAD.grad_enabled:
        return False
    tr = _hs.TRACER
    return tr is None or tr.phase != "backward"


def _masked(grads, mask) -> tuple:
    return tuple(None if e is None else g for g, e in zip(grads, mask))


class _ScanGrad(Node):
    """The fused backward of a scan, as an op (so that a compile trace records it): every
    input's gradient, ``(xw, h0[, c0], w_hh, b_hh)``; the scan's vjp keeps those it needs.
    Not differentiable: a gradient of a gradient goes through the steps (``_graph_vjp``)."""

    differentiable = False
    multi_output = True


class RnnScanGrad(_ScanGrad):
    name = "rnn_scan_backward"

    @staticmethod
    def forward(ctx, be, gy, ys, h0, w_hh, nonlinearity, reverse):
        g, dh0 = be.k[f"rnn_{nonlinearity}_seq_backward"](gy, ys, h0, w_hh, reverse)
        return (g, dh0) + _hidden_grads(be.xp, g, ys, h0, reverse)


class LstmScanGrad(_ScanGrad):
    name = "lstm_scan_backward"

    @staticmethod
    def forward(ctx, be, gy, gc, cs, acts, h0, c0, w_hh, ys, reverse):
        gy = be.xp.zeros_like(cs) if gy is None else gy
        gc = be.xp.zeros_like(cs) if gc is None else gc
        g, dh0, dc0 = be.k["lstm_seq_backward"](gy, gc, cs, acts, c0, w_hh, reverse)
        return (g, dh0, dc0) + _hidden_grads(be.xp, g, ys, h0, reverse)


class GruScanGrad(_ScanGrad):
    name = "gru_scan_backward"

    @staticmethod
    def forward(ctx, be, gy, ys, acts, hns, h0, w_hh, reverse):
        gx, gh, dh0 = be.k["gru_seq_backward"](gy, ys, acts, hns, h0, w_hh, reverse)
        return (gx, dh0) + _hidden_grads(be.xp, gh, ys, h0, reverse)


def _rnn_steps_of(node, xw, h0, w_hh, b_hh):
    return _rnn_steps(xw, h0, w_hh, b_hh, node.nonlinearity, node.reverse)


def _lstm_steps_of(node, xw, h0, c0, w_hh, b_hh):
    return _lstm_steps(xw, h0, c0, w_hh, b_hh, node.reverse)


def _gru_steps_of(node, xw, h0, w_hh, b_hh):
    return _gru_steps(xw, h0, w_hh, b_hh, node.reverse)
