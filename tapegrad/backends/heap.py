"""Keep freed host memory for reuse: glibc's ``malloc`` thresholds, set once at import.

Every NumPy array of more than 128 KiB comes from ``malloc``, and glibc hands such blocks
to and from the kernel as it goes: a large block is a fresh ``mmap`` (zeroed pages, one
page fault per 4 KiB on first touch), and freed space at the top of the heap is trimmed
away, to be faulted in again by the next allocation. An eager training step allocates and
frees the same large temporaries every step, so it pays those faults every step: a 3x3
convolution over 16 x 16 x 32 x 32 float32 took ~3,200 page faults a step (its im2col
columns alone are 9.4 MB), about half its time on this virtual machine. PyTorch meets the
same problem with caching allocators, and its CPU tuning guide recommends swapping
``malloc`` for jemalloc or tcmalloc.

tapegrad sets two of glibc's own knobs instead, with ``mallopt``: blocks under 32 MiB come
from the heap (``M_MMAP_THRESHOLD``), and up to 256 MiB of free space at its top is kept
rather than given back (``M_TRIM_THRESHOLD``). The same step then takes no page faults at
all (conv2d forward + backward: 26 -> 12 ms). The cost: a process keeps up to 256 MiB of
freed memory for reuse instead of returning it to the system at once.

It is process-wide, like the ``MALLOC_*`` environment variables it stands in for, and it
is skipped where it does not apply or was not wanted: off glibc (macOS, Windows, musl),
when any of ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` or ``GLIBC_TUNABLES``
is set (the user's own tuning wins), or with ``TAPEGRAD_MALLOC=system``.

>>> isinstance(TUNED, bool)
True
"""

from __future__ import annotations

import os
import sys

__all__ = ["TUNED", "tune", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

MMAP_THRESHOLD = 32 * 1024 * 1024   # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD = 256 * 1024 * 1024
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
_USER_TUNING = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def tune(environ=os.environ) -> bool:
    """Set the two thresholds where glibc's ``malloc`` is in use and nobody said otherwise;
    returns whether it did."""
    if environ.get("TAPEGRAD_MALLOC", "").strip().lower() == "system":
        return False
    if not sys.platform.startswith("linux") or any(k in environ for k in _USER_TUNING):
        return False
    import ctypes  # (already imported by NumPy: no import time added)

    try:
        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):
            return False  # musl and other C libraries: mallopt differs or is absent
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # (Setting either also stops glibc from moving both thresholds by itself.)
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


TUNED: bool = tune()
