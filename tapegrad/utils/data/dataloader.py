"""``DataLoader``: batches of samples from a dataset, in sequential or shuffled order."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from tapegrad.utils.data.collate import default_collate, default_convert
from tapegrad.utils.data.dataset import IterableDataset, Subset, TensorDataset
from tapegrad.utils.data.sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over ``dataset`` in batches.

    ``shuffle=True`` draws a new permutation every epoch from ``generator`` (or, without one,
    from a seed taken from the global generator, so ``tapegrad.manual_seed`` makes the
    order reproducible). ``drop_last`` drops a final incomplete batch. ``collate_fn`` turns
    a list of samples into a batch (``default_collate`` stacks tensors, numbers, and the
    fields of tuples and dicts). ``sampler`` / ``batch_sampler`` replace the built-in order.

    Samples are always loaded in the calling process: ``num_workers``, ``pin_memory``,
    ``timeout``, ``prefetch_factor`` and ``persistent_workers`` are accepted so PyTorch
    scripts run unchanged, and do nothing.

    >>> ds = TensorDataset(tapegrad.arange(10.), tapegrad.arange(10))
    >>> [x.shape[0] for x, y in DataLoader(ds, batch_size=4)]
    [4, 4, 2]
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Sampler | None = None, batch_sampler=None, num_workers: int = 0,
                 collate_fn: Callable | None = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None,
                 persistent_workers: bool = False, pin_memory_device: str = ""):
        if num_workers < 0:
            raise ValueError("DataLoader: num_workers option should be non-negative; use "
                             "num_workers=0 to disable multiprocessing.")
        if timeout < 0:
            raise ValueError("DataLoader: timeout option should be non-negative")
        self.dataset = dataset
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.generator = generator
        self._iterable = isinstance(dataset, IterableDataset)

        if self._iterable:
            if shuffle not in (None, False):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"shuffle option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"sampler option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler={batch_sampler}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with "
                                 "batch_size, shuffle, sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and "
                             "is mutually exclusive with drop_last")

        if sampler is None and not self._iterable:
            sampler = (RandomSampler(dataset, generator=generator) if shuffle
                       else SequentialSampler(dataset))
        if batch_size is not None and batch_sampler is None and not self._iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None or (self._iterable and self.batch_size is not None)

    def __iter__(self) -> Iterator:
        if self._iterable:
            return self._iter_stream()
        if self.batch_sampler is None:
            return (self.collate_fn(self.dataset[i]) for i in self.sampler)
        return (self._fetch(idx) for idx in self.batch_sampler)

    def _fetch(self, indices: list):
        if self.collate_fn is default_collate:
            # Subsets (random_split) of a TensorDataset take the same one-gather path.
            base, rows = self.dataset, indices
            while type(base) is Subset:
                rows = [base.indices[i] for i in rows]
                base = base.dataset
            if type(base) is TensorDataset:
                # One gather per tensor gives exactly what stacking the rows would, without
                # building a Python list of per-row tensors first.
                import tapegrad

                rows = list(rows)
                return [t[tapegrad.tensor(rows, dtype=tapegrad.int64, device=t.device)]
                        for t in base.tensors]
        ds = self.dataset
        getitems = getattr(ds, "__getitems__", None)
        samples = getitems(list(indices)) if callable(getitems) else [ds[i] for i in indices]
        return self.collate_fn(samples)

    def _iter_stream(self) -> Iterator:
        if self.batch_size is None:
            for sample in self.dataset:
                yield self.collate_fn(sample)
            return
        batch = []
        for sample in self.dataset:
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield self.collate_fn(batch)
                batch = []
        if batch and not self.drop_last:
            yield self.collate_fn(batch)

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)  # TypeError for streams without a length, as in PyTorch
            if self.batch_size is None:
                return n
            if self.drop_last:
                return n // self.batch_size
            return (n + self.batch_size - 1) // self.batch_size
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)
