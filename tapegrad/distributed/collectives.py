"""Collectives on tensors, in place, with PyTorch's names and signatures.

Buffers go straight from the tensor's array to MPI (no pickling); a non-contiguous tensor is
copied to a contiguous buffer and written back.
"""

from __future__ import annotations

import numpy as np

from tapegrad.autograd.node import bump_inplace
from tapegrad.distributed.group import _group

__all__ = ["ReduceOp", "Work", "all_reduce", "broadcast", "all_gather", "reduce_scatter",
           "barrier"]


class ReduceOp:
    """Reduction operators for ``all_reduce`` and ``reduce_scatter``."""

    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"
    PRODUCT = "product"


def _mpi_op(op):
    from mpi4py import MPI

    table = {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.MAX: MPI.MAX,
             ReduceOp.MIN: MPI.MIN, ReduceOp.PRODUCT: MPI.PROD}
    if op not in table:
        raise ValueError(f"all_reduce: unknown ReduceOp {op!r}")
    return table[op]


class Work:
    """Handle of an asynchronous collective: ``wait()`` finishes it."""

    def __init__(self, request=None, finish=None):
        self._request = request
        self._finish = finish
        self._done = request is None

    def wait(self, timeout=None) -> bool:
        if not self._done:
            self._request.Wait()
            self._done = True
            if self._finish is not None:
                self._finish()
        return True

    def is_completed(self) -> bool:
        if not self._done and self._request.Test():
            self.wait()
        return self._done


def _buffer(tensor, op_name):
    from tapegrad.tensor import Tensor

    if not isinstance(tensor, Tensor):
        raise TypeError(f"{op_name}: expected a Tensor, got {type(tensor).__name__}")
    arr = tensor._data
    if tensor.device.type != "cpu":
        g = _group()
        if g.backend != "nccl":
            raise RuntimeError(f"{op_name}: tensor of shape {tuple(tensor.shape)} is on "
                               f"{tensor.device}, but the mpi backend needs CPU tensors; use "
                               "backend='nccl' for CUDA tensors")
        return arr, None
    if arr.flags.c_contiguous and arr.flags.writeable:
        return arr, None
    return np.ascontiguousarray(arr), arr


def _writeback(tensor, buf, orig):
    if orig is not None:
        orig[...] = buf
    bump_inplace(tensor._vc)


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce ``tensor`` across all ranks; every rank ends with the result, in place."""
    g = _group()
    buf, orig = _buffer(tensor, "all_reduce")
    if g.backend == "nccl" and tensor.device.type == "cuda":
        return _nccl_all_reduce(g, tensor, op)
    from mpi4py import MPI

    mop = _mpi_op(op)

    def finish():
        if op == ReduceOp.AVG:
            if buf.dtype.kind in "iub":
                np.floor_divide(buf, g.size, out=buf)
            else:
                np.divide(buf, g.size, out=buf)
        _writeback(tensor, buf, orig)

    if async_op:
        return Work(g.comm.Iallreduce(MPI.IN_PLACE, buf, op=mop), finish)
    g.comm.Allreduce(MPI.IN_PLACE, buf, op=mop)
    finish()
    return Work() if async_op else None


def _nccl_all_reduce(g, tensor, op):
    import cupy
    from cupy.cuda import nccl

    arr = tensor._data
    table = {ReduceOp.SUM: nccl.NCCL_SUM, ReduceOp.AVG: nccl.NCCL_SUM,
             ReduceOp.MAX: nccl.NCCL_MAX, ReduceOp.MIN: nccl.NCCL_MIN,
             ReduceOp.PRODUCT: nccl.NCCL_PROD}
    dt = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64,
          np.dtype(np.int64): nccl.NCCL_INT64, np.dtype(np.int32): nccl.NCCL_INT32}[arr.dtype]
    stream = cupy.cuda.get_current_stream()
    g.nccl.allReduce(arr.data.ptr, arr.data.ptr, arr.size, dt, table[op], stream.ptr)
    if op == ReduceOp.AVG:
        arr /= g.size
    bump_inplace(tensor._vc)
    return None


def broadcast(tensor, src: int, group=None, async_op=False):
    """Copy rank ``src``'s ``tensor`` into every other rank's ``tensor``."""
    g = _group()
    if not 0 <= src < g.size:
        raise ValueError(f"broadcast: src rank {src} is out of range for world size {g.size}")
    buf, orig = _buffer(tensor, "broadcast")
    if async_op:
        return Work(g.comm.Ibcast(buf, root=src), lambda: _writeback(tensor, buf, orig))
    g.comm.Bcast(buf, root=src)
    _writeback(tensor, buf, orig)
    return None


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """Fill ``tensor_list[r]`` with rank r's ``tensor`` on every rank."""
    g = _group()
    if len(tensor_list) != g.size:
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} entries but the "
                         f"world size is {g.size}")
    for i, t in enumerate(tensor_list):
        if tuple(t.shape) != tuple(tensor.shape) or t.dtype is not tensor.dtype:
            raise ValueError(f"all_gather: tensor_list[{i}] has shape {tuple(t.shape)} and "
                             f"dtype {t.dtype}, expected {tuple(tensor.shape)} and "
                             f"{tensor.dtype}")
    send, _ = _buffer(tensor, "all_gather")
    recv = np.empty((g.size,) + send.shape, dtype=send.dtype)
    g.comm.Allgather(send, recv)
    for r, t in enumerate(tensor_list):
        t._data[...] = recv[r]
        bump_inplace(t._vc)
    return Work() if async_op else None


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce ``input_list`` elementwise across ranks; rank r gets piece r in ``output``."""
    g = _group()
    if len(input_list) != g.size:
        raise ValueError(f"reduce_scatter: input_list has {len(input_list)} entries but the "
                         f"world size is {g.size}")
    for i, t in enumerate(input_list):
        if tuple(t.shape) != tuple(output.shape):
            raise ValueError(f"reduce_scatter: input_list[{i}] has shape {tuple(t.shape)}, "
                             f"expected the output's shape {tuple(output.shape)}")
    send = np.ascontiguousarray(np.stack([t._data for t in input_list]))
    buf, orig = _buffer(output, "reduce_scatter")
    g.comm.Reduce_scatter_block(send, buf, op=_mpi_op(op))
    if op == ReduceOp.AVG:
        buf /= g.size
    _writeback(output, buf, orig)
    return Work() if async_op else None


def barrier(group=None, async_op=False):
    """Block until every rank gets here."""
    _group().comm.Barrier()
    return Work() if async_op else None
