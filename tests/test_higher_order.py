"""Second and higher derivatives: gradgradcheck (float64 central differences) and second
derivatives compared with PyTorch for every row of the op table, plus create_graph behaviour.

Finite-difference checks need float64 all the way through, so they run on the rows whose
``gradcheck`` flag is set; the exact comparison with PyTorch runs on every ``gradgrad`` row.
"""

from __future__ import annotations

import numpy as np
import pytest
from optable import CASES, make_inputs

import tapegrad
from tapegrad.autograd import Function, GradcheckError, grad, gradgradcheck

try:
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def _differentiable(case):
    return any(getattr(s, "grad", False) for s in case.inputs)


GG = [c for c in CASES if c.gradgrad and c.gradcheck and _differentiable(c)]
SECOND = [c for c in CASES if c.gradgrad and _differentiable(c)]


def _np(t):
    return None if t is None else t.detach().cpu().numpy(force=True)


def test_every_exclusion_has_a_written_reason():
    for c in CASES:
        if not (c.gradcheck and c.gradgrad and c.jvp):
            assert c.why.strip(), f"{c.name}: a check is switched off without a reason (why=)"


@pytest.mark.parametrize("case", GG, ids=[c.id for c in GG])
def test_gradgradcheck(case):
    xs = make_inputs(case, tapegrad)
    assert gradgradcheck(lambda *a: case.fn(tapegrad, *a), xs, atol=1e-5, rtol=1e-3)


def _second(lib, case):
    """Gradients of <grad(out, x; v), w> with respect to the inputs and to v."""
    xs = make_inputs(case, lib)
    fn = case.torch_fn if (lib is torch and case.torch_fn) else case.fn
    out = fn(lib, *xs)
    rng = np.random.default_rng(7)
    v = lib.tensor(rng.standard_normal(tuple(out.shape)), dtype=out.dtype).requires_grad_()
    diff = [x for x in xs if getattr(x, "requires_grad", False)]
    gs = lib.autograd.grad(out, diff, v, create_graph=True, allow_unused=True)
    s = None
    for g, x in zip(gs, diff):
        if g is not None and g.requires_grad:
            w = lib.tensor(rng.standard_normal(tuple(x.shape)), dtype=g.dtype)
            term = (g * w).sum()
            s = term if s is None else s + term
    if s is None:
        return None
    return lib.autograd.grad(s, diff + [v], allow_unused=True)


@needs_torch
@pytest.mark.parametrize("case", SECOND, ids=[c.id for c in SECOND])
def test_second_derivatives_match_torch(case):
    ours = _second(tapegrad, case)
    ref = _second(torch, case)
    if ours is None or ref is None:
        # One side saw no path to differentiate (e.g. PyTorch's sign has a constant zero
        # gradient); then the other side's second derivatives must all be zero.
        for g in ours or ref or ():
            assert g is None or np.allclose(_np(g), 0)
        return
    for k, (a, b) in enumerate(zip(ours, ref)):
        a = _np(a)
        b = _np(b)
        if a is None or b is None:  # one side may drop a path that contributes zeros
            c = a if a is not None else b
            assert c is None or np.allclose(c, 0), f"entry {k}: one side is None, other not 0"
            continue
        np.testing.assert_allclose(a, b, rtol=max(case.rtol, 1e-7), atol=max(case.atol, 1e-9),
                                   err_msg=f"entry {k}")


# ---- create_graph and higher orders --------------------------------------------------------
def _x(vals):
    return tapegrad.tensor(vals, dtype=tapegrad.float64, requires_grad=True)


def test_third_derivative_of_x_to_the_fifth():
    x = _x(1.5)
    (g1,) = grad(x ** 5, x, create_graph=True)
    (g2,) = grad(g1, x, create_graph=True)
    (g3,) = grad(g2, x, create_graph=True)
    (g4,) = grad(g3, x)
    assert g1.item() == pytest.approx(5 * 1.5 ** 4)
    assert g2.item() == pytest.approx(20 * 1.5 ** 3)
    assert g3.item() == pytest.approx(60 * 1.5 ** 2)
    assert g4.item() == pytest.approx(120 * 1.5)


def test_backward_create_graph_leaves_differentiable_grad():
    x = _x([0.3, -0.7])
    y = (x.tanh() * x.exp()).sum()
    y.backward(create_graph=True)
    assert x.grad.requires_grad and x.grad.grad_fn is not None
    g = x.grad
    x.grad = None
    g.sum().backward()
    # d/dx of d/dx[tanh(x) e^x] = e^x (tanh + 2 sech^2 - 2 tanh sech^2)
    xv = np.array([0.3, -0.7])
    t, s2 = np.tanh(xv), 1 / np.cosh(xv) ** 2
    np.testing.assert_allclose(x.grad.numpy(), np.exp(xv) * (t + 2 * s2 - 2 * t * s2),
                               rtol=1e-12)


def test_grad_without_create_graph_is_detached():
    x = _x([1.0, 2.0])
    (g,) = grad((x ** 3).sum(), x)
    assert not g.requires_grad and g.grad_fn is None


def test_hessian_by_double_backward_is_symmetric():
    rng = np.random.default_rng(0)
    a = tapegrad.tensor(rng.standard_normal((3, 3)))
    x = _x(rng.standard_normal(3))
    f = (x @ a @ x).sin() + (x ** 4).sum()
    (g,) = grad(f, x, create_graph=True)
    rows = [grad(g[i], x, retain_graph=True)[0].numpy() for i in range(3)]
    h = np.stack(rows)
    np.testing.assert_allclose(h, h.T, atol=1e-12)


def test_mixed_partial_through_two_inputs():
    x, y = _x(0.4), _x(-1.2)
    f = x.sin() * y ** 3
    (gx,) = grad(f, x, create_graph=True)
    (gxy,) = grad(gx, y)
    assert gxy.item() == pytest.approx(np.cos(0.4) * 3 * 1.2 ** 2)


# ---- gradgradcheck itself ------------------------------------------------------------------
class _CubeWrongSecond(Function):
    """x^3 with a correct first derivative computed from a detached x: wrong second one."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x.detach() ** 2 * g


def test_gradgradcheck_catches_a_wrong_second_derivative():
    x = _x([0.5, 1.5, -1.0])
    assert tapegrad.autograd.gradcheck(_CubeWrongSecond.apply, (x,))
    with pytest.raises(GradcheckError, match="Jacobian mismatch"):
        gradgradcheck(_CubeWrongSecond.apply, (x,))
    assert gradgradcheck(_CubeWrongSecond.apply, (x,), raise_exception=False) is False


def test_gradgradcheck_with_given_grad_outputs_and_two_outputs():
    x, y = _x([0.5, 1.5]), _x([2.0, -1.0])
    gy = (tapegrad.tensor([1.0, -2.0], dtype=tapegrad.float64, requires_grad=True),
          tapegrad.tensor([0.5, 0.25], dtype=tapegrad.float64, requires_grad=True))
    assert gradgradcheck(lambda a, b: (a * b.exp(), (a * b).sin()), (x, y), gy)
