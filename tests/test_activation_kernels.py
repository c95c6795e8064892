"""Activation kernels of ``numba_nn`` against the reference: large float32 softplus (NumPy's
SIMD exp and log1p between two float32 loops) and the fused silu and its derivative."""

from __future__ import annotations

import numpy as np
import pytest

from tapegrad.backends import numba_nn, ref_nn


@pytest.mark.parametrize("beta, threshold", [(1.0, 20.0), (2.0, 20.0), (0.5, 5.0), (1, 20)])
def test_large_float32_softplus_matches_the_float64_reference(beta, threshold):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((64, 96)) * 10).astype(np.float32)  # past _LARGE_GELU
    x[0, :7] = np.nan, np.inf, -np.inf, 0.0, -0.0, 30.0, -80.0
    got = numba_nn.softplus(x, beta, threshold)
    # (float64 values below float32's range become 0 or denormals: compared in float32)
    want = ref_nn.softplus(x.astype(np.float64), beta, threshold).astype(np.float32)
    assert got.dtype == np.float32 and got.shape == x.shape
    # Relative accuracy holds in the left tail too (log1p of a tiny exp, not log(1 + e)).
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-37, equal_nan=True)
    assert np.isnan(got[0, 0]) and got[0, 1] == np.inf and got[0, 2] == 0.0
    # The large path is the one taken (a float64 input takes the scalar loop).
    assert x.size >= numba_nn._LARGE_GELU


def test_softplus_forward_and_backward_against_pytorch():
    torch = pytest.importorskip("torch")
    import tapegrad as tg

    x0 = (np.random.default_rng(4).standard_normal((64, 96)) * 8).astype(np.float32)
    for beta, threshold in [(1.0, 20.0), (3.0, 2.0)]:
        got = []
        for lib in (tg, torch):
            x = lib.tensor(x0, requires_grad=True)
            y = lib.nn.functional.softplus(x, beta, threshold)
            (y * y).sum().backward()
            got.append((y.detach().numpy(), x.grad.numpy()))
        np.testing.assert_allclose(got[0][0], got[1][0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got[0][1], got[1][1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 7), (64, 96)])  # (64, 96): the sigmoid's SIMD path
def test_silu_kernels_match_exact_values_as_the_reference_does(dt, shape):
    # Against exact values (float64, an exp-based sigmoid): the kernels within float
    # tolerance, as the reference kernels are (whose 0.5 + 0.5 tanh(x / 2) sigmoid is less
    # exact in the far left tail, so the two are not compared with each other directly).
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) * 6).astype(dt)
    x[0, :5] = np.nan, np.inf, -np.inf, 0.0, -40.0
    g = rng.standard_normal(shape).astype(dt)
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        s = 1.0 / (1.0 + np.exp(-x64))
        exact_y = x64 * s
    # (absolute: 0.5 + 0.5 tanh(x / 2) is within an ulp of 0.5 of the sigmoid, times |x|)
    tol = dict(rtol=2e-6, atol=2e-6) if dt is np.float32 else dict(rtol=1e-12, atol=1e-13)
    for kernels in (numba_nn, ref_nn):
        y = kernels.silu(x)
        assert y.dtype == dt
        np.testing.assert_allclose(y[:, 1:], exact_y[:, 1:], **tol)
        assert np.isnan(y[0, 0]) and y[0, 1] == np.inf and y[0, 3] == 0
        for gg in (g, np.broadcast_to(dt(0.5), shape), g.T.copy().T):  # broadcast, strided
            with np.errstate(invalid="ignore"):  # (inf * 0 at x = +-inf)
                exact = np.asarray(gg, np.float64) * s * (1 + x64 * (1 - s))
            got = kernels.silu_backward(gg, x)
            assert got.dtype == dt
            np.testing.assert_allclose(got[:, 1:], exact[:, 1:], **tol)
    assert numba_nn.silu_backward(g, x)[0, 0] != numba_nn.silu_backward(g, x)[0, 0]  # NaN
