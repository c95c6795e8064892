"""PyTorch-style ``repr`` of tensors: ``tensor([1.5000, 2.0000], requires_grad=True)``.

The rules follow PyTorch's ``torch/_tensor_str.py`` (print options at their defaults: 4
digits, 80 columns, summarise above 1000 elements with 3 edge items), so that printed
output reads the same in both libraries:

* integers and bools are right-aligned to the widest value;
* floats whose non-zero finite values are all integral print as ``1.`` ("int mode");
* scientific notation when max/min of the non-zero finite magnitudes exceeds 1000, the max
  exceeds 1e8, or (non-integral values only) the min is below 1e-4;
* otherwise fixed point with 4 decimals, all padded to one width.
"""

from __future__ import annotations

import math

import numpy as np

from tapegrad import _dtype as D

PRECISION = 4
LINEWIDTH = 80
THRESHOLD = 1000
EDGEITEMS = 3


class _Formatter:
    """Decides one width and style for every element of a tensor (PyTorch's _Formatter)."""

    def __init__(self, a: np.ndarray):
        self.floating = a.dtype.kind == "f"
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        flat = a.reshape(-1)
        if not self.floating:
            for v in flat.tolist():
                self.max_width = max(self.max_width, len(f"{v}"))
            return
        vals = flat[np.isfinite(flat) & (flat != 0)]
        if vals.size == 0:
            return
        absd = np.abs(vals.astype(np.float64))
        vmin, vmax = absd.min(), absd.max()
        self.int_mode = bool(np.all(vals == np.ceil(vals)))
        wide = vmax / vmin > 1000.0 or vmax > 1.0e8
        if self.int_mode:
            self.sci_mode = bool(wide)
            if self.sci_mode:
                strs = [f"{v:.{PRECISION}e}" for v in vals.tolist()]
            else:
                strs = [f"{v:.0f}" + " " for v in vals.tolist()]  # room for the "."
        else:
            self.sci_mode = bool(wide or vmin < 1.0e-4)
            spec = "e" if self.sci_mode else "f"
            strs = [f"{v:.{PRECISION}{spec}}" for v in vals.tolist()]
        self.max_width = max(len(s) for s in strs)

    def format(self, v) -> str:
        if self.floating:
            if self.sci_mode:
                s = f"{v:{self.max_width}.{PRECISION}e}"
            elif self.int_mode:
                s = f"{v:.0f}"
                if not (math.isinf(v) or math.isnan(v)):
                    s += "."
            else:
                s = f"{v:.{PRECISION}f}"
        else:
            s = f"{v}"
        return " " * (self.max_width - len(s)) + s


def _summarized(a: np.ndarray) -> np.ndarray:
    """Only the edge items of every dimension (what is printed when summarising)."""
    if a.ndim == 0:
        return a
    if a.ndim == 1:
        if a.shape[0] > 2 * EDGEITEMS:
            return np.concatenate((a[:EDGEITEMS], a[-EDGEITEMS:]))
        return a
    if a.shape[0] > 2 * EDGEITEMS:
        rows = list(range(EDGEITEMS)) + list(range(a.shape[0] - EDGEITEMS, a.shape[0]))
    else:
        rows = range(a.shape[0])
    return np.stack([_summarized(a[i]) for i in rows])


def _vector_str(a, indent, summarize, fmt) -> str:
    per_line = max(1, int(math.floor((LINEWIDTH - indent) / (fmt.max_width + 2))))
    if summarize and a.shape[0] > 2 * EDGEITEMS:
        data = ([fmt.format(v) for v in a[:EDGEITEMS].tolist()] + [" ..."]
                + [fmt.format(v) for v in a[-EDGEITEMS:].tolist()])
    else:
        data = [fmt.format(v) for v in a.tolist()]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _tensor_str(a, indent, summarize, fmt) -> str:
    if a.ndim == 0:
        return fmt.format(a.item())
    if a.ndim == 1:
        return _vector_str(a, indent, summarize, fmt)
    n = a.shape[0]
    if summarize and n > 2 * EDGEITEMS:
        slices = ([_tensor_str(a[i], indent + 1, summarize, fmt) for i in range(EDGEITEMS)]
                  + ["..."]
                  + [_tensor_str(a[i], indent + 1, summarize, fmt)
                     for i in range(n - EDGEITEMS, n)])
    else:
        slices = [_tensor_str(a[i], indent + 1, summarize, fmt) for i in range(n)]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(slices) + "]"


def format_array(a: np.ndarray, indent: int) -> str:
    """The bracketed body of a tensor's repr, ``indent`` columns in."""
    if a.size == 0:
        return "[]"
    if a.dtype == np.float16:
        a = a.astype(np.float32)  # as PyTorch, which formats half tensors as float
    summarize = a.size > THRESHOLD
    fmt = _Formatter(_summarized(a) if summarize else a)
    return _tensor_str(a, indent, summarize, fmt)


def _add_suffixes(body: str, suffixes, indent: int) -> str:
    parts = [body]
    last_len = len(body) - body.rfind("\n") + 1
    for s in suffixes:
        if last_len + len(s) + 2 > LINEWIDTH:
            parts.append(",\n" + " " * indent + s)
            last_len = indent + len(s)
        else:
            parts.append(", " + s)
            last_len += len(s) + 2
    parts.append(")")
    return "".join(parts)


def tensor_repr(t, prefix: str = "tensor(") -> str:
    """``repr(t)`` as PyTorch prints it, with ``tapegrad.`` dtypes.

    >>> tensor_repr(tapegrad.tensor([1.5, 2.0], requires_grad=True))
    'tensor([1.5000, 2.0000], requires_grad=True)'
    """
    a = t._host()
    indent = len(prefix)
    suffixes = []
    if t.device.type != "cpu":
        suffixes.append(f"device='{t.device}'")
    dt = t.dtype
    if a.size == 0:
        if a.ndim != 1:
            suffixes.append(f"size={tuple(a.shape)}")
        if dt is not D.get_default_dtype():  # nothing in an empty tensor hints at its dtype
            suffixes.append(f"dtype={dt!r}")
        body = "[]"
    else:
        if not (dt is D.get_default_dtype() or dt is D.int64 or dt is D.bool):
            suffixes.append(f"dtype={dt!r}")
        body = format_array(a, indent)
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{t.grad_fn.name_backward()}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + body, suffixes, indent)
