"""PyTorch-style ``repr`` of tensors: ``tensor([1.5000, 2.0000], requires_grad=True)``."""

from __future__ import annotations

import numpy as np

from tapegrad import _dtype as D


def _float_formatter(a):
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return lambda v: _special(v) or f"{v}"
    absf = np.abs(finite)
    nonzero = absf[absf > 0]
    integral = np.all(finite == np.round(finite))
    sci = nonzero.size and (nonzero.max() / nonzero.min() > 1000.0 or nonzero.max() > 1e8
                            or nonzero.min() < 1e-4)
    if integral and not (nonzero.size and nonzero.max() > 1e8):
        width = max(len(f"{v:.0f}.") for v in finite)
        return lambda v: (_special(v) or f"{v:.0f}.").rjust(width)
    if sci:
        width = max(len(f"{v:.4e}") for v in finite)
        return lambda v: (_special(v) or f"{v:.4e}").rjust(width)
    width = max(len(f"{v:.4f}") for v in finite)
    return lambda v: (_special(v) or f"{v:.4f}").rjust(width)


def _special(v):
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return None


def format_array(a: np.ndarray, indent: int) -> str:
    if a.dtype == np.bool_:
        fmt = {"bool": lambda v: "True" if v else "False"}
    elif a.dtype.kind == "f":
        f = _float_formatter(a.astype(np.float64))
        fmt = {"float_kind": lambda v: f(float(v))}
    else:
        fmt = {"int": lambda v: str(int(v))}
    return np.array2string(a, separator=", ", formatter=fmt, prefix=" " * indent,
                           threshold=1000, edgeitems=3, max_line_width=80)


def tensor_repr(t, prefix: str = "tensor(") -> str:
    a = t._host()
    suffix = []
    if a.size == 0 and a.ndim != 1:
        body = "[]"
        suffix.append(f"size={tuple(a.shape)}")
    else:
        body = format_array(a, len(prefix))
    if t.device.type != "cpu":
        suffix.append(f"device='{t.device}'")
    dt = t.dtype
    if not (dt is D.get_default_dtype() or dt is D.int64 or dt is D.bool):
        suffix.append(f"dtype={dt!r}")
    if t.grad_fn is not None:
        suffix.append(f"grad_fn=<{t.grad_fn.name_backward()}>")
    elif t.requires_grad:
        suffix.append("requires_grad=True")
    return prefix + body + "".join(", " + s for s in suffix) + ")"
