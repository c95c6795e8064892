"""``autograd.functional`` against ``torch.autograd.functional``: same results (float64, to
1e-10), same structure (tensor / tuple / tuple of tuples), create_graph and strict."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad
from tapegrad.autograd import forward_ad as fwAD
from tapegrad.autograd import functional as F

torch = pytest.importorskip("torch")
TF = torch.autograd.functional
TOL = dict(rtol=1e-10, atol=1e-10)


def _arrays(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.2, 1.2, s) for s in shapes]


def _both(arrays):
    ours = tuple(tapegrad.tensor(a) for a in arrays)
    ref = tuple(torch.tensor(a) for a in arrays)
    return ours, ref


def _same(a, b):
    """Equal nested structure and values (PyTorch's forward-mode jacobian nests lists)."""
    if isinstance(b, (tuple, list)):
        assert isinstance(a, tuple) and len(a) == len(b), (type(a), type(b))
        for x, y in zip(a, b):
            _same(x, y)
        return
    assert isinstance(a, tapegrad.Tensor), type(a)
    assert tuple(a.shape) == tuple(b.shape)
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), **TOL)


# Functions written once, run with lib = tapegrad or torch.
def f_scalar(m):
    return lambda x: (x.sin() * x.exp()).sum() + (x ** 3).prod()


def f_vec(m):
    return lambda x: m.tanh(x) * x.sum() + x.log()


def f_two_in_two_out(m):
    return lambda x, y: ((x @ y).sigmoid(), (x.exp() * 2).sum(1) + y.sum(0)[:2])


def f_two_in_scalar(m):
    return lambda x, y: (x @ y).tanh().sum() + (x ** 2).sum() * y.mean()


# ---- vjp / jvp ----------------------------------------------------------------------------
@pytest.mark.parametrize("create_graph", [False, True])
def test_vjp_and_jvp_single(create_graph):
    (x,), (tx,) = _both(_arrays((4,)))
    (v,), (tv,) = _both(_arrays((4,), seed=1))
    for ours_fn, ref_fn in [(F.vjp, TF.vjp), (F.jvp, TF.jvp)]:
        ours = ours_fn(f_vec(tapegrad), x, v, create_graph=create_graph)
        ref = ref_fn(f_vec(torch), tx, tv, create_graph=create_graph)
        _same(ours, ref)


def test_vjp_and_jvp_tuples():
    xs, txs = _both(_arrays((2, 3), (3, 2)))
    vo, tvo = _both(_arrays((2, 2), (2,), seed=2))
    _same(F.vjp(f_two_in_two_out(tapegrad), xs, vo), TF.vjp(f_two_in_two_out(torch), txs, tvo))
    vi, tvi = _both(_arrays((2, 3), (3, 2), seed=3))
    _same(F.jvp(f_two_in_two_out(tapegrad), xs, vi), TF.jvp(f_two_in_two_out(torch), txs, tvi))


def test_vjp_default_v_for_scalar_output_and_errors():
    (x,), (tx,) = _both(_arrays((3,)))
    _same(F.vjp(f_scalar(tapegrad), x), TF.vjp(f_scalar(torch), tx))
    with pytest.raises(RuntimeError, match="v can only be None"):
        F.vjp(f_vec(tapegrad), x)
    with pytest.raises(RuntimeError, match=r"v has invalid size: should be \(3,\) but got "
                                           r"\(2,\)"):
        F.vjp(f_vec(tapegrad), x, tapegrad.ones(2, dtype=tapegrad.float64))
    with pytest.raises(TypeError, match="must be either a Tensor or a tuple of Tensors"):
        F.vjp(f_vec(tapegrad), [1.0, 2.0])


def test_jvp_is_forward_mode(monkeypatch):
    # functional.jvp must push tangents (the forward-AD hook runs), not run a backward pass.
    from tapegrad.autograd import engine

    def no_backward(*a, **k):
        raise AssertionError("jvp ran a backward pass")

    monkeypatch.setattr(engine, "run", no_backward)
    (x,), (tx,) = _both(_arrays((4,)))
    (v,), (tv,) = _both(_arrays((4,), seed=1))
    _same(F.jvp(f_vec(tapegrad), x, v), TF.jvp(f_vec(torch), tx, tv))


def test_create_graph_results_are_differentiable():
    (x,), (tx,) = _both(_arrays((3,)))
    x.requires_grad_()
    tx.requires_grad_()
    (v,), (tv,) = _both(_arrays((3,), seed=1))
    for ours_fn, ref_fn in [(F.vjp, TF.vjp), (F.jvp, TF.jvp), (F.hvp, TF.hvp),
                            (F.vhp, TF.vhp)]:
        fn = f_scalar if ours_fn in (F.hvp, F.vhp) else f_vec
        _, r = ours_fn(fn(tapegrad), x, v, create_graph=True)
        _, tr = ref_fn(fn(torch), tx, tv, create_graph=True)
        assert r.requires_grad
        (g,) = tapegrad.autograd.grad(r.sum(), x)
        (tg,) = torch.autograd.grad(tr.sum(), tx)
        _same(g, tg)
    _, r = F.vjp(f_vec(tapegrad), x, v)
    assert not r.requires_grad


