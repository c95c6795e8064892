"""Anomaly detection: find the operation that first made a NaN or an Inf.

Theano's DebugMode raised where ``0/0`` first produced a NaN; eager frameworks usually report
it many ops later, in the loss. With anomaly mode on, tapegrad checks every operation:

* forward: an op whose output holds NaN/Inf while its inputs did not raises at once, naming
  the op, its input shapes and dtypes, and the user's source line that called it;
* backward: a node whose computed gradient holds NaN/Inf raises, naming the op and showing
  the traceback of the forward call that created it (recorded on the node, ``node._trace``,
  while the mode is on);
* in-place misuse (a saved tensor changed before backward) additionally names the line where
  the tensor was saved.

Off by default. When off the cost is one module-attribute read per op in ``Node.apply`` and
per node in the engine; when on, every op pays for a stack capture and a finiteness scan
(about 2.2x the time per small op on ``benchmarks/anomaly_overhead.py``), so it is a
debugging tool, not a training default, as in PyTorch. The switch is process-wide, like
PyTorch's.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import traceback

from tapegrad.autograd import hooks_state as _hs

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
           "is_anomaly_check_nan_enabled", "ForwardTrace"]

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_CHECK_NAN = [True]
_BACKWARD = threading.local()  # .depth > 0 while a vjp runs: its ops are part of backward
_DEPTH = 48  # innermost frames kept per node: enough for any user call chain


# ---- the public switches -------------------------------------------------------------------
def is_anomaly_enabled() -> bool:
    """True while anomaly detection is on.

    >>> tapegrad.autograd.is_anomaly_enabled()
    False
    """
    return _hs.ANOMALY


def is_anomaly_check_nan_enabled() -> bool:
    """True while anomaly mode also scans values for NaN/Inf (``check_nan=True``)."""
    return _hs.ANOMALY and _CHECK_NAN[0]


def _set(mode: bool, check_nan: bool) -> None:
    _CHECK_NAN[0] = bool(check_nan)
    _hs.ANOMALY = bool(mode)


class detect_anomaly:
    """Context manager and decorator that turns anomaly detection on.

    >>> with tapegrad.autograd.detect_anomaly():
    ...     y = x / x            # raises at this line if some x is 0 (0/0 = NaN)

    ``check_nan=False`` keeps the forward tracebacks (for better backward and in-place
    errors) without scanning values.
    """

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan

    def __enter__(self):
        self._prev = (_hs.ANOMALY, _CHECK_NAN[0])
        _set(True, self.check_nan)
        return self

    def __exit__(self, *exc) -> None:
        _set(*self._prev)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper


class set_detect_anomaly:
    """Turn anomaly detection on or off; takes effect at once and, used in a ``with`` block,
    is undone at its end.

    >>> tapegrad.autograd.set_detect_anomaly(True)    # on from here
    >>> with tapegrad.autograd.set_detect_anomaly(False):
    ...     fast_part()                                   # off in here only
    """

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self._prev = (_hs.ANOMALY, _CHECK_NAN[0])
        _set(mode, check_nan)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        _set(*self._prev)


# ---- where an op was called from -----------------------------------------------------------
class ForwardTrace:
    """The stack of the forward call that created a node (kept only in anomaly mode).

    Frames are kept as (file, line, function) triples, outermost first; source text is looked
    up only when an error shows the trace.
    """

    __slots__ = ("frames",)

    def __init__(self, frames: tuple) -> None:
        self.frames = frames

    @property
    def stack(self) -> traceback.StackSummary:
        return traceback.StackSummary.from_list(
            [traceback.FrameSummary(f, n, name) for f, n, name in self.frames])

    @property
    def user_frame(self) -> traceback.FrameSummary | None:
        """The innermost frame outside tapegrad: the user's line that called the op."""
        stack = self.stack
        for fr in reversed(stack):
            if not fr.filename.startswith(_PKG):
                return fr
        return stack[-1] if stack else None

    @property
    def location(self) -> str:
        fr = self.user_frame
        if fr is None:
            return "<unknown>"
        return f"{fr.filename}:{fr.lineno} (in {fr.name}: {(fr.line or '').strip()})"

    def format(self) -> str:
        """The forward traceback, user frames only (tapegrad internals add only noise)."""
        stack = self.stack
        frames = [fr for fr in stack if not fr.filename.startswith(_PKG)] or list(stack)
        return "".join(traceback.StackSummary.from_list(frames).format()).rstrip()

    def __str__(self) -> str:
        return self.location


