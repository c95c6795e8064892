"""Backends: an array module plus a table of kernels.

A backend never defines derivatives; the op registry (``tapegrad.ops``) owns the math and
calls ``backend.k[name]`` for the work that a backend may speed up. ``numpy`` is the plain
reference; ``numba`` (issue 2 of 7) replaces entries of the table with jitted kernels.

>>> import tapegrad.backends as B
>>> with B.use("numpy"):
...     ...
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys

__all__ = ["Backend", "get_backend", "set_backend", "use", "available_backends", "current",
           "set_num_threads", "get_num_threads", "numba_installed"]


class Backend:
    """A named array module (``xp``) and a dict of kernels (``k``)."""

    __slots__ = ("name", "xp", "k", "device_type")

    def __init__(self, name: str, xp, kernels: dict, device_type: str = "cpu"):
        self.name = name
        self.xp = xp
        self.k = kernels
        self.device_type = device_type

    def __repr__(self) -> str:
        return f"<tapegrad backend '{self.name}' ({len(self.k)} kernels)>"


_FACTORIES = {}
_LOADED: dict[str, Backend] = {}


def register(name: str, factory) -> None:
    """Make a backend available by name; ``factory()`` builds it on first use."""
    _FACTORIES[name] = factory


def available_backends() -> list[str]:
    """The names ``set_backend`` accepts.

    >>> tapegrad.backends.available_backends()
    ['numba', 'numpy']
    """
    return sorted(_FACTORIES)


def get_backend(name: str) -> Backend:
    """The backend object called ``name``, built on first use."""
    be = _LOADED.get(name)
    if be is None:
        if name not in _FACTORIES:
            raise ValueError(f"set_backend: unknown backend '{name}'; known backends: "
                             f"{', '.join(available_backends())}")
        be = _LOADED[name] = _FACTORIES[name]()
    return be


def _numpy_factory():
    from tapegrad.backends.numpy_backend import make_backend

    return make_backend()


def _numba_factory():
    # Builds a table of lazy entries: numba itself is imported on the first kernel call.
    if not numba_installed():
        raise RuntimeError("set_backend: the 'numba' backend needs numba, which is not "
                           "installed (pip install numba); the 'numpy' backend works without")
    from tapegrad.backends.numba_backend import make_backend

    return make_backend()


def numba_installed() -> bool:
    """True when numba can be imported (checked without importing it)."""
    return importlib.util.find_spec("numba") is not None


register("numpy", _numpy_factory)
register("numba", _numba_factory)


def _default_name() -> str:
    name = os.environ.get("TAPEGRAD_BACKEND", "").strip().lower()
    if name:
        return name
    have = numba_installed() and importlib.util.find_spec(
        "tapegrad.backends.numba_backend") is not None
    return "numba" if have else "numpy"


# Freed host memory is kept for reuse (glibc's malloc thresholds; see heap.py): set before
# the first array of any backend is made.
from tapegrad.backends import heap as _heap  # noqa: E402,F401

# The CPU backend every CPU tensor goes through. A plain module global: one attribute read
# per op, and the switch is process-wide like THEANO_FLAGS (TAPEGRAD_BACKEND=numpy|numba).
CPU_BACKEND: Backend = get_backend(_default_name())


def current() -> Backend:
    """The backend CPU tensors use now.

    >>> tapegrad.backends.current().name in ("numba", "numpy")
    True
    """
    return CPU_BACKEND


def set_backend(name: str) -> None:
    """Switch the CPU backend: ``"numba"`` (the default when numba is installed) or
    ``"numpy"`` (the plain reference). Unknown names raise ValueError naming the known ones.

    >>> tapegrad.backends.set_backend("numpy")
    """
    global CPU_BACKEND
    CPU_BACKEND = get_backend(name)


@contextlib.contextmanager
def use(name: str):
    """Run a block on another CPU backend, then switch back (even if the block raises).

    >>> with tapegrad.backends.use("numpy") as be:
    ...     be.name
    'numpy'
    """
    global CPU_BACKEND
    prev = CPU_BACKEND
    CPU_BACKEND = get_backend(name)
    try:
        yield CPU_BACKEND
    finally:
        CPU_BACKEND = prev


_NUM_THREADS = [None]


def set_num_threads(n: int) -> None:
    """Threads used by tapegrad's parallel numba kernels (like ``torch.set_num_threads``).

    Note: this sets numba's thread count (at most ``NUMBA_NUM_THREADS``, the number of cores
    by default) and so imports numba. BLAS (matmul) keeps the thread count it read from
    ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` when NumPy was imported.

    >>> tapegrad.set_num_threads(1)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n!r}")
    if numba_installed():
        import numba

        limit = numba.config.NUMBA_NUM_THREADS
        if n > limit:
            raise ValueError(f"set_num_threads: {n} threads requested but at most {limit} "
                             "are available (set NUMBA_NUM_THREADS before importing to "
                             "raise the limit)")
        numba.set_num_threads(n)
    _NUM_THREADS[0] = n


def get_num_threads() -> int:
    """The thread count set by :func:`set_num_threads` (default: the number of cores).

    >>> tapegrad.get_num_threads() >= 1
    True
    """
    if _NUM_THREADS[0] is not None:
        return _NUM_THREADS[0]
    if "numba" in sys.modules:
        return sys.modules["numba"].get_num_threads()
    return int(os.environ.get("NUMBA_NUM_THREADS", 0)) or os.cpu_count() or 1


_CUDA_BACKEND = None


def backend_for_device(dev) -> Backend:
    """The backend serving a non-CPU device: CuPy (or the simulator) for 'cuda'."""
    global _CUDA_BACKEND
    if dev.type != "cuda":
        raise RuntimeError(f"device '{dev}' is not supported")
    if _CUDA_BACKEND is None:
        from tapegrad import cuda
        from tapegrad.backends.cuda_backend import make_backend

        cuda.require(dev.index or 0)
        _CUDA_BACKEND = make_backend()
    return _CUDA_BACKEND


def move_array(arr, src, dst):
    """Copy ``arr`` from device ``src`` to device ``dst``."""
    import numpy as np

    if src.type == "cpu" and dst.type == "cpu":
        return arr
    from tapegrad import cuda

    cuda.require((dst if dst.type == "cuda" else src).index or 0)
    if cuda.simulator():
        return np.array(arr, copy=True)  # a real copy, as a host/device transfer is
    import cupy

    if dst.type == "cuda":
        with cupy.cuda.Device(dst.index or 0):
            return cupy.asarray(arr)
    return cupy.asnumpy(arr)


def to_host(arr):
    """A NumPy view or copy of a (possibly device) array."""
    import numpy as np

    if type(arr) is np.ndarray:
        return arr
    if hasattr(arr, "get") and hasattr(arr, "__cuda_array_interface__"):
        return arr.get()
    return np.asarray(arr)
