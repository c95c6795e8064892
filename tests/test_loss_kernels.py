"""The fused smooth L1 loss (``ops/loss_ops.SmoothL1``): numba kernels bit for bit against the
reference, special values and gradient layouts included, and one node each way. Values,
gradients and higher order against PyTorch: the op table (nn_smooth_l1_loss*)."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.backends import numba_loss, ref_loss


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("beta", [1.0, 0.5, 3])
def test_smooth_l1_kernels_equal_the_reference(dt, beta):
    rng = np.random.default_rng(6)
    d = (rng.standard_normal((40, 70)) * 2).astype(dt)
    d[0, :6] = np.nan, np.inf, -np.inf, 0.0, -0.0, beta  # (|d| == beta: the linear side)
    g = rng.standard_normal(d.shape).astype(dt)
    np.testing.assert_array_equal(numba_loss.smooth_l1(d, beta), ref_loss.smooth_l1(d, beta))
    for gg in (g, np.broadcast_to(dt(0.25), d.shape), g.T.copy().T):
        got = numba_loss.smooth_l1_backward(gg, d, beta)
        assert got.dtype == dt
        np.testing.assert_array_equal(got, ref_loss.smooth_l1_backward(gg, d, beta))
    x = d[:, ::2]  # not C-contiguous: the reference path, same answer
    np.testing.assert_array_equal(numba_loss.smooth_l1(x, beta), ref_loss.smooth_l1(x, beta))


def test_smooth_l1_loss_is_one_node_each_way():
    x = tg.randn(4, 5, requires_grad=True)
    loss = tg.nn.functional.smooth_l1_loss(x, tg.randn(4, 5), reduction="none")
    assert loss.grad_fn.name == "smooth_l1"
    (g,) = tg.autograd.grad(loss.sum(), x, create_graph=True)
    assert g.grad_fn.name == "smooth_l1_backward"
