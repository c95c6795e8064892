"""Convolution keeps PyTorch's memory layout: im2col gives (N, C * K, L) and one batched
product writes the output as a C-contiguous (N, O, *spatial) array, so the ops after a
convolution (relu, pooling) get arrays their kernels take as they are."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg

F = tg.nn.functional

CASES = [dict(), dict(padding=1), dict(stride=2), dict(dilation=2, padding=2),
         dict(groups=2), dict(groups=4, padding=1, stride=(2, 1))]


@pytest.mark.parametrize("kw", CASES, ids=str)
def test_conv2d_output_is_contiguous_and_matches_torch(kw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((3, 4, 9, 8))
    w0 = rng.standard_normal((8, 4 // kw.get("groups", 1), 3, 3))
    b0 = rng.standard_normal(8)
    g0 = rng.standard_normal(tuple(torch.nn.functional.conv2d(
        torch.tensor(x0), torch.tensor(w0), torch.tensor(b0), **kw).shape))
    res = []
    for lib in (tg, torch):
        x, w, b = (lib.tensor(a, requires_grad=True) for a in (x0, w0, b0))
        y = lib.nn.functional.conv2d(x, w, b, **kw)
        assert y.is_contiguous()
        y.backward(lib.tensor(g0))
        res.append([y.detach().numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()])
    for ours, ref in zip(*res):
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)


def test_conv1d_output_is_contiguous():
    y = F.conv1d(tg.randn(2, 3, 10), tg.randn(5, 3, 3), padding=1)
    assert y.shape == (2, 5, 10) and y.is_contiguous()


def test_unfold_is_batch_major_and_fold_is_its_adjoint():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x0 = rng.standard_normal((2, 3, 6, 5))
    u = F.unfold(tg.tensor(x0), 3, padding=1, stride=2)
    ut = torch.nn.functional.unfold(torch.tensor(x0), 3, padding=1, stride=2)
    assert u.is_contiguous() and tuple(u.shape) == tuple(ut.shape)
    np.testing.assert_allclose(u.numpy(), ut.numpy())
    c0 = rng.standard_normal(tuple(ut.shape))
    f = F.fold(tg.tensor(c0), (6, 5), 3, padding=1, stride=2)
    ft = torch.nn.functional.fold(torch.tensor(c0), (6, 5), 3, padding=1, stride=2)
    np.testing.assert_allclose(f.numpy(), ft.numpy(), rtol=1e-12)
    # adjoint: <unfold(x), c> == <x, fold(c)>
    np.testing.assert_allclose((u.numpy() * c0).sum(), (x0 * f.numpy()).sum(), rtol=1e-12)


def test_a_conv_relu_pool_block_trains_like_torch_in_float32():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x0 = rng.standard_normal((4, 3, 16, 16)).astype(np.float32)
    w0 = (rng.standard_normal((6, 3, 3, 3)) * 0.2).astype(np.float32)
    grads = []
    for lib in (tg, torch):
        FF = lib.nn.functional
        x, w = lib.tensor(x0, requires_grad=True), lib.tensor(w0, requires_grad=True)
        FF.max_pool2d(FF.relu(FF.conv2d(x, w, padding=1)), 2).sum().backward()
        grads.append((x.grad.numpy(), w.grad.numpy()))
    for ours, ref in zip(*grads):
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("o,k", [(3, 7), (7, 3)], ids=["rows<cols", "rows>cols"])
def test_gradient_of_a_matrix_applied_across_a_batch(o, k):
    # A 2-D factor broadcast over a batch (a convolution's weight): with fewer rows than
    # columns its gradient is summed as the transpose of sum(b @ g^T) (linalg._summed_nt),
    # otherwise as sum(g @ b^T); both give sum_n g[n] @ b[n]^T, C-contiguous, and both
    # differentiate again (double backward through a convolution's weight).
    from tapegrad.autograd import gradcheck, gradgradcheck

    rng = np.random.default_rng(3)
    a0, b0, g0 = rng.standard_normal((o, k)), rng.standard_normal((4, k, 5)), \
        rng.standard_normal((4, o, 5))
    a, b = tg.tensor(a0, requires_grad=True), tg.tensor(b0, requires_grad=True)
    tg.matmul(a, b).backward(tg.tensor(g0))
    np.testing.assert_allclose(a.grad.numpy(), np.einsum("nol,nkl->ok", g0, b0), rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), np.einsum("ok,nol->nkl", a0, g0), rtol=1e-12)
    assert a.grad.is_contiguous()
    assert gradcheck(tg.matmul, (a, b))
    assert gradgradcheck(tg.matmul, (a, b))
