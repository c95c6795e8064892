"""The vjps of softmax and log_softmax are ops of their own (``SoftmaxBackward`` and
``LogSoftmaxBackward``, one kernel each): their gradients, their own vjps (double backward)
and their jvps (forward over reverse) against finite differences and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.autograd import forward_ad as fwAD
from tapegrad.autograd import gradgradcheck
from tapegrad.autograd.functional import hessian

F = tg.nn.functional
OPS = {"softmax": F.softmax, "log_softmax": F.log_softmax}


def _loss(op, dim, w):
    return lambda x: (op(x, dim) * w).sum() + (op(x, dim) ** 2).sum()


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_double_backward_matches_finite_differences(name, dim):
    rng = np.random.default_rng(0)
    x = tg.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert gradgradcheck(lambda x: OPS[name](x, dim), (x,))


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("dim", [0, -1])
def test_forward_over_reverse_gives_the_hessian_times_the_tangent(name, dim):
    rng = np.random.default_rng(1)
    x0 = rng.standard_normal((3, 4))
    t0 = rng.standard_normal((3, 4))
    w = tg.tensor(rng.standard_normal((3, 4)))
    loss = _loss(OPS[name], dim, w)
    h = hessian(loss, tg.tensor(x0)).numpy().reshape(12, 12)
    with fwAD.dual_level():
        x = fwAD.make_dual(tg.tensor(x0, requires_grad=True), tg.tensor(t0))
        (g,) = tg.autograd.grad(loss(x), x, create_graph=True)
        tangent = fwAD.unpack_dual(g).tangent
    np.testing.assert_allclose(tangent.detach().numpy().reshape(-1), h @ t0.reshape(-1), rtol=1e-9,
                               atol=1e-11)


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("shape,dim", [((64, 100), -1), ((64, 100), 0), ((5, 7), 1)])
def test_gradients_match_torch_in_float32(name, shape, dim):
    # (64, 100) along the last dim: the kernels' row loops, with the broadcast gradient
    # of a sum copied to C order
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x0 = (rng.standard_normal(shape) * 4).astype(np.float32)
    w0 = rng.standard_normal(shape).astype(np.float32)
    grads = []
    for lib, op in ((tg, OPS[name]), (torch, getattr(torch.nn.functional, name))):
        x = lib.tensor(x0, requires_grad=True)
        (op(x, dim).sum() + (op(x, dim) * lib.tensor(w0)).sum()).backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(OPS))
def test_second_derivatives_match_torch(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal((2, 5))
    w0 = rng.standard_normal((2, 5))
    hs = []
    for lib, op in ((tg, OPS[name]), (torch, getattr(torch.nn.functional, name))):
        w = lib.tensor(w0)
        f = lambda x: ((op(x, -1) * w).sum() + (op(x, -1) ** 2).sum())  # noqa: E731
        if lib is tg:
            hs.append(hessian(f, tg.tensor(x0)).numpy())
        else:
            hs.append(torch.autograd.functional.hessian(f, torch.tensor(x0)).numpy())
    np.testing.assert_allclose(hs[0], hs[1], rtol=1e-10, atol=1e-12)
