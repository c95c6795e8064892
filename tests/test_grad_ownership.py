"""A leaf's ``.grad`` may take over the engine's gradient array without a copy only when
nothing else can see that memory. These tests pin the safety side: whatever the engine
keeps, a later in-place change of ``.grad`` (an optimizer step, ``zero_``) never shows
through any other tensor, and the values are right."""

from __future__ import annotations

import numpy as np

import tapegrad as tg
import tapegrad.nn.functional as F


def test_reshaped_kernel_results_become_grads_that_own_their_memory():
    rng = np.random.default_rng(0)
    x = tg.tensor(rng.standard_normal((3, 4, 8)), requires_grad=True)
    w = tg.tensor(rng.standard_normal(8), requires_grad=True)
    b = tg.tensor(rng.standard_normal(8), requires_grad=True)
    F.layer_norm(x, (8,), w, b).pow(2).sum().backward()
    before = [t.grad.numpy().copy() for t in (x, w, b)]
    # Same gradients, recomputed by the composed formula through autograd.grad (no .grad).
    xs, ws, bs = (t.detach().requires_grad_() for t in (x, w, b))
    mu = xs.mean(-1, keepdim=True)
    y = (xs - mu) * ((xs - mu).pow(2).mean(-1, keepdim=True) + 1e-5).rsqrt() * ws + bs
    ref = tg.autograd.grad(y.pow(2).sum(), (xs, ws, bs))
    for got, want in zip(before, ref):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-12)
    for t in (x, w, b):
        t.grad.zero_()
    for want in ref:  # the reference grads are untouched by zeroing ours
        assert np.abs(want.numpy()).sum() > 0


def test_a_gradient_a_hook_kept_is_copied_before_it_becomes_grad():
    x = tg.ones(2, 3, requires_grad=True)
    seen = []
    y = (x * 2).reshape(6)
    y.register_hook(lambda g: seen.append(g))
    y.sum().backward()
    x.grad.add_(100.0)
    assert seen[0].tolist() == [1.0] * 6 and x.grad.tolist() == [[102.0] * 3] * 2


def test_a_transposed_gradient_is_made_contiguous():
    w = tg.ones(4, 3, requires_grad=True)
    (tg.ones(2, 3) @ w.T).sum().backward()
    assert w.grad._data.flags.c_contiguous and w.grad.tolist() == [[2.0] * 3] * 4
