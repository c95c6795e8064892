"""Run under mpiexec: DistributedSampler splits an epoch without overlap."""

from mpi4py import MPI

import tapegrad.distributed as dist
from tapegrad.utils.data.distributed import DistributedSampler

dist.init_process_group("mpi")
r, n = dist.get_rank(), dist.get_world_size()
ds = list(range(23))
for drop_last in (False, True):
    s = DistributedSampler(ds, shuffle=True, seed=7, drop_last=drop_last)
    s.set_epoch(2)
    mine = list(s)
    everyone = MPI.COMM_WORLD.allgather(mine)
    flat = [i for part in everyone for i in part]
    assert all(len(p) == len(mine) for p in everyone)
    if drop_last:
        assert len(set(flat)) == len(flat) == (len(ds) // n) * n
    else:
        assert set(flat) == set(ds) and len(flat) == -(-len(ds) // n) * n
print(f"rank {r}: sampler ok")
