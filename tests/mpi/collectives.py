"""Run under mpiexec: every collective against the NumPy result. Exits non-zero on failure."""

import numpy as np

import tapegrad as tg
import tapegrad.distributed as dist

dist.init_process_group("mpi")
r, n = dist.get_rank(), dist.get_world_size()
rng = np.random.default_rng(123)
data = [rng.standard_normal((3, 4)) for _ in range(n)]  # every rank knows all inputs

for op, ref in [(dist.ReduceOp.SUM, np.sum), (dist.ReduceOp.AVG, np.mean),
                (dist.ReduceOp.MAX, np.max), (dist.ReduceOp.MIN, np.min),
                (dist.ReduceOp.PRODUCT, np.prod)]:
    t = tg.tensor(data[r])
    dist.all_reduce(t, op=op)
    np.testing.assert_allclose(t.numpy(), ref(np.stack(data), axis=0), rtol=1e-12)
    t = tg.tensor(data[r])
    work = dist.all_reduce(t, op=op, async_op=True)
    work.wait()
    np.testing.assert_allclose(t.numpy(), ref(np.stack(data), axis=0), rtol=1e-12)

# integer tensors and a non-contiguous view
t = tg.arange(6).reshape(2, 3) * (r + 1)
dist.all_reduce(t)
assert t.tolist() == (np.arange(6).reshape(2, 3) * sum(range(1, n + 1))).tolist()
base = tg.tensor(np.arange(12.0).reshape(3, 4) * (r + 1))
view = base.t()
dist.all_reduce(view)
np.testing.assert_allclose(base.numpy(), np.arange(12.0).reshape(3, 4) * sum(range(1, n + 1)))

t = tg.tensor(data[r])
dist.broadcast(t, src=n - 1)
np.testing.assert_allclose(t.numpy(), data[n - 1])

outs = [tg.zeros(3, 4, dtype=tg.float64) for _ in range(n)]
dist.all_gather(outs, tg.tensor(data[r]))
for k in range(n):
    np.testing.assert_allclose(outs[k].numpy(), data[k])

pieces = [tg.tensor(rng.standard_normal(5) * 0 + (r + 1) * (k + 1)) for k in range(n)]
out = tg.zeros(5, dtype=tg.float64)
dist.reduce_scatter(out, pieces)
np.testing.assert_allclose(out.numpy(), np.full(5, (r + 1) * sum(range(1, n + 1))))

dist.barrier()
for bad in (lambda: dist.broadcast(tg.zeros(2), src=n + 3),
            lambda: dist.all_gather([tg.zeros(2)] * (n + 1), tg.zeros(2))):
    try:
        bad()
    except ValueError:
        pass
    else:
        raise AssertionError("bad collective arguments did not raise")
dist.destroy_process_group()
print(f"rank {r}: collectives ok")
