"""Turning a list of samples into a batch (``default_collate``) the way PyTorch does."""

from __future__ import annotations

import collections.abc as cabc

import numpy as np

from tapegrad.tensor import Tensor

__all__ = ["default_collate", "default_convert"]


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _error(elem) -> TypeError:
    return TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, "
                     f"dicts or lists; found {type(elem)}")


def default_collate(batch: list):
    """Stack a list of samples into one batch, keeping their structure.

    Tensors and NumPy arrays are stacked along a new first dimension; Python floats become
    a float64 tensor, ints an int64 tensor; strings stay a list; dicts, named tuples and
    sequences are collated field by field (plain tuples come back as lists, as in PyTorch).

    >>> default_collate([(tapegrad.tensor([1., 2.]), 0), (tapegrad.tensor([3., 4.]), 1)])
    [tensor([[1., 2.],
            [3., 4.]]), tensor([0, 1])]
    """
    import tapegrad

    elem = batch[0]
    if isinstance(elem, Tensor):
        return tapegrad.stack(list(batch), 0)
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "OSU":
            raise _error(elem)
        return tapegrad.stack([tapegrad.as_tensor(b) for b in batch], 0)
    if isinstance(elem, np.generic) and not isinstance(elem, (np.str_, np.bytes_)):
        return tapegrad.tensor(np.array(batch))
    if isinstance(elem, bool):
        return tapegrad.tensor(list(batch), dtype=tapegrad.bool)
    if isinstance(elem, float):
        return tapegrad.tensor(list(batch), dtype=tapegrad.float64)
    if isinstance(elem, int):
        return tapegrad.tensor(list(batch), dtype=tapegrad.int64)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, cabc.Mapping):
        out = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            return type(elem)(out)
        except TypeError:  # a Mapping whose constructor takes something else
            return out
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, cabc.Sequence):
        size = len(elem)
        for b in batch:
            if len(b) != size:
                raise RuntimeError(f"default_collate: each element in list of batch should "
                                   f"be of equal size (got {size} and {len(b)})")
        fields = [default_collate(list(s)) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return fields
        try:
            return type(elem)(fields)
        except TypeError:
            return fields
    raise _error(elem)


def default_convert(data):
    """What the DataLoader applies to each sample when batching is off (``batch_size=None``):
    NumPy arrays and scalars become tensors, containers are converted element by element.

    >>> default_convert(np.zeros(2))
    tensor([0., 0.], dtype=tapegrad.float64)
    """
    import tapegrad

    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return data if data.dtype.kind in "OSU" else tapegrad.as_tensor(data)
    if isinstance(data, np.generic) and not isinstance(data, (np.str_, np.bytes_)):
        return tapegrad.as_tensor(np.asarray(data))
    if isinstance(data, (str, bytes)):
        return data
    if isinstance(data, cabc.Mapping):
        out = {k: default_convert(v) for k, v in data.items()}
        try:
            return type(data)(out)
        except TypeError:
            return out
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, cabc.Sequence):
        try:
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data
