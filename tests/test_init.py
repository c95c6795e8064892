"""``nn.init`` distributions (bounds and moments), deterministic initialisers, gains and fans
against PyTorch, and the default initialisation of every layer (PyTorch's schemes)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tapegrad
import tapegrad.nn as nn
from tapegrad.nn import init

torch = pytest.importorskip("torch")


def _np(t):
    return t.detach().numpy()


def test_calculate_gain_matches_torch():
    for name in ["linear", "conv1d", "conv2d", "sigmoid", "tanh", "relu", "selu"]:
        assert init.calculate_gain(name) == torch.nn.init.calculate_gain(name)
    for a in [None, 0.2, 3]:
        assert init.calculate_gain("leaky_relu", a) == torch.nn.init.calculate_gain(
            "leaky_relu", a)
    with pytest.raises(ValueError, match="Unsupported nonlinearity gelu"):
        init.calculate_gain("gelu")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", "x")


def test_fans_match_torch():
    for shape in [(3, 5), (4, 3, 2), (6, 2, 3, 5)]:
        ours = init._calculate_fan_in_and_fan_out(tapegrad.empty(*shape))
        ref = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))
        assert ours == ref
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(tapegrad.empty(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(tapegrad.empty(3, 3), mode="fan_avg")


def _check_uniform(v, bound):
    assert v.min() >= -bound and v.max() <= bound
    assert v.min() < -0.9 * bound and v.max() > 0.9 * bound
    assert abs(v.std() - bound / math.sqrt(3)) < 0.03 * bound


def test_uniform_family_bounds_and_spread():
    tapegrad.manual_seed(0)
    t = tapegrad.empty(200, 300)
    _check_uniform(_np(init.uniform_(t, -0.3, 0.3)), 0.3)
    init.uniform_(t, 2.0, 3.0)
    assert _np(t).min() >= 2.0 and _np(t).max() < 3.0
    _check_uniform(_np(init.xavier_uniform_(t, gain=2.0)), 2.0 * math.sqrt(6 / 500))
    _check_uniform(_np(init.kaiming_uniform_(t, a=math.sqrt(5))), 1 / math.sqrt(300))
    _check_uniform(_np(init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu")),
                   math.sqrt(2) * math.sqrt(3 / 200))


def test_normal_family_moments():
    tapegrad.manual_seed(1)
    t = tapegrad.empty(300, 200)
    v = _np(init.normal_(t, 1.5, 0.2))
    assert abs(v.mean() - 1.5) < 0.005 and abs(v.std() - 0.2) < 0.005
    assert abs(_np(init.xavier_normal_(t)).std() - math.sqrt(2 / 500)) < 0.002
    assert abs(_np(init.kaiming_normal_(t, nonlinearity="relu")).std()
               - math.sqrt(2 / 200)) < 0.003
    v = _np(init.trunc_normal_(t, 0.0, 1.0, -0.5, 1.0))
    assert v.min() >= -0.5 and v.max() <= 1.0 and abs(v.mean() - 0.2066) < 0.01


def test_deterministic_initialisers():
    t = tapegrad.empty(3, 4)
    assert np.all(_np(init.constant_(t, 0.25)) == 0.25)
    assert np.all(_np(init.ones_(t)) == 1) and np.all(_np(init.zeros_(t)) == 0)
    np.testing.assert_array_equal(_np(init.eye_(t)), np.eye(3, 4))
    w = init.dirac_(tapegrad.empty(4, 2, 3, 3), groups=2)
    np.testing.assert_array_equal(_np(w), torch.nn.init.dirac_(torch.empty(4, 2, 3, 3),
                                                                groups=2).numpy())
    x = tapegrad.randn(1, 4, 5, 5)
    y = nn.functional.conv2d(x, init.dirac_(tapegrad.empty(4, 4, 3, 3)), padding=1)
    np.testing.assert_allclose(_np(y), _np(x), atol=1e-6)  # dirac passes channels through


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 2, 3)])
def test_orthogonal(shape):
    w = _np(init.orthogonal_(tapegrad.empty(*shape, dtype=tapegrad.float64), gain=2.0))
    m = w.reshape(shape[0], -1)
    small = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(small, 4.0 * np.eye(small.shape[0]), atol=1e-12)


def test_sparse_and_empty():
    w = _np(init.sparse_(tapegrad.empty(10, 6), sparsity=0.3))
    assert np.all((w == 0).sum(0) >= 3)
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_uniform_(tapegrad.empty(0, 3))


def test_seed_and_generator_reproducibility_and_no_tape():
    p = nn.Parameter(tapegrad.empty(4, 4))
    tapegrad.manual_seed(42)
    a = _np(init.normal_(p)).copy()
    tapegrad.manual_seed(42)
    assert np.array_equal(a, _np(init.normal_(p)))
    g = tapegrad.Generator().manual_seed(7)
    b = _np(p.uniform_(-1, 1, generator=g)).copy()
    g.manual_seed(7)
    assert np.array_equal(b, _np(p.uniform_(-1, 1, generator=g)))
    assert p.is_leaf and p.grad_fn is None and p.requires_grad
    assert p.normal_(0, 1) is p


def test_default_layer_initialisation_schemes():
    tapegrad.manual_seed(3)
    lin = nn.Linear(400, 300)
    _check_uniform(_np(lin.weight), 1 / math.sqrt(400))
    b = _np(lin.bias)
    assert np.abs(b).max() <= 1 / math.sqrt(400) and np.abs(b).max() > 0.9 / math.sqrt(400)
    conv = nn.Conv2d(16, 64, 5, groups=2)
    fan_in = 8 * 25
    _check_uniform(_np(conv.weight), 1 / math.sqrt(fan_in))
    assert np.abs(_np(conv.bias)).max() <= 1 / math.sqrt(fan_in)
    bil = nn.Bilinear(100, 30, 200)
    _check_uniform(_np(bil.weight), 1 / math.sqrt(100))
    assert np.abs(_np(bil.bias)).max() <= 0.1
    ln, bn = nn.LayerNorm(5), nn.BatchNorm1d(5)
    for m in (ln, bn):
        assert np.all(_np(m.weight) == 1) and np.all(_np(m.bias) == 0)
    assert np.all(_np(bn.running_var) == 1) and bn.num_batches_tracked.item() == 0
    assert np.all(_np(nn.PReLU(3).weight) == 0.25)
    e = _np(nn.Embedding(500, 40).weight)
    assert abs(e.mean()) < 0.01 and abs(e.std() - 1) < 0.01
    assert nn.Linear(3, 2, dtype=tapegrad.float64).weight.dtype == tapegrad.float64