# ---- jacobian / hessian -------------------------------------------------------------------
# PyTorch's own forward-mode strategy gives the same numbers as its reverse mode but costs
# seconds of one-off setup (it loads jvp decompositions), so both of ours are compared with
# PyTorch's reverse mode.
@pytest.mark.parametrize("strategy", ["reverse-mode", "forward-mode"])
def test_jacobian_single_and_tuples(strategy):
    (x,), (tx,) = _both(_arrays((4,)))
    _same(F.jacobian(f_vec(tapegrad), x, strategy=strategy), TF.jacobian(f_vec(torch), tx))
    xs, txs = _both(_arrays((2, 3), (3, 2)))
    _same(F.jacobian(f_two_in_two_out(tapegrad), xs, strategy=strategy),
          TF.jacobian(f_two_in_two_out(torch), txs))
    # a tuple input with a single tensor output (and the reverse)
    _same(F.jacobian(f_two_in_scalar(tapegrad), xs, strategy=strategy),
          TF.jacobian(f_two_in_scalar(torch), txs))
    _same(F.jacobian(lambda a: (a.exp(), a.sum()), x, strategy=strategy),
          TF.jacobian(lambda a: (a.exp(), a.sum()), tx))


def test_jacobian_vectorize_and_create_graph():
    (x,), (tx,) = _both(_arrays((3, 2)))
    _same(F.jacobian(f_vec(tapegrad), x, vectorize=True),
          TF.jacobian(f_vec(torch), tx, vectorize=True))
    jac = F.jacobian(f_vec(tapegrad), x.clone().requires_grad_(), create_graph=True)
    assert jac.requires_grad


def test_jacobian_of_unused_input_is_zero_or_strict_error():
    xs, txs = _both(_arrays((2,), (3,)))
    _same(F.jacobian(lambda a, b: a * 2, xs), TF.jacobian(lambda a, b: a * 2, txs))
    with pytest.raises(RuntimeError, match="independent of input 1"):
        F.jacobian(lambda a, b: a * 2, xs, strict=True)


@pytest.mark.parametrize("outer", ["reverse-mode", "forward-mode"])
def test_hessian_single_and_tuple(outer):
    (x,), (tx,) = _both(_arrays((3,)))
    _same(F.hessian(f_scalar(tapegrad), x, outer_jacobian_strategy=outer),
          TF.hessian(f_scalar(torch), tx))
    xs, txs = _both(_arrays((2, 3), (3, 2)))
    _same(F.hessian(f_two_in_scalar(tapegrad), xs, outer_jacobian_strategy=outer),
          TF.hessian(f_two_in_scalar(torch), txs))


def test_hessian_errors():
    (x,), _ = _both(_arrays((3,)))
    with pytest.raises(RuntimeError, match="single Tensor"):
        F.hessian(lambda a: (a.sum(), a.sum()), x)
    with pytest.raises(RuntimeError, match="single element"):
        F.hessian(lambda a: a * 2, x)
    with pytest.raises(RuntimeError, match="independent of the input"):
        F.hessian(lambda a: a.sum(), x, strict=True)  # linear: constant jacobian


# ---- Hessian-vector products --------------------------------------------------------------
@pytest.mark.parametrize("name", ["hvp", "vhp"])
def test_hvp_vhp_match_torch(name):
    ours_fn, ref_fn = getattr(F, name), getattr(TF, name)
    (x,), (tx,) = _both(_arrays((4,)))
    (v,), (tv,) = _both(_arrays((4,), seed=5))
    _same(ours_fn(f_scalar(tapegrad), x, v), ref_fn(f_scalar(torch), tx, tv))
    xs, txs = _both(_arrays((2, 3), (3, 2)))
    vs, tvs = _both(_arrays((2, 3), (3, 2), seed=6))
    _same(ours_fn(f_two_in_scalar(tapegrad), xs, vs), ref_fn(f_two_in_scalar(torch), txs, tvs))


def test_hvp_of_mlp_loss_matches_torch():
    rng = np.random.default_rng(0)
    arrs = [rng.standard_normal(s) * 0.5 for s in [(8, 5), (5, 6), (6,), (6, 3), (3,)]]
    labels = rng.integers(0, 3, 8)

    def loss(m):
        xb = m.tensor(arrs[0])
        y = m.tensor(labels)

        def f(w1, b1, w2, b2):
            h = m.tanh(xb @ w1 + b1)
            logits = h @ w2 + b2
            return -(logits.log_softmax(1)[m.arange(8), y]).mean()
        return f

    ws, tws = _both(arrs[1:])
    vs, tvs = _both([rng.standard_normal(a.shape) for a in arrs[1:]])
    _same(F.hvp(loss(tapegrad), ws, vs), TF.hvp(loss(torch), tws, tvs))


def test_hvp_with_unused_input_is_zero():
    xs, txs = _both(_arrays((2,), (3,)))
    vs, tvs = _both(_arrays((2,), (3,), seed=1))
    _same(F.hvp(lambda a, b: (a ** 3).sum(), xs, vs), TF.hvp(lambda a, b: (a ** 3).sum(), txs,
                                                              tvs))
    with pytest.raises(RuntimeError, match="input 1 is independent"):
        F.vhp(lambda a, b: (a ** 3).sum(), xs, vs, strict=True)


def test_no_dual_level_left_open():
    (x,), _ = _both(_arrays((3,)))
    F.hvp(f_scalar(tapegrad), x, x)
    F.jvp(f_vec(tapegrad), x, x)
    F.hessian(f_scalar(tapegrad), x, outer_jacobian_strategy="forward-mode")
    assert fwAD.unpack_dual(x).tangent is None
    assert not tapegrad.autograd.hooks_state.FORWARD_AD
