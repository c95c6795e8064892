"""The tape walk: deep chains, fan-out, un-broadcasting, freeing, retain_graph, grad()."""

from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
import pytest

import tapegrad
from tapegrad import autograd


def _t(v, **kw):
    return tapegrad.tensor(v, dtype=tapegrad.float64, **kw)


# ---- depth and shape of the graph ------------------------------------------------------------
def test_100k_op_chain_backward_without_recursion():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # any recursive walk would blow up long before 100,000 nodes
    try:
        x = _t([1.5, -2.0], requires_grad=True)
        y = x
        for _ in range(100_000):
            y = -y  # the cheapest recorded op
        y.sum().backward()
    finally:
        sys.setrecursionlimit(old)
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])  # (-1)^100000


def test_fan_out_accumulates():
    x = _t(3.0, requires_grad=True)
    y = x * x + x * 2 + x.sin()  # x used four times
    y.backward()
    assert x.grad.item() == pytest.approx(2 * 3.0 + 2 + np.cos(3.0))


def test_diamond_graph_runs_each_node_once():
    x = _t([1.0, 2.0], requires_grad=True)
    a = x * 2
    calls = []
    a.grad_fn.register_hook(lambda gi, go: calls.append(1))
    b = a + 1
    c = a * 3
    (b * c).sum().backward()
    assert len(calls) == 1
    # d/dx (2x+1)(6x) = 2*6x + 6*(2x+1) = 24x + 6
    np.testing.assert_allclose(x.grad.numpy(), 24 * np.array([1.0, 2.0]) + 6)


@pytest.mark.parametrize("sa,sb", [((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (3,)),
                                   ((3, 1), (1, 5)), ((1,), (2, 3))])
def test_unbroadcast_to_input_shapes(sa, sb):
    rng = np.random.default_rng(0)
    a = _t(rng.standard_normal(sa), requires_grad=True)
    b = _t(rng.standard_normal(sb), requires_grad=True)
    (a * b).sum().backward()
    assert tuple(a.grad.shape) == sa and tuple(b.grad.shape) == sb
    full = np.broadcast_shapes(sa, sb)
    ga = np.broadcast_to(b.detach().numpy(), full)
    red = tuple(range(len(full) - len(sa)))
    ga = ga.sum(red)
    ga = ga.sum(tuple(i for i, s in enumerate(sa) if s == 1 and ga.shape[i] != 1), keepdims=True)
    np.testing.assert_allclose(a.grad.numpy(), ga.reshape(sa))


def test_grad_accumulates_over_backward_calls():
    x = _t([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])


def test_leaf_grad_is_not_aliased_with_gradient_buffers():
    x = _t([1.0, 2.0], requires_grad=True)
    g = _t([1.0, 1.0])
    x.backward(g)
    x.backward(g)
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])
    np.testing.assert_allclose(g.numpy(), [1.0, 1.0])  # the caller's gradient is untouched


# ---- freeing -----------------------------------------------------------------------------------
def test_graph_freed_by_refcount_alone():
    gc.collect()
    gc.disable()
    try:
        x = _t([0.5, 1.0, 2.0], requires_grad=True)
        mid = x * 2
        out = mid.sin() * x
        w_mid, w_node = weakref.ref(mid), weakref.ref(mid.grad_fn)
        loss = out.sum()
        del mid
        assert w_mid() is not None  # held as a saved input of sin
        loss.backward()
        assert w_mid() is None      # saved buffers freed by backward
        del loss, out
        assert w_node() is None     # the node dies with the output, no cycle
        assert x.grad is not None
    finally:
        gc.enable()


def test_graph_freed_when_output_dropped_without_backward():
    gc.collect()
    gc.disable()
    try:
        x = _t([0.5, 1.0], requires_grad=True)
        mid = x.exp()
        out = (mid * mid).sum()
        w_mid, w_node = weakref.ref(mid), weakref.ref(mid.grad_fn)
        del mid, out
        assert w_mid() is None and w_node() is None
    finally:
        gc.enable()


def test_leaf_and_accumulate_grad_node_freed():
    gc.collect()
    gc.disable()
    try:
        x = _t([0.5, 1.0], requires_grad=True)
        y = (x * x).sum()
        acc = y.grad_fn.next_functions[0][0].next_functions[0][0]
        assert type(acc).__name__ == "AccumulateGrad"
        w_acc, w_x = weakref.ref(acc), weakref.ref(x)
        del acc
        y.backward()
        del y
        assert w_acc() is None
        del x
        assert w_x() is None
    finally:
        gc.enable()


