"""Custom ``autograd.Function``: forward/backward, saved tensors, flags, gradcheck."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import tapegrad
from tapegrad.autograd import Function, gradcheck


def _t(v, **kw):
    return tapegrad.tensor(v, dtype=tapegrad.float64, **kw)


class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x * x * g


class ExpOut(Function):
    """Saves its own output (the classic source of reference cycles)."""

    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class Scale(Function):
    """Non-tensor arguments between tensors; records needs_input_grad."""

    @staticmethod
    def forward(ctx, a, k, b, mode="plain"):
        ctx.k = k
        ctx.mode = mode
        ctx.seen_needs = ctx.needs_input_grad
        return a * k + b

    @staticmethod
    def backward(ctx, g):
        ga = g * ctx.k if ctx.needs_input_grad[0] else None
        gb = g if ctx.needs_input_grad[2] else None
        return ga, None, gb, None


class SortWithIndex(Function):
    """Two outputs, the second non-differentiable."""

    @staticmethod
    def forward(ctx, x):
        arr = x.detach().numpy()
        idx = np.argsort(arr)
        vals = tapegrad.tensor(arr[idx])
        index = tapegrad.tensor(idx)
        ctx.mark_non_differentiable(index)
        ctx.save_for_backward(index)
        return vals, index

    @staticmethod
    def backward(ctx, g_vals, g_idx):
        (index,) = ctx.saved_tensors
        assert g_idx is None or float(g_idx.abs().sum()) == 0.0
        out = tapegrad.zeros_like(g_vals)
        out[index] = g_vals
        return out


class TwoOut(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * 2, x * x

    @staticmethod
    def backward(ctx, ga, gb):
        (x,) = ctx.saved_tensors
        # materialized: an unused output's gradient arrives as zeros, never None
        assert ga is not None and gb is not None
        return ga * 2 + gb * 2 * x


def test_forward_backward():
    x = _t([1.0, -2.0], requires_grad=True)
    y = Cube.apply(x)
    assert y.requires_grad and not y.is_leaf
    np.testing.assert_allclose(y.detach().numpy(), [1.0, -8.0])
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 12.0])


def test_repr_names_the_function():
    y = Cube.apply(_t([1.0], requires_grad=True))
    assert "CubeBackward" in repr(y)


def test_no_recording_without_grad_inputs_or_in_no_grad():
    y = Cube.apply(_t([1.0]))
    assert not y.requires_grad and y.grad_fn is None
    with tapegrad.no_grad():
        y = Cube.apply(_t([1.0], requires_grad=True))
    assert not y.requires_grad


def test_forward_runs_without_recording():
    seen = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, x):
            y = x * 2
            seen.append((tapegrad.is_grad_enabled(), y.requires_grad))
            return y

        @staticmethod
        def backward(ctx, g):
            return g * 2

    Probe.apply(_t([1.0], requires_grad=True))
    assert seen == [(False, False)]


def test_save_output_without_cycle():
    gc.collect()
    gc.disable()
    try:
        x = _t([0.0, 1.0], requires_grad=True)
        y = ExpOut.apply(x)
        w_y, w_node = weakref.ref(y), weakref.ref(y.grad_fn)
        y.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), np.exp([0.0, 1.0]))
        del y
        assert w_y() is None and w_node() is None
        y2 = ExpOut.apply(x)
        w2 = weakref.ref(y2.grad_fn)
        del y2  # never backpropagated: still freed by refcount
        assert w2() is None
    finally:
        gc.enable()


def test_saved_input_modified_in_place_raises():
    x = _t([1.0, 2.0], requires_grad=True)
    a = x * 1
    y = Cube.apply(a)
    a.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_second_backward_raises_for_saved_tensors():
    x = _t([1.0], requires_grad=True)
    y = Cube.apply(x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_needs_input_grad_and_non_tensor_args():
    a = _t([1.0, 2.0], requires_grad=True)
    b = _t([0.5, 0.5])
    y = Scale.apply(a, 3.0, b, mode="fancy")
    assert y.grad_fn.needs_input_grad == (True, False, False)
    assert y.grad_fn.k == 3.0 and y.grad_fn.mode == "fancy"
    y.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [3.0, 3.0])
    assert b.grad is None
    b.requires_grad_()
    Scale.apply(a, 2.0, b).sum().backward()
    np.testing.assert_allclose(b.grad.numpy(), [1.0, 1.0])


def test_mark_non_differentiable_and_multiple_outputs():
    x = _t([3.0, 1.0, 2.0], requires_grad=True)
    vals, idx = SortWithIndex.apply(x)
    assert vals.requires_grad and not idx.requires_grad
    assert idx.dtype == tapegrad.int64
    (vals * _t([1.0, 10.0, 100.0])).sum().backward()
    # sorted order is x[1], x[2], x[0]
    np.testing.assert_allclose(x.grad.numpy(), [100.0, 1.0, 10.0])


def test_materialized_none_grads():
    x = _t([1.0, 2.0], requires_grad=True)
    a, b = TwoOut.apply(x)
    a.sum().backward()  # b unused: its gradient must arrive as zeros
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_set_materialize_grads_false_passes_none():
    got = []

    class Two(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 1, x * 2

        @staticmethod
        def backward(ctx, ga, gb):
            got.append((ga is None, gb is None))
            return ga

    x = _t([1.0], requires_grad=True)
    a, _ = Two.apply(x)
    a.sum().backward()
    assert got == [(False, True)]


def test_wrong_number_of_gradients_raises():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return g, g

    with pytest.raises(RuntimeError, match="incorrect number of gradients"):
        Bad.apply(_t([1.0], requires_grad=True)).sum().backward()


def test_gradcheck_custom_function():
    x = _t(np.random.default_rng(0).standard_normal(5), requires_grad=True)
    assert gradcheck(Cube.apply, (x,))
    assert gradcheck(lambda t: ExpOut.apply(t) * Cube.apply(t), (x,))
    a = _t(np.random.default_rng(1).standard_normal(3), requires_grad=True)
    b = _t(np.random.default_rng(2).standard_normal(3), requires_grad=True)
    assert gradcheck(lambda p, q: Scale.apply(p, 1.5, q), (a, b))


def test_gradcheck_catches_a_wrong_backward():
    class Wrong(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x  # should be 2x

    x = _t([0.5, 1.5], requires_grad=True)
    with pytest.raises(tapegrad.autograd.GradcheckError):
        gradcheck(Wrong.apply, (x,))
    assert gradcheck(Wrong.apply, (x,), raise_exception=False) is False


def test_double_backward_through_custom_function():
    x = _t(1.5, requires_grad=True)
    (g,) = tapegrad.autograd.grad(Cube.apply(x), x, create_graph=True)
    (h,) = tapegrad.autograd.grad(g, x)
    assert h.item() == pytest.approx(6 * 1.5)


def test_input_returned_unchanged_becomes_new_tensor():
    class Ident(Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 5

    x = _t([1.0], requires_grad=True)
    y = Ident.apply(x)
    assert y is not x and x.is_leaf and x.grad_fn is None
    y.sum().backward()
    assert x.grad.item() == 5.0


def test_matches_torch_custom_function():
    torch = pytest.importorskip("torch")

    class TCube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x * x * g

    v = np.array([0.3, -1.2, 2.0])
    x = _t(v, requires_grad=True)
    tx = torch.tensor(v, requires_grad=True)
    (Cube.apply(x.sin()) * x).sum().backward()
    (TCube.apply(tx.sin()) * tx).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())
