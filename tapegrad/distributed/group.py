"""The process group: who we are (rank) among how many (world size), over which transport.

MPI is the engine: ``mpiexec`` starts the processes and mpi4py gives the communicator. A rank
that dies with an exception aborts the whole job (``MPI.Abort``) instead of leaving the
others blocked forever in a collective.
"""

from __future__ import annotations

import os
import sys
import time
import traceback

__all__ = ["init_process_group", "destroy_process_group", "is_initialized", "get_rank",
           "get_world_size", "get_backend", "is_available", "is_mpi_available",
           "is_nccl_available"]


class _Group:
    """The one default process group of this process."""

    def __init__(self, backend: str, comm, nccl=None):
        self.backend = backend
        self.comm = comm
        self.nccl = nccl
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()


_GROUP: _Group | None = None
_prev_excepthook = None


def is_mpi_available() -> bool:
    """True when mpi4py (with an MPI library) can be imported."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def is_nccl_available() -> bool:
    try:
        from cupy.cuda import nccl  # noqa: F401
    except Exception:
        return False
    return True


def is_available() -> bool:
    return is_mpi_available()


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeError('init_process_group: the "mpi" backend needs mpi4py and an MPI '
                           'library; install them with pip install "tapegrad[distributed]"'
                           ) from e
    return MPI


def init_process_group(backend: str = "mpi", init_method=None, timeout=None,
                       world_size: int = -1, rank: int = -1, **_ignored) -> None:
    """Join the job started by ``mpiexec``; ``backend`` is ``"mpi"`` or ``"nccl"``."""
    global _GROUP, _prev_excepthook
    if _GROUP is not None:
        raise RuntimeError("init_process_group: trying to initialize the default process "
                           "group twice!")
    if backend not in ("mpi", "nccl"):
        raise ValueError(f"init_process_group: unknown backend '{backend}'; known backends: "
                         "mpi, nccl")
    MPI = _mpi()
    comm = MPI.COMM_WORLD
    if world_size not in (-1, comm.Get_size()):
        raise ValueError(f"init_process_group: world_size={world_size} but mpiexec started "
                         f"{comm.Get_size()} processes")
    if rank not in (-1, comm.Get_rank()):
        raise ValueError(f"init_process_group: rank={rank} but MPI says this is rank "
                         f"{comm.Get_rank()}")
    nccl = None
    if backend == "nccl":
        nccl = _init_nccl(comm)
    _GROUP = _Group(backend, comm, nccl)
    _prev_excepthook = sys.excepthook
    sys.excepthook = _abort_on_error


def _init_nccl(comm):
    # NCCL needs one unique id shared by all ranks: rank 0 makes it, MPI broadcasts it.
    try:
        import cupy
        from cupy.cuda import nccl
    except Exception as e:
        raise RuntimeError('init_process_group: the "nccl" backend needs CuPy with NCCL on a '
                           'machine with NVIDIA GPUs; install pip install "tapegrad[cuda]"'
                           ) from e
    uid = nccl.get_unique_id() if comm.Get_rank() == 0 else None
    uid = comm.bcast(uid, root=0)
    cupy.cuda.Device(comm.Get_rank() % cupy.cuda.runtime.getDeviceCount()).use()
    return nccl.NcclCommunicator(comm.Get_size(), uid, comm.Get_rank())


def _abort_on_error(exc_type, exc, tb):
    # Print the traceback, then take every rank down: the others may be waiting in a
    # collective that this rank will never join.
    hook = _prev_excepthook or sys.__excepthook__
    if hook is sys.__excepthook__:
        # One write of the whole traceback, then a moment for the launcher to forward it:
        # Abort tears the job down at once, and a CI run once lost the traceback's last
        # lines (the exception itself) that mpiexec had not yet passed on.
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        sys.stderr.flush()
        try:
            os.write(2, text.encode("utf-8", "replace"))
        except OSError:
            hook(exc_type, exc, tb)
    else:
        hook(exc_type, exc, tb)
    sys.stderr.flush()
    if _GROUP is not None and _GROUP.size > 1:
        time.sleep(_DRAIN_S)
        _GROUP.comm.Abort(1)


_DRAIN_S = 0.3  # (a crash path: a third of a second is nothing next to a hung job)


def _group() -> _Group:
    if _GROUP is None:
        raise RuntimeError("Default process group has not been initialized, please make sure "
                           "to call init_process_group.")
    return _GROUP


def is_initialized() -> bool:
    return _GROUP is not None


def get_rank(group=None) -> int:
    """This process's rank in [0, world size)."""
    return _group().rank


def get_world_size(group=None) -> int:
    """The number of processes in the job."""
    return _group().size


def get_backend(group=None) -> str:
    return _group().backend


def destroy_process_group(group=None) -> None:
    """Leave the process group (MPI itself stays up until the interpreter exits)."""
    global _GROUP
    if _GROUP is not None:
        _GROUP.comm.Barrier()
    _GROUP = None
    if _prev_excepthook is not None:
        sys.excepthook = _prev_excepthook
