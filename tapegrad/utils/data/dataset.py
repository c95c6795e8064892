"""Map-style datasets and ways to combine or split them, as in ``torch.utils.data``.

A map-style dataset is anything with ``__getitem__(i)`` and ``__len__()``; an iterable-style
one only has ``__iter__`` (streams, generators).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from tapegrad.tensor import Tensor

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset",
           "random_split"]


class Dataset:
    """Base class of map-style datasets: subclasses define ``__getitem__`` and ``__len__``.

    >>> class Squares(Dataset):
    ...     def __len__(self): return 4
    ...     def __getitem__(self, i): return i * i
    >>> Squares()[3]
    9
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__}: subclasses of Dataset should "
                                  f"implement __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """Base class of datasets read as a stream: subclasses define ``__iter__``.

    >>> class Count(IterableDataset):
    ...     def __iter__(self): return iter(range(3))
    >>> list(Count())
    [0, 1, 2]
    """

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__}: subclasses of IterableDataset "
                                  f"should implement __iter__")


class TensorDataset(Dataset):
    """Rows of tensors that share their first dimension: item ``i`` is ``(t[i] for t)``.

    >>> ds = TensorDataset(tapegrad.zeros(5, 2), tapegrad.arange(5))
    >>> len(ds), ds[1][1]
    (5, tensor(1))
    """

    def __init__(self, *tensors: Tensor):
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        for t in tensors:
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: expected tensors, got {type(t).__name__}")
            if t.ndim == 0:
                raise ValueError("TensorDataset: 0-d tensors have no first dimension to index")
        sizes = [t.shape[0] for t in tensors]
        if any(s != sizes[0] for s in sizes):
            # PyTorch asserts here; the message names every size so the culprit is visible.
            raise AssertionError(f"Size mismatch between tensors: first dimensions {sizes}")
        self.tensors = tuple(tensors)

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The items of ``dataset`` at ``indices``, in that order.

    >>> Subset(TensorDataset(tapegrad.arange(10)), [7, 2])[0]
    (tensor(7),)
    """

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: list[int]) -> list:
        # Lets the DataLoader fetch a whole batch in one call when the base dataset can.
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """Several map-style datasets one after the other.

    >>> ds = ConcatDataset([TensorDataset(tapegrad.zeros(2)), TensorDataset(tapegrad.ones(3))])
    >>> len(ds), ds[2]
    (5, (tensor(1.),))
    """

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset: does not support IterableDataset")
        self.cumulative_sizes = []
        total = 0
        for d in self.datasets:
            total += len(d)
            self.cumulative_sizes.append(total)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int):
        n = len(self)
        if idx < 0:
            if -idx > n:
                raise ValueError(f"ConcatDataset: absolute value of index {idx} should not "
                                 f"exceed dataset length {n}")
            idx += n
        if idx >= n:
            raise IndexError(f"ConcatDataset: index {idx} is out of range for length {n}")
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][idx - start]


def _lengths_from_fractions(fractions, n: int) -> list[int]:
    """PyTorch's rule: floor each share, then hand the remainder out one by one."""
    lengths = [int(math.floor(n * f)) for f in fractions]
    for i in range(n - sum(lengths)):
        lengths[i % len(lengths)] += 1
    return lengths


def random_split(dataset, lengths: Sequence[int | float], generator=None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets of the given sizes.

    ``lengths`` are item counts summing to ``len(dataset)``, or fractions summing to 1.

    >>> a, b = random_split(range(10), [0.8, 0.2], generator=tapegrad.Generator().manual_seed(0))
    >>> len(a), len(b)
    (8, 2)
    """
    from tapegrad.creation import default_generator, randperm

    n = len(dataset)
    lengths = list(lengths)
    if any(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1.0):
        if any(not 0 <= f <= 1 for f in lengths):
            raise ValueError(f"random_split: fractions should be in [0, 1], got {lengths}")
        lengths = _lengths_from_fractions(lengths, n)
    if any(isinstance(x, float) and not float(x).is_integer() for x in lengths):
        raise ValueError(f"random_split: lengths {lengths} are neither item counts nor "
                         f"fractions summing to 1")
    lengths = [int(x) for x in lengths]
    if any(x < 0 for x in lengths):
        raise ValueError(f"random_split: lengths must be non-negative, got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"random_split: sum of input lengths ({sum(lengths)}) does not equal "
                         f"the length of the input dataset ({n})")
    perm = randperm(n, generator=generator or default_generator).tolist()
    out, offset = [], 0
    for length in lengths:
        out.append(Subset(dataset, perm[offset:offset + length]))
        offset += length
    return out
