"""Moving tensors between devices (differentiable: the gradient moves back)."""

from __future__ import annotations

from tapegrad.autograd.node import Node


class ToDevice(Node):
    name = "to_device"

    @staticmethod
    def forward(ctx, be, x, src, dst):
        from tapegrad import backends

        ctx.src = src
        return backends.move_array(x, src, dst)

    def vjp(self, g):
        return (move(g, self.src),)

    def jvp(self, inputs, out, t):
        return move(t, out.device)


def move(x, dev):
    """``x`` copied to device ``dev``."""
    from tapegrad.tensor import Tensor

    arr = ToDevice.forward(_Ctx(), None, x._data, x.device, dev)
    if not x.requires_grad:
        return Tensor._make(arr, False, None, 0, dev)
    from tapegrad.autograd.grad_mode import is_grad_enabled
    from tapegrad.autograd.node import _edge, number

    if not is_grad_enabled():
        return Tensor._make(arr, False, None, 0, dev)
    node = ToDevice.__new__(ToDevice)
    node._pre_hooks = node._post_hooks = None
    node._freed = False
    node._saved = ()
    node._nout = 1
    node.src = x.device
    node.next = (_edge(x),)
    number(node, node.next)
    return Tensor._make(arr, True, node, 0, dev)


class _Ctx:
    pass
