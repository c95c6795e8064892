"""Data-parallel building blocks over MPI (mpi4py) and, on GPUs, NCCL (through CuPy).

Launch with ``mpiexec -n 2 python train.py``; inside, ``init_process_group("mpi")`` picks the
rank and world size from MPI. Collectives work on tensors in place, with PyTorch's names:

>>> import tapegrad.distributed as dist
>>> dist.init_process_group("mpi")
>>> t = tapegrad.ones(3) * dist.get_rank()
>>> dist.all_reduce(t, op=dist.ReduceOp.SUM)
"""

from tapegrad.distributed.collectives import (ReduceOp, Work, all_gather, all_reduce,
                                              barrier, broadcast, reduce_scatter)
from tapegrad.distributed.group import (destroy_process_group, get_backend, get_rank,
                                        get_world_size, init_process_group, is_available,
                                        is_initialized, is_mpi_available, is_nccl_available)

__all__ = ["init_process_group", "destroy_process_group", "is_initialized", "is_available",
           "is_mpi_available", "is_nccl_available", "get_rank", "get_world_size",
           "get_backend", "all_reduce", "broadcast", "all_gather", "reduce_scatter", "barrier",
           "ReduceOp", "Work"]
