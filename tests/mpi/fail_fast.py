"""Run under mpiexec: rank 1 raises while rank 0 waits in a collective. The job must end
(non-zero) instead of hanging."""

import tapegrad as tg
import tapegrad.distributed as dist

dist.init_process_group("mpi")
if dist.get_rank() == 1:
    raise ValueError("rank 1 failed on purpose")
t = tg.ones(3)
dist.all_reduce(t)  # never completes: rank 1 is gone
print("unreachable")
