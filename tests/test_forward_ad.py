"""Forward-mode AD: every row of the op table against central differences and against the
rows of the reverse-mode Jacobian, plus the dual-tensor API (levels, errors, nesting, custom
Functions, forward over reverse)."""

from __future__ import annotations

import numpy as np
import pytest
from optable import CASES, make_inputs

import tapegrad
from tapegrad.autograd import Function, grad
from tapegrad.autograd import forward_ad as fwAD
from tapegrad.autograd import hooks_state
from tapegrad.autograd.gradcheck import analytical_jacobian

JVP = [c for c in CASES if c.jvp]
JVP_FD = [c for c in JVP if c.gradcheck]  # central differences need float64 throughout


def _setup(case, seed=3):
    """Detached inputs (no tape at all) and a random tangent per differentiable input."""
    xs = make_inputs(case, tapegrad)
    rng = np.random.default_rng(seed)
    prim, tans = [], []
    for x in xs:
        if getattr(x, "requires_grad", False):
            prim.append(x.detach())
            tans.append(tapegrad.tensor(rng.standard_normal(tuple(x.shape)), dtype=x.dtype))
        else:
            prim.append(x)
            tans.append(None)
    return prim, tans


def _forward_jvp(case, prim, tans):
    with fwAD.dual_level():
        duals = [x if t is None else fwAD.make_dual(x, t) for x, t in zip(prim, tans)]
        out = case.fn(tapegrad, *duals)
        assert out.grad_fn is None, "forward mode must not record a tape"
        value, tangent = fwAD.unpack_dual(out)
    assert tangent is not None, "no tangent reached the output"
    assert tuple(tangent.shape) == tuple(value.shape)
    assert tangent.dtype == value.dtype
    return value.numpy(), tangent.numpy()


def _shifted(prim, tans, eps):
    return [x if t is None else tapegrad.tensor(x.numpy() + eps * t.numpy())
            for x, t in zip(prim, tans)]