def test_saved_output_does_not_make_a_cycle():
    gc.collect()
    gc.disable()
    try:
        x = _t([0.5, 1.0], requires_grad=True)
        y = x.exp()  # exp saves its own output
        w_y, w_node = weakref.ref(y), weakref.ref(y.grad_fn)
        del y
        assert w_y() is None and w_node() is None
    finally:
        gc.enable()


# ---- retain_graph ------------------------------------------------------------------------------
def test_second_backward_raises_naming_retain_graph():
    x = _t([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"retain_graph=True"):
        y.backward()


def test_retain_graph_allows_second_backward_and_grads_double():
    x = _t([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_graph_without_saved_tensors_can_be_walked_twice():
    x = _t([1.0, 2.0], requires_grad=True)
    y = (x + 1).sum()  # add and sum save nothing: PyTorch allows this too
    y.backward()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


# ---- backward arguments -------------------------------------------------------------------------
def test_backward_inputs_restricts_accumulation():
    a = _t([1.0, 2.0], requires_grad=True)
    b = _t([3.0, 4.0], requires_grad=True)
    (a * b).sum().backward(inputs=[a])
    np.testing.assert_allclose(a.grad.numpy(), [3.0, 4.0])
    assert b.grad is None


def test_backward_inputs_non_leaf_fills_its_grad():
    a = _t([1.0, 2.0], requires_grad=True)
    m = a * 2
    (m * m).sum().backward(inputs=[m])
    np.testing.assert_allclose(m.grad.numpy(), [4.0, 8.0])
    assert a.grad is None


def test_backward_non_scalar_needs_gradient():
    x = _t([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="implicitly created only for scalar"):
        (x * 2).backward()
    assert x.grad is None


def test_backward_with_explicit_gradient():
    x = _t([1.0, 2.0], requires_grad=True)
    (x * x).backward(_t([1.0, 10.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 40.0])


def test_backward_gradient_shape_mismatch():
    x = _t([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"\(3,\).*\(2,\)"):
        (x * 2).backward(_t([1.0, 1.0, 1.0]))
    assert x.grad is None


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        _t([1.0]).sum().backward()


def test_autograd_backward_multiple_roots():
    x = _t([1.0, 2.0], requires_grad=True)
    autograd.backward([(x * 2).sum(), (x * x).sum()])
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 6.0])


def test_backward_leaves_grad_mode_untouched_on_error():
    x = _t([1.0, 2.0], requires_grad=True)
    y = x.exp()

    def bad_hook(g):
        raise ValueError("boom")

    y.register_hook(bad_hook)
    with pytest.raises(ValueError):
        y.sum().backward()
    assert tapegrad.is_grad_enabled()


# ---- autograd.grad ------------------------------------------------------------------------------
def test_grad_returns_tuple_and_leaves_dot_grad_alone():
    x = _t(3.0, requires_grad=True)
    (g,) = autograd.grad(x ** 2, x)
    assert g.item() == pytest.approx(6.0)
    assert x.grad is None
    assert not g.requires_grad


def test_grad_allow_unused():
    x = _t(1.0, requires_grad=True)
    z = _t(2.0, requires_grad=True)
    y = x * 3
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        autograd.grad(y, [x, z], retain_graph=True)
    gx, gz = autograd.grad(y, [x, z], allow_unused=True)
    assert gx.item() == 3.0 and gz is None


def test_grad_materialize_grads():
    x = _t(1.0, requires_grad=True)
    z = _t([2.0, 3.0], requires_grad=True)
    gx, gz = autograd.grad(x * 3, [x, z], materialize_grads=True)
    np.testing.assert_array_equal(gz.numpy(), [0.0, 0.0])


def test_grad_outputs_weighting():
    x = _t([1.0, 2.0, 3.0], requires_grad=True)
    (g,) = autograd.grad(x * x, x, grad_outputs=_t([1.0, 0.5, 0.0]))
    np.testing.assert_allclose(g.numpy(), [2.0, 2.0, 0.0])


def test_grad_wrt_non_leaf():
    x = _t([1.0, 2.0], requires_grad=True)
    m = x.exp()
    y = (m * 3).sum()
    (gm,) = autograd.grad(y, m)
    np.testing.assert_allclose(gm.numpy(), [3.0, 3.0])
    assert x.grad is None and m.grad is None


def test_grad_multiple_outputs_and_inputs():
    a = _t(2.0, requires_grad=True)
    b = _t(5.0, requires_grad=True)
    ga, gb = autograd.grad([a * b, a + b], [a, b])
    assert ga.item() == pytest.approx(6.0) and gb.item() == pytest.approx(3.0)


def test_grad_input_not_requiring_grad_raises():
    x = _t(1.0, requires_grad=True)
    c = _t(1.0)
    with pytest.raises(RuntimeError, match="does not require grad"):
        autograd.grad(x * c, c)


def test_create_graph_second_derivative():
    x = _t(0.7, requires_grad=True)
    y = x ** 3 + x.sin()
    (g,) = autograd.grad(y, x, create_graph=True)
    assert g.requires_grad
    assert g.item() == pytest.approx(3 * 0.7 ** 2 + np.cos(0.7))
    (h,) = autograd.grad(g, x)
    assert h.item() == pytest.approx(6 * 0.7 - np.sin(0.7))


def test_create_graph_backward_populates_differentiable_grad():
    x = _t(2.0, requires_grad=True)
    (x ** 3).backward(create_graph=True)
    assert x.grad.requires_grad
    g = x.grad
    x.grad = None
    g.backward()
    assert x.grad.item() == pytest.approx(12.0)


def test_grad_matches_torch_on_a_small_network():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    w1, b1, w2 = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal((3, 1))
    xv = rng.standard_normal((5, 4))

    def run(lib):
        ps = [lib.tensor(v, requires_grad=True) for v in (w1, b1, w2)]
        h = (lib.tensor(xv) @ ps[0] + ps[1]).tanh()
        loss = ((h @ ps[2]).sigmoid() - 0.5).pow(2).mean()
        loss.backward()
        return [p.grad.numpy() for p in ps]

    for o, r in zip(run(tapegrad), run(torch)):
        np.testing.assert_allclose(o, r, rtol=1e-10, atol=1e-12)


def test_no_grad_output_has_no_history():
    x = _t([1.0], requires_grad=True)
    with tapegrad.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf


# ---- hooks --------------------------------------------------------------------------------------
def test_leaf_hook_replaces_gradient_and_can_be_removed():
    x = _t([1.0, 2.0], requires_grad=True)
    seen = []

    def hook(g):
        seen.append(g.numpy().copy())
        return g * 10

    h = x.register_hook(hook)
    (x * 3).sum().backward()
    np.testing.assert_allclose(seen[0], [3.0, 3.0])
    np.testing.assert_allclose(x.grad.numpy(), [30.0, 30.0])
    h.remove()
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])
    assert len(seen) == 1


def test_non_leaf_hook_changes_what_flows_upstream():
    x = _t([1.0, 2.0], requires_grad=True)
    m = x * 2
    h = m.register_hook(lambda g: g * 0.5)
    (m * m).sum().backward()
    # dm = 2m = 4x, halved = 2x, times dm/dx = 2 -> 4x
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])
    assert m.grad is None  # a hook does not retain
    h.remove()
    x.grad = None
    m = x * 2
    (m * m).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [8.0, 16.0])