def _capture(skip: int) -> ForwardTrace:
    # A plain frame walk: traceback.extract_stack costs ~20x more (it checks the line cache
    # for every frame), and anomaly mode runs this on every op.
    f = sys._getframe(skip + 1)
    frames = []
    while f is not None and len(frames) < _DEPTH:
        code = f.f_code
        frames.append((code.co_filename, f.f_lineno, code.co_name))
        f = f.f_back
    frames.reverse()
    return ForwardTrace(tuple(frames))


def _user_line() -> str:
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_PKG):
        f = f.f_back
    if f is None:
        return "<unknown>"
    fr = traceback.FrameSummary(f.f_code.co_filename, f.f_lineno, f.f_code.co_name)
    return f"{fr.filename}:{fr.lineno} (in {fr.name}: {(fr.line or '').strip()})"


# ---- value scans -----------------------------------------------------------------------------
def _array_of(x):
    return getattr(x, "_data", x)


def _nonfinite(x) -> bool:
    """True if ``x`` (tensor, array or number) is floating point and holds a NaN or an Inf."""
    a = _array_of(x)
    if isinstance(a, float):
        return a != a or a in (float("inf"), float("-inf"))
    dt = getattr(a, "dtype", None)
    if dt is None or dt.kind not in "fc":
        return False
    xp = _xp(a)
    return not bool(xp.isfinite(a).all())


def _xp(a):
    mod = type(a).__module__
    if mod.startswith("cupy"):
        import cupy

        return cupy
    import numpy

    return numpy


def _describe(x) -> str:
    if hasattr(x, "_data"):
        return f"{tuple(x.shape)} {x.dtype}"
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_describe(v) for v in x) + "]"
    return repr(x)


def _count(x) -> str:
    a = _array_of(x)
    xp = _xp(a)
    nan = int(xp.isnan(a).sum())
    inf = int(xp.isinf(a).sum())
    return f"{nan} NaN and {inf} Inf of {a.size} values"


# ---- the functions Node.apply and the engine call while ANOMALY is set ------------------------
def anomaly_before(ctx, inputs) -> None:
    # Nothing to do before the kernel: inputs are scanned only when the output is bad.
    pass


def anomaly_after(ctx, inputs, outs) -> None:
    """Record the forward stack on a recorded node; raise if this op made a NaN/Inf."""
    many = isinstance(outs, tuple)
    first = outs[0] if many else outs
    if getattr(first, "grad_fn", None) is ctx:
        ctx._trace = _capture(2)  # skip this function and Node.apply
    if not _CHECK_NAN[0] or getattr(_BACKWARD, "depth", 0):
        return  # inside a vjp, the node's gradient is checked as a whole (anomaly_vjp)
    bad = [i for i, o in enumerate(outs if many else (outs,)) if _nonfinite(o)]
    if not bad:
        return
    flat = []
    for x in inputs:
        flat.extend(x if isinstance(x, (list, tuple)) else (x,))
    if any(_nonfinite(x) for x in flat):
        return  # the NaN/Inf came in from outside; the op that made it has already reported
    o = (outs if many else (outs,))[bad[0]]
    shapes = ", ".join(_describe(x) for x in inputs)
    which = f"output {bad[0]}" if many else "its output"
    raise RuntimeError(
        f"anomaly: {ctx.name} produced non-finite values in {which} ({_count(o)}; output "
        f"{tuple(o.shape)} {o.dtype}) from finite inputs [{shapes}], called at "
        f"{_user_line()}")


def anomaly_backward(node, grads) -> None:
    """Raise if ``node``'s vjp returned a gradient holding NaN/Inf."""
    if not _CHECK_NAN[0]:
        return
    for i, g in enumerate(grads):
        if g is not None and _nonfinite(g):
            trace = getattr(node, "_trace", None)
            where = ("Traceback of the forward call that created it:\n" + trace.format()
                     if trace is not None else
                     "The forward call was made before anomaly mode was turned on, so its "
                     "traceback was not recorded.")
            raise RuntimeError(
                f"anomaly: Function '{node.name_backward()}' ({node.name}) returned non-finite "
                f"values in its gradient for input {i} ({_count(g)}, shape "
                f"{tuple(g.shape)}).\n{where}")


def anomaly_vjp(node, grads):
    """Run ``node.vjp`` with forward scans paused, then check what it returned."""
    _BACKWARD.depth = getattr(_BACKWARD, "depth", 0) + 1
    try:
        outs = node.vjp(*grads)
    finally:
        _BACKWARD.depth -= 1
    anomaly_backward(node, outs)
    return outs


_hs.anomaly_before = anomaly_before
_hs.anomaly_after = anomaly_after
_hs.anomaly_backward = anomaly_backward
_hs.anomaly_vjp = anomaly_vjp
