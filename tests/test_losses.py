"""Every loss module against PyTorch in float64, in every reduction mode, forward and the
gradients of all differentiable arguments to 1e-10; then the error cases."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad
import tapegrad.nn as nn
import tapegrad.nn.functional as F

torch = pytest.importorskip("torch")

TOL = dict(rtol=1e-10, atol=1e-10)
REDUCTIONS = ["none", "mean", "sum"]


def _arr(kind, shape, rng, hi=None):
    if kind == "x":
        return rng.standard_normal(shape)
    if kind == "prob":
        return rng.uniform(0.05, 0.95, shape)
    if kind == "pos":
        return rng.uniform(0.5, 2.0, shape)
    if kind == "simplex":
        a = rng.uniform(0.1, 1.0, shape)
        return a / a.sum(1, keepdims=True)
    if kind == "cls":
        return rng.integers(0, hi, shape)
    raise ValueError(kind)


# name, module factory (lib.nn, lib, reduction, consts), input specs, consts specs
# An input spec is (kind, shape[, n_classes]); inputs of kind x/prob/simplex get gradients.
CASES = [
    ("MSELoss", lambda m, r, c: m.MSELoss(reduction=r), [("x", (3, 4)), ("x", (3, 4))], []),
    ("L1Loss", lambda m, r, c: m.L1Loss(reduction=r), [("x", (3, 4)), ("x", (3, 4))], []),
    ("HuberLoss", lambda m, r, c: m.HuberLoss(reduction=r, delta=0.6),
     [("x", (3, 4)), ("x", (3, 4))], []),
    ("SmoothL1Loss", lambda m, r, c: m.SmoothL1Loss(reduction=r, beta=0.5),
     [("x", (3, 4)), ("x", (3, 4))], []),
    ("CrossEntropy", lambda m, r, c: m.CrossEntropyLoss(reduction=r),
     [("x", (5, 4)), ("cls", (5,), 4)], []),
    ("CrossEntropy_weight_ignore", lambda m, r, c: m.CrossEntropyLoss(c[0], reduction=r,
                                                                      ignore_index=2),
     [("x", (7, 4)), ("cls", (7,), 4)], [("pos", (4,))]),
    ("CrossEntropy_smoothing", lambda m, r, c: m.CrossEntropyLoss(reduction=r,
                                                                  label_smoothing=0.15),
     [("x", (5, 4)), ("cls", (5,), 4)], []),
    ("CrossEntropy_smoothing_weight_ignore", lambda m, r, c: m.CrossEntropyLoss(
        c[0], reduction=r, label_smoothing=0.3, ignore_index=1),
     [("x", (7, 4)), ("cls", (7,), 4)], [("pos", (4,))]),
    ("CrossEntropy_kdim", lambda m, r, c: m.CrossEntropyLoss(c[0], reduction=r,
                                                             label_smoothing=0.1),
     [("x", (2, 4, 3, 2)), ("cls", (2, 3, 2), 4)], [("pos", (4,))]),
    ("CrossEntropy_unbatched", lambda m, r, c: m.CrossEntropyLoss(reduction=r),
     [("x", (4,)), ("cls", (), 4)], []),
    ("CrossEntropy_probs", lambda m, r, c: m.CrossEntropyLoss(reduction=r),
     [("x", (5, 4)), ("simplex", (5, 4))], []),
    ("CrossEntropy_probs_weight_smoothing", lambda m, r, c: m.CrossEntropyLoss(
        c[0], reduction=r, label_smoothing=0.2), [("x", (3, 4, 2)), ("simplex", (3, 4, 2))],
     [("pos", (4,))]),
    ("NLLLoss", lambda m, r, c: m.NLLLoss(reduction=r), [("x", (5, 4)), ("cls", (5,), 4)], []),
    ("NLLLoss_weight_ignore_kdim", lambda m, r, c: m.NLLLoss(c[0], reduction=r,
                                                             ignore_index=0),
     [("x", (3, 4, 5)), ("cls", (3, 5), 4)], [("pos", (4,))]),
    ("BCELoss", lambda m, r, c: m.BCELoss(reduction=r), [("prob", (3, 4)), ("prob", (3, 4))],
     []),
    ("BCELoss_weight", lambda m, r, c: m.BCELoss(c[0], reduction=r),
     [("prob", (3, 4)), ("prob", (3, 4))], [("pos", (4,))]),
    ("BCEWithLogits", lambda m, r, c: m.BCEWithLogitsLoss(reduction=r),
     [("x", (3, 4)), ("prob", (3, 4))], []),
    ("BCEWithLogits_weight_pos_weight", lambda m, r, c: m.BCEWithLogitsLoss(
        c[0], reduction=r, pos_weight=c[1]), [("x", (3, 4)), ("prob", (3, 4))],
     [("pos", (3, 1)), ("pos", (4,))]),
    ("KLDivLoss", lambda m, r, c: m.KLDivLoss(reduction=r),
     [("x", (3, 4)), ("simplex", (3, 4))], []),
    ("KLDivLoss_log_target", lambda m, r, c: m.KLDivLoss(reduction=r, log_target=True),
     [("x", (3, 4)), ("x", (3, 4))], []),
]


def _run(lib, case, reduction, seed=0):
    name, make, specs, consts = case
    rng = np.random.default_rng(seed)
    ins = []
    for spec in specs:
        a = _arr(spec[0], spec[1], rng, spec[2] if len(spec) > 2 else None)
        t = lib.tensor(a)
        if spec[0] != "cls":
            t.requires_grad_(True)
        ins.append(t)
    cs = [lib.tensor(_arr(k, s, rng)) for k, s in consts]
    if name.startswith("CrossEntropy") and "ignore" in name:
        ins[1][0] = 2 if "weight_ignore" in name and "smoothing" not in name else 1
    if name.startswith("NLLLoss_weight_ignore"):
        ins[1][0, 0] = 0
    args = list(ins)
    if name.startswith("KLDivLoss") and "log" not in name:
        args[0] = ins[0].log_softmax(1)  # gradients still checked on the leaf
    loss = make(lib.nn, reduction, cs)(*args)
    g = np.random.default_rng(seed + 1).standard_normal(tuple(loss.shape))
    loss.backward(lib.tensor(g))
    return loss, ins


@pytest.mark.filterwarnings("ignore:.*reduction. 'mean' divides")
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_loss_matches_torch(case, reduction):
    ours, oin = _run(tapegrad, case, reduction)
    ref, tin = _run(torch, case, reduction)
    assert tuple(ours.shape) == tuple(ref.shape)
    np.testing.assert_allclose(ours.detach().numpy(), ref.detach().numpy(), **TOL)
    for a, b in zip(oin, tin):
        if b.grad is not None:
            assert a.grad is not None
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **TOL)


@pytest.mark.filterwarnings("ignore:size_average and reduce args")
def test_kl_div_batchmean_and_legacy_reduction_flags():
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((3, 4)), rng.uniform(0.1, 1, (3, 4))
    ours = F.kl_div(tapegrad.tensor(x), tapegrad.tensor(t), reduction="batchmean")
    ref = torch.nn.functional.kl_div(torch.tensor(x), torch.tensor(t), reduction="batchmean")
    np.testing.assert_allclose(ours.item(), ref.item(), **TOL)
    a, b = rng.standard_normal(5), rng.standard_normal(5)
    for sa, rd in [(False, None), (None, False), (True, True)]:
        o = nn.MSELoss(size_average=sa, reduce=rd)(tapegrad.tensor(a), tapegrad.tensor(b))
        r = torch.nn.MSELoss(size_average=sa, reduce=rd)(torch.tensor(a), torch.tensor(b))
        np.testing.assert_allclose(o.numpy(), r.numpy(), **TOL)


def test_weighted_losses_register_buffers_like_torch():
    for make in [lambda m, lib: m.CrossEntropyLoss(weight=lib.ones(3)),
                 lambda m, lib: m.BCEWithLogitsLoss(pos_weight=lib.ones(3)),
                 lambda m, lib: m.NLLLoss(), lambda m, lib: m.BCELoss(weight=lib.ones(2))]:
        assert list(make(nn, tapegrad).state_dict()) == list(make(torch.nn, torch).state_dict())


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_bce_with_logits_is_stable_for_huge_logits():
    x = tapegrad.tensor([-800.0, 800.0, 0.0], dtype=tapegrad.float64, requires_grad=True)
    t = tapegrad.tensor([1.0, 0.0, 0.5], dtype=tapegrad.float64)
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="sum")
    loss.backward()
    assert np.isclose(loss.item(), 1600.0 + np.log(2.0))
    assert np.all(np.isfinite(x.grad.numpy()))
    p = tapegrad.tensor([0.0, 1.0], dtype=tapegrad.float64, requires_grad=True)
    bce = F.binary_cross_entropy(p, tapegrad.tensor([1.0, 0.0], dtype=tapegrad.float64))
    assert bce.item() == pytest.approx(100.0)  # each log clamped at -100, as PyTorch


def test_all_targets_ignored_gives_nan_like_torch():
    x = np.zeros((2, 3))
    ours = F.cross_entropy(tapegrad.tensor(x), tapegrad.tensor([-100, -100]))
    ref = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor([-100, -100]))
    assert np.isnan(ours.item()) and np.isnan(ref.item())


# ---- errors ----------------------------------------------------------------------------------
def test_target_out_of_range_names_the_value():
    x = tapegrad.zeros(3, 4)
    with pytest.raises(IndexError, match="Target 7 is out of bounds"):
        F.cross_entropy(x, tapegrad.tensor([0, 7, 1]))
    with pytest.raises(IndexError, match="Target -2 is out of bounds"):
        F.nll_loss(x, tapegrad.tensor([0, -2, 1]))
    # ignore_index itself is never out of range
    assert np.isfinite(F.cross_entropy(x, tapegrad.tensor([0, -100, 1])).item())


def test_shape_and_value_errors():
    with pytest.raises(ValueError, match=r"batch_size \(3\) to match target batch_size \(2\)"):
        F.cross_entropy(tapegrad.zeros(3, 4), tapegrad.tensor([0, 1]))
    with pytest.raises(RuntimeError, match=r"Expected target size \[2, 5\], got \[2, 4\]"):
        F.cross_entropy(tapegrad.zeros(2, 3, 5), tapegrad.zeros(2, 4, dtype=tapegrad.int64))
    with pytest.raises(RuntimeError, match="expected scalar type Long"):
        F.nll_loss(tapegrad.zeros(2, 3), tapegrad.zeros(2))
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(tapegrad.tensor([1.5]), tapegrad.tensor([1.0]))
    with pytest.raises(ValueError, match=r"target size \(\(3,\)\).*input size \(\(3, 1\)\)"):
        F.binary_cross_entropy(tapegrad.full((3, 1), 0.5), tapegrad.ones(3))
    with pytest.raises(ValueError, match=r"Target size \(\(3,\)\) must be the same"):
        F.binary_cross_entropy_with_logits(tapegrad.zeros(3, 1), tapegrad.ones(3))
    with pytest.raises(ValueError, match="avg is not a valid value for reduction"):
        F.mse_loss(tapegrad.zeros(2), tapegrad.zeros(2), reduction="avg")
    with pytest.raises(RuntimeError, match=r"weight tensor .* shape: \(3,\)"):
        F.nll_loss(tapegrad.zeros(2, 4), tapegrad.tensor([0, 1]), weight=tapegrad.ones(3))
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(tapegrad.zeros(2, 4), tapegrad.tensor([0, 1]), label_smoothing=1.5)


def test_mse_broadcast_warns_like_torch():
    with pytest.warns(UserWarning, match="different to the input size"):
        loss = F.mse_loss(tapegrad.zeros(3, 1), tapegrad.ones(3))
    assert loss.item() == 1.0
    with pytest.raises(RuntimeError), pytest.warns(UserWarning):
        F.mse_loss(tapegrad.zeros(3), tapegrad.ones(4))
