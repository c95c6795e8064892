"""Learning-rate schedulers against PyTorch: the learning rates and the parameter trajectories
of SGD driven by each scheduler (float64, 30 steps, two parameter groups), resuming, the
deprecated explicit-epoch form, state dicts and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tapegrad
from tapegrad.optim import SGD
from tapegrad.optim import lr_scheduler as S

try:
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")

_rng = np.random.RandomState(3)
INIT = [_rng.randn(3, 4) * 0.5, _rng.randn(4) * 0.1]
X, Y = _rng.randn(6, 3), _rng.randn(6, 4)
# A noisy metric with plateaus, so that ReduceLROnPlateau has something to do.
METRIC = [1.0, 0.9, 0.95, 0.95, 0.9, 0.7, 0.75, 0.72, 0.71, 0.8, 0.69, 0.69, 0.7, 0.5, 0.6,
          0.6, 0.6, 0.6, 0.4, 0.41, 0.42, 0.43, 0.39, 0.45, 0.45, 0.46, 0.2, 0.25, 0.3, 0.3]
STEPS = 30


def _loss(lib, ps, x, y):
    return ((lib.tanh(x @ ps[0] + ps[1]) - y) ** 2).mean()


def _run(lib, make_sched, weight_decay=0.0, steps=STEPS, state=None):
    """Train with ``make_sched(lr_scheduler_module, optimizer)``; lrs and params per step."""
    ps = [lib.tensor(a.copy(), requires_grad=True) for a in INIT]
    opt = lib.optim.SGD([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.05}], lr=0.1,
                        momentum=0.9, weight_decay=weight_decay)
    sched = make_sched(lib.optim.lr_scheduler, opt)
    x, y = lib.tensor(X), lib.tensor(Y)
    lrs, traj = [list(sched.get_last_lr())], []
    for t in range(steps):
        opt.zero_grad()
        _loss(lib, ps, x, y).backward()
        opt.step()
        if isinstance(sched, lib.optim.lr_scheduler.ReduceLROnPlateau):
            sched.step(METRIC[t])
        else:
            sched.step()
        lrs.append(list(sched.get_last_lr()))
        traj.append([p.detach().numpy().copy() for p in ps])
    return lrs, traj


SCHEDULERS = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.5),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    "LambdaLR": lambda m, o: m.LambdaLR(o, [lambda e: 1 / (1 + e), lambda e: 0.97 ** e]),
    "LambdaLR-one": lambda m, o: m.LambdaLR(o, lambda e: (e % 5 + 1) / 5),
    "Plateau-min-rel": lambda m, o: m.ReduceLROnPlateau(o, factor=0.5, patience=1),
    "Plateau-min-abs": lambda m, o: m.ReduceLROnPlateau(o, factor=0.5, patience=0, cooldown=2,
                                                        threshold=0.05, threshold_mode="abs",
                                                        min_lr=[0.01, 0.02]),
    "Plateau-max": lambda m, o: m.ReduceLROnPlateau(o, mode="max", factor=0.3, patience=2,
                                                    min_lr=0.004),
}


@needs_torch
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_matches_torch(name, weight_decay):
    lrs, traj = _run(tapegrad, SCHEDULERS[name], weight_decay)
    tlrs, ttraj = _run(torch, SCHEDULERS[name], weight_decay)
    np.testing.assert_allclose(np.array(lrs), np.array(tlrs), rtol=1e-12, atol=0)
    assert len({tuple(lr) for lr in lrs}) > 2  # the schedule really changed the lr
    for t, (a, b) in enumerate(zip(traj, ttraj)):
        for pa, pb in zip(a, b):
            assert np.max(np.abs(pa - pb)) <= 1e-10, f"step {t + 1}"


@needs_torch
@pytest.mark.parametrize("name", ["StepLR", "ExponentialLR", "CosineAnnealingLR", "LambdaLR"])
def test_resume_with_last_epoch_matches_torch(name):
    def make(m, o):
        for g in o.param_groups:
            g["initial_lr"] = g["lr"] * 2
        return _with_last_epoch(m, o, name)

    lrs, _ = _run(tapegrad, make, steps=12)
    tlrs, _ = _run(torch, make, steps=12)
    np.testing.assert_allclose(np.array(lrs), np.array(tlrs), rtol=1e-12, atol=0)


def _with_last_epoch(m, o, name):
    if name == "StepLR":
        return m.StepLR(o, step_size=3, gamma=0.5, last_epoch=4)
    if name == "ExponentialLR":
        return m.ExponentialLR(o, gamma=0.9, last_epoch=4)
    if name == "LambdaLR":
        return m.LambdaLR(o, lambda e: 0.9 ** e, last_epoch=4)
    return m.CosineAnnealingLR(o, T_max=8, eta_min=0.01, last_epoch=4)


@needs_torch
def test_explicit_epoch_uses_closed_form_like_torch():
    out = []
    for lib in (tapegrad, torch):
        w = lib.tensor(np.ones(2), requires_grad=True)
        opt = lib.optim.SGD([w], lr=0.1)
        sched = lib.optim.lr_scheduler.StepLR(opt, 3, 0.5)
        lrs = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the epoch argument is deprecated in both
            for e in (5, 2, 9, 7):
                opt.step()
                sched.step(e)
                lrs.append(sched.get_last_lr()[0])
        out.append(lrs)
    assert out[0] == pytest.approx(out[1], rel=1e-14)
    assert out[0] == pytest.approx([0.05, 0.1, 0.0125, 0.025])


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_state_dict_round_trip_continues_identically(name):
    ps = [tapegrad.tensor(a.copy(), requires_grad=True) for a in INIT]
    make = SCHEDULERS[name]
    opt = SGD([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.05}], lr=0.1, momentum=0.9)
    sched = make(S, opt)

    def train(opt, sched, ps, start, stop):
        x, y = tapegrad.tensor(X), tapegrad.tensor(Y)
        for t in range(start, stop):
            opt.zero_grad()
            _loss(tapegrad, ps, x, y).backward()
            opt.step()
            sched.step(METRIC[t]) if isinstance(sched, S.ReduceLROnPlateau) else sched.step()
        return [p.detach().numpy().copy() for p in ps], sched.get_last_lr()

    train(opt, sched, ps, 0, 12)
    osd, ssd = opt.state_dict(), sched.state_dict()
    assert "optimizer" not in ssd and ssd["last_epoch"] == 12
    ps2 = [tapegrad.tensor(p.detach().numpy().copy(), requires_grad=True) for p in ps]
    opt2 = SGD([{"params": ps2[:1]}, {"params": ps2[1:], "lr": 0.05}], lr=0.1, momentum=0.9)
    sched2 = make(S, opt2)  # build the scheduler first: it rewrites the group lrs
    opt2.load_state_dict(osd)
    sched2.load_state_dict(ssd)
    a = train(opt, sched, ps, 12, STEPS)
    b = train(opt2, sched2, ps2, 12, STEPS)
    assert a[1] == b[1]
    for pa, pb in zip(a[0], b[0]):
        np.testing.assert_array_equal(pa, pb)


def test_lambda_state_dict_keeps_callable_objects_only():
    class Warmup:
        def __init__(self):
            self.n = 4

        def __call__(self, e):
            return min(1.0, (e + 1) / self.n)

    w = tapegrad.ones(2, requires_grad=True)
    opt = SGD([{"params": [w]}, {"params": [tapegrad.ones(1, requires_grad=True)]}], lr=0.1)
    fn = Warmup()
    sched = S.LambdaLR(opt, [fn, lambda e: 1.0])
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [{"n": 4}, None]
    fn.n = 10
    sched.load_state_dict(sd)
    assert fn.n == 4


def test_get_lr_outside_step_warns_and_last_lr_is_set_at_construction():
    w = tapegrad.ones(2, requires_grad=True)
    opt = SGD([w], lr=0.1)
    sched = S.ExponentialLR(opt, gamma=0.5)
    assert sched.get_last_lr() == [0.1] and sched.last_epoch == 0
    assert opt.param_groups[0]["initial_lr"] == 0.1
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()
    opt.step()
    sched.step()
    assert sched.get_last_lr() == [0.05] and opt.param_groups[0]["lr"] == 0.05


def test_bad_input_raises():
    w = tapegrad.ones(2, requires_grad=True)
    opt = SGD([w], lr=0.1)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        S.StepLR("sgd", step_size=3)
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(opt, step_size=3, last_epoch=5)
    with pytest.raises(ValueError, match="Expected 1 lr_lambdas, but got 2"):
        S.LambdaLR(opt, [lambda e: 1.0, lambda e: 1.0])
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        S.ReduceLROnPlateau(opt, factor=1.5)
    with pytest.raises(ValueError, match="mode 'best' is unknown"):
        S.ReduceLROnPlateau(opt, mode="best")
    with pytest.raises(ValueError, match="threshold mode 'pct' is unknown"):
        S.ReduceLROnPlateau(opt, threshold_mode="pct")
    with pytest.raises(ValueError, match="expected 1 min_lrs, got 2"):
        S.ReduceLROnPlateau(opt, min_lr=[0.1, 0.2])
    assert opt.param_groups[0]["lr"] == 0.1
