"""``DistributedDataParallel``: one model replica per process, gradients averaged.

At wrap time rank 0's parameters and buffers are broadcast to every rank. During backward,
each parameter's post-accumulate-grad hook marks it ready; when every parameter of a bucket
(about ``bucket_cap_mb`` of gradients, in reverse registration order, which is roughly the
order backward produces them) is ready, the bucket is flattened and its all-reduce starts
at once (non-blocking), overlapping with the rest of backward. When the last bucket has
started, all are waited for and the averaged gradients written back to ``.grad``.
"""

from __future__ import annotations

import contextlib

import numpy as np

from tapegrad.autograd.node import bump_inplace
from tapegrad import distributed as dist
from tapegrad.autograd.grad_mode import no_grad
from tapegrad.nn.module import Module

__all__ = ["DistributedDataParallel"]


class _Bucket:
    def __init__(self, params):
        self.params = params
        self.ready = set()
        self.work = None
        self.flat = None


class DistributedDataParallel(Module):
    """Wrap ``module`` for synchronous data-parallel training.

    >>> model = DistributedDataParallel(nn.Linear(4, 2))
    >>> model(x).sum().backward()     # .grad now holds the average over ranks
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group=None,
                 bucket_cap_mb: float = 25.0, find_unused_parameters: bool = False,
                 **_ignored):
        super().__init__()
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: Default process group has not been "
                               "initialized, please make sure to call init_process_group.")
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self._world = dist.get_world_size()
        params = [p for p in module.parameters() if p.requires_grad]
        with no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t, 0)
        cap = int(bucket_cap_mb * 1024 * 1024)
        self._buckets = []
        cur, size = [], 0
        for p in reversed(params):
            nbytes = p.numel() * p.dtype.itemsize
            if cur and (size + nbytes > cap or p.dtype is not cur[0].dtype):
                self._buckets.append(_Bucket(cur))
                cur, size = [], 0
            cur.append(p)
            size += nbytes
        if cur:
            self._buckets.append(_Bucket(cur))
        self._bucket_of = {}
        for b in self._buckets:
            for p in b.params:
                self._bucket_of[id(p)] = b
        self._require_sync = True
        self._launched = 0
        self._in_flight = False
        self._handles = [p.register_post_accumulate_grad_hook(self._on_grad_ready)
                         for p in params]

    # ---- backward-time bookkeeping -------------------------------------------------------
    def _on_grad_ready(self, p) -> None:
        if not self._require_sync:
            return
        self._in_flight = True
        b = self._bucket_of[id(p)]
        b.ready.add(id(p))
        if len(b.ready) == len(b.params) and b.work is None:
            self._launch(b)

    def _launch(self, b: _Bucket) -> None:
        parts = [(p.grad._data if p.grad is not None else
                  np.zeros(tuple(p.shape), p.dtype.np)).reshape(-1) for p in b.params]
        b.flat = np.concatenate(parts)
        from tapegrad.tensor import Tensor

        b.work = dist.all_reduce(Tensor._make(b.flat), op=dist.ReduceOp.SUM, async_op=True)
        self._launched += 1
        if self._launched == len(self._buckets):
            self._finish()

    def _finish(self) -> None:
        from tapegrad.creation import zeros_like

        for b in self._buckets:
            b.work.wait()
            b.flat /= self._world
            off = 0
            for p in b.params:
                n = p.numel()
                chunk = b.flat[off:off + n].reshape(tuple(p.shape))
                off += n
                if p.grad is None:
                    p.grad = zeros_like(p)
                p.grad._data[...] = chunk
                bump_inplace(p.grad._vc)
            b.work, b.flat = None, None
            b.ready.clear()
        self._launched = 0
        self._in_flight = False

    def _mark_unused(self, outputs) -> None:
        used = _reachable_leaves(outputs)
        for b in self._buckets:
            for p in b.params:
                if id(p) not in used:
                    self._on_grad_ready_unused(p)

    def _on_grad_ready_unused(self, p) -> None:
        b = self._bucket_of[id(p)]
        b.ready.add(id(p))

    # ---- forward ---------------------------------------------------------------------------
    def forward(self, *inputs, **kwargs):
        if self._in_flight and self._require_sync:
            raise RuntimeError(
                "DistributedDataParallel: Expected to have finished reduction in the prior "
                "iteration before starting a new one. This error indicates that your module "
                "has parameters that were not used in producing loss. You can enable unused "
                "parameter detection by passing find_unused_parameters=True.")
        if self.broadcast_buffers and self._require_sync:
            with no_grad():
                for t in self.module.buffers():
                    dist.broadcast(t, 0)
        out = self.module(*inputs, **kwargs)
        if self.find_unused_parameters and self._require_sync:
            self._mark_unused(out)
            for b in self._buckets:
                if len(b.ready) == len(b.params) and b.params:
                    # A bucket made only of unused parameters is complete already.
                    self._in_flight = True
                    self._launch(b)
        return out

    @contextlib.contextmanager
    def no_sync(self):
        """Accumulate gradients locally; the next synchronised backward averages the sum."""
        prev = self._require_sync
        self._require_sync = False
        try:
            yield
        finally:
            self._require_sync = prev


def _reachable_leaves(outputs) -> set:
    """ids of the leaf tensors the tape of ``outputs`` reaches."""
    from tapegrad.autograd.node import AccumulateGrad
    from tapegrad.tensor import Tensor

    stack, seen, leaves = [], set(), set()

    def add(o):
        if isinstance(o, Tensor):
            if o.grad_fn is not None:
                stack.append(o.grad_fn)
            elif o.requires_grad:
                leaves.add(id(o))
        elif isinstance(o, (list, tuple)):
            for x in o:
                add(x)
        elif isinstance(o, dict):
            for x in o.values():
                add(x)

    add(outputs)
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if type(n) is AccumulateGrad:
            leaves.add(id(n.variable))
            continue
        for e in n.next:
            if e is not None:
                stack.append(e[0])
    return leaves
