"""A batch times a matrix runs as one product of the batch folded into rows
(``matmul_t.rows_matmul``), forward and backward; values and gradients are checked in the
op table (matmul_batched*, nn_linear*), here that the BLAS calls are 2-D and the answers
equal NumPy's."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import backends
from tapegrad.ops.matmul_t import rows_matmul


class _Spy:
    """NumPy, with the operand dims of every ``matmul`` call recorded."""

    def __init__(self):
        self.calls = []

    def matmul(self, a, b, **kw):
        self.calls.append((a.ndim, b.ndim))
        return np.matmul(a, b, **kw)

    def __getattr__(self, name):
        return getattr(np, name)


@pytest.mark.parametrize("shape", [(2, 3, 4), (2, 2, 3, 4), (0, 3, 4), (2, 0, 4), (2, 3, 0)])
def test_rows_matmul_equals_numpy_with_one_2d_product(shape):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape)
    b = rng.standard_normal((shape[-1], 5))
    spy = _Spy()
    r = rows_matmul(spy, a, b)
    np.testing.assert_allclose(r, np.matmul(a, b), rtol=1e-13, atol=1e-13)
    assert r.shape == shape[:-1] + (5,) and r.flags.c_contiguous
    assert spy.calls == [(2, 2)]


def test_rows_matmul_leaves_a_strided_batch_to_numpy():
    a = np.ones((3, 2, 4)).transpose(1, 0, 2)  # not C-contiguous: folding would copy
    spy = _Spy()
    np.testing.assert_array_equal(rows_matmul(spy, a, np.ones((4, 5))), np.full((2, 3, 5), 4.0))
    assert spy.calls == [(3, 2)]


@pytest.mark.parametrize("op, bias", [
    (lambda x, w, b: x @ w.t(), False),
    (lambda x, w, b: tg.nn.functional.linear(x, w), False),
    (lambda x, w, b: tg.nn.functional.linear(x, w, b), True),
])
def test_a_batch_times_a_matrix_makes_only_2d_products(monkeypatch, op, bias):
    # Forward, both input gradients and the bias: no product of a stack, where NumPy would
    # call BLAS once per matrix (and b's gradient would then be summed over the batch).
    rng = np.random.default_rng(1)
    x = tg.tensor(rng.standard_normal((4, 6, 3)), requires_grad=True)
    w = tg.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    b = tg.tensor(rng.standard_normal(5), requires_grad=True)
    spy = _Spy()
    monkeypatch.setattr(backends.CPU_BACKEND, "xp", spy)
    y = op(x, w, b)
    (y * y).sum().backward()
    monkeypatch.undo()
    assert spy.calls and all(c == (2, 2) for c in spy.calls), spy.calls
    xs, ws = x.detach().numpy(), w.detach().numpy()
    yr = xs @ ws.T + (b.detach().numpy() if bias else 0)
    np.testing.assert_allclose(y.detach().numpy(), yr, rtol=1e-12)
    g = 2 * yr
    np.testing.assert_allclose(x.grad.numpy(), g @ ws, rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), np.einsum("bno,bni->oi", g, xs), rtol=1e-12)



@pytest.mark.parametrize("sx, sw", [((2, 3, 0), (0, 5)), ((2, 0, 4), (4, 5)), ((0, 3, 4), (4, 5)),
                                    ((2, 3, 4), (4, 0))])
def test_empty_batches_differentiate(sx, sw):
    # The folded products reshape to (rows, k) with the row count spelled out: reshape(-1, 0)
    # of an empty array is ambiguous (and raises).
    for op in (lambda x, w: x @ w, lambda x, w: tg.nn.functional.linear(x, w.t(), None),
               lambda x, w: tg.nn.functional.linear(x, w.t(), tg.zeros(sw[1]))):
        x = tg.zeros(*sx, requires_grad=True)
        w = tg.zeros(*sw, requires_grad=True)
        y = op(x, w)
        assert tuple(y.shape) == sx[:-1] + sw[1:]
        y.sum().backward()
        assert tuple(x.grad.shape) == sx and tuple(w.grad.shape) == sw
        assert not x.grad.numpy().any() and not w.grad.numpy().any()
