"""Timing harness: contenders run interleaved (A, B, C, A, B, C, ...) so that a noisy,
shared machine slows them alike, and medians are reported."""

from __future__ import annotations

import statistics
import time


def interleaved(contenders: dict, repeats: int, warmup: int = 2) -> dict:
    """Median seconds per call of each ``contenders[name]()``, measured interleaved."""
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]  # rotate who goes first
        for name in order:
            t0 = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def torch_or_none():
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return torch


def pin_threads(n: int) -> None:
    """One BLAS / OpenMP / PyTorch thread count for every contender.

    threadpoolctl limits the pools already loaded; environment variables would be read too
    late here (and numba refuses a NUMBA_NUM_THREADS change once its pool exists), so none
    are set. tapegrad's own count is its caller's business (``tapegrad.set_num_threads``).
    """
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:  # pragma: no cover - depends on the environment
        pass
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:  # pragma: no cover
        pass


def versus_torch(title: str, unit: str, scale: float, makers: dict, repeats: int) -> None:
    """Print, one row per ``makers[name]``, the median time of the step it makes for
    tapegrad and for PyTorch (``makers[name](lib)`` returns a zero-argument step), measured
    interleaved with one thread each, and their ratio. Without PyTorch, says so."""
    torch = torch_or_none()
    if torch is None:
        print("PyTorch is not installed: nothing to compare with")
        return
    import tapegrad

    pin_threads(1)
    tapegrad.set_num_threads(1)
    print(f"{title:<26}{'tapegrad ' + unit:>13}{'torch ' + unit:>11}{'ratio':>8}")
    for name, make in makers.items():
        med = interleaved({"tapegrad": make(tapegrad), "torch": make(torch)}, repeats=repeats)
        ours, theirs = med["tapegrad"] * scale, med["torch"] * scale
        print(f"{name:<26}{ours:13.2f}{theirs:11.2f}{ours / theirs:7.2f}x")
