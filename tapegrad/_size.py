"""``tapegrad.Size``: the tuple subclass returned by ``Tensor.shape``."""

from __future__ import annotations


class Size(tuple):
    """A shape; a tuple of ints that prints like PyTorch's ``torch.Size``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"tapegrad.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __getitem__(self, item):
        r = tuple.__getitem__(self, item)
        return Size(r) if isinstance(item, slice) else r
