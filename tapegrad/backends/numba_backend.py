"""The numba backend: the reference kernel table with jitted kernels where they beat NumPy.

Building the backend imports neither numba nor any jitted module: every entry of its table
starts as a small :class:`_Lazy` stand-in. The first kernel call loads the numba kernel
modules (``numba_core``, ``numba_nn`` and the optimizer / RNN modules when they exist), puts
their ``KERNELS`` into the table in place of the stand-ins, and from then on ``be.k[name]``
is the jitted kernel itself. Kernels compile per signature on first use and are cached on
disk (``cache=True``, in ``NUMBA_CACHE_DIR`` or next to the sources), so only the very first
run on a machine pays for compilation.

A module that fails to import (numba missing or broken) leaves the reference kernels in
place, with one warning. A kernel whose compilation fails falls back to its reference
kernel through :func:`fallback`, again with one warning, never with a wrong answer.

>>> from tapegrad.backends import get_backend
>>> be = get_backend("numba")
>>> float(be.k["tanh_backward"](np.ones(2), np.zeros(2))[0])
1.0
"""

from __future__ import annotations

import importlib
import threading
import warnings

import numpy as np

from tapegrad.backends import Backend
from tapegrad.backends.numpy_backend import reference_kernels

__all__ = ["make_backend", "KERNEL_MODULES", "fallback", "load"]

# Modules whose KERNELS override the reference, in order (later ones win). Missing modules
# are skipped: the optimizer and RNN kernels are written by their own engineers.
KERNEL_MODULES = ("numba_core", "numba_nn", "numba_softmax", "numba_loss", "numba_norm",
                  "numba_optim", "numba_rnn")

_TABLES: list = []        # the tables of every numba backend built (normally one)
_LOCK = threading.Lock()
_STATE = {"loaded": False}
_WARNED: set = set()


class _KernelTable(dict):
    """A plain dict of kernels; a name only the jitted modules define loads them on a miss."""

    def __missing__(self, name):
        if not _STATE["loaded"]:
            load()
            if dict.__contains__(self, name):
                return dict.__getitem__(self, name)
        raise KeyError(name)


class _Lazy:
    """Stands in for a kernel until the jitted modules are loaded, then forwards to it."""

    __slots__ = ("name", "table")

    def __init__(self, name: str, table: dict):
        self.name = name
        self.table = table

    def __call__(self, *args, **kwargs):
        load()
        return self.table[self.name](*args, **kwargs)

    def __repr__(self) -> str:
        return f"<lazy numba kernel '{self.name}'>"


def make_backend() -> Backend:
    """The numba backend object; nothing is imported or compiled until a kernel runs."""
    table = _KernelTable()
    for name in reference_kernels():
        table[name] = _Lazy(name, table)
    _TABLES.append(table)
    if _STATE["loaded"]:
        _fill(table, _STATE["kernels"])
    return Backend("numba", np, table, "cpu")


def load() -> dict:
    """Import the jitted kernel modules (once) and install their kernels in every table."""
    if _STATE["loaded"]:
        return _STATE["kernels"]
    with _LOCK:
        if not _STATE["loaded"]:
            kernels = reference_kernels()
            for mod in KERNEL_MODULES:
                kernels.update(_module_kernels(mod))
            _STATE["kernels"] = kernels
            for table in _TABLES:
                _fill(table, kernels)
            _STATE["loaded"] = True
    return _STATE["kernels"]


def _fill(table: dict, kernels: dict) -> None:
    for name, fn in kernels.items():
        table[name] = fn


def _module_kernels(mod: str) -> dict:
    full = "tapegrad.backends." + mod
    try:
        m = importlib.import_module(full)
    except ModuleNotFoundError as e:
        if e.name == full:
            return {}  # that family has no numba kernels (yet)
        _warn_once(mod, f"tapegrad: the numba kernels of {mod} could not be imported ({e}); "
                   "the NumPy reference kernels are used instead")
        return {}
    except Exception as e:  # a broken module must not break the reference path
        _warn_once(mod, f"tapegrad: the numba kernels of {mod} could not be imported "
                   f"({type(e).__name__}: {e}); the NumPy reference kernels are used instead")
        return {}
    return dict(getattr(m, "KERNELS", {}))


def _warn_once(key: str, msg: str) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)


def fallback(name: str, ref, *args):
    """Run the reference kernel ``ref`` for a numba kernel ``name`` that failed to compile.

    Warns once, and replaces the kernel by ``ref`` in every numba table so later calls go
    straight to the reference (compilation is not retried on every call).
    """
    _warn_once("compile:" + name, f"tapegrad: the numba kernel '{name}' failed to compile; "
               "using the NumPy reference kernel instead")
    if _STATE["loaded"]:
        _STATE["kernels"][name] = ref
    for table in _TABLES:
        if name in table:
            table[name] = ref
    return ref(*args)