def test_hook_returning_none_observes_only():
    x = _t([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.sum().item()))
    (x * 2).sum().backward()
    assert seen == [4.0]
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_several_hooks_run_in_registration_order():
    x = _t(1.0, requires_grad=True)
    order = []
    x.register_hook(lambda g: (order.append("a"), g + 1)[1])
    x.register_hook(lambda g: (order.append("b"), g * 10)[1])
    (x * 1).backward()
    assert order == ["a", "b"]
    assert x.grad.item() == 20.0


def test_register_hook_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        _t([1.0]).register_hook(lambda g: g)


def test_retain_grad_on_non_leaf():
    x = _t([1.0, 2.0], requires_grad=True)
    m = x * 3
    m.retain_grad()
    assert m.retains_grad
    (m * m).sum().backward()
    np.testing.assert_allclose(m.grad.numpy(), [6.0, 12.0])
    np.testing.assert_allclose(x.grad.numpy(), [18.0, 36.0])


def test_retain_grad_sees_hook_modified_gradient_like_torch():
    torch = pytest.importorskip("torch")

    def run(lib):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        m = x * 3
        m.retain_grad()
        m.register_hook(lambda g: g * 2)
        (m * m).sum().backward()
        return m.grad.numpy(), x.grad.numpy()

    for o, r in zip(run(tapegrad), run(torch)):
        np.testing.assert_allclose(o, r)


