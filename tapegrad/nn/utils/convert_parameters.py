"""Flatten parameters into one vector and back."""

from __future__ import annotations

from tapegrad.tensor import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def _check_device(param, device):
    if device is None:
        return param.device
    if param.device != device:
        raise TypeError(f"Found two parameters on different devices, this is currently not "
                        f"supported: {device} and {param.device}")
    return device


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and concatenated into one 1-D tensor (differentiable).

    >>> parameters_to_vector(tapegrad.nn.Linear(2, 3).parameters()).shape
    tapegrad.Size([9])
    """
    from tapegrad.ops.shape import cat

    device = None
    views = []
    for p in parameters:
        device = _check_device(p, device)
        views.append(p.reshape(-1))
    return cat(views)


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Point each parameter's data at its slice of ``vec`` (the inverse of
    :func:`parameters_to_vector`)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected tapegrad.Tensor, but got: {type(vec).__name__}")
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if vec.numel() != total:
        raise RuntimeError(f"vector_to_parameters: the vector has {vec.numel()} elements but "
                           f"the parameters need {total}")
    device = None
    pointer = 0
    for p in params:
        device = _check_device(p, device)
        n = p.numel()
        p.data = vec[pointer:pointer + n].reshape(tuple(p.shape)).data
        pointer += n
