"""The numba ``where`` kernel (``numba_core.where``) against NumPy's ``np.where`` (the
reference): same values and dtype for every mix of arrays, strided arrays, broadcasts and
single values, and the reference's errors."""

from __future__ import annotations

import numpy as np
import pytest

from tapegrad.backends import numba_core, ref_core


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_where_matches_numpy_for_every_operand_kind(dt):
    rng = np.random.default_rng(0)
    c = rng.random((7, 9)) > 0.4
    a = rng.standard_normal((7, 9)).astype(dt)
    a[0, :3] = np.nan, np.inf, -0.0
    b = rng.standard_normal((7, 9)).astype(dt)
    operands = [a, b, a[:, ::-1], np.asfortranarray(a), 1.5, 2, np.asarray(0.25, dt), dt(3.0),
                np.broadcast_to(dt(0.75), (7, 9)), np.float64(2.5), np.float32(2.5),
                np.asarray(1.0, np.float64), np.ones((9,), dt), np.ones((7, 1), dt)]
    for x in operands:
        for y in operands:
            want = ref_core.where(c, x, y)
            got = numba_core.where(c, x, y)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
    for cond in (c[:, ::-1], c.astype(np.int8), np.True_):  # the reference's cases
        np.testing.assert_array_equal(numba_core.where(cond, a, b), ref_core.where(cond, a, b))
    with pytest.raises(ValueError):
        numba_core.where(c, np.ones(5, dt), a)


def test_where_is_the_fast_loop_for_the_vjp_operands(monkeypatch):
    # Where's vjp picks a broadcast gradient (of a mean) against a zero: one loop, not
    # np.where (which branches per element).
    import tapegrad as tg

    calls = []
    monkeypatch.setattr(ref_core, "where", lambda *a: calls.append(1) or np.where(*a))
    monkeypatch.setattr(numba_core.R, "where", ref_core.where)
    with tg.backends.use("numba"):
        x = tg.tensor(np.linspace(-2, 2, 64, dtype=np.float32).reshape(8, 8),
                      requires_grad=True)
        tg.where(x > 0, x * 2, x * 3).mean().backward()
        assert tg.backends.current().k["where"] is numba_core.where
    assert not calls
    np.testing.assert_allclose(x.grad.numpy(), np.where(x.detach().numpy() > 0, 2, 3) / 64)
