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
