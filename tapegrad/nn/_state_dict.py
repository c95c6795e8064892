"""Checking a state dict against a module before anything is written, so that a failed
``load_state_dict`` leaves the module exactly as it was."""

from __future__ import annotations

from collections import namedtuple

from tapegrad.tensor import Tensor


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns: the keys it could not match."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (f"_IncompatibleKeys(missing_keys={self.missing_keys}, "
                f"unexpected_keys={self.unexpected_keys})")

    __str__ = __repr__


def check_state_dict(name: str, own: dict, state_dict, strict: bool):
    """Match ``state_dict`` against the module's own tensors ``own`` (key -> tensor).

    Returns ``(values to copy, missing keys, unexpected keys)``. Raises one RuntimeError
    listing every problem (unexpected or missing keys when ``strict``; shape mismatches
    always, naming the key and both shapes), as PyTorch does.
    """
    if not hasattr(state_dict, "keys"):
        raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    errors = []
    if strict:
        if unexpected:
            errors.append("Unexpected key(s) in state_dict: "
                          + ", ".join(f'"{k}"' for k in unexpected) + ". ")
        if missing:
            errors.append("Missing key(s) in state_dict: "
                          + ", ".join(f'"{k}"' for k in missing) + ". ")
    values = {}
    for k, t in own.items():
        if k not in state_dict:
            continue
        v = state_dict[k]
        if not isinstance(v, Tensor):
            from tapegrad.creation import as_tensor

            try:
                v = as_tensor(v)
            except (TypeError, ValueError):
                errors.append(f'While copying the parameter named "{k}", expected a tensor '
                              f"from the checkpoint but received {type(v).__name__}")
                continue
        if tuple(v.shape) != tuple(t.shape):
            errors.append(f"size mismatch for {k}: copying a param with shape "
                          f"{tuple(v.shape)} from checkpoint, the shape in current model is "
                          f"{tuple(t.shape)}.")
            continue
        values[k] = v
    if errors:
        raise RuntimeError(f"Error(s) in loading state_dict for {name}:\n\t"
                           + "\n\t".join(errors))
    return values, missing, unexpected
