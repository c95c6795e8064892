"""Grad mode: whether operations are recorded on the tape. Thread-local, like PyTorch.

``no_grad``, ``enable_grad``, ``set_grad_enabled`` and ``inference_mode`` work both as context
managers and as decorators.
"""

from __future__ import annotations

import functools
import threading

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode",
           "is_inference_mode_enabled"]


class _State(threading.local):
    # Class attributes are the per-thread defaults: every new thread starts with grad on.
    grad_enabled = True
    inference = False
    # While a backward pass runs, its cache of transposed weights (see ops/matmul_t.py).
    transposes = None


STATE = _State()


def is_grad_enabled() -> bool:
    """True when new operations are recorded on the tape (the default)."""
    return STATE.grad_enabled


def is_inference_mode_enabled() -> bool:
    return STATE.inference


class _DecoratorContextManager:
    """Base that lets a context manager also decorate a function."""

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__(*self._args()):
                return fn(*args, **kwargs)

        return wrapper

    def _args(self):
        return ()


class no_grad(_DecoratorContextManager):
    """Disable recording: results of operations never require grad.

    >>> with no_grad():
    ...     y = x * 2          # y.requires_grad is False
    """

    def __enter__(self):
        self.prev = STATE.grad_enabled
        STATE.grad_enabled = False

    def __exit__(self, *exc):
        STATE.grad_enabled = self.prev
        return False


class enable_grad(_DecoratorContextManager):
    """Re-enable recording inside a ``no_grad`` block."""

    def __enter__(self):
        self.prev = STATE.grad_enabled
        STATE.grad_enabled = True

    def __exit__(self, *exc):
        STATE.grad_enabled = self.prev
        return False


class set_grad_enabled(_DecoratorContextManager):
    """Set grad mode to ``mode``; usable as a call, a context manager or a decorator."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self.prev = STATE.grad_enabled
        STATE.grad_enabled = self.mode  # takes effect at once, as torch.set_grad_enabled(False)

    def _args(self):
        return (self.mode,)

    def __call__(self, fn):
        # Used as a decorator, the switch made by __init__ must not outlive the decoration.
        STATE.grad_enabled = self.prev
        return super().__call__(fn)

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        STATE.grad_enabled = self.prev
        return False


class inference_mode(_DecoratorContextManager):
    """Like ``no_grad``; tensors made inside are marked as inference tensors."""

    def __init__(self, mode: bool = True):
        self.mode = bool(mode)

    def _args(self):
        return (self.mode,)

    def __enter__(self):
        self.prev = (STATE.grad_enabled, STATE.inference)
        if self.mode:
            STATE.grad_enabled = False
            STATE.inference = True

    def __exit__(self, *exc):
        STATE.grad_enabled, STATE.inference = self.prev
        return False
