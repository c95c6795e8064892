"""``tapegrad.cuda``: CUDA devices through CuPy, or Numba's CUDA simulator without a GPU.

With ``TAPEGRAD_CUDA_SIMULATOR=1`` in the environment, device ``'cuda'`` exists on any
machine: NumPy arrays stand in for CuPy arrays and every CUDA kernel of tapegrad runs in
Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``), so the GPU code path is exercised in CI.

>>> tapegrad.cuda.is_available()
False
"""

from __future__ import annotations

import os

__all__ = ["is_available", "device_count", "synchronize", "manual_seed", "manual_seed_all",
           "current_device", "set_device", "simulator", "Event", "get_device_name"]


def simulator() -> bool:
    """True when device 'cuda' is simulated (TAPEGRAD_CUDA_SIMULATOR=1)."""
    return os.environ.get("TAPEGRAD_CUDA_SIMULATOR", "") not in ("", "0")


if simulator():
    # Must be set before numba.cuda is first imported; tapegrad never imports it at import.
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

_current = 0


def _cupy():
    try:
        import cupy
    except ImportError:
        return None
    return cupy


def _gpu_count() -> int:
    cp = _cupy()
    if cp is None:
        return 0
    try:
        return int(cp.cuda.runtime.getDeviceCount())
    except Exception:
        return 0


def is_available() -> bool:
    """True when a CUDA device can be used (a GPU with CuPy, or the simulator)."""
    return simulator() or _gpu_count() > 0


def device_count() -> int:
    return 1 if simulator() else _gpu_count()


def require(index: int = 0) -> None:
    """Raise a RuntimeError that says what is missing when CUDA cannot be used."""
    if simulator():
        if index != 0:
            raise RuntimeError(f"CUDA error: invalid device ordinal {index} (the simulator "
                               "has one device, cuda:0)")
        return
    if _cupy() is None:
        raise RuntimeError("CUDA is not available: tapegrad's CUDA backend needs CuPy; "
                           'install it with pip install "tapegrad[cuda]" (or set '
                           "TAPEGRAD_CUDA_SIMULATOR=1 to simulate a device)")
    n = _gpu_count()
    if n == 0:
        raise RuntimeError("CUDA is not available: CuPy is installed but no NVIDIA GPU (or "
                           "driver) was found on this machine")
    if index >= n:
        raise RuntimeError(f"CUDA error: invalid device ordinal {index} ({n} device(s) "
                           "present)")


def xp():
    """The array module of CUDA tensors: CuPy, or NumPy in the simulator."""
    if simulator():
        import numpy

        return numpy
    import cupy

    return cupy


def synchronize(device=None) -> None:
    """Wait for every kernel queued on the device to finish."""
    if simulator() or not is_available():
        return
    _cupy().cuda.Device(_current).synchronize()


def current_device() -> int:
    return _current


def set_device(device) -> None:
    global _current
    from tapegrad._device import device as _dev

    idx = _dev(device).index if not isinstance(device, int) else device
    require(idx or 0)
    _current = idx or 0
    if not simulator():
        _cupy().cuda.Device(_current).use()


def get_device_name(device=None) -> str:
    if simulator():
        return "Numba CUDA simulator"
    require()
    cp = _cupy()
    return cp.cuda.runtime.getDeviceProperties(_current)["name"].decode()


def manual_seed(seed: int) -> None:
    """Seed CUDA random numbers (tapegrad draws them on the host, so this seeds the host
    generator too, keeping CPU and CUDA runs identical)."""
    from tapegrad.creation import manual_seed as _ms

    _ms(seed)


manual_seed_all = manual_seed


class Event:
    """A CUDA event for device-side timing (a host clock in the simulator)."""

    def __init__(self, enable_timing: bool = False):
        self._ev = None
        self._t = None
        if not simulator() and is_available():
            self._ev = _cupy().cuda.Event()

    def record(self, stream=None) -> None:
        if self._ev is not None:
            self._ev.record()
        else:
            import time

            self._t = time.perf_counter()

    def synchronize(self) -> None:
        if self._ev is not None:
            self._ev.synchronize()

    def elapsed_time(self, end: Event) -> float:
        """Milliseconds from this event to ``end``."""
        if self._ev is not None:
            return float(_cupy().cuda.get_elapsed_time(self._ev, end._ev))
        return (end._t - self._t) * 1000.0
