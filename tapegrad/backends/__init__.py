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
import os

__all__ = ["Backend", "get_backend", "set_backend", "use", "available_backends", "current"]


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


register("numpy", _numpy_factory)

# The CPU backend every CPU tensor goes through. A plain module global: one attribute read
# per op, and the switch is process-wide like THEANO_FLAGS.
CPU_BACKEND: Backend = get_backend("numpy")


def current() -> Backend:
    """The backend CPU tensors use now."""
    return CPU_BACKEND


def set_backend(name: str) -> None:
    """Switch the CPU backend: ``"numba"`` (default when installed) or ``"numpy"``."""
    global CPU_BACKEND
    CPU_BACKEND = get_backend(name)


@contextlib.contextmanager
def use(name: str):
    """Run a block on another CPU backend, then switch back."""
    prev = CPU_BACKEND
    set_backend(name)
    try:
        yield CPU_BACKEND
    finally:
        globals()["CPU_BACKEND"] = prev


def _init_from_env() -> None:
    name = os.environ.get("TAPEGRAD_BACKEND")
    if name:
        set_backend(name)


_init_from_env()


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
