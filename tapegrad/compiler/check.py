"""The checks a trace passes before its program is used (``torch.jit.trace``'s
``check_trace`` in spirit).

1. Replayed twice on the traced call's own inputs, the program gives the eager results: no
   op was missed, and no replay changes a constant the next one reads.
2. Run eagerly on *other* inputs (the tensor arguments' values perturbed: floats scaled by
   up to 1%, integers and booleans resampled from their own values), the function agrees
   with the program replayed on them, forward and gradients. A value computed from the
   data outside the recorded ops (so frozen into the program) shows up here.

Ops that draw random numbers (dropout's mask) draw again in a replay; each replay here
starts from the generator state its eager counterpart started from, so both draw the same
numbers, and the generator is left where the trace left it.

So the first call of each guard runs the function twice; a failed check sends the guard to
eager mode (``Unreplayable``).
"""

from __future__ import annotations

import numpy as np

from tapegrad import backends as _backends
from tapegrad.compiler.trace import Unreplayable

__all__ = ["check_trace"]


def _close(a, b) -> bool:
    a, b = _backends.to_host(a), _backends.to_host(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind not in "fc":
        return bool(np.array_equal(a, b))
    scale = float(np.nanmax(np.abs(b), initial=1.0)) if b.size else 1.0
    if not np.isfinite(scale):
        scale = 1.0
    # (float32 replays may round differently from eager mode: a transposed weight copied
    # once, a gradient spread by broadcasting instead of filled)
    tol = 1e-4 if a.dtype.itemsize <= 4 else 1e-9
    return bool(np.allclose(a, b, rtol=tol, atol=tol * scale, equal_nan=True))


def _sources(e, flat) -> list:
    return [flat[v]._data if is_arg else getattr(v, "_data", v) for is_arg, v in e.src]


def _ones(e) -> list:
    return [xp.ones(shape, dt) for shape, dt, xp in e.meta]


def _replay_matches(e, flat, outs, grads, what: str, rng_state) -> None:
    gen = _generator()
    for _ in range(2):
        if e.prog.random:
            gen.state = rng_state  # (the draws the eager run made)
        got, saved = e.prog.forward(*_sources(e, flat))
        for g, o in zip(got, outs):
            if not _close(g, o._data):
                raise Unreplayable(f"its replay differs from its eager run {what}")
        if grads is not None:
            for g, t in zip(e.prog.backward(_ones(e), saved), grads):
                if (g is None) != (t is None) or (g is not None and not _close(g, t._data)):
                    raise Unreplayable(f"its replayed backward differs from its eager run "
                                       f"{what}")


def _perturbed(t, rng):
    from tapegrad._device import CPU
    from tapegrad.tensor import Tensor

    a = _backends.to_host(t._data)
    if a.dtype.kind in "fc":
        b = a * (1 + 0.01 * rng.uniform(-1, 1, a.shape)).astype(a.dtype)
    elif a.size > 1:
        b = a.reshape(-1)[rng.integers(0, a.size, a.size)].reshape(a.shape)
    else:
        return t
    b = np.array(b, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
    if t._device is not CPU:
        b = _backends.move_array(b, CPU, t._device)
    return Tensor._make(b, False, None, 0, t._device).requires_grad_(t._requires_grad)


def check_trace(e, tr, fn, args, kwargs, flat, outs, traced) -> None:
    """Both checks of the module docstring; raises :class:`Unreplayable` on a failure."""
    from tapegrad.autograd import engine
    from tapegrad.compiler import _outputs
    from tapegrad.tensor import Tensor

    gen = _generator()
    try:
        _replay_matches(e, flat, outs, traced, "", tr.rng_before)
        rng = np.random.default_rng(0)
        new = [_perturbed(a, rng) if isinstance(a, Tensor) else a for a in flat]
        n = len(args)
        try:
            gen.state = tr.rng_after
            res = fn(*new[:n], **dict(zip(sorted(kwargs), new[n:])))
            ref, _ = _outputs(res)
            grads = None
            if traced is not None:
                wrt = [new[v] if is_arg else v for is_arg, v in e.wrt]
                roots = [o for o, r in zip(ref, e.req) if r]
                seeds = [Tensor._make(s, False, None, 0, o._device) for s, o in
                         zip(_ones(e), roots)]
                grads = engine.grad(roots, wrt, seeds, allow_unused=True)
        except Unreplayable:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure means: do not replay
            raise Unreplayable(f"its check on other inputs raised {type(exc).__name__}: "
                               f"{exc}") from exc
        _replay_matches(e, new, ref, grads, "on other inputs (a value computed from the "
                        "data outside the traced ops?)", tr.rng_after)
    finally:
        gen.state = tr.rng_after  # the checks draw nothing that the caller would see


def _generator():
    from tapegrad.creation import default_generator

    return default_generator.rng.bit_generator
