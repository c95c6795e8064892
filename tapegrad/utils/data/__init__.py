"""Datasets, samplers and the DataLoader, as in ``torch.utils.data``.

>>> from tapegrad.utils.data import DataLoader, TensorDataset
"""

from tapegrad.utils.data.collate import default_collate, default_convert
from tapegrad.utils.data.dataloader import DataLoader
from tapegrad.utils.data.dataset import (ConcatDataset, Dataset, IterableDataset, Subset,
                                         TensorDataset, random_split)
from tapegrad.utils.data.sampler import (BatchSampler, RandomSampler, Sampler,
                                         SequentialSampler, SubsetRandomSampler,
                                         WeightedRandomSampler)
from tapegrad.utils.data.distributed import DistributedSampler

__all__ = ["BatchSampler", "ConcatDataset", "DataLoader", "Dataset", "DistributedSampler",
           "IterableDataset",
           "RandomSampler", "Sampler", "SequentialSampler", "Subset", "SubsetRandomSampler",
           "TensorDataset", "WeightedRandomSampler", "default_collate", "default_convert",
           "random_split"]
