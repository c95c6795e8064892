"""The per-op fast paths keep PyTorch's semantics: operator dtype rules, in-place gradient
summation in the engine (only when nothing else can see the buffer), the fused transposed
products and cross-entropy, and the shortcuts in indexing and ``sum``."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.autograd import gradcheck, gradgradcheck
from tapegrad.ops.matmul_t import matmul_nt, matmul_tn



@pytest.fixture
def torch():
    """PyTorch, the oracle; tests that take it skip where it is absent, the rest still run."""
    return pytest.importorskip("torch")


def _np(t):
    return t.detach().numpy()


# ---- operators ------------------------------------------------------------------------------
@pytest.mark.parametrize("expr", ["a * 2.5", "2.5 * a", "a + 3", "3 + a", "a - 1.5", "1.5 - a",
                                  "a / 2", "2 / a", "a * b", "a + b", "b - a", "a / b"])
@pytest.mark.parametrize("da,db", [("float32", "float32"), ("float32", "float64"),
                                   ("int64", "float32"), ("int32", "int64"),
                                   ("float64", "int64")])
def test_operator_dtypes_match_torch(expr, da, db, torch):
    x = np.arange(1, 7).reshape(2, 3)
    a, b = tg.tensor(x.astype(da)), tg.tensor((x + 1).astype(db))
    ta, tb = torch.tensor(x.astype(da)), torch.tensor((x + 1).astype(db))
    ours = eval(expr, {"a": a, "b": b})
    ref = eval(expr, {"a": ta, "b": tb})
    assert str(ours.dtype).split(".")[-1] == str(ref.dtype).split(".")[-1]
    np.testing.assert_allclose(_np(ours), ref.numpy(), rtol=1e-6)


def test_bool_subtraction_still_raises_through_the_operator():
    a = tg.tensor([True, False])
    with pytest.raises(RuntimeError, match="sub"):
        a - a
    with pytest.raises(RuntimeError, match="sub"):
        1 - a


def test_operator_rejects_other_types_naming_the_op():
    a = tg.ones(2)
    with pytest.raises(TypeError, match="mul"):
        a * "x"
    with pytest.raises(TypeError, match="add"):
        "x" + a


# ---- in-place summation of gradients --------------------------------------------------------
def test_shared_weight_gradients_sum_correctly(torch):
    rng = np.random.default_rng(0)
    w0, h0 = rng.standard_normal((4, 4)), rng.standard_normal((3, 4))
    res = []
    for lib in (tg, torch):
        w = lib.tensor(w0, requires_grad=True)
        h, tot = lib.tensor(h0), 0
        for _ in range(5):
            h = lib.tanh(h @ w)
            tot = tot + h.sum() + (h * h).sum()
        tot.backward()
        res.append(w.grad.numpy())
    np.testing.assert_allclose(res[0], res[1], rtol=1e-12)


def test_one_gradient_handed_to_two_inputs_is_not_summed_in_place():
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = a * 1.0
    c = b + b  # Add's vjp hands the same tensor to both of its inputs
    (c * tg.tensor([3.0, 5.0])).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [6.0, 10.0])


def test_a_gradient_a_hook_kept_is_not_changed_later():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2.0
    seen = []
    y.register_hook(lambda g: seen.append(g))
    z = y * 3.0 + y * 4.0  # y gets two gradients
    z.sum().backward()
    np.testing.assert_array_equal(seen[0].numpy(), [7.0, 7.0, 7.0])
    np.testing.assert_array_equal(x.grad.numpy(), [14.0, 14.0, 14.0])
    y2 = x * 1.0
    y2.retain_grad()
    (y2 * 2.0 + y2).sum().backward()
    np.testing.assert_array_equal(y2.grad.numpy(), [3.0, 3.0, 3.0])


def test_leaf_grad_never_aliases_a_user_gradient():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    gout = tg.tensor([1.0, 1.0])
    (x + 0.0).backward(gout)
    gout += 5.0
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])
    x.grad = None
    y = x * 1.0
    y.backward(tg.tensor([2.0, 3.0]))
    first = x.grad
    y2 = x * 1.0
    y2.backward(tg.tensor([1.0, 1.0]))
    assert x.grad is first  # accumulated into the same tensor, as PyTorch does
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])


def test_create_graph_keeps_the_sum_differentiable():
    x = tg.tensor([1.5, -0.5], requires_grad=True)
    y = x * x
    z = y * 3.0 + y * 2.0
    (g,) = tg.autograd.grad(z.sum(), x, create_graph=True)
    (gg,) = tg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), [10.0, 10.0])


# ---- transposed products --------------------------------------------------------------------
@pytest.mark.parametrize("sa,sb", [((3, 4), (5, 4)), ((2, 3, 4), (5, 4)), ((2, 3, 4), (2, 5, 4)),
                                   ((1, 3, 4), (2, 5, 4))], ids=str)
def test_matmul_nt_tn_match_torch_and_gradcheck(sa, sb, torch):
    rng = np.random.default_rng(1)
    a0, b0 = rng.standard_normal(sa), rng.standard_normal(sb)
    a, b = tg.tensor(a0, requires_grad=True), tg.tensor(b0, requires_grad=True)
    ta, tb = torch.tensor(a0), torch.tensor(b0)
    np.testing.assert_allclose(_np(matmul_nt(a, b)), (ta @ tb.transpose(-1, -2)).numpy(),
                               rtol=1e-12)
    at = tg.tensor(np.ascontiguousarray(np.swapaxes(a0, -1, -2)), requires_grad=True)
    bt = tg.tensor(np.ascontiguousarray(np.swapaxes(b0, -1, -2)), requires_grad=True)
    np.testing.assert_allclose(_np(matmul_tn(at, bt)), (ta @ tb.transpose(-1, -2)).numpy(),
                               rtol=1e-12)
    assert gradcheck(matmul_nt, (a, b))
    assert gradgradcheck(matmul_nt, (a, b))
    assert gradgradcheck(matmul_tn, (at, bt))


def test_matmul_nt_errors_name_the_shapes():
    with pytest.raises(RuntimeError, match=r"\(3, 4\) and \(5, 3\).*4 != 3"):
        matmul_nt(tg.ones(3, 4), tg.ones(5, 3))
    with pytest.raises(RuntimeError, match="dtype"):
        matmul_nt(tg.ones(3, 4), tg.ones(5, 4, dtype=tg.float64))


def test_linear_takes_the_transposed_product_and_matches_torch(torch):
    rng = np.random.default_rng(2)
    x0, w0, b0 = rng.standard_normal((6, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    outs = []
    for lib in (tg, torch):
        x, w, b = (lib.tensor(v, requires_grad=True) for v in (x0, w0, b0))
        y = lib.nn.functional.linear(x, w, b)
        (y * y).sum().backward()
        outs.append([y.detach().numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()])
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-12)


# ---- cross-entropy --------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_fused_cross_entropy_matches_torch(reduction, ignore_index, torch):
    rng = np.random.default_rng(3)
    x0, t0 = rng.standard_normal((8, 5)).astype(np.float32), rng.integers(0, 5, 8)
    res = []
    for lib in (tg, torch):
        x = lib.tensor(x0, requires_grad=True)
        loss = lib.nn.functional.cross_entropy(x, lib.tensor(t0), reduction=reduction,
                                               ignore_index=ignore_index)
        g = np.linspace(0.5, 2.0, loss.numel()).astype(np.float32).reshape(tuple(loss.shape))
        loss.backward(lib.tensor(g))
        res.append((loss.detach().numpy(), x.grad.numpy()))
    np.testing.assert_allclose(res[0][0], res[1][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res[0][1], res[1][1], rtol=1e-5, atol=1e-6)


def test_fused_cross_entropy_errors_and_all_ignored():
    x = tg.randn(3, 4, requires_grad=True)
    with pytest.raises(IndexError, match="Target 4 is out of bounds"):
        tg.nn.functional.cross_entropy(x, tg.tensor([0, 4, 1]))
    loss = tg.nn.functional.cross_entropy(x, tg.tensor([1, 1, 1]), ignore_index=1)
    assert np.isnan(loss.item())  # 0 / 0, as PyTorch


# ---- indexing and sum shortcuts -------------------------------------------------------------
def test_int_and_slice_indexing_are_views_with_gradients():
    x = tg.arange(12.0).reshape(3, 4).requires_grad_()
    r, s = x[1], x[0:2]
    assert np.shares_memory(r._data, x._data) and np.shares_memory(s._data, x._data)
    assert r._version == s._version == x._version  # one version counter for the views
    (r.sum() * 2 + s.sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1] * 4, [3] * 4, [0] * 4])
    with pytest.raises(IndexError):
        x[5]


def test_sum_shortcut_keeps_dtypes():
    assert tg.ones(2, 3, dtype=tg.float32).sum().dtype is tg.float32
    assert tg.ones(2, 3, dtype=tg.int32).sum().dtype is tg.int64
    assert tg.ones(2, 3).sum(keepdim=True).shape == (1, 1)


# ---- backward shortcuts: a filled sum gradient, sum_to and the version pre-check -------------
def test_sum_backward_fills_a_writable_gradient_and_matches_torch(torch):
    rng = np.random.default_rng(2)
    x0 = rng.standard_normal((3, 4)).astype(np.float32)
    out = []
    for lib in (tg, torch):
        x = lib.tensor(x0, requires_grad=True)
        h = lib.tanh(x)
        tot = h.sum() + (h * 3.0).sum()   # two filled gradients meet at h (summed in place)
        tot.backward()
        first = x.grad.numpy().copy()
        lib.tanh(x).sum().backward()      # accumulates into the same .grad
        out.append((first, x.grad.numpy()))
    for ours, ref in zip(out[0], out[1]):
        np.testing.assert_allclose(ours, ref, rtol=1e-6)
    x = tg.tensor(x0, requires_grad=True)
    x.sum().backward()
    assert x.grad.dtype == tg.float32 and x.grad.numpy().flags.writeable
    x.grad.add_(1.0)  # the leaf owns its gradient: no read-only broadcast view
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 4), 2.0, np.float32))


@pytest.mark.parametrize("mode", ["plain", "create_graph", "anomaly", "big"])
def test_sum_backward_in_every_mode(mode):
    shape = (300, 300) if mode == "big" else (2, 3)   # big: above the fill limit, a view
    x0 = np.linspace(-1, 1, int(np.prod(shape))).reshape(shape)
    x = tg.tensor(x0, requires_grad=True)
    if mode == "create_graph":
        (g,) = tg.autograd.grad((x * x).sum(), x, create_graph=True)
        (gg,) = tg.autograd.grad(g.sum(), x)
        np.testing.assert_allclose(gg.numpy(), np.full(shape, 2.0))
        return
    if mode == "anomaly":
        with tg.autograd.detect_anomaly():
            (x * 2.0).sum().backward()
    else:
        (x * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(shape, 2.0))


def test_sum_backward_under_forward_ad_keeps_tangents():
    import tapegrad.autograd.forward_ad as fwAD

    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = tg.tensor([1.0, 0.0, -1.0])
    with fwAD.dual_level():
        xd = fwAD.make_dual(x, v)
        (g,) = tg.autograd.grad((xd * xd).sum(), x, create_graph=True)
        _, tangent = fwAD.unpack_dual(g)
    np.testing.assert_allclose(tangent.numpy(), [2.0, 0.0, -2.0])  # H v with H = 2 I


_BROADCAST_GRAD_CASES = [
    # (a * b) * 2 + a + b: add and mul gradients sum over broadcast dims only
    ("mul_add", (3, 1), (1, 4)), ("mul_add", (3, 4), (4,)), ("mul_add", (3, 4), ()),
    ("mul_add", (2, 3), (2, 3)),
    # tanh(a @ b): product gradients sum over broadcast batch dims
    ("matmul", (2, 3, 4), (4, 5)), ("matmul", (3, 4), (2, 4, 5)),
    ("matmul", (1, 3, 4), (2, 4, 5)),
]


@pytest.mark.parametrize("expr,sa,sb", _BROADCAST_GRAD_CASES, ids=str)
def test_gradients_sum_over_broadcast_dims_only(expr, sa, sb, torch):
    rng = np.random.default_rng(3)
    a0, b0 = rng.standard_normal(sa), rng.standard_normal(sb)
    res = []
    for lib in (tg, torch):
        a = lib.tensor(a0, requires_grad=True)
        b = lib.tensor(b0, requires_grad=True)
        y = (a * b) * 2.0 + a + b if expr == "mul_add" else lib.tanh(a @ b)
        y.sum().backward()
        res.append((a.grad.numpy(), b.grad.numpy()))
    for ours, ref in zip(res[0], res[1]):
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_version_precheck_leaves_every_grad_untouched():
    # The pre-pass checks every saved tensor before any gradient is written: a modified
    # output saved by tanh deep in the graph fails the whole backward, leaves included.
    w = tg.tensor([0.5, -0.5], requires_grad=True)
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = tg.tanh(x * 1.0)
    y = h.sum() * 2.0 + (x * w).sum()   # only tanh saved h (its output)
    with tg.no_grad():
        h.mul_(2.0)
    with pytest.raises(RuntimeError, match="tanh.*version 0 and is now at version 1"):
        y.backward()
    assert x.grad is None and w.grad is None


def test_precheck_skips_only_nodes_made_after_the_last_inplace_change(monkeypatch):
    # Every in-place change takes a recording number (LAST_INPLACE); the pre-pass checks only
    # nodes recorded before it, and those still fail before any .grad is written.
    from tapegrad.autograd import engine, node

    checked = []
    orig = engine._check_node
    monkeypatch.setattr(engine, "_check_node", lambda n: (checked.append(n.name), orig(n)))
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    (x * 2.0).tanh().sum().backward()
    assert checked == []  # nothing changed in place since these nodes saved
    before = node.LAST_INPLACE[0]
    w = tg.tensor([0.5, -0.5], requires_grad=True)
    h = tg.tanh(x * 1.0)
    x.grad = None
    y = (h * 3.0).sum() + (x * w).sum()
    opt = tg.optim.SGD([w], lr=0.1)
    w.grad = tg.ones(2)
    opt.step()  # an optimizer step counts as an in-place change of w (saved by x * w)
    assert node.LAST_INPLACE[0] > before
    w.grad = None
    with pytest.raises(RuntimeError, match="mul.*version 0 and is now at version 1"):
        y.backward()
    assert x.grad is None and w.grad is None
    # Recorded after the change: skipped again, and the walk still checks when unpacking.
    y2 = (x * w).sum()
    checked.clear()
    y2.backward()
    assert checked == [] and np.allclose(x.grad.numpy(), w.detach().numpy())
    z = tg.tanh(x * 1.0)
    z._vc[0] += 1  # behind the counter's back: the pre-pass skips tanh, its unpack raises
    with pytest.raises(RuntimeError, match="tanh.*version 0 and is now at version 1"):
        z.sum().backward()
    assert checked == []
    node.LAST_INPLACE[0] = node.take_number()  # as a change would: tanh is checked first
    with pytest.raises(RuntimeError, match="tanh.*version 0 and is now at version 1"):
        z.sum().backward()
    assert checked == ["tanh"]


def test_apply2_matches_apply_and_records_through_apply_in_grad_mode(torch):
    # Node.apply2 is the vjps' entry point: with grad mode off it only runs and wraps the
    # forward; with grad mode on (create_graph) it records exactly as apply does.
    from tapegrad.ops.activation import TanhBackward
    from tapegrad.ops.elementwise import Mul

    g = tg.tensor([1.0, -2.0])
    y = tg.tensor([0.5, 0.25], requires_grad=True)
    with tg.no_grad():
        r = TanhBackward.apply2(g, y)
        m = Mul.apply2(2.0, g)
        s = Mul.apply2(tg.tensor(2.0), 3.0)  # NumPy's 0-d result is a scalar: made an array
    assert r.grad_fn is None and not r.requires_grad and r.dtype == tg.float32
    np.testing.assert_array_equal(r.numpy(), TanhBackward.apply(g, y).detach().numpy())
    assert np.array_equal(m.numpy(), [2.0, -4.0])
    assert type(s._data) is np.ndarray and s.shape == () and float(s) == 6.0
    r2 = TanhBackward.apply2(g, y)
    assert r2.requires_grad and r2.grad_fn.name == "tanh_backward"
    x = tg.tensor([0.3, -0.7], requires_grad=True)
    (gx,) = tg.autograd.grad((x * 3.0).tanh().sum(), x, create_graph=True)
    gx.sum().backward()
    tx = torch.tensor([0.3, -0.7], requires_grad=True)
    (tgx,) = torch.autograd.grad((tx * 3.0).tanh().sum(), tx, create_graph=True)
    tgx.sum().backward()
    np.testing.assert_allclose(gx.detach().numpy(), tgx.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5)


# ---- fewer objects per recorded op ----------------------------------------------------------
def test_saved_versions_share_a_zero_tuple_and_still_catch_inplace_changes():
    from tapegrad.autograd import node as N

    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    z = y.tanh()
    assert z.grad_fn._versions is N._ZEROS[1]  # all versions 0: the shared tuple
    y2 = x * 1.0
    y2.add_(1.0)  # version 1 before it is saved
    w = y2 * y2
    assert w.grad_fn._versions == (1, 1)
    w.sum().backward()
    np.testing.assert_allclose(_np(x.grad), 2 * (_np(x) + 1))
    z.mul_(2.0)  # the saved output of tanh changes: backward must refuse
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_binary_shapes_are_shared_and_broadcast_gradients_stay_right():
    a = tg.tensor(np.ones((3, 4)), requires_grad=True)
    b = tg.tensor(np.ones(4), requires_grad=True)
    u, v = a + b, a * b
    assert u.grad_fn.shapes == ((3, 4), (4,))
    assert u.grad_fn.shapes is v.grad_fn.shapes  # one interned pair
    (u * v).sum().backward()
    np.testing.assert_allclose(_np(b.grad), np.full(4, 9.0))
    np.testing.assert_allclose(_np(a.grad), np.full((3, 4), 3.0))


def test_inplace_on_output_rewrites_saved_version_of_shared_tuple():
    # An in-place op writing a node's result into x replaces the saved entry and its version
    # (set_saved_version): the shared zero tuple must not be written into.
    from tapegrad.autograd import node as N

    x = tg.tensor([0.5, -0.5], requires_grad=True)
    h = x * 1.0
    h.tanh_() if hasattr(h, "tanh_") else h.copy_(h.tanh())
    h.sum().backward()
    np.testing.assert_allclose(_np(x.grad), 1 - np.tanh(_np(x)) ** 2)
    assert N._ZEROS[1] == (0,) and N._ZEROS[2] == (0, 0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mul_by_number_vjp_fast_path_keeps_dtype_and_double_backward(dtype):
    x = tg.tensor(np.array([0.5, -1.0, 2.0], dtype=dtype), requires_grad=True)
    y = (x * 2.5) * x  # d/dx = 5x, through Mul.vjp with a Python-number factor
    (g,) = tg.autograd.grad(y.sum(), x, create_graph=True)
    assert g.dtype == x.dtype
    np.testing.assert_allclose(_np(g), 5 * _np(x), rtol=1e-6)
    g.sum().backward()  # the vjp recorded its product: second derivative 5
    np.testing.assert_allclose(_np(x.grad), np.full(3, 5.0))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tanh_backward_kernel_output_is_fresh_and_contiguous(dtype):
    from tapegrad.backends import CPU_BACKEND

    k = CPU_BACKEND.k["tanh_backward"]
    g = np.arange(12, dtype=dtype).reshape(3, 4)
    y = np.linspace(-1, 1, 12, dtype=dtype).reshape(3, 4)
    out = k(g, y)
    assert out.dtype == g.dtype and out.flags.c_contiguous and out is not g and out is not y
    np.testing.assert_allclose(out, g * (1 - y * y), rtol=1e-6)
    np.testing.assert_allclose(k(g.T, y.T), (g * (1 - y * y)).T, rtol=1e-6)  # not contiguous


def test_saved_skips_constants_but_still_checks_tensor_subclasses():
    # Node.saved passes None and Python numbers through untouched; a saved Parameter (a
    # Tensor subclass) is still version-checked.
    w = tg.nn.Parameter(tg.tensor([1.0, 2.0]))
    x = tg.tensor([3.0, 4.0], requires_grad=True)
    y = x * w
    assert y.grad_fn.saved[0] is x and y.grad_fn.saved[1] is w
    z = x * 2.0
    assert z.grad_fn.saved == [None, 2.0] or z.grad_fn.saved[1] == 2.0
    with tg.no_grad():
        w.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


# ---- the fused linear (ops/linear_op.py) ----------------------------------------------------
@pytest.mark.parametrize("needs", [(True, True, True), (False, True, True), (True, False, False),
                                   (True, True, False), (False, False, True)])
@pytest.mark.parametrize("xshape", [(3, 4), (2, 3, 4)])
def test_fused_linear_matches_torch_whichever_inputs_need_grad(needs, xshape, torch):
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in (xshape, (5, 4), (5,))]
    res = []
    for lib in (tg, torch):
        ts = [lib.tensor(a, requires_grad=n) for a, n in zip(arrays, needs)]
        y = lib.nn.functional.linear(*ts)
        (y * y).sum().backward()
        res.append([_np(y)] + [None if t.grad is None else t.grad.numpy() for t in ts])
    for ours, ref in zip(*res):
        assert (ours is None) == (ref is None)
        if ours is not None:
            np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
    y = tg.nn.functional.linear(*[tg.tensor(a, requires_grad=True) for a in arrays])
    assert type(y.grad_fn).__name__ == "LinearBias"  # one node, not a product and an add


@pytest.mark.parametrize("bias_dtype", ["float64", "float16"])
def test_linear_with_a_bias_of_another_dtype_promotes_as_torch(bias_dtype, torch):
    x, w = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)
    b = np.arange(4).astype(bias_dtype)
    ours = tg.nn.functional.linear(tg.tensor(x), tg.tensor(w), tg.tensor(b))
    ref = torch.tensor(x) @ torch.tensor(w).T + torch.tensor(b)  # what F.linear's math means
    assert str(ours.dtype).split(".")[-1] == str(ref.dtype).split(".")[-1]
    np.testing.assert_allclose(_np(ours), ref.numpy(), rtol=1e-3)


def test_linear_shape_errors_still_name_both_shapes():
    with pytest.raises(RuntimeError, match=r"\(2, 3\).*\(4, 5\)"):
        tg.nn.functional.linear(tg.ones(2, 3), tg.ones(4, 5), tg.ones(4))
    with pytest.raises(RuntimeError):
        tg.nn.functional.linear(tg.ones(2, 3), tg.ones(4, 3), tg.ones(3))  # bias of 3 for 4


@pytest.mark.parametrize("idx", [(slice(1, 3),), (slice(None), 2), (Ellipsis, slice(0, 4, 2)),
                                 (None, 1, slice(None, None, -1))], ids=str)
def test_basic_index_backward_writes_the_gradient_without_adding(monkeypatch, idx):
    # Each element is reached at most once: the padded gradient is written into zeros
    # (the index_add kernel, which reads them back, is not called).
    from tapegrad import backends

    x0 = np.arange(24.0).reshape(4, 6)
    x = tg.tensor(x0, requires_grad=True)
    y = x[idx]
    g = np.random.default_rng(0).standard_normal(tuple(y.shape))

    def boom(*a):
        raise AssertionError("index_add called for a basic index")

    monkeypatch.setitem(backends.CPU_BACKEND.k, "index_add", boom)
    y.backward(tg.tensor(g))
    monkeypatch.undo()
    want = np.zeros_like(x0)
    np.add.at(want, idx, g[0] if idx[0] is None else g)
    np.testing.assert_array_equal(x.grad.numpy(), want)
    x.grad = None
    x[[0, 0, 2]].sum().backward()  # repeated integer indices still accumulate
    np.testing.assert_array_equal(x.grad.numpy()[:, 0], [2.0, 0.0, 1.0, 0.0])
