"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU`` with PyTorch's arguments, parameter names,
gate order, initialisation and output shapes, so state dicts carry over both ways.

Each layer and direction costs one matmul for the input projection of every time step, one
fused scan over time (``_rnn_ops``) and, for a bidirectional layer, one ``cat``; nothing is
recorded per time step.

>>> rnn = tapegrad.nn.LSTM(10, 20, num_layers=2, bidirectional=True)
>>> out, (h_n, c_n) = rnn(tapegrad.randn(5, 3, 10))
>>> out.shape, h_n.shape
(tapegrad.Size([5, 3, 40]), tapegrad.Size([4, 3, 20]))
"""

from __future__ import annotations

import math
import numbers
import warnings

from tapegrad.creation import empty, zeros
from tapegrad.nn import _rnn_ops as ops
from tapegrad.nn.module import Module
from tapegrad.nn.parameter import Parameter
from tapegrad.ops.shape import cat, reshape, squeeze, stack, transpose, unsqueeze

__all__ = ["RNNBase", "RNN", "LSTM", "GRU"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class RNNBase(Module):
    """What ``RNN``, ``LSTM`` and ``GRU`` share: parameters, checks and the layer loop.

    Parameters are registered in PyTorch's order, per layer ``k`` and direction:
    ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, then the same
    with ``_reverse`` for the backward direction.
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__()
        name = _NAMES.get(mode, mode)
        if mode not in _GATES:
            raise ValueError(f"Unrecognized RNN mode: {mode}")
        if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool)
                or not 0 <= dropout <= 1):
            raise ValueError(f"{name}: dropout should be a number in range [0, 1] representing "
                             f"the probability of an element being zeroed, got {dropout}")
        for arg, v in (("input_size", input_size), ("hidden_size", hidden_size),
                       ("num_layers", num_layers), ("proj_size", proj_size)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{name}: {arg} should be of type int, got: "
                                f"{type(v).__name__}")
        if hidden_size <= 0:
            raise ValueError(f"{name}: hidden_size must be greater than zero, got {hidden_size}")
        if num_layers <= 0:
            raise ValueError(f"{name}: num_layers must be greater than zero, got {num_layers}")
        if proj_size != 0:
            raise NotImplementedError(f"{name}: proj_size={proj_size} (LSTM projections) is "
                                      "not supported; use proj_size=0")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          "non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=2)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size

        gate_size = _GATES[mode] * hidden_size
        num_directions = 2 if bidirectional else 1
        self._all_weights = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * num_directions
            for direction in range(num_directions):
                sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                names = [f"weight_ih{sfx}", f"weight_hh{sfx}"]
                shapes = [(gate_size, layer_input), (gate_size, hidden_size)]
                if bias:
                    names += [f"bias_ih{sfx}", f"bias_hh{sfx}"]
                    shapes += [(gate_size,), (gate_size,)]
                for n, shape in zip(names, shapes):
                    self.register_parameter(n, Parameter(empty(shape, dtype=dtype,
                                                               device=device)))
                self._all_weights.append(names)
        self._flat_weights_names = [n for names in self._all_weights for n in names]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as PyTorch."""
        from tapegrad.nn import init

        stdv = 1.0 / math.sqrt(self.hidden_size)
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def flatten_parameters(self) -> None:
        """Kept for PyTorch compatibility: the weights need no flattening here."""

    @property
    def all_weights(self) -> list:
        """Per layer and direction, ``[weight_ih, weight_hh, bias_ih, bias_hh]``."""
        return [[self._parameters[n] for n in names] for names in self._all_weights]

    @property
    def _flat_weights(self) -> list:
        return [self._parameters[n] for n in self._flat_weights_names]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    # ---- checks ---------------------------------------------------------------------------
    def _check_input(self, input) -> bool:
        """Validate ``input``; returns whether it is batched (3-D)."""
        name = self._get_name()
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.ndim}D tensor "
                             f"instead (shape {tuple(input.shape)})")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"{name}: input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {input.shape[-1]} (input shape "
                               f"{tuple(input.shape)})")
        w = self._parameters[self._flat_weights_names[0]]
        if input.dtype is not w.dtype:
            raise RuntimeError(f"{name}: input must have the same dtype as the weights: got "
                               f"input {input.dtype} and weights {w.dtype}")
        return input.ndim == 3

    def _check_state(self, hx, expected, what: str) -> None:
        if tuple(hx.shape) != expected:
            raise RuntimeError(f"{self._get_name()}: Expected {what} size {expected}, got "
                               f"{tuple(hx.shape)}")
        w = self._parameters[self._flat_weights_names[0]]
        if hx.dtype is not w.dtype:
            raise RuntimeError(f"{self._get_name()}: {what} must have the same dtype as the "
                               f"weights: got {hx.dtype} and {w.dtype}")

    def _prepare(self, input, states, what):
        """Shape ``input`` as ``(T, B, F)`` and check the initial states against it."""
        batched = self._check_input(input)
        dims = [s.ndim for s in states if s is not None]
        if batched and any(d != 3 for d in dims):
            raise RuntimeError(f"{self._get_name()}: For batched 3-D input, {what} should also "
                               f"be 3-D but got {_dims(dims)} tensor")
        if not batched:
            if any(d != 2 for d in dims):
                raise RuntimeError(f"{self._get_name()}: For unbatched 2-D input, {what} should "
                                   f"also be 2-D but got {_dims(dims)} tensor")
            input = unsqueeze(input, 1)
            states = [None if s is None else unsqueeze(s, 1) for s in states]
        elif self.batch_first:
            input = transpose(input, 0, 1)
        expected = (self.num_layers * (2 if self.bidirectional else 1), input.shape[1],
                    self.hidden_size)
        names = ["hidden"] if len(states) == 1 else ["hidden[0]", "hidden[1]"]
        for s, n in zip(states, names):
            if s is not None:
                self._check_state(s, expected, n)
        return input, states, batched

    def _finish(self, out, states, batched):
        if not batched:
            return squeeze(out, 1), [squeeze(s, 1) for s in states]
        if self.batch_first:
            out = transpose(out, 0, 1)
        return out, states

    # ---- the layer loop -------------------------------------------------------------------
    def _run(self, x, h0, c0=None):
        """All layers over ``x`` ``(T, B, F)``; returns the output and the final states."""
        n_steps, batch = x.shape[0], x.shape[1]
        num_directions = 2 if self.bidirectional else 1
        zero = None
        if h0 is None or (self.mode == "LSTM" and c0 is None):
            zero = zeros(batch, self.hidden_size, dtype=x.dtype, device=x.device)
        gate_size = _GATES[self.mode] * self.hidden_size
        last_h, last_c = [], []
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for direction in range(num_directions):
                k = layer * num_directions + direction
                names = self._all_weights[k]
                w_ih, w_hh = self._parameters[names[0]], self._parameters[names[1]]
                b_ih = self._parameters[names[2]] if self.bias else None
                b_hh = self._parameters[names[3]] if self.bias else None
                # One matmul projects every time step at once. Outside a GRU (whose b_hn sits
                # inside r * (W_hn h + b_hn)), b_hh is added to each step's projection as it
                # is: it joins b_ih there, in the product's output, instead of costing the
                # scan a pass over (T, B, gates) (both biases get the same gradient).
                flat = reshape(layer_in, (n_steps * batch, layer_in.shape[2]))
                b_in = b_ih
                if b_hh is not None and self.mode != "GRU":
                    b_in, b_hh = b_ih + b_hh, None
                xw = reshape(ops.linear(flat, w_ih, b_in), (n_steps, batch, gate_size))
                h = zero if h0 is None else h0[k]
                reverse = direction == 1
                last = 0 if reverse else n_steps - 1
                if self.mode == "LSTM":
                    c = zero if c0 is None else c0[k]
                    ys, cs = ops.lstm_scan(xw, h, c, w_hh, b_hh, reverse)
                    last_c.append(cs[last])
                elif self.mode == "GRU":
                    ys = ops.gru_scan(xw, h, w_hh, b_hh, reverse)
                else:
                    ys = ops.rnn_scan(xw, h, w_hh, b_hh, _ACT[self.mode], reverse)
                last_h.append(ys[last])
                outs.append(ys)
            layer_in = outs[0] if num_directions == 1 else cat(outs, 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                from tapegrad.nn.functional import dropout

                layer_in = dropout(layer_in, self.dropout, True)
        return layer_in, stack(last_h), (stack(last_c) if last_c else None)


_NAMES = {"RNN_TANH": "RNN", "RNN_RELU": "RNN", "LSTM": "LSTM", "GRU": "GRU"}
_ACT = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}


def _dims(dims) -> str:
    return "(" + ", ".join(f"{d}-D" for d in dims) + ")" if len(dims) > 1 else f"{dims[0]}-D"


class RNN(RNNBase):
    r"""Elman RNN: :math:`h_t = \tanh(x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh})`
    (or ``relu`` with ``nonlinearity='relu'``), stacked ``num_layers`` deep.

    ``forward(input, hx=None)`` takes input ``(L, N, H_in)`` (``(N, L, H_in)`` with
    ``batch_first``, ``(L, H_in)`` unbatched) and returns ``(output, h_n)`` with output
    ``(L, N, D*H_out)`` and ``h_n`` ``(num_layers*D, N, H_out)``.

    >>> rnn = tapegrad.nn.RNN(10, 20, 2)
    >>> output, hn = rnn(tapegrad.randn(5, 3, 10), tapegrad.randn(2, 3, 20))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None) -> None:
        if nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"RNN: Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' "
                             "or 'relu'.")
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, 0, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        x, (h0,), batched = self._prepare(input, [hx], "hx")
        out, h_n, _ = self._run(x, h0)
        out, (h_n,) = self._finish(out, [h_n], batched)
        return out, h_n


