"""Single-step recurrent cells: ``RNNCell``, ``LSTMCell``, ``GRUCell`` (PyTorch's names,
shapes, gate order and initialisation). The math is the step functions of ``_rnn_ops``.

>>> cell = tapegrad.nn.LSTMCell(10, 20)
>>> h, c = cell(tapegrad.randn(3, 10))
>>> h.shape
tapegrad.Size([3, 20])
"""

from __future__ import annotations

import math

from tapegrad.creation import empty, zeros
from tapegrad.nn import _rnn_ops as ops
from tapegrad.nn.module import Module
from tapegrad.nn.parameter import Parameter
from tapegrad.ops.shape import squeeze, unsqueeze

__all__ = ["RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


class RNNCellBase(Module):
    """Parameters ``weight_ih`` ``(G*H, in)``, ``weight_hh`` ``(G*H, H)``, ``bias_ih``,
    ``bias_hh`` ``(G*H,)`` for ``G`` gates, and the input checks the cells share."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device=None, dtype=None) -> None:
        super().__init__()
        name = type(self).__name__
        if hidden_size <= 0:
            raise ValueError(f"{name}: hidden_size must be greater than zero, got {hidden_size}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        g = num_chunks * hidden_size
        self.weight_ih = Parameter(empty(g, input_size, dtype=dtype, device=device))
        self.weight_hh = Parameter(empty(g, hidden_size, dtype=dtype, device=device))
        if bias:
            self.bias_ih = Parameter(empty(g, dtype=dtype, device=device))
            self.bias_hh = Parameter(empty(g, dtype=dtype, device=device))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as PyTorch."""
        from tapegrad.nn import init

        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nonlinearity = getattr(self, "nonlinearity", "tanh")
        if nonlinearity != "tanh":
            s += f", nonlinearity={nonlinearity}"
        return s

    def _prepare(self, input, states):
        """Batch ``input`` and the states (zeros when absent) and check their sizes."""
        name = type(self).__name__
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead "
                             f"(shape {tuple(input.shape)})")
        for s in states:
            if s is not None and s.ndim not in (1, 2):
                raise ValueError(f"{name}: Expected hidden to be 1D or 2D, got {s.ndim}D "
                                 f"instead (shape {tuple(s.shape)})")
        batched = input.ndim == 2
        if not batched:
            input = unsqueeze(input, 0)
        if input.shape[1] != self.input_size:
            raise RuntimeError(f"{name}: input has inconsistent input_size: got "
                               f"{input.shape[1]}, expected {self.input_size} (input shape "
                               f"{tuple(input.shape)})")
        if input.dtype is not self.weight_ih.dtype:
            raise RuntimeError(f"{name}: input must have the same dtype as the weights: got "
                               f"input {input.dtype} and weights {self.weight_ih.dtype}")
        out = []
        for k, s in enumerate(states):
            if s is None:
                s = zeros(input.shape[0], self.hidden_size, dtype=input.dtype,
                          device=input.device)
            else:
                if (s.ndim == 2) != batched:
                    raise RuntimeError(f"{name}: input is {input.ndim if batched else 1}-D but "
                                       f"hidden{k} is {s.ndim}-D (shape {tuple(s.shape)})")
                if not batched:
                    s = unsqueeze(s, 0)
                if s.shape[0] != input.shape[0]:
                    raise RuntimeError(f"{name}: Input batch size {input.shape[0]} doesn't "
                                       f"match hidden{k} batch size {s.shape[0]}")
                if s.shape[1] != self.hidden_size:
                    raise RuntimeError(f"{name}: hidden{k} has inconsistent hidden_size: got "
                                       f"{s.shape[1]}, expected {self.hidden_size}")
            out.append(s)
        return input, out, batched


class RNNCell(RNNCellBase):
    r"""One Elman step: :math:`h' = \tanh(x W_{ih}^T + b_{ih} + h W_{hh}^T + b_{hh})`
    (``relu`` with ``nonlinearity='relu'``); ``hx`` defaults to zeros.

    >>> cell = tapegrad.nn.RNNCell(10, 20)
    >>> h = cell(tapegrad.randn(3, 10))
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: Unknown nonlinearity: {nonlinearity}")
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        x, (h,), batched = self._prepare(input, [hx])
        cell = ops.rnn_tanh_cell if self.nonlinearity == "tanh" else ops.rnn_relu_cell
        h = cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h if batched else squeeze(h, 0)


class LSTMCell(RNNCellBase):
    """One LSTM step (gates ``i, f, g, o``); ``forward(input, hx=(h, c))`` returns
    ``(h', c')``.

    >>> cell = tapegrad.nn.LSTMCell(10, 20)
    >>> h, c = cell(tapegrad.randn(3, 10))
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input, hx=None):
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"LSTMCell: hx must be a tuple (h, c), got {type(hx).__name__}")
        x, (h, c), batched = self._prepare(input, [None, None] if hx is None else list(hx))
        h, c = ops.lstm_cell(x, (h, c), self.weight_ih, self.weight_hh, self.bias_ih,
                             self.bias_hh)
        return (h, c) if batched else (squeeze(h, 0), squeeze(c, 0))


class GRUCell(RNNCellBase):
    """One GRU step (gates ``r, z, n``, ``b_hn`` inside the reset product).

    >>> cell = tapegrad.nn.GRUCell(10, 20)
    >>> h = cell(tapegrad.randn(3, 10))
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input, hx=None):
        x, (h,), batched = self._prepare(input, [hx])
        h = ops.gru_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h if batched else squeeze(h, 0)
