"""In-place ops through views of tensors that require grad (PyTorch's CopySlices), compared
with PyTorch: values and gradients of every leaf, hooks and retain_grad, double backward,
forward AD, and the cases PyTorch refuses."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import tapegrad

torch = pytest.importorskip("torch")

X0 = np.arange(12.0).reshape(3, 4) / 7 + 0.3
W0 = np.linspace(-1.0, 1.0, 4)


def _run(lib, fn):
    """``fn(lib, x, w)`` on float64 leaves; returns output, x.grad, w.grad."""
    x = lib.tensor(X0, dtype=lib.float64, requires_grad=True)
    w = lib.tensor(W0, dtype=lib.float64, requires_grad=True)
    out = fn(lib, x, w)
    g = np.cos(np.arange(out.numel())).reshape(tuple(out.shape))
    (out * lib.tensor(g, dtype=lib.float64)).sum().backward()
    return (out.detach().numpy().copy(), x.grad.numpy().copy(),
            None if w.grad is None else w.grad.numpy().copy())


def _compare(fn):
    ours, ref = _run(tapegrad, fn), _run(torch, fn)
    for o, r in zip(ours, ref):
        if r is None:
            assert o is None or not np.any(o)
        else:
            np.testing.assert_allclose(o, r, rtol=1e-12, atol=1e-12)


def rows(lib, x, w):
    m = x * 2
    m[0].add_(1)
    m[1].mul_(w)
    m[2].exp_()  # exp saves its output: now part of m's memory
    return m * 1


def chain_setitem_and_slice(lib, x, w):
    m = x * 2
    m[0][1] = w[2] * 3                 # setitem on a view of a view
    m[:, 1:3].mul_(w[:2])
    return m.exp()


def two_views_then_uses(lib, x, w):
    m = x * 2
    a, b = m[0], m[:, 1]
    y = a + 3                          # an earlier use of a: the old values and history
    b.mul_(w[:3])                      # writes through b change a's element 1 too
    a.exp_()
    return (m.sum() + y.sum() + (a * b[0]).sum() + (b ** 2).sum()).reshape(1)


def flat_view_and_transpose(lib, x, w):
    m = x * 2
    m.view(-1)[2] = 5
    v = m.t()
    v.mul_(2)
    v[1:3, 0].sin_()
    return m * v.t()


def transpose_zero(lib, x, w):
    m = x * 2
    m.t().zero_()
    return m + w


def shape_op_chains(lib, x, w):
    m = x * 2
    v = m.unsqueeze(0).permute(2, 0, 1)[1:3].squeeze(1)  # (2, 3)
    v.mul_(w[:3])
    n = m.narrow(1, 0, 2).reshape(6)
    n[::2].copy_(w[1:4] * 5)
    m.t()[3].view(3, 1).mul_(w[1:, None])  # a view reshaped after strided steps
    return m * 1 + v.sum()


def base_without_grad(lib, x, w):
    z = lib.zeros(3, 4, dtype=lib.float64)
    u = z[0]                           # made before z requires grad: follows z afterwards
    z[1].copy_(w)
    z[2:].fill_(w[0])
    assert u.requires_grad and u.grad_fn is not None  # (PyTorch rebuilds u's grad_fn here)
    u.add_(x[0])
    return u * z + x


def base_inplace_then_old_view(lib, x, w):
    m = x * 2
    v = m[0]
    m.mul_(3)
    m[1:].add_(w)
    return v * w + m


def scalar_views(lib, x, w):
    m = x * 2
    m[0, 1].add_(w[0])
    m[2, 3].mul_(w[1])
    m[1][2].copy_(w[3])
    return m


def reshape_copy_is_no_view(lib, x, w):
    m = x + 0
    r = m.t().reshape(-1)              # a copy, as in PyTorch: m is not written
    r.add_(w[0])
    return m * 2 + r.sum()


def views_of_views(lib, x, w):
    m = x * 1
    a = m[1]
    a.mul_(w)
    b = a[1:3]
    b.mul_(w[:2])
    a.add_(1)
    return m ** 2 + a.sum()


def functional_inplace_on_view(lib, x, w):
    m = x - 0.8
    m[0].clamp_(0.5, 0.9)
    lib.nn.functional.relu(m[1:], inplace=True)  # saves its output: the last write to m
    return m * w


def loop_over_rows(lib, x, w):
    m = x * 1
    for i in range(3):
        m[i].mul_(w[i])
        m[i, i].add_(m[i - 1, 0].detach())
    return m.tanh()


CASES = [rows, chain_setitem_and_slice, two_views_then_uses, flat_view_and_transpose,
         transpose_zero, shape_op_chains, base_without_grad, base_inplace_then_old_view,
         scalar_views, reshape_copy_is_no_view, views_of_views, functional_inplace_on_view,
         loop_over_rows]


@pytest.mark.parametrize("fn", CASES, ids=[f.__name__ for f in CASES])
def test_matches_torch(fn):
    _compare(fn)


def test_grad_fns_and_shared_values():
    x = tapegrad.tensor(X0, requires_grad=True)
    m = x * 2
    old = m[:, 0]
    m[0].mul_(3)
    assert m.grad_fn.name_backward() == "CopySlices"
    assert old.grad_fn.name_backward() == "AsStridedBackward"  # rebuilt on the new base
    np.testing.assert_allclose(old.detach().numpy(), m.detach().numpy()[:, 0])
    assert m._version == old._version == 1


def test_double_backward_through_copy_slices_matches_torch():
    res = []
    for lib in (tapegrad, torch):
        x = lib.tensor([0.5, 1.2, -0.7], dtype=lib.float64, requires_grad=True)
        m = x * x
        m[0:2].mul_(x[1:3])
        m[2:].sin_()
        v = m[1:]
        m[0].mul_(x[2])
        (g,) = lib.autograd.grad((m * m).sum() + (v * x[0]).sum(), x, create_graph=True)
        (h,) = lib.autograd.grad((g * g).sum(), x)
        res.append((g.detach().numpy(), h.numpy()))
    for o, r in zip(*res):
        np.testing.assert_allclose(o, r, rtol=1e-12)


def test_gradcheck_and_gradgradcheck_through_views():
    def f(x, w):
        m = x * 1.0
        m[1].mul_(w)
        m.t()[1:3].add_(w[:3])
        m.view(-1)[::5].sin_()
        return m

    x = tapegrad.tensor(X0, requires_grad=True)
    w = tapegrad.tensor(W0, requires_grad=True)
    assert tapegrad.autograd.gradcheck(f, (x, w))
    assert tapegrad.autograd.gradgradcheck(f, (x, w))


def _hooks(lib):
    seen = []
    x = lib.tensor(np.ones((3, 3)), dtype=lib.float64, requires_grad=True)
    m = x * 2
    v, u = m[0], m[:, 2]
    for name, t in (("v", v), ("m", m), ("u", u)):
        t.retain_grad()
        t.register_hook(lambda g, name=name: seen.append((name, g.detach().numpy().copy())))
    y = ((v + 0) * 5).sum() + ((u + 0) * 2).sum()
    v.mul_(3)  # m and u get new grad_fns: retain_grad follows them, hooks stay behind
    m.register_hook(lambda g: seen.append(("m_after", g.detach().numpy().copy())))
    (m.sum() * 7 + y + v.sum() * 11 + (u * 13).sum()).backward()
    return (sorted(seen, key=lambda s: s[0]), m.grad.numpy(), v.grad.numpy(), u.grad.numpy(),
            x.grad.numpy())


def test_hooks_stay_and_retain_grad_follows_like_torch():
    ours, ref = _hooks(tapegrad), _hooks(torch)
    assert [s[0] for s in ours[0]] == [s[0] for s in ref[0]] == ["m", "m_after", "u", "v"]
    for (_, a), (_, b) in zip(ours[0], ref[0]):
        np.testing.assert_allclose(a, b)
    for a, b in zip(ours[1:], ref[1:]):
        np.testing.assert_allclose(a, b)


def test_retain_grad_follows_inplace_on_the_tensor_itself():
    res = []
    for lib in (tapegrad, torch):
        seen = []
        x = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
        m = x * 2
        m.retain_grad()
        m.register_hook(lambda g: seen.append(g.detach().numpy().copy()))
        y = (m + 0) * 5
        m.mul_(3)
        (m.sum() * 7 + y.sum()).backward()
        res.append((seen[0], m.grad.numpy(), x.grad.numpy()))
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(res[0][0], [26.0] * 3)  # hook: gradient of the old version
    np.testing.assert_allclose(res[0][1], [7.0] * 3)   # .grad: of the newest version


def _x(lib):
    return lib.tensor(X0, dtype=lib.float64, requires_grad=True)


def _nograd_view(lib):
    m = _x(lib) * 2
    with lib.no_grad():
        u = m[0]
    return m, lambda: u.add_(1)


def _nograd_view_grad_value(lib):
    m = lib.zeros(3, 4, dtype=lib.float64)
    with lib.no_grad():
        u = m[0]
    return m, lambda: u.copy_(_x(lib)[0])


def _piece(name):
    def make(lib):
        m = _x(lib) * 2
        piece = {"split": lambda: m.split(2, 1)[1], "chunk": lambda: m.chunk(2)[0],
                 "unbind": lambda: m.unbind(0)[2]}[name]()
        return m, lambda: piece.mul_(2)
    return make


def _leaf_view(lib):
    x = _x(lib)
    return x, lambda: x[0].add_(1)


def _expand(lib):
    m = _x(lib)[0] * 2
    return m, lambda: m.expand(2, 4).add_(1)


ERRORS = {
    "leaf_view": (_leaf_view, "view of a leaf Variable that requires grad"),
    "no_grad_view": (_nograd_view, "created in no_grad mode"),
    "no_grad_view_grad_value": (_nograd_view_grad_value, "created in no_grad mode"),
    "split": (_piece("split"), "Output 1 of Split is a view.*multiple views"),
    "chunk": (_piece("chunk"), "Output 0 of Split is a view.*multiple views"),
    "unbind": (_piece("unbind"), "Output 2 of Unbind is a view.*multiple views"),
    "expand": (_expand, "more than one element of the written-to tensor"),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_refused_like_torch_and_nothing_changes(name):
    make, pattern = ERRORS[name]
    m, write = make(torch)
    with pytest.raises(RuntimeError):
        write()
    m, write = make(tapegrad)
    before, version, fn = m.detach().numpy().copy(), m._version, m.grad_fn
    with pytest.raises(RuntimeError, match=pattern):
        write()
    np.testing.assert_array_equal(m.detach().numpy(), before)
    assert m._version == version and m.grad_fn is fn


def test_pieces_may_be_written_under_no_grad():
    for lib in (tapegrad, torch):
        m = _x(lib) * 2
        with lib.no_grad():
            m.unbind(0)[1].mul_(0)
        assert float(m[1].sum()) == 0.0 and type(m.grad_fn).__name__.startswith("Mul")


def test_piece_used_after_its_base_changed_raises():
    for lib in (tapegrad, torch):
        m = _x(lib) * 2
        a = m.unbind(0)[0]
        m.mul_(2)
        with pytest.raises(RuntimeError, match="multiple views"):
            (a * 2).sum().backward()  # PyTorch raises at the use, tapegrad at backward


@pytest.mark.parametrize("saved", ["base", "view"])
def test_saved_before_the_write_raises_at_backward(saved):
    for lib in (tapegrad, torch):
        x = _x(lib)
        m = x * 2
        y = m.sin() if saved == "base" else m[2].sin()
        m[0].add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()
        assert x.grad is None


def test_write_through_view_under_no_grad_keeps_history():
    x = _x(tapegrad)
    m = x * 2
    fn = m.grad_fn
    v = m[1]
    with tapegrad.no_grad():
        v.fill_(0.0)
    assert m.grad_fn is fn and m._version == 1
    assert not m.detach().numpy()[1].any()
    m.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 4), 2.0))


def test_forward_ad_tangents_follow_writes_through_views():
    res = []
    for lib in (tapegrad, torch):
        fw = lib.autograd.forward_ad
        p = lib.tensor(X0[:2, :3], dtype=lib.float64)
        q = lib.tensor([1.0, 2.0], dtype=lib.float64)
        with fw.dual_level():
            m = fw.make_dual(p, lib.ones(2, 3, dtype=lib.float64)) * 2
            old = m[1]
            m[0].mul_(3)
            m[1, 1:].mul_(fw.make_dual(q, lib.tensor([0.5, -1.0], dtype=lib.float64)))
            z = lib.zeros(4, dtype=lib.float64)
            z[1:3].copy_(fw.make_dual(q, lib.tensor([5.0, 6.0], dtype=lib.float64)))
            d = fw.make_dual(p.clone(), lib.ones(2, 3, dtype=lib.float64))
            d.mul_(4)  # a dual tensor is its own base for tangents: the primal gets none
            res.append([fw.unpack_dual(t).tangent.numpy().copy()
                        for t in (m.sin(), old, z, d)])
            assert fw.unpack_dual(p).tangent is None
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_view_registry_stays_small_and_frees_everything():
    gc.collect()
    gc.disable()
    try:
        x = _x(tapegrad)
        m = x * 2
        for i in range(500):
            m[i % 3].sum()  # temporary views: registered, then pruned
        assert len(m._vc[2].refs) <= 32
        v = m[0]
        v.mul_(2)
        refs = [weakref.ref(t) for t in (m, v)] + [weakref.ref(m.grad_fn),
                                                   weakref.ref(v.grad_fn)]
        del m, v
        assert all(r() is None for r in refs)  # no reference cycle through the registry
    finally:
        gc.enable()
