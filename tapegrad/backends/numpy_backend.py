"""The plain-NumPy reference backend: the array module and the kernel table assembled from
the reference kernel modules. Every other backend is tested against this one."""

from __future__ import annotations

import numpy as np

from tapegrad.backends import Backend


def reference_kernels() -> dict:
    """A fresh dict of every reference kernel (other backends start from a copy)."""
    from tapegrad.backends import ref_core, ref_loss, ref_nn, ref_norm, ref_optim, ref_rnn

    table = {}
    table.update(ref_core.KERNELS)
    table.update(ref_nn.KERNELS)
    table.update(ref_loss.KERNELS)
    table.update(ref_norm.KERNELS)
    table.update(ref_optim.KERNELS)
    table.update(ref_rnn.KERNELS)
    return table


def make_backend() -> Backend:
    return Backend("numpy", np, reference_kernels(), "cpu")
