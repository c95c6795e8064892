"""Every numba kernel against its NumPy reference on random inputs: float32 and float64,
C-contiguous, non-contiguous, broadcast, zero-size and 0-d arrays, and float16 (which must
take the reference path and give the reference's answer bit for bit)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

pytest.importorskip("numba")

from tapegrad.backends import (  # noqa: E402
    numba_backend, numba_core, numba_nn, numba_norm, numba_softmax)
from tapegrad.backends.numpy_backend import reference_kernels  # noqa: E402

REF = reference_kernels()
FAST = {**numba_core.KERNELS, **numba_nn.KERNELS, **numba_softmax.KERNELS,
        **numba_norm.KERNELS}
DTYPES = [np.float32, np.float64]


def _tol(dt):
    # float32: the loops keep float64 intermediates, the reference rounds every step to
    # float32, so cancellations (gelu at x = -5) differ by a few float32 ulps of O(1).
    return dict(rtol=2e-6, atol=1e-5) if dt == np.float32 else dict(rtol=1e-12, atol=1e-12)


def _layouts(rng, shape, dt, lo=-3.0, hi=3.0):
    """The same values as C-contiguous, transposed, strided and broadcast arrays."""
    base = rng.uniform(lo, hi, shape).astype(dt)
    out = [("contiguous", base)]
    if base.ndim >= 2:
        out.append(("transposed", np.ascontiguousarray(base.T).T))
    big = rng.uniform(lo, hi, shape[:-1] + (2 * shape[-1],) if shape else (2,)).astype(dt)
    if shape:
        out.append(("strided", big[..., ::2]))
        out.append(("broadcast", np.broadcast_to(base[..., :1], shape)))
    return out


def _check(name, *args, dt=np.float64):
    want = REF[name](*args)
    got = FAST[name](*args)
    if isinstance(want, tuple):
        for w, g in zip(want, got):
            _same(w, g, dt)
    else:
        _same(want, got, dt)


def _same(want, got, dt):
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, **_tol(dt))


# tanh is not overridden: NumPy's SIMD tanh beats a scalar libm loop (numba_core.py).
UNARY = ["sigmoid", "relu", "erf"]
GRAD = ["tanh_backward", "sigmoid_backward", "relu_backward"]
SHAPES = [(64,), (7, 5), (2, 3, 4), (), (0, 3)]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", UNARY)
def test_unary(name, shape, dt):
    rng = np.random.default_rng(0)
    for _, x in _layouts(rng, shape, dt):
        _check(name, x, dt=dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", GRAD)
def test_backward(name, shape, dt):
    rng = np.random.default_rng(1)
    y = rng.uniform(-1, 1, shape).astype(dt)
    for _, g in _layouts(rng, shape, dt):
        _check(name, g, y, dt=dt)
        _check(name, y, g, dt=dt)
    if shape:  # broadcasting between the two inputs goes to the reference as well
        _check(name, rng.uniform(-1, 1, shape[-1:]).astype(dt), y, dt=dt)


@pytest.mark.parametrize("dt", DTYPES)
def test_transposed_inputs_keep_their_layout(dt):
    # An F-contiguous (transposed) array runs as its C-contiguous transpose; the output
    # keeps the input's layout, as NumPy's ufuncs (and PyTorch) do.
    rng = np.random.default_rng(12)
    x = np.asfortranarray(rng.uniform(-3, 3, (40, 30)).astype(dt))
    g = rng.standard_normal((40, 30)).astype(dt)
    for name in UNARY:
        out = FAST[name](x)
        assert out.flags.f_contiguous and not out.flags.c_contiguous, name
        _same(REF[name](x), out, dt)
    for name in GRAD:
        for gg in (np.asfortranarray(g), g, np.broadcast_to(dt(0.5), g.shape)):
            out = FAST[name](gg, x)
            assert out.flags.f_contiguous, name
            _same(REF[name](gg, x), out, dt)


@pytest.mark.parametrize("dt", DTYPES)
def test_activation_gradients_round_as_the_reference(dt):
    # The loops compute in the input's precision with constants of its dtype (a bare 1
    # would make a float32 loop run in float64), so they give the reference's bits.
    rng = np.random.default_rng(14)
    y = rng.uniform(-1, 1, (33, 70)).astype(dt)
    g = rng.standard_normal((33, 70)).astype(dt)
    # A broadcast value (the gradient of a sum) takes the loops with a scalar gradient.
    s = np.broadcast_to(dt(-1.5), g.shape)
    for name in ("tanh_backward", "sigmoid_backward", "relu_backward"):
        for gg, yy in ((g, y), (np.asfortranarray(g), np.asfortranarray(y)), (s, y),
                       (s, np.asfortranarray(y))):
            out = FAST[name](gg, yy)
            assert out.dtype == dt and out.flags.f_contiguous == yy.flags.f_contiguous
            np.testing.assert_array_equal(out, REF[name](gg, yy))


def test_a_broadcast_gradient_is_not_copied(monkeypatch):
    from tapegrad.backends import numba_core

    def no_copy(a):
        raise AssertionError("the broadcast gradient was copied")

    y = np.random.default_rng(15).uniform(-1, 1, (64, 48)).astype(np.float32)
    s = np.broadcast_to(np.float32(2.0), y.shape)
    monkeypatch.setattr(numba_core, "_ascontiguous", no_copy)
    for name in ("tanh_backward", "sigmoid_backward", "relu_backward"):
        np.testing.assert_array_equal(FAST[name](s, y), REF[name](s, y))


@pytest.mark.parametrize("dt", DTYPES)
def test_large_sigmoid_is_the_reference_bit_for_bit(dt):
    # Past _SMALL_TRANSCENDENTAL: NumPy's tanh in one buffer, the reference's operations.
    rng = np.random.default_rng(13)
    x = (rng.standard_normal((70, 60)) * 10).astype(dt)
    x[0, :4] = np.nan, np.inf, -np.inf, -0.0
    for arr in (x, np.asfortranarray(x), x[:, ::2]):
        out = FAST["sigmoid"](arr)
        np.testing.assert_array_equal(out, REF["sigmoid"](arr))
        assert out.dtype == dt


def test_nan_inf_and_signed_zero():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-300, -2.5])
    for name in UNARY:
        _check(name, x)
    assert np.signbit(FAST["relu"](x)[4])  # -0.0 stays -0.0, as np.maximum(-0.0, 0)
    _check("relu_backward", np.ones(7), x)
    _check("clamp", x, -1.0, 1.0)


@pytest.mark.parametrize("dt", DTYPES)
def test_clamp(dt):
    rng = np.random.default_rng(2)
    for _, x in _layouts(rng, (6, 5), dt):
        for lo, hi in [(-1.0, 1.0), (None, 0.5), (-0.25, None), (0, 2), (0.1, 0.1)]:
            _check("clamp", x, lo, hi, dt=dt)
    _check("clamp", rng.uniform(-2, 2, (3,)).astype(dt), float("nan"), None, dt=dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("gshape,shape", [((5, 4), (4,)), ((5, 4), (1, 4)), ((3, 5, 4), (4,)),
                                          ((3, 5, 4), (5, 4)), ((3, 5, 4), (1, 1, 4)),
                                          ((5, 4), ()), ((5, 4), (1, 1)), ((5, 4), (5, 1)),
                                          ((0, 4), (4,)), ((5, 0), (0,)), ((), ()),
                                          ((3, 1, 4), (1, 4)), ((8000,), (1,))], ids=str)
def test_sum_to(gshape, shape, dt):
    rng = np.random.default_rng(3)
    for _, g in _layouts(rng, gshape, dt):
        want, got = REF["sum_to"](g, shape), FAST["sum_to"](g, shape)
        assert got.shape == want.shape == shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5 if dt == np.float32 else 1e-12,
                                   atol=1e-5 if dt == np.float32 else 1e-12)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", [(64,), (7, 5), (2, 3, 4), (), (0, 3), (300, 257)], ids=str)
def test_sum_all(shape, dt):
    rng = np.random.default_rng(4)
    for _, x in _layouts(rng, shape, dt):
        want, got = np.asarray(REF["sum_all"](x)), np.asarray(FAST["sum_all"](x))
        assert got.shape == () and got.dtype == want.dtype == dt
        if dt == np.float32:  # summed in float64: at least as close to the exact sum
            exact = x.astype(np.float64).sum()
            assert abs(float(got) - exact) <= abs(float(want) - exact) + 1e-12 * abs(exact)
        np.testing.assert_allclose(got, want, **_tol(dt))


def test_sum_all_propagates_nan_and_inf():
    for v, want in ((np.nan, np.nan), (np.inf, np.inf), (-np.inf, -np.inf)):
        x = np.ones(5000, np.float32)
        x[1234] = v
        assert np.asarray(FAST["sum_all"](x)).tolist() == pytest.approx(want, nan_ok=True)
    x = np.ones(100, np.float32)
    x[3], x[70] = np.inf, -np.inf
    assert np.isnan(FAST["sum_all"](x))
    big = np.full(10, 3e38, np.float32)  # overflows float32 only when rounded at the end
    assert np.isinf(FAST["sum_all"](big)) and FAST["sum_all"](big).dtype == np.float32


@pytest.mark.parametrize("dt", DTYPES)
def test_index_add(dt):
    rng = np.random.default_rng(4)
    cases = [
        ((6, 3), (rng.integers(0, 6, 10),), (10, 3)),              # embedding backward
        ((6,), (rng.integers(0, 6, (4, 5)),), (4, 5)),             # repeated 2-D index
        ((4, 5), (rng.integers(0, 4, (4, 1)), np.arange(5)[None]), (4, 5)),  # gather dim 0
        ((6, 3), (np.array([-1, 0, -1]),), (3, 3)),                # negative: reference path
        ((6, 3), (slice(1, 3),), (2, 3)),                          # basic index: reference
        ((6, 3), (np.array([True, False, True, False, False, True]),), (3, 3)),  # mask
        ((6, 3), (np.zeros(0, np.int64),), (0, 3)),                # nothing to add
    ]
    for zshape, idx, gshape in cases:
        g = rng.standard_normal(gshape).astype(dt)
        want = np.zeros(zshape, dt)
        got = np.zeros(zshape, dt)
        REF["index_add"](want, idx, g)
        assert FAST["index_add"](got, idx, g) is None
        np.testing.assert_allclose(got, want, **_tol(dt))
    rows = (rng.integers(0, 6, 10),)
    for g in (np.broadcast_to(dt(1.5), (10, 3)), rng.standard_normal((3, 10)).astype(dt).T):
        want, got = np.zeros((6, 3), dt), np.zeros((6, 3), dt)
        REF["index_add"](want, rows, g)  # (a broadcast or transposed gradient is copied)
        assert FAST["index_add"](got, rows, g) is None
        np.testing.assert_allclose(got, want, **_tol(dt))
    with pytest.raises(IndexError):
        FAST["index_add"](np.zeros((3, 2), dt), (np.array([0, 3]),), np.ones((2, 2), dt))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax(name, dt):
    rng = np.random.default_rng(5)
    # (40, 60) and (2, 3, 700): past numba_softmax._LARGE_SOFTMAX, NumPy's exp with row sums
    for shape in [(4, 7), (2, 3, 5), (6,), (3, 0), (0, 4), (40, 60), (2, 3, 700)]:
        for _, x in _layouts(rng, shape, dt, -30, 30):
            for dim in range(x.ndim):
                if x.shape[dim]:  # (the op layer never reduces over an empty dim)
                    _check(name, x, dim, dt=dt)
            if x.shape[-1]:
                _check(name, x, -1, dt=dt)
    big = np.array([[1000.0, 0.0, -1000.0], [np.nan, 1.0, 2.0], [-np.inf, 0.0, 1.0]], dt)
    _check(name, big, 1, dt=dt)
    _check(name, _special_rows(rng, 8, 600, dt), 1, dt=dt)
    # Short rows past _LARGE_SOFTMAX: the row maxima of numba_softmax._rows_max.
    _check(name, _special_rows(rng, 40, 60, dt), 1, dt=dt)


@pytest.mark.parametrize("dt", DTYPES)
def test_row_maxima_equal_numpys(dt):
    from tapegrad.backends import numba_softmax

    rng = np.random.default_rng(12)
    for n in [1, 2, 7, 8, 9, 16, 17, 64, 511, 512, 700]:  # (from 512 on: NumPy's max)
        x = rng.standard_normal((37, n)).astype(dt)
        x[0, -1] = 50.0  # the maximum in the remainder loop, then in each of the 8 lanes
        x[1, :] = -np.inf
        x[2, n // 2] = np.inf
        for k in range(min(n, 8)):
            x[3 + k, k] = 60.0
        np.testing.assert_array_equal(numba_softmax._maxes(x), x.max(axis=1))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name", ["softmax_backward", "log_softmax_backward"])
def test_softmax_backward(name, dt):
    rng = np.random.default_rng(8)
    for shape in [(4, 7), (2, 3, 5), (6,), (0, 4), (40, 60)]:
        for _, y in _layouts(rng, shape, dt, -3, 0):
            for dim in range(y.ndim):
                for _, g in _layouts(rng, shape, dt):  # (a broadcast g is copied to C order)
                    _check(name, g, y, dim, dt=dt)
    y = np.log(np.full((3, 4), 0.25, dt))
    g = np.array([[1, 2, 3, 4], [np.nan, 0, 0, 0], [np.inf, 1, 1, 1]], dt)
    _check(name, g, y, 1, dt=dt)


def _special_rows(rng, n, c, dt):
    """Large logits whose first rows hold +-1000, a NaN, a -inf and only -inf."""
    x = rng.uniform(-30, 30, (n, c)).astype(dt)
    x[0, :2] = 1000.0, -1000.0
    x[1, 5] = np.nan
    x[2, 7] = -np.inf
    x[3] = -np.inf
    x[4, 0] = np.nan  # (first in its row: the running maxima start from it)
    x[5, 3] = np.inf
    return x


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(approximate, dt):
    rng = np.random.default_rng(6)
    for shape in [(50,), (4, 6), (), (0,)]:
        for _, x in _layouts(rng, shape, dt, -6, 6):
            _check("gelu", x, approximate, dt=dt)
            _check("gelu_backward", np.ones_like(x), x, approximate, dt=dt)
            _check("gelu_backward", x * 0.5, x, approximate, dt=dt)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_large_float32(approximate):
    # numba_nn._LARGE_GELU: NumPy's exp / tanh in place between two loops, and for the erf
    # form the Abramowitz-Stegun erf (|error| < 1.5e-7, PyTorch's vectorized formula).
    rng = np.random.default_rng(7)
    x = rng.uniform(-12, 12, (70, 50)).astype(np.float32)
    x[0, :6] = np.nan, np.inf, -np.inf, 0.0, -0.0, 40.0
    g = rng.standard_normal(x.shape).astype(np.float32)
    g_bcast = np.broadcast_to(np.float32(0.75), x.shape)
    x64 = x.astype(np.float64)
    # float32 results against the float64 reference (the tanh form's 1 + tanh(u) cancels
    # in float32 where tanh(u) is near -1)
    tol = dict(rtol=1e-5, atol=2e-6 if approximate == "none" else 6e-6)
    np.testing.assert_allclose(FAST["gelu"](x, approximate), REF["gelu"](x64, approximate),
                               **tol)
    for gg in (g, g_bcast):
        got = FAST["gelu_backward"](gg, x, approximate)
        assert got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_allclose(got, REF["gelu_backward"](gg.astype(np.float64), x64,
                                                             approximate), **tol)
    if approximate == "none":
        # The left tail is computed as erfc (no 1 - erf cancelling): relative error under
        # 0.1% down to x = -4 and a few % down to -12, against an exact erfc.
        tail = np.linspace(-12, -2, 3000).astype(np.float32)
        exact = np.array([v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in tail.tolist()])
        got = FAST["gelu"](tail, "none")
        near = tail >= -4
        np.testing.assert_allclose(got[near], exact[near], rtol=1e-3)
        np.testing.assert_allclose(got, exact, rtol=5e-2)


@pytest.mark.parametrize("dt", DTYPES)
def test_softplus_leaky_relu(dt):
    rng = np.random.default_rng(7)
    for shape in [(50,), (4, 6), (), (0, 2)]:
        for _, x in _layouts(rng, shape, dt, -30, 30):
            for beta, thr in [(1.0, 20.0), (2.0, 5.0), (0.5, 1.0)]:
                _check("softplus", x, beta, thr, dt=dt)
            for slope in (0.01, 0.2, -0.5):
                _check("leaky_relu", x, slope, dt=dt)
                _check("leaky_relu_backward", np.ones_like(x) * 1.5, x, slope, dt=dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("ks,stride,dil", [((3, 3), (1, 1), (1, 1)), ((2, 3), (2, 1), (1, 2)),
                                           ((3, 2), (1, 2), (2, 1)), ((1, 1), (1, 1), (1, 1))],
                         ids=str)  # (the loops treat a stride of 1 along the width apart)
def test_im2col_col2im(ks, stride, dil, dt):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 7, 8)).astype(dt)
    _check("im2col", x, ks, stride, dil, dt=dt)
    _check("im2col", x.transpose(0, 1, 3, 2), ks, stride, dil, dt=dt)  # non-contiguous
    cols = REF["im2col"](x, ks, stride, dil)
    g = rng.standard_normal(cols.shape).astype(dt)
    _check("col2im", g, x.shape, ks, stride, dil, dt=dt)
    _check("col2im", np.asfortranarray(g), x.shape, ks, stride, dil, dt=dt)
    x1 = rng.standard_normal((2, 3, 9)).astype(dt)  # conv1d: reference path
    _check("im2col", x1, (3,), (2,), (1,), dt=dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("ks,stride,pad,dil", [((2, 2), (2, 2), (0, 0), (1, 1)),
                                               ((3, 3), (1, 2), (1, 1), (1, 1)),
                                               ((3, 2), (2, 1), (1, 0), (2, 1))], ids=str)
def test_max_pool(ks, stride, pad, dil, dt):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 7, 6)).astype(dt)
    x[0, 0, 1, 1] = np.nan
    x[1, 2, 2:4, 2:4] = 1.0  # ties: the first maximum wins
    x[0, 1, 0:3, 0:3] = -np.inf
    x[1, 0, 2, 2] = x[1, 0, 2, 3] = np.nan  # a NaN first in a 2x2 window, then a later one
    x[1, 1, 4, 1] = np.nan  # NaN last in its window
    h, w = x.shape[2:]
    out = tuple((s + 2 * p - d * (k - 1) - 1) // st + 1
                for s, k, st, p, d in zip((h, w), ks, stride, pad, dil))
    args = (ks, stride, pad, dil, out)
    want, got = REF["max_pool2d"](x, *args), FAST["max_pool2d"](x, *args)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])
    _check("max_pool2d", x.transpose(0, 1, 3, 2).copy().transpose(0, 1, 3, 2), *args, dt=dt)
    idx = want[1]
    g = rng.standard_normal(idx.shape).astype(dt)
    _check("max_pool2d_backward", g, idx, x.shape, dt=dt)
    gb = np.broadcast_to(dt(1.25), idx.shape)  # the gradient of a sum: copied, not refused
    got = FAST["max_pool2d_backward"](gb, idx, x.shape)
    np.testing.assert_array_equal(got, REF["max_pool2d_backward"](gb, idx, x.shape))
    xv = np.nan_to_num(x, nan=0.5, neginf=-7.0)
    _check("pool_gather", xv, idx, dt=dt)


@pytest.mark.parametrize("dt", DTYPES)
def test_cross_entropy(dt):
    rng = np.random.default_rng(11)
    # (9, 1000) and (70, 80): past numba_softmax._LARGE_CE, NumPy's exp with row sums
    for n, c in [(7, 5), (1, 1), (0, 3), (4, 1000), (9, 1000), (70, 80)]:
        x = rng.uniform(-30, 30, (n, c)).astype(dt)
        t = rng.integers(0, c, n)
        valid = rng.random(n) < 0.7
        t = np.where(valid, t, 0)
        _check("cross_entropy", x, t, valid, dt=dt)
        loss, lse = REF["cross_entropy"](x, t, valid)
        for g in (np.asarray(1.5, dt), rng.standard_normal(n).astype(dt)):
            _check("cross_entropy_backward", g, x, lse, t, valid, 0.25, dt=dt)
    x = np.array([[1000.0, 0.0, -1000.0], [np.nan, 1.0, 2.0], [-np.inf, 0.0, 1.0]], dt)
    _check("cross_entropy", x, np.array([0, 1, 2]), np.ones(3, bool), dt=dt)
    x = _special_rows(rng, 8, 600, dt)[:3]  # (the all -inf row would be NaN either way)
    x = np.concatenate([x, rng.uniform(-30, 30, (5, 600)).astype(dt)])
    t, valid = rng.integers(0, 600, 8), np.array([1, 1, 1, 0, 1, 1, 0, 1], bool)
    _check("cross_entropy", x, t, valid, dt=dt)
    lse = REF["cross_entropy"](x, t, valid)[1]
    _check("cross_entropy_backward", np.asarray(2.0, dt), x, lse, t, valid, 0.5, dt=dt)
    x = _special_rows(rng, 80, 60, dt)  # short rows past _LARGE_CE
    t, valid = rng.integers(0, 60, 80), rng.random(80) < 0.8
    _check("cross_entropy", x, t, valid, dt=dt)
    xt = rng.standard_normal((5, 4)).astype(dt).T  # non-contiguous: the reference path
    _check("cross_entropy", xt, np.zeros(4, np.int64), np.ones(4, bool), dt=dt)


@pytest.mark.parametrize("dt", DTYPES)
def test_layer_norm(dt):
    rng = np.random.default_rng(12)
    for rows, n in [(7, 5), (1, 1), (0, 3), (4, 1000), (3, 0)]:
        w = rng.uniform(0.5, 1.5, n).astype(dt)
        b = rng.standard_normal(n).astype(dt)
        for label, x in _layouts(rng, (rows, n), dt, -3, 5):
            if label == "broadcast":
                continue  # constant rows: a variance of 0, rstd = 1 / sqrt(eps) below
            for wb in [(w, b), (None, None), (w, None), (None, b)]:
                _check("layer_norm", x, *wb, 1e-5, dt=dt)
            _, mean, rstd = REF["layer_norm"](np.ascontiguousarray(x), w, b, 1e-5)
            for _, g in _layouts(rng, (rows, n), dt):
                for wt in (w, None):
                    _check("layer_norm_backward", g, x, wt, mean, rstd, dt=dt)
    # A constant row (variance 0) and a row far from 0 (the mean must be subtracted first).
    x = np.array([[2.0, 2.0, 2.0], [1e4 + 1, 1e4 + 2, 1e4 + 3]], dt)
    _check("layer_norm", x, None, None, 1e-5, dt=dt)
    y, mean, rstd = FAST["layer_norm"](x, None, None, 0.1)
    assert mean.dtype == rstd.dtype == dt and mean.shape == (2,)
    np.testing.assert_allclose(y[1], np.array([-1.0, 0.0, 1.0]) / np.sqrt(2 / 3 + 0.1),
                               **_tol(dt))
    g = rng.standard_normal(x.shape).astype(dt)
    _check("layer_norm_backward", g, x, None, mean, rstd, dt=dt)


@pytest.mark.parametrize("dt", DTYPES)
def test_batch_norm(dt):
    rng = np.random.default_rng(14)
    tol = dict(rtol=1e-5, atol=2e-5) if dt == np.float32 else _tol(dt)
    for n, c, l in [(8, 5, 30), (2, 3, 1), (1, 4, 7), (16, 2, 64)]:
        x = (rng.standard_normal((n, c, l)) * 3 + 2).astype(dt)
        w = rng.uniform(0.5, 1.5, c).astype(dt)
        b = rng.standard_normal(c).astype(dt)
        for wb in [(w, b), (None, None), (w, None), (None, b)]:
            got, want = FAST["batch_norm"](x, *wb, 1e-5), REF["batch_norm"](x, *wb, 1e-5)
            for gt, wt in zip(got, want):
                assert gt.dtype == wt.dtype == dt
                np.testing.assert_allclose(gt, wt, **tol)
        _, mean, _, rstd = REF["batch_norm"](x, w, b, 1e-5)
        for g in (rng.standard_normal(x.shape).astype(dt), np.broadcast_to(dt(0.5), x.shape)):
            for wt in (w, None):
                got = FAST["batch_norm_backward"](g, x, wt, mean, rstd)
                want = REF["batch_norm_backward"](g, x, wt, mean, rstd)
                for a, e in zip(got, want):
                    # (the loop sums in float64: per-channel sums of the float32 reference
                    # differ by a few float32 ulps of the sum)
                    np.testing.assert_allclose(a, e, **tol)
    # A channel far from 0 (centred before squaring) and a constant one (variance 0).
    x = np.stack([np.full((4, 6), 7.0), 1e4 + np.arange(24.0).reshape(4, 6)], 1).astype(dt)
    y, mean, var, rstd = FAST["batch_norm"](x, None, None, 0.1)
    np.testing.assert_allclose(var, [0.0, np.var(np.arange(24.0))], rtol=1e-5)
    np.testing.assert_allclose(y[:, 0], 0.0, atol=1e-6)
    h = x.astype(np.float16)
    for a, e in zip(FAST["batch_norm"](h, None, None, 1e-5), REF["batch_norm"](h, None, None,
                                                                             1e-5)):
        np.testing.assert_array_equal(a, e)  # float16: the reference path, exactly


def test_layer_norm_float16_and_mixed_dtypes_take_the_reference_path():
    rng = np.random.default_rng(13)
    x = rng.uniform(-2, 2, (5, 4)).astype(np.float16)
    w = rng.uniform(0.5, 1.5, 4).astype(np.float16)
    want, got = REF["layer_norm"](x, w, w, 1e-5), FAST["layer_norm"](x, w, w, 1e-5)
    assert got[0].dtype == np.float16 and got[1].dtype == np.float32  # float32 statistics
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, b)
    g = rng.uniform(-1, 1, x.shape).astype(np.float16)
    for a, b in zip(REF["layer_norm_backward"](g, x, w, *want[1:]),
                    FAST["layer_norm_backward"](g, x, w, *want[1:])):
        assert b.dtype == np.float16
        np.testing.assert_array_equal(a, b)
    # float16 in, float32 inside: as close to the float64 answer as float16 can be.
    w64 = w.astype(np.float64)
    y64 = REF["layer_norm"](x.astype(np.float64), w64, w64, 1e-5)[0]
    np.testing.assert_allclose(got[0].astype(np.float64), y64, atol=4e-3)
    x32 = x.astype(np.float32)  # float32 rows with float64 weights: no loop, same answer
    _check("layer_norm", x32, w.astype(np.float64), None, 1e-5, dt=np.float32)


def test_layer_norm_failed_compilation_falls_back_with_one_warning(monkeypatch):
    from numba import njit

    @njit
    def broken(x, w, b, has_w, has_b, zero, inv_n, eps, y, mean, rstd):
        y[0, 0] = x.no_such_attribute  # a typing error, raised when it compiles

    table = {"layer_norm": numba_norm.layer_norm}
    monkeypatch.setattr(numba_backend, "_TABLES", [table])
    monkeypatch.setattr(numba_backend, "_WARNED", set())
    monkeypatch.setattr(numba_backend, "_STATE", {"loaded": False})
    monkeypatch.setattr(numba_norm, "_layer_norm", broken)
    x = np.arange(6.0).reshape(2, 3)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        got = numba_norm.layer_norm(x, None, None, 1e-5)
    for a, b in zip(got, REF["layer_norm"](x, None, None, 1e-5)):
        np.testing.assert_array_equal(a, b)
    msgs = [str(w.message) for w in rec if "failed to compile" in str(w.message)]
    assert len(msgs) == 1 and "layer_norm" in msgs[0]
    assert table["layer_norm"] is REF["layer_norm"]


def test_float16_takes_the_reference_path_exactly():
    rng = np.random.default_rng(10)
    x = rng.uniform(-2, 2, (5, 4)).astype(np.float16)
    g = rng.uniform(-2, 2, (5, 4)).astype(np.float16)
    cases = [("sigmoid", (x,)), ("relu", (x,)), ("tanh_backward", (g, x)),
             ("sigmoid_backward", (g, x)), ("relu_backward", (g, x)), ("clamp", (x, -1, 1)),
             ("sum_to", (x, (4,))), ("sum_all", (x,)), ("softmax", (x, 1)),
             ("softmax_backward", (g, x, 1)), ("log_softmax_backward", (g, x, 1)),
             ("log_softmax", (x, 1)),
             ("gelu", (x, "none")), ("softplus", (x, 1.0, 20.0)), ("leaky_relu", (x, 0.1))]
    for name, args in cases:
        want, got = REF[name](*args), FAST[name](*args)
        assert got.dtype == want.dtype == np.float16, name
        np.testing.assert_array_equal(got, want, err_msg=name)


def test_integer_inputs_take_the_reference_path():
    x = np.arange(-3, 4)
    np.testing.assert_array_equal(FAST["relu"](x), REF["relu"](x))
    np.testing.assert_array_equal(FAST["clamp"](x, -1, 2), REF["clamp"](x, -1, 2))
    np.testing.assert_array_equal(FAST["sum_to"](x.reshape(7, 1) * np.ones((1, 2), int), (2,)),
                                  REF["sum_to"](x.reshape(7, 1) * np.ones((1, 2), int), (2,)))


def test_failed_compilation_falls_back_with_one_warning(monkeypatch):
    from numba import njit

    @njit
    def broken(g, y, out):
        out[0] = g.no_such_attribute  # a typing error, raised when it compiles

    table = {"tanh_backward": numba_core.tanh_backward}
    monkeypatch.setattr(numba_backend, "_TABLES", [table])
    monkeypatch.setattr(numba_backend, "_WARNED", set())
    monkeypatch.setattr(numba_backend, "_STATE", {"loaded": False})

    tanh_backward = numba_core._binary("tanh_backward", broken, REF["tanh_backward"])

    g, y = np.ones(4), np.full(4, 0.5)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        r1 = tanh_backward(g, y)
        r2 = tanh_backward(g, y)
    np.testing.assert_array_equal(r1, REF["tanh_backward"](g, y))
    np.testing.assert_array_equal(r2, r1)
    msgs = [str(w.message) for w in rec if "failed to compile" in str(w.message)]
    assert len(msgs) == 1 and "tanh_backward" in msgs[0]
    assert table["tanh_backward"] is REF["tanh_backward"]  # later calls skip the compiler