@pytest.mark.parametrize("case", JVP_FD, ids=[c.id for c in JVP_FD])
def test_jvp_matches_finite_differences(case):
    prim, tans = _setup(case)
    if all(t is None for t in tans):
        pytest.fail("a jvp row needs a differentiable input")
    value, tangent = _forward_jvp(case, prim, tans)
    eps = 1e-6
    plus = case.fn(tapegrad, *_shifted(prim, tans, eps)).numpy()
    minus = case.fn(tapegrad, *_shifted(prim, tans, -eps)).numpy()
    np.testing.assert_allclose(value, case.fn(tapegrad, *prim).numpy(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(tangent, (plus - minus) / (2 * eps), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("case", JVP, ids=[c.id for c in JVP])
def test_jvp_matches_reverse_mode_jacobian_rows(case):
    prim, tans = _setup(case)
    _, tangent = _forward_jvp(case, prim, tans)
    xs = [x if t is None else x.clone().requires_grad_() for x, t in zip(prim, tans)]
    jac, outs = analytical_jacobian(lambda *a: case.fn(tapegrad, *a), xs)
    jv = np.zeros(outs[0].numel())
    for j, t in zip(jac, tans):
        if t is not None:
            jv += t.numpy().reshape(-1) @ j[0]  # j[0][in, out]: row k of J is column k here
    np.testing.assert_allclose(tangent.reshape(-1), jv, rtol=max(case.rtol, 1e-9),
                               atol=max(case.atol, 1e-12))


# ---- the dual-tensor API -------------------------------------------------------------------
def _t(vals):
    return tapegrad.tensor(vals, dtype=tapegrad.float64)


def test_article_example_e_equals_a_plus_b_times_b_plus_1():
    a, b = _t(2.0), _t(1.0)
    for da, db, want in [(1.0, 0.0, 2.0), (0.0, 1.0, 5.0)]:
        with fwAD.dual_level():
            ad, bd = fwAD.make_dual(a, _t(da)), fwAD.make_dual(b, _t(db))
            e = (ad + bd) * (bd + 1)
            value, tangent = fwAD.unpack_dual(e)
        assert value.item() == 6.0 and tangent.item() == want


def test_unpack_dual_returns_named_tuple_and_tangents_vanish_on_exit():
    x = _t([1.0, 2.0])
    with fwAD.dual_level():
        d = fwAD.make_dual(x, _t([1.0, 0.0]))
        y = d * d
        res = fwAD.unpack_dual(y)
        assert res.primal is res[0] and res.tangent is res[1]
        np.testing.assert_array_equal(res.tangent.numpy(), [2.0, 0.0])
        assert fwAD.unpack_dual(res.primal).tangent is None  # the primal carries no tangent
        assert fwAD.unpack_dual(x).tangent is None
    assert fwAD.unpack_dual(y).tangent is None
    assert not hooks_state.FORWARD_AD
    assert fwAD.unpack_dual(y).primal is y


def test_no_hook_call_when_no_level_is_open(monkeypatch):
    calls = []
    monkeypatch.setattr(hooks_state, "forward_ad_hook", lambda *a: calls.append(a))
    x = _t([1.0, 2.0])
    (x.sin() * 2).sum()
    assert calls == [] and not hooks_state.FORWARD_AD


def test_make_dual_errors():
    x = _t([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match="no level exists"):
        fwAD.make_dual(x, x)
    with fwAD.dual_level():
        with pytest.raises(RuntimeError, match=r"size \[3\].*size \[4\]"):
            fwAD.make_dual(x, _t([1.0, 2.0, 3.0, 4.0]))
        with pytest.raises(ValueError, match="primal to be floating point.*int64"):
            fwAD.make_dual(tapegrad.tensor([1, 2, 3]), x)
        with pytest.raises(ValueError, match="tangent to be floating point.*int64"):
            fwAD.make_dual(x, tapegrad.tensor([1, 2, 3]))
        d = fwAD.make_dual(x, x)
        with pytest.raises(RuntimeError, match="already has a forward gradient"):
            fwAD.make_dual(d, x)
        d32 = fwAD.make_dual(_t([1.0]), tapegrad.tensor([1.0], dtype=tapegrad.float32))
        assert fwAD.unpack_dual(d32).tangent.dtype == tapegrad.float64


def test_exit_levels_in_order_only():
    outer = fwAD.enter_dual_level()
    inner = fwAD.enter_dual_level()
    try:
        with pytest.raises(RuntimeError, match="not the last one"):
            fwAD.exit_dual_level(level=outer)
    finally:
        fwAD.exit_dual_level(level=inner)
        fwAD.exit_dual_level(level=outer)
    assert (outer, inner) == (0, 1) and not hooks_state.FORWARD_AD


def test_forward_over_forward_gives_second_derivative():
    x = _t([0.5, -1.0])
    xv = x.numpy()
    with fwAD.dual_level():
        d1 = fwAD.make_dual(x, _t([1.0, 1.0]))
        with fwAD.dual_level():
            d2 = fwAD.make_dual(d1, _t([1.0, 1.0]))
            y = d2.sin() * d2 ** 2
            first = fwAD.unpack_dual(y).tangent
        np.testing.assert_allclose(fwAD.unpack_dual(first).primal.numpy(),
                                   np.cos(xv) * xv ** 2 + 2 * xv * np.sin(xv), rtol=1e-13)
        second = fwAD.unpack_dual(first).tangent
    want = -np.sin(xv) * xv ** 2 + 4 * xv * np.cos(xv) + 2 * np.sin(xv)
    np.testing.assert_allclose(second.numpy(), want, rtol=1e-13)


def test_forward_over_reverse_is_hessian_vector_product():
    rng = np.random.default_rng(1)
    a = _t(rng.standard_normal((3, 3)))
    x = _t(rng.standard_normal(3)).requires_grad_()
    v = _t(rng.standard_normal(3))
    with fwAD.dual_level():
        d = fwAD.make_dual(x, v)
        f = (d @ a @ d).tanh() + d.exp().sum()
        (g,) = grad(f, d, create_graph=True)
        hv = fwAD.unpack_dual(g).tangent.detach().numpy()
    (g,) = grad((x @ a @ x).tanh() + x.exp().sum(), x, create_graph=True)
    h = np.stack([grad(g[i], x, retain_graph=True)[0].numpy() for i in range(3)])
    np.testing.assert_allclose(hv, h @ v.numpy(), rtol=1e-12)


def test_grad_without_create_graph_keeps_tangents_like_pytorch():
    x = _t([1.0, 2.0]).requires_grad_()
    with fwAD.dual_level():
        d = fwAD.make_dual(x, _t([1.0, 1.0]))
        (g,) = grad((d ** 3).sum(), d)
        assert not g.requires_grad
        np.testing.assert_array_equal(fwAD.unpack_dual(g).tangent.numpy(), [6.0, 12.0])
    assert fwAD.unpack_dual(g).tangent is None


def test_reverse_over_forward_differentiates_the_tangent():
    x = _t([0.3, 0.8]).requires_grad_()
    with fwAD.dual_level():
        d = fwAD.make_dual(x, _t([1.0, 1.0]))
        tangent = fwAD.unpack_dual(d.exp() * d).tangent  # (x + 1) e^x, differentiable in x
    (g,) = grad(tangent.sum(), x)
    np.testing.assert_allclose(g.numpy(), (x.detach().numpy() + 2) * np.exp([0.3, 0.8]),
                               rtol=1e-13)


def test_make_dual_is_backward_differentiable():
    x = _t([1.0, 2.0]).requires_grad_()
    with fwAD.dual_level():
        d = fwAD.make_dual(x, _t([1.0, 1.0]))
        (d ** 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_inplace_op_keeps_tangent():
    x = _t([1.0, 2.0])
    with fwAD.dual_level():
        y = fwAD.make_dual(x, _t([1.0, 1.0])) * 1.0
        y.mul_(3.0)
        y += 1.0
        np.testing.assert_array_equal(fwAD.unpack_dual(y).tangent.numpy(), [3.0, 3.0])
        z = tapegrad.zeros(4, dtype=tapegrad.float64)
        z[1:3] = fwAD.make_dual(x, _t([10.0, 20.0]))
        np.testing.assert_array_equal(fwAD.unpack_dual(z).tangent.numpy(), [0, 10.0, 20.0, 0])
        z.fill_(1.0)  # overwritten: the tangent is zero now
        np.testing.assert_array_equal(fwAD.unpack_dual(z).tangent.numpy(), [0, 0, 0, 0])


def test_tangent_broadcasts_to_output_shape():
    x = _t([1.0, 2.0, 3.0])
    with fwAD.dual_level():
        s = fwAD.make_dual(_t(2.0), _t(1.0))
        y = x * s  # only the 0-d input has a tangent: it broadcasts to (3,)
        np.testing.assert_array_equal(fwAD.unpack_dual(y).tangent.numpy(), [1.0, 2.0, 3.0])


class _Square(Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x * x * scale

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g * ctx.scale, None

    @staticmethod
    def jvp(ctx, tx, tscale):
        assert tscale is None  # one tangent per forward() argument, None for non-tensors
        (x,) = ctx.saved_tensors
        return 2 * x * tx * ctx.scale


class _Cube(Function):
    """PyTorch's pattern: save_for_forward in forward, saved_tensors inside jvp."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_forward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        raise AssertionError("not used")

    @staticmethod
    def jvp(ctx, tx):
        (x,) = ctx.saved_tensors
        return 3 * x * x * tx


class _NoJvp(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g * 2


def test_custom_function_jvp_and_missing_jvp_error():
    x = _t([1.0, 3.0])
    with fwAD.dual_level():
        y = _Square.apply(fwAD.make_dual(x, _t([1.0, 1.0])), 0.5)
        np.testing.assert_array_equal(fwAD.unpack_dual(y).tangent.numpy(), [1.0, 3.0])
        y = _Cube.apply(fwAD.make_dual(x, _t([1.0, 2.0])))
        np.testing.assert_array_equal(fwAD.unpack_dual(y).tangent.numpy(), [3.0, 54.0])
        with pytest.raises(RuntimeError, match="_NoJvp.*no jvp"):
            _NoJvp.apply(fwAD.make_dual(x, x))
        # without a tangent on the inputs the custom Function runs as usual
        np.testing.assert_array_equal(_NoJvp.apply(x).numpy(), [2.0, 6.0])


def test_dual_level_as_decorator():
    @fwAD.dual_level()
    def jvp_of_cube(x, v):
        return fwAD.unpack_dual(fwAD.make_dual(x, v) ** 3).tangent

    np.testing.assert_array_equal(jvp_of_cube(_t([2.0]), _t([1.0])).numpy(), [12.0])
    assert not hooks_state.FORWARD_AD
