"""Run under mpiexec -n 2: DDP with each rank on half of every batch ends with the same
weights as one process on whole batches (float64, 1e-10); no_sync accumulation; unused
parameters with find_unused_parameters=True."""

import sys

import numpy as np

import tapegrad as tg
import tapegrad.distributed as dist
from tapegrad import nn
from tapegrad.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("mpi")
r, n = dist.get_rank(), dist.get_world_size()
tg.set_default_dtype(tg.float64)


def make_model(seed):
    tg.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))


rng = np.random.default_rng(0)
X = rng.standard_normal((8 * 4, 6))
Y = rng.integers(0, 3, 8 * 4)

# Reference: one process, whole batches (every rank computes it locally).
ref = make_model(0)
opt_ref = tg.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
for step in range(4):
    xb, yb = tg.tensor(X[step * 8:(step + 1) * 8]), tg.tensor(Y[step * 8:(step + 1) * 8])
    opt_ref.zero_grad()
    nn.functional.cross_entropy(ref(xb), yb).backward()
    opt_ref.step()

# DDP: rank r starts from a DIFFERENT seed: wrapping must broadcast rank 0's weights.
model = DDP(make_model(0 if r == 0 else 100 + r), bucket_cap_mb=0.0005)
assert len(model._buckets) > 1, "want several buckets to exercise overlap"
opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
per = 8 // n
for step in range(4):
    lo = step * 8 + r * per
    xb, yb = tg.tensor(X[lo:lo + per]), tg.tensor(Y[lo:lo + per])
    opt.zero_grad()
    nn.functional.cross_entropy(model(xb), yb).backward()
    opt.step()
for (name, p), q in zip(model.module.named_parameters(), ref.parameters()):
    err = np.max(np.abs(p.detach().numpy() - q.detach().numpy()))
    assert err < 1e-10, f"rank {r}: {name} differs by {err}"

# no_sync: two half-steps accumulated locally, then one synced backward.
m2 = DDP(make_model(1))
ref2 = make_model(1)
xb = tg.tensor(X[:8])
yb = tg.tensor(Y[:8])
with m2.no_sync():
    nn.functional.cross_entropy(m2(xb[r * per:(r + 1) * per]), yb[r * per:(r + 1) * per]
                                ).backward()
nn.functional.cross_entropy(m2(xb[r * per:(r + 1) * per]), yb[r * per:(r + 1) * per]
                            ).backward()
nn.functional.cross_entropy(ref2(xb), yb).backward()
for p, q in zip(m2.module.parameters(), ref2.parameters()):
    # accumulated twice locally, averaged over ranks: 2 x the whole-batch gradient
    np.testing.assert_allclose(p.grad.numpy(), 2 * q.grad.numpy(), rtol=1e-10, atol=1e-12)


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 2)
        self.b = nn.Linear(4, 2)

    def forward(self, x, use_b):
        return self.b(x) if use_b else self.a(x)


m3 = DDP(TwoHeads(), find_unused_parameters=True)
out = m3(tg.ones(2, 4), use_b=False)
out.sum().backward()
assert m3.module.a.weight.grad is not None
m3(tg.ones(2, 4), use_b=True).sum().backward()  # would raise without unused detection
dist.destroy_process_group()
print(f"rank {r}: ddp ok")
sys.exit(0)
