"""``Parameter``: a tensor that a :class:`~tapegrad.nn.Module` registers as learnable.

>>> p = Parameter(tapegrad.zeros(2))
>>> p.requires_grad, isinstance(p, tapegrad.Tensor)
(True, True)
"""

from __future__ import annotations

from tapegrad.tensor import Tensor

__all__ = ["Parameter", "Buffer"]


class Parameter(Tensor):
    """A leaf tensor that requires grad by default and that modules register on assignment.

    It shares memory (and version counter) with ``data``, as PyTorch's does. Operations on a
    Parameter return plain tensors.

    >>> w = Parameter(tapegrad.ones(2, 3))
    >>> (w * 2).sum().backward(); w.grad.shape
    tapegrad.Size([2, 3])
    """

    __slots__ = ()

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True):
        if data is None:
            from tapegrad.creation import empty

            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: expected a Tensor as data, got {type(data).__name__}")
        p = cls._make(data._data, False, None, 0, data._device)
        p._vc = data._vc
        if requires_grad:
            p.requires_grad = True  # the setter refuses integer dtypes, as PyTorch does
        return p

    def __init__(self, data=None, requires_grad: bool = True):
        pass  # everything happened in __new__ (Tensor.__init__ would rebuild from data)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        p = Parameter._make(self._data.copy(), False, None, 0, self._device)
        p._requires_grad = self._requires_grad
        if self.grad is not None:
            p.grad = self.grad.__deepcopy__(memo)
        memo[id(self)] = p
        return p

    def __reduce_ex__(self, protocol):
        return (_rebuild_parameter, (self._host().copy(), self._requires_grad,
                                     str(self._device)))


def _rebuild_parameter(arr, requires_grad, dev):
    from tapegrad.creation import tensor

    return Parameter(tensor(arr, device=dev), requires_grad)


class Buffer(Tensor):
    """Marks a tensor to be registered as a buffer when assigned to a module attribute.

    >>> m.running = Buffer(tapegrad.zeros(3))    # same as m.register_buffer("running", ...)
    """

    __slots__ = ("persistent",)

    def __new__(cls, data: Tensor, *, persistent: bool = True):
        b = cls._make(data._data, False, None, 0, data._device)
        b._vc = data._vc
        b.persistent = persistent
        return b

    def __init__(self, data=None, *, persistent: bool = True):
        pass
