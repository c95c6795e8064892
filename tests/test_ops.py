"""Every row of the op table, against PyTorch (forward and gradients) and against central
finite differences (gradcheck). PyTorch tests skip where torch is not installed."""

from __future__ import annotations

import numpy as np
import pytest
from optable import CASES, make_inputs

import tapegrad

torch = pytest.importorskip if False else None
try:
    import torch  # noqa: F811
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
IDS = [c.id for c in CASES]


def _np(t):
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def _run(case, lib):
    xs = make_inputs(case, lib)
    fn = case.torch_fn if (lib is torch and case.torch_fn) else case.fn
    return xs, fn(lib, *xs)


@needs_torch
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_torch(case):
    _, ours = _run(case, tapegrad)
    _, ref = _run(case, torch)
    assert tuple(ours.shape) == tuple(ref.shape)
    assert str(ours.dtype).split(".")[-1] == str(ref.dtype).split(".")[-1]
    np.testing.assert_allclose(_np(ours), _np(ref), rtol=case.rtol, atol=case.atol)


@needs_torch
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_grad_matches_torch(case):
    xs, ours = _run(case, tapegrad)
    txs, ref = _run(case, torch)
    if not ours.requires_grad:
        pytest.skip("output does not require grad")
    g = np.random.default_rng(1).standard_normal(tuple(ours.shape))
    ours.backward(tapegrad.tensor(g, dtype=ours.dtype))
    ref.backward(torch.tensor(g, dtype=ref.dtype))
    for x, tx in zip(xs, txs):
        if getattr(tx, "requires_grad", False):
            assert x.grad is not None, "no gradient reached an input"
            assert x.grad.shape == x.shape
            np.testing.assert_allclose(_np(x.grad), _np(tx.grad), rtol=case.rtol,
                                       atol=case.atol)


@pytest.mark.parametrize("case", [c for c in CASES if c.gradcheck], ids=[c.id for c in CASES
                                                                         if c.gradcheck])
def test_gradcheck(case):
    xs = make_inputs(case, tapegrad)
    if not any(getattr(x, "requires_grad", False) for x in xs):
        pytest.skip("no differentiable input")
    assert tapegrad.autograd.gradcheck(lambda *a: case.fn(tapegrad, *a), xs, eps=1e-6,
                                       atol=1e-6, rtol=1e-4)
