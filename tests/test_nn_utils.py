"""``nn.utils``: gradient clipping and parameter/vector conversion against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad
import tapegrad.nn as nn

torch = pytest.importorskip("torch")

TOL = dict(rtol=1e-10, atol=1e-10)


def _np(t):
    return t.detach().numpy()


def _grads_pair(seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (4,), (2, 2, 2)]
    vals = [rng.standard_normal(s) for s in shapes]
    grads = [rng.standard_normal(s) * 3 for s in shapes]
    tp, op = [], []
    for v, g in zip(vals, grads):
        t = torch.nn.Parameter(torch.tensor(v))
        t.grad = torch.tensor(g)
        o = nn.Parameter(tapegrad.tensor(v))
        o.grad = tapegrad.tensor(g)
        tp.append(t)
        op.append(o)
    return tp, op


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    tp, op = _grads_pair()
    tn = torch.nn.utils.clip_grad_norm_(tp, max_norm, norm_type)
    on = nn.utils.clip_grad_norm_(op, max_norm, norm_type)
    assert isinstance(on, tapegrad.Tensor)
    np.testing.assert_allclose(on.item(), tn.item(), **TOL)
    for t, o in zip(tp, op):
        np.testing.assert_allclose(_np(o.grad), _np(t.grad), **TOL)


def test_clip_grad_norm_errors_and_edge_cases():
    _, op = _grads_pair()
    op[0].grad[0, 0] = float("nan")
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(op, 1.0, error_if_nonfinite=True)
    p = nn.Parameter(tapegrad.ones(2))
    assert nn.utils.clip_grad_norm_([p], 1.0).item() == 0.0  # no gradients at all
    p.grad = tapegrad.tensor([3.0, 4.0])
    assert nn.utils.clip_grad_norm_(p, 1.0).item() == pytest.approx(5.0)
    assert p.grad.norm().item() == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_value_and_vector_conversion_match_torch():
    tp, op = _grads_pair(1)
    torch.nn.utils.clip_grad_value_(tp, 0.7)
    nn.utils.clip_grad_value_(op, 0.7)
    for t, o in zip(tp, op):
        np.testing.assert_array_equal(_np(o.grad), _np(t.grad))
    tv = torch.nn.utils.parameters_to_vector(tp)
    ov = nn.utils.parameters_to_vector(op)
    np.testing.assert_array_equal(_np(ov), _np(tv))
    for p in op:
        p.grad = None
    ov.sum().backward()  # differentiable
    assert all(np.all(_np(p.grad) == 1) for p in op)
    nn.utils.vector_to_parameters(tapegrad.arange(24.0, dtype=tapegrad.float64), op)
    assert op[1].tolist() == [12.0, 13.0, 14.0, 15.0] and isinstance(op[1], nn.Parameter)
    with pytest.raises(TypeError, match="expected tapegrad.Tensor"):
        nn.utils.vector_to_parameters([1.0], op)
