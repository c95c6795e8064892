"""Process-wide switches read on every op, kept in one tiny module so the check is one
attribute read when the feature is off (anomaly detection and forward AD cost nothing then).

The modules that own each feature (``anomaly.py``, ``forward_ad.py``) set the flags and
install the functions below.
"""

from __future__ import annotations

ANOMALY = False      # set by autograd.anomaly
FORWARD_AD = False   # set by autograd.forward_ad while a dual level is open


def anomaly_before(ctx, inputs):  # replaced by tapegrad.autograd.anomaly
    pass


def anomaly_after(ctx, inputs, outs):  # replaced by tapegrad.autograd.anomaly
    pass


def forward_ad_hook(ctx, inputs, outs):  # replaced by tapegrad.autograd.forward_ad
    pass


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
