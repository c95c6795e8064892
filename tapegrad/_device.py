"""Devices: ``device('cpu')``, ``device('cuda')``, ``device('cuda:1')``."""

from __future__ import annotations

__all__ = ["device"]


class device:
    """Where a tensor's memory lives. Compares equal to its string form's device."""

    __slots__ = ("type", "index")

    def __new__(cls, spec="cpu", index: int | None = None):
        if isinstance(spec, device):
            return spec
        if not isinstance(spec, str):
            raise TypeError(f"device: expected a string or device, got {type(spec).__name__}")
        typ, _, idx = spec.partition(":")
        if typ not in ("cpu", "cuda"):
            raise RuntimeError(f"device: expected one of cpu, cuda device type at start of "
                               f"device string: {spec}")
        if idx:
            if not idx.isdigit():
                raise RuntimeError(f"device: invalid device string: '{spec}'")
            index = int(idx)
        if typ == "cpu":
            return CPU
        self = object.__new__(cls)
        self.type = typ
        self.index = 0 if index is None else index
        return self

    def __repr__(self) -> str:
        if self.type == "cpu":
            return "device(type='cpu')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.type == "cpu" else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and self.type == other.type and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = object.__new__(device)
CPU.type = "cpu"
CPU.index = None