class LSTM(RNNBase):
    r"""Long short-term memory, PyTorch's gate order ``i, f, g, o``:

    .. math::
        i, f, g, o = \sigma, \sigma, \tanh, \sigma\ \text{of}\
                     (x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh})\ \text{chunks};\quad
        c_t = f c_{t-1} + i g;\quad h_t = o \tanh(c_t)

    ``forward(input, hx=None)`` with ``hx = (h_0, c_0)`` returns
    ``(output, (h_n, c_n))``.

    >>> lstm = tapegrad.nn.LSTM(10, 20, 2)
    >>> output, (hn, cn) = lstm(tapegrad.randn(5, 3, 10))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device, dtype)

    def forward(self, input, hx=None):
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"LSTM: hx must be a tuple (h_0, c_0), got "
                            f"{type(hx).__name__}")
        h0, c0 = (None, None) if hx is None else hx
        x, (h0, c0), batched = self._prepare(input, [h0, c0], "hx and cx")
        out, h_n, c_n = self._run(x, h0, c0)
        out, (h_n, c_n) = self._finish(out, [h_n, c_n], batched)
        return out, (h_n, c_n)


class GRU(RNNBase):
    r"""Gated recurrent unit, PyTorch's gate order ``r, z, n``:

    .. math::
        r = \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}),\
        z = \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}),\\
        n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})),\
        h' = (1 - z) \odot n + z \odot h

    >>> gru = tapegrad.nn.GRU(10, 20, 2, batch_first=True)
    >>> output, hn = gru(tapegrad.randn(3, 5, 10))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, 0, device, dtype)

    def forward(self, input, hx=None):
        x, (h0,), batched = self._prepare(input, [hx], "hx")
        out, h_n, _ = self._run(x, h0)
        out, (h_n,) = self._finish(out, [h_n], batched)
        return out, h_n
