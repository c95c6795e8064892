"""Long-lived CPU arrays start on 64-byte boundaries (``backends/aligned.py``), as PyTorch's
allocator gives them: what the creation functions build, and the transposed weight copy of a
backward pass. Values, layout rules and the engine's in-place rule must not change."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.autograd.grad_mode import STATE
from tapegrad.backends import aligned
from tapegrad.ops import matmul_t


def _addr(a: np.ndarray) -> int:
    return a.ctypes.data


@pytest.mark.parametrize("make", [
    lambda: tg.zeros(33, 65), lambda: tg.ones(33, 65), lambda: tg.empty(33, 65),
    lambda: tg.full((33, 65), 2.0), lambda: tg.randn(33, 65), lambda: tg.rand(33, 65),
    lambda: tg.zeros(33, 65, dtype=tg.float64), lambda: tg.arange(1000),
    lambda: tg.tensor(np.ones((33, 65), np.float32)[:, 1:]),
    lambda: tg.tensor([[1.0] * 300] * 3), lambda: tg.zeros_like(tg.ones(40, 40)),
    lambda: tg.nn.Linear(100, 70).weight,
])
def test_creation_functions_give_aligned_arrays(make):
    t = make()
    assert _addr(t._data) % aligned.ALIGN == 0


def test_tensor_copies_values_and_owns_its_memory():
    for off in range(0, 64, 4):  # every misalignment of a float32 source
        buf = np.arange(off // 4, off // 4 + 40 * 40, dtype=np.float32)
        src = buf.reshape(40, 40)
        t = tg.tensor(src)
        np.testing.assert_array_equal(t.numpy(), src)
        assert _addr(t._data) % 64 == 0 and not np.shares_memory(t._data, src)
        src[0, 0] = -1.0
        assert t[0, 0].item() != -1.0


def test_small_arrays_and_aligned_arrays_are_left_as_they_are():
    small = np.ones(3)
    assert aligned.aligned(small) is small
    big = aligned.empty((50, 50), np.float64)
    assert aligned.aligned(big) is big
    off = aligned.empty((2508,), np.float64)[1:2501].reshape(50, 50)  # 8 bytes past a line
    off[...] = 3.0
    fixed = aligned.aligned(off)
    assert fixed is not off and _addr(fixed) % 64 == 0
    np.testing.assert_array_equal(fixed, off)


@pytest.mark.parametrize("shape", [(0,), (256,), (7, 0, 3), (17, 33), (4, 5, 6, 7)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_, np.float16])
def test_empty_has_the_shape_dtype_and_layout_asked_for(shape, dtype):
    a = aligned.empty(shape, dtype)
    assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous
    assert a.flags.writeable
    if a.nbytes >= 1024:
        assert _addr(a) % 64 == 0


def test_a_gradient_given_as_an_aligned_tensor_is_never_written_into():
    x = tg.zeros(64, 64, requires_grad=True)
    g = tg.ones(64, 64)
    before = g.numpy().copy()
    for _ in range(3):
        (x * 2).backward(gradient=g)
    np.testing.assert_array_equal(g.numpy(), before)
    np.testing.assert_array_equal(x.grad.numpy(), np.full((64, 64), 6.0))


def test_the_transposed_weight_copy_of_a_backward_pass_is_aligned(monkeypatch):
    seen = []
    real = matmul_t._aligned_empty
    monkeypatch.setattr(matmul_t, "_aligned_empty",
                        lambda shape, dtype: seen.append(real(shape, dtype)) or seen[-1])
    w = tg.tensor(np.random.default_rng(0).standard_normal((48, 48)), requires_grad=True)
    h = tg.ones(4, 48, dtype=tg.float64, requires_grad=True)
    y = h
    for _ in range(3):
        y = y @ w
    y.sum().backward()
    assert len(seen) == 1 and _addr(seen[0]) % 64 == 0
    np.testing.assert_array_equal(seen[0], w.detach().numpy().T)
    assert STATE.transposes is None
    w0 = w.detach().numpy()
    expect = np.ones((4, 48)) @ (w0 @ w0 @ w0).T
    np.testing.assert_allclose(h.grad.numpy(), expect, rtol=1e-12)
