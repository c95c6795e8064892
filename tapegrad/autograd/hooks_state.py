"""Process-wide switches read on every op, kept in one tiny module so the check is one
attribute read when the feature is off (anomaly detection and forward AD cost nothing then).

The modules that own each feature (``anomaly.py``, ``forward_ad.py``) set the flags and
install the functions below.
"""

from __future__ import annotations

ANOMALY = False      # set by autograd.anomaly
FORWARD_AD = False   # set by autograd.forward_ad while a dual level is open, and while
#                      tapegrad.compile traces (every op then reports to forward_ad_hook)
DUAL = False         # a forward-AD dual level is open (FORWARD_AD alone may be a trace)
TRACER = None        # the running trace of tapegrad.compile (compiler/trace.py), if any


def anomaly_before(ctx, inputs):  # replaced by tapegrad.autograd.anomaly
    pass


def anomaly_after(ctx, inputs, outs):  # replaced by tapegrad.autograd.anomaly
    pass


def forward_ad_hook(ctx, inputs, outs, attrs=None):  # replaced by autograd.forward_ad
    pass  # (and by a compile trace's recorder: compiler/trace.py)


def data_read(what: str) -> None:
    """A tensor's values are being read into Python (``item()``, ``numpy()``...): a compile
    trace must not replay past it. Called only while ``TRACER`` is set."""
    from tapegrad.compiler.trace import escape

    escape(what)


class RemovableHandle:
    """Returned by ``register_*hook``; ``handle.remove()`` takes the hook away."""

    _next_id = 0

    def __init__(self, table: dict, fn):
        RemovableHandle._next_id += 1
        self.id = RemovableHandle._next_id
        self._table = table
        table[self.id] = fn

    def remove(self) -> None:
        self._table.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def anomaly_backward(node, grads):  # replaced by tapegrad.autograd.anomaly
    pass


def anomaly_vjp(node, grads):  # replaced by tapegrad.autograd.anomaly
    return node.vjp(*grads)
