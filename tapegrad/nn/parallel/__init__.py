"""Data parallelism: ``DistributedDataParallel`` over ``tapegrad.distributed``."""

from tapegrad.nn.parallel.distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
