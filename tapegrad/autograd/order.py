"""Recording order, and the in-place changes and freeing backwards that it is measured against.

Every recorded node takes the next number from one counter (``_seq``: a consumer's is above
its inputs', so walking nodes by falling number is a topological order, with no dependency
counts) and keeps the smallest number of its history (``_min``; a leaf's sink counts as
never). Two numbers taken from the same counter say what has happened since:

* ``LAST_INPLACE``, taken at every in-place change: a node numbered above it saved its
  tensors after the last change, so backward's pre-pass need not check their versions;
* ``WATERMARK``, taken at every in-place change and at the start of every backward that
  frees nodes: a graph whose ``_min`` is above it can hold no changed saved tensor and no
  freed node, so backward skips its checking pre-pass altogether (``engine._fresh``).

``Node.saved`` still checks every version when a vjp reads it.
"""

from __future__ import annotations

import itertools

__all__ = ["bump_inplace", "number", "take_number", "LAST_INPLACE", "WATERMARK", "NEVER"]

_COUNT = itertools.count(1)  # (next() on it is atomic: no two nodes share a number)
LAST_INPLACE = [0]
WATERMARK = [0]
NEVER = 1 << 62  # the _min of a leaf's sink


def take_number() -> int:
    """The next recording number (also what moves ``WATERMARK``)."""
    return next(_COUNT)


def number(ctx, edges) -> None:
    """Give node ``ctx``, whose edges are ``edges``, its ``_seq`` and ``_min``."""
    lo = ctx._seq = next(_COUNT)
    for e in edges:
        if e is not None:
            m = e[0]._min
            if m < lo:
                lo = m
    ctx._min = lo


def bump_inplace(vc: list) -> None:
    """Count an in-place change of the tensor whose version counter is ``vc``: every place
    that writes into a tensor's memory calls this (``vc[0] += 1`` alone would hide the change
    from backward's pre-pass).

    >>> vc = [0, None]; bump_inplace(vc); vc[0]
    1
    """
    vc[0] += 1
    LAST_INPLACE[0] = WATERMARK[0] = next(_COUNT)
