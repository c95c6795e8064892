"""Checking a state dict against a module before anything is written, so that a failed
``load_state_dict`` leaves the module exactly as it was."""

from __future__ import annotations

from collections import OrderedDict, namedtuple

from tapegrad.autograd.grad_mode import no_grad
from tapegrad.nn.parameter import Parameter
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


class StateDictMixin:
    """``state_dict`` / ``load_state_dict`` of :class:`~tapegrad.nn.Module` (kept here, beside
    the checks they use)."""

    __slots__ = ()

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        """An ``OrderedDict`` of every parameter and persistent buffer by dotted name
        (detached unless ``keep_vars``). Shared parameters appear under every name.

        >>> list(tapegrad.nn.BatchNorm1d(3).state_dict())
        ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
        """
        if args:  # PyTorch's deprecated positional form (destination, prefix, keep_vars)
            destination = args[0]
            if len(args) > 1:
                prefix = args[1]
            if len(args) > 2:
                keep_vars = args[2]
        if destination is None:
            destination = OrderedDict()
        for k, p in self._parameters.items():
            if p is not None:
                destination[prefix + k] = p if keep_vars else p.detach()
        for k, b in self._buffers.items():
            if b is not None and k not in self._non_persistent_buffers_set:
                destination[prefix + k] = b if keep_vars else b.detach()
        for k, m in self._modules.items():
            if m is not None:
                m.state_dict(destination=destination, prefix=prefix + k + ".",
                             keep_vars=keep_vars)
        return destination

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy parameters and buffers from ``state_dict``.

        Every key and shape is checked before anything is written: with ``strict``, missing
        or unexpected keys raise; a shape mismatch always raises (RuntimeError naming the key
        and both shapes) and leaves the module unchanged. Returns
        ``(missing_keys, unexpected_keys)``.

        >>> m.load_state_dict(other.state_dict())
        <All keys matched successfully>
        """
        own = self.state_dict(keep_vars=True)
        values, missing, unexpected = check_state_dict(self._get_name(), own, state_dict,
                                                       strict)
        with no_grad():
            for k, v in values.items():
                if assign:
                    self._assign_state(k, own[k], v)
                else:
                    own[k].copy_(v)
        return IncompatibleKeys(missing, unexpected)

    def _assign_state(self, key: str, old: Tensor, new: Tensor) -> None:
        path, _, name = key.rpartition(".")
        mod = self.get_submodule(path)
        if name in mod._parameters:
            mod._parameters[name] = Parameter(new.detach(), old.requires_grad)
        else:
            mod._buffers[name] = new.detach()