def test_retain_grad_accumulates_and_does_not_keep_tensor_alive():
    x = _t([1.0, 2.0], requires_grad=True)
    m = x * 3
    m.retain_grad()
    y = (m * m).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(m.grad.numpy(), [12.0, 24.0])
    gc.collect()
    gc.disable()
    try:
        m2 = x * 3
        m2.retain_grad()
        w = weakref.ref(m2)
        del m2
        assert w() is None
    finally:
        gc.enable()


def test_node_post_hook_and_prehook():
    x = _t([1.0, 2.0], requires_grad=True)
    m = x * 2
    got = {}

    def post(grad_inputs, grad_outputs):
        got["in"] = [g.numpy().copy() for g in grad_inputs if g is not None]
        got["out"] = [g.numpy().copy() for g in grad_outputs]

    m.grad_fn.register_hook(post)
    m.grad_fn.register_prehook(lambda grads: (grads[0] * 100,))
    m.sum().backward()
    np.testing.assert_allclose(got["out"][0], [100.0, 100.0])
    np.testing.assert_allclose(got["in"][0], [200.0, 200.0])
    np.testing.assert_allclose(x.grad.numpy(), [200.0, 200.0])


def test_node_graph_introspection():
    x = _t([1.0, 2.0], requires_grad=True)
    y = (x * 2).exp()
    assert "ExpBackward" in y.grad_fn.name_backward()
    mul_node, nr = y.grad_fn.next_functions[0]
    assert "MulBackward" in mul_node.name_backward() and nr == 0
    acc = mul_node.next_functions[0][0]
    assert acc.variable is x


# ---- grad modes ---------------------------------------------------------------------------------
def test_no_grad_enable_grad_nesting():
    x = _t([1.0], requires_grad=True)
    with tapegrad.no_grad():
        assert not tapegrad.is_grad_enabled()
        assert not (x * 2).requires_grad
        with tapegrad.enable_grad():
            assert tapegrad.is_grad_enabled()
            assert (x * 2).requires_grad
        assert not tapegrad.is_grad_enabled()
    assert tapegrad.is_grad_enabled()


def test_grad_modes_as_decorators():
    x = _t([1.0], requires_grad=True)

    @tapegrad.no_grad()
    def f(t):
        return t * 2

    @tapegrad.enable_grad()
    def g(t):
        return t * 2

    @tapegrad.set_grad_enabled(False)
    def h(t):
        return t * 2

    @tapegrad.inference_mode()
    def k(t):
        return t * 2

    assert tapegrad.is_grad_enabled()  # decorating does not switch the mode
    assert not f(x).requires_grad and not h(x).requires_grad and not k(x).requires_grad
    with tapegrad.no_grad():
        assert g(x).requires_grad
    assert f.__name__ == "f"


def test_set_grad_enabled_as_function_and_context():
    x = _t([1.0], requires_grad=True)
    try:
        tapegrad.set_grad_enabled(False)
        assert not (x * 2).requires_grad
    finally:
        tapegrad.set_grad_enabled(True)
    assert (x * 2).requires_grad
    with tapegrad.set_grad_enabled(False):
        assert not tapegrad.is_grad_enabled()
    assert tapegrad.is_grad_enabled()
    with tapegrad.set_grad_enabled(True):
        assert (x * 2).requires_grad


def test_grad_mode_restored_after_exception():
    with pytest.raises(KeyError):
        with tapegrad.no_grad():
            raise KeyError
    assert tapegrad.is_grad_enabled()


def test_inference_mode():
    x = _t([1.0], requires_grad=True)
    with tapegrad.inference_mode():
        assert not tapegrad.is_grad_enabled()
        assert tapegrad.is_inference_mode_enabled()
        y = x * 2
    assert not y.requires_grad
    assert tapegrad.is_grad_enabled() and not tapegrad.is_inference_mode_enabled()
    with tapegrad.inference_mode(False):
        assert (x * 2).requires_grad


def test_grad_mode_is_thread_local():
    import threading

    x = _t([1.0], requires_grad=True)
    seen = {}

    def worker():
        seen["enabled"] = tapegrad.is_grad_enabled()
        seen["records"] = (x * 2).requires_grad
        with tapegrad.no_grad():
            seen["inner"] = tapegrad.is_grad_enabled()

    with tapegrad.no_grad():
        th = threading.Thread(target=worker)
        th.start()
        th.join()
        assert not tapegrad.is_grad_enabled()  # the worker's no_grad did not leak here
    assert seen == {"enabled": True, "records": True, "inner": False}
    assert tapegrad.is_grad_enabled()
