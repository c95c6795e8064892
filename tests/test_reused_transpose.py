"""A backward pass that meets one weight in several products multiplies by a transposed copy
of it made once (``ops/matmul_t.reused_nt``): the gradients must not change, the copy must not
outlive the pass, and double backward must not see it."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.autograd import gradcheck, gradgradcheck
from tapegrad.autograd.grad_mode import STATE
from tapegrad.ops import matmul_t


def _rnn(lib, wx, wh, xs):
    h = lib.zeros(xs.shape[1], wh.shape[0], dtype=wh.dtype)
    total = 0
    for t in range(xs.shape[0]):
        h = lib.tanh(xs[t] @ wx + h @ wh)
        total = total + (h * h).sum()
    return total


def _numpy_bptt(wx, wh, xs):
    """The same gradients by hand (the oracle that needs no PyTorch)."""
    hs = [np.zeros((xs.shape[1], wh.shape[0]), wh.dtype)]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(xs[t] @ wx + hs[-1] @ wh))
    gwx, gwh = np.zeros_like(wx), np.zeros_like(wh)
    gh = np.zeros_like(hs[0])
    for t in range(xs.shape[0], 0, -1):
        gh = gh + 2 * hs[t]
        da = gh * (1 - hs[t] ** 2)
        gwx += xs[t - 1].T @ da
        gwh += hs[t - 1].T @ da
        gh = da @ wh.T
    return gwx, gwh


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bptt_gradients_match_a_hand_written_backward(dtype):
    rng = np.random.default_rng(0)
    wx0 = (rng.standard_normal((5, 7)) * 0.3).astype(dtype)
    wh0 = (rng.standard_normal((7, 7)) * 0.3).astype(dtype)
    xs0 = rng.standard_normal((6, 3, 5)).astype(dtype)
    wx = tg.tensor(wx0, requires_grad=True)
    wh = tg.tensor(wh0, requires_grad=True)
    _rnn(tg, wx, wh, tg.tensor(xs0)).backward()
    gwx, gwh = _numpy_bptt(wx0, wh0, xs0)
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(wx.grad.numpy(), gwx, rtol=tol, atol=tol)
    np.testing.assert_allclose(wh.grad.numpy(), gwh, rtol=tol, atol=tol)


def test_bptt_gradients_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    arrays = [(rng.standard_normal(s) * 0.3).astype(np.float32)
              for s in ((4, 8), (8, 8), (5, 2, 4))]
    grads = []
    for lib in (tg, torch):
        wx, wh = (lib.tensor(a, requires_grad=True) for a in arrays[:2])
        _rnn(lib, wx, wh, lib.tensor(arrays[2])).backward()
        grads.append([wx.grad.numpy(), wh.grad.numpy()])
    for ours, ref in zip(*grads):
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


def test_the_copy_is_made_from_the_second_use_and_dropped_with_the_pass(monkeypatch):
    copies = []
    real = matmul_t._aligned_empty
    monkeypatch.setattr(matmul_t, "_aligned_empty",
                        lambda shape, dtype: copies.append(shape) or real(shape, dtype))
    w = tg.tensor(np.eye(3) * 0.5, requires_grad=True)
    x = tg.ones(2, 3, dtype=tg.float64, requires_grad=True)
    (x @ w).sum().backward()
    assert copies == []  # one use: multiplied in place, no copy
    h = x
    for _ in range(4):
        h = h @ w
    h.sum().backward()
    assert copies == [(3, 3)]  # four uses: one copy, from the second use on
    assert STATE.transposes is None  # gone with the pass
    # accumulated: d/dx sum(x W) + d/dx sum(x W^4), with W = I / 2
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 3), 0.5 + 0.5 ** 4))


def test_a_weight_changed_between_passes_is_not_served_from_an_old_copy():
    w = tg.tensor(np.eye(2), requires_grad=True)
    x = tg.tensor([[1.0, 2.0]], dtype=tg.float64, requires_grad=True)
    for scale in (1.0, 3.0):
        with tg.no_grad():
            w.copy_(tg.eye(2, dtype=tg.float64) * scale)
        x.grad = None
        ((x @ w) @ w).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), [[scale ** 2] * 2])


def test_double_backward_through_a_reused_weight_stays_exact():
    rng = np.random.default_rng(2)
    w = tg.tensor(rng.standard_normal((3, 3)) * 0.5, requires_grad=True)
    x = tg.tensor(rng.standard_normal((2, 3)), requires_grad=True)

    def f(x, w):
        return tg.tanh(tg.tanh(x @ w) @ w) @ w

    assert gradcheck(f, (x, w))
    assert gradgradcheck(f, (x, w))
    # create_graph: the gradient must stay a function of w (no constant copy in the graph)
    (gx,) = tg.autograd.grad(f(x, w).sum(), x, create_graph=True)
    (gw,) = tg.autograd.grad(gx.sum(), w)
    assert gw is not None and np.isfinite(gw.numpy()).all() and np.abs(gw.numpy()).sum() > 0
