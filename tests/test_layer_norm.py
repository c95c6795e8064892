"""The fused layer norm (ops/norm_ops.py): one recorded op each way, PyTorch's numbers on
both CPU backends and in float16/float32/float64, higher derivatives through the fused
derivative, forward over reverse, zero-size and non-contiguous inputs, and the errors.
(Gradcheck, gradgradcheck and the jvp checks run on its op-table rows.)"""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import backends
from tapegrad.autograd import forward_ad as fwAD

torch = pytest.importorskip("torch")

F = tg.nn.functional


def _pair(shape, dt, seed=0, lo=-2.0, hi=3.0, grad=True):
    a = np.random.default_rng(seed).uniform(lo, hi, shape).astype(dt)
    return (tg.tensor(a).requires_grad_(grad), torch.tensor(a).requires_grad_(grad))


def _close(a, b, dt):
    tol = dict(rtol=1e-2, atol=1e-2) if dt == np.float16 else \
        dict(rtol=1e-5, atol=2e-5) if dt == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.detach().numpy().astype(np.float64),
                               b.detach().numpy().astype(np.float64), **tol)


def test_one_recorded_op_each_way():
    x = tg.randn(4, 6, requires_grad=True)
    w, b = tg.ones(6, requires_grad=True), tg.zeros(6, requires_grad=True)
    y = F.layer_norm(x, (6,), w, b)
    assert type(y.grad_fn).__name__ == "LayerNorm"
    assert all(e is None or type(e[0]).__name__ == "AccumulateGrad"
               for e in y.grad_fn.next_functions)
    gx, gw, gb = tg.autograd.grad(y, (x, w, b), tg.ones(4, 6), create_graph=True)
    assert gx.grad_fn is gw.grad_fn is gb.grad_fn  # one node gives all three
    assert type(gx.grad_fn).__name__ == "LayerNormBackward"
    with tg.no_grad():
        assert F.layer_norm(x, (6,), w, b).grad_fn is None


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("dt", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape,ns,affine", [((8, 16), (16,), True), ((2, 3, 4), (3, 4), True),
                                             ((5, 7), (7,), False)], ids=str)
def test_matches_torch(backend, dt, shape, ns, affine):
    (x, xt), (w, wt), (b, bt) = (_pair(shape, dt), _pair(ns, dt, 1, 0.5, 1.5),
                                 _pair(ns, dt, 2))
    if not affine:
        w = wt = b = bt = None
    with backends.use(backend):
        y = F.layer_norm(x, ns, w, b, 1e-4)
        yt = torch.nn.functional.layer_norm(xt, ns, wt, bt, 1e-4)
        assert y.dtype is getattr(tg, str(yt.dtype).split(".")[1])
        _close(y, yt, dt)
        g = np.random.default_rng(3).uniform(-1, 1, shape).astype(dt)
        y.backward(tg.tensor(g))
        yt.backward(torch.tensor(g))
    for a, t in zip((x, w, b), (xt, wt, bt)):
        if a is not None:
            assert a.grad.dtype is a.dtype
            _close(a.grad, t.grad, dt)


def test_non_contiguous_input_and_zero_size():
    a = np.random.default_rng(4).standard_normal((6, 5)).astype(np.float32)
    x, xt = tg.tensor(a).requires_grad_(), torch.tensor(a).requires_grad_()
    y, yt = F.layer_norm(x.t(), (6,)), torch.nn.functional.layer_norm(xt.t(), (6,))
    _close(y, yt, np.float32)
    (y * y.detach()).sum().backward()
    (yt * yt.detach()).sum().backward()
    _close(x.grad, xt.grad, np.float32)
    for shape, ns in [((0, 4), (4,)), ((2, 0), (0,)), ((3, 0, 2), (0, 2))]:
        x = tg.zeros(shape, requires_grad=True)
        w = tg.ones(ns, requires_grad=True)
        y = F.layer_norm(x, ns, w)
        assert tuple(y.shape) == shape
        y.sum().backward()
        assert tuple(x.grad.shape) == shape and tuple(w.grad.shape) == ns
        assert not np.any(w.grad.numpy())


def _third(lib, x, w, b):
    y = lib.nn.functional.layer_norm(x, (5,), w, b)
    loss = (y * y * y).sum()
    g1 = lib.autograd.grad(loss, (x, w), create_graph=True)
    s = (g1[0] * g1[0]).sum() + (g1[1] * x[0]).sum()
    g2 = lib.autograd.grad(s, (x, w, b), create_graph=True)
    return g2 + lib.autograd.grad((g2[0] ** 2).sum() + g2[1].sum(), (x, w, b))


def _composed(x, ns, w, b, eps=1e-5):
    dims = tuple(range(-len(ns), 0))
    xc = x - x.mean(dims, keepdim=True)
    return xc * ((xc * xc).mean(dims, keepdim=True) + eps).rsqrt() * w + b


def test_second_and_third_derivatives_match_torch():
    (x, xt), (w, wt), (b, bt) = _pair((3, 5), np.float64), _pair((5,), np.float64, 1), \
        _pair((5,), np.float64, 2)
    ours = _third(tg, x, w, b)
    for a, t in zip(ours[:3], _third(torch, xt, wt, bt)[:3]):
        _close(a, t, np.float64)
    # PyTorch's fused layer norm gets third derivatives wrong (pytorch#175754: its double
    # backward treats the saved mean / rstd as constants); its composed form is the reference.
    torch_ln = torch.nn.functional.layer_norm
    try:
        torch.nn.functional.layer_norm = lambda x, ns, w, b: _composed(x, ns, w, b)
        want = _third(torch, xt, wt, bt)
    finally:
        torch.nn.functional.layer_norm = torch_ln
    for a, t in zip(ours, want):
        np.testing.assert_allclose(a.detach().numpy(), t.detach().numpy(), rtol=1e-9)


def test_forward_over_forward_second_derivative():
    # f(t) = sum(layer_norm([t, 0], w=[1, 2], eps=0.25)) = -t / sqrt(1 + t^2), whose second
    # derivative at 0.7 is 3t / (1 + t^2)^2.5 (PyTorch's nested jvp flips its sign,
    # pytorch#196700).
    x = tg.tensor([[0.7, 0.0]], dtype=tg.float64)
    w, b = tg.tensor([1.0, 2.0], dtype=tg.float64), tg.zeros(2, dtype=tg.float64)
    e = tg.tensor([[1.0, 0.0]], dtype=tg.float64)
    with fwAD.dual_level():
        d1 = fwAD.make_dual(x, e)
        with fwAD.dual_level():
            d2 = fwAD.make_dual(d1, e)
            first = fwAD.unpack_dual(F.layer_norm(d2, (2,), w, b, 0.25).sum()).tangent
        second = fwAD.unpack_dual(first).tangent
    t = 0.7
    np.testing.assert_allclose(fwAD.unpack_dual(first).primal.item(), -(1 + t * t) ** -1.5,
                               rtol=1e-12)
    np.testing.assert_allclose(second.item(), 3 * t / (1 + t * t) ** 2.5, rtol=1e-12)


def test_forward_over_reverse_is_the_hessian_vector_product():
    (x, xt), (w, wt) = _pair((4, 6), np.float64), _pair((6,), np.float64, 1)
    c = np.random.default_rng(5).standard_normal((4, 6))
    v = np.random.default_rng(6).standard_normal((4, 6))
    with fwAD.dual_level():
        xd = fwAD.make_dual(x.detach(), tg.tensor(v)).requires_grad_()
        y = F.layer_norm(xd, (6,), w)
        (gx,) = tg.autograd.grad((y * y * tg.tensor(c)).sum(), (xd,))
        hv = fwAD.unpack_dual(gx).tangent
    yt = torch.nn.functional.layer_norm(xt, (6,), wt)
    (gt,) = torch.autograd.grad((yt * yt * torch.tensor(c)).sum(), (xt,), create_graph=True)
    (hvt,) = torch.autograd.grad(gt, (xt,), torch.tensor(v))
    _close(gx, gt, np.float64)
    _close(hv, hvt, np.float64)


def test_weight_changed_in_place_after_forward_is_an_error():
    x = tg.randn(3, 4, requires_grad=True)
    w = tg.ones(4, requires_grad=True)
    y = F.layer_norm(x, (4,), w)
    with tg.no_grad():
        w.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


@pytest.mark.parametrize("call,exc,words", [
    (lambda: F.layer_norm(tg.randn(2, 3), (3,), tg.ones(4)), RuntimeError,
     ["layer_norm", "weight", "[4]", "[3]"]),
    (lambda: F.layer_norm(tg.randn(2, 3), (3,), None, tg.ones(1, 3)), RuntimeError,
     ["layer_norm", "bias", "[1, 3]", "[3]"]),
    (lambda: F.layer_norm(tg.randn(2, 3), ()), RuntimeError, ["layer_norm", "[]"]),
    (lambda: F.layer_norm(tg.randn(2, 3), (2, 3, 1)), RuntimeError, ["layer_norm", "[2, 3]"]),
    (lambda: F.layer_norm(tg.arange(6).reshape(2, 3), (3,)), NotImplementedError,
     ["layer_norm", "int64"]),
    (lambda: F.layer_norm(tg.randn(2, 3), (3,), tg.ones(3, dtype=tg.float64)), RuntimeError,
     ["layer_norm", "float64", "float32"]),
])
def test_errors_name_the_op_and_the_shapes(call, exc, words):
    with pytest.raises(exc) as e:
        call()
    for word in words:
        assert word in str(e.value)
