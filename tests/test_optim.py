"""Optimizers: trajectories against PyTorch and against the classical rules written by hand,
state_dict round trips, the numba kernels against the NumPy reference, and bad input.

The model is a 2-layer tanh MLP written with raw leaf tensors (four parameter tensors), so the
tests need nothing from ``tapegrad.nn``. Everything is float64 and compared to 1e-10."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest

import tapegrad
from tapegrad import backends
from tapegrad.backends import ref_optim
from tapegrad.optim import SGD, Adagrad, Adam, AdamW, Momentum, Nesterov, RMSprop

try:
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")

_rng = np.random.RandomState(0)
INIT = [_rng.randn(3, 5) * 0.5, _rng.randn(5) * 0.1, _rng.randn(5, 2) * 0.5, _rng.randn(2) * 0.1]
X = _rng.randn(8, 3)
Y = _rng.randn(8, 2)
STEPS = 25
TOL = 1e-10


def _loss(lib, ps, x, y):
    w1, b1, w2, b2 = ps
    h = lib.tanh(x @ w1 + b1)
    return ((h @ w2 + b2 - y) ** 2).mean()


def _grads(arrays):
    """The loss gradient at ``arrays`` (all parameters at once), by tapegrad."""
    ps = [tapegrad.tensor(a.copy(), requires_grad=True) for a in arrays]
    _loss(tapegrad, ps, tapegrad.tensor(X), tapegrad.tensor(Y)).backward()
    return [p.grad.numpy().copy() for p in ps]


def _params(lib):
    return [lib.tensor(a.copy(), requires_grad=True) for a in INIT]


def _groups(ps, spec):
    """One group, or two with the second group's overrides (``spec`` = dict or None)."""
    if spec is None:
        return ps
    return [{"params": ps[:2]}, dict(spec, params=ps[2:])]


def _trajectory(lib, make_opt, steps=STEPS, ps=None, opt=None):
    ps = _params(lib) if ps is None else ps
    opt = make_opt(ps) if opt is None else opt
    x, y = lib.tensor(X), lib.tensor(Y)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        _loss(lib, ps, x, y).backward()
        opt.step()
        out.append([p.detach().numpy().copy() for p in ps])
    return out


def _assert_same(ours, ref, tol=TOL):
    assert len(ours) == len(ref)
    for t, (a, b) in enumerate(zip(ours, ref)):
        for i, (pa, pb) in enumerate(zip(a, b)):
            err = np.max(np.abs(pa - pb))
            assert err <= tol, f"step {t + 1}, parameter {i}: max |diff| = {err:.3e}"


# (name, kwargs, second group's overrides)
TORCH_CASES = [
    ("SGD", dict(lr=0.1), None),
    ("SGD", dict(lr=0.1, weight_decay=0.05), None),
    ("SGD", dict(lr=0.1, momentum=0.9), None),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.05), {"lr": 0.1}),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.05), None),
    ("SGD", dict(lr=0.01, momentum=0.5, maximize=True), None),
    ("Adam", dict(lr=0.02), None),
    ("Adam", dict(lr=0.02, weight_decay=0.1), {"betas": (0.8, 0.99)}),
    ("Adam", dict(lr=0.02, amsgrad=True, weight_decay=0.1), None),
    ("Adam", dict(lr=0.01, maximize=True, eps=1e-6), None),
    ("AdamW", dict(lr=0.02), None),
    ("AdamW", dict(lr=0.02, weight_decay=0.0), None),
    ("AdamW", dict(lr=0.02, weight_decay=0.3, amsgrad=True), {"lr": 0.05}),
    ("RMSprop", dict(lr=0.01), None),
    ("RMSprop", dict(lr=0.01, weight_decay=0.1, alpha=0.9), None),
    ("RMSprop", dict(lr=0.01, momentum=0.9), None),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1), {"alpha": 0.95}),
    ("RMSprop", dict(lr=0.005, centered=True, maximize=True), None),
    ("Adagrad", dict(lr=0.1), None),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1, lr_decay=0.05), None),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.2, eps=1e-6), {"lr": 0.2}),
    ("Adagrad", dict(lr=0.05, maximize=True), None),
]
CASE_IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}{'-groups' if g else ''}"
            for n, kw, g in TORCH_CASES]


@needs_torch
@pytest.mark.parametrize("name,kwargs,group", TORCH_CASES, ids=CASE_IDS)
def test_matches_torch_trajectory(name, kwargs, group):
    ours = _trajectory(tapegrad, lambda ps: getattr(tapegrad.optim, name)(_groups(ps, group),
                                                                          **kwargs))
    ref = _trajectory(torch, lambda ps: getattr(torch.optim, name)(_groups(ps, group),
                                                                   foreach=False, **kwargs))
    _assert_same(ours, ref)
    assert np.max(np.abs(ours[-1][0] - INIT[0])) > 1e-3  # the run really moved


@needs_torch
@pytest.mark.parametrize("name,kwargs", [("Adam", dict(lr=0.02, weight_decay=0.1)),
                                         ("RMSprop", dict(lr=0.01, centered=True)),
                                         ("SGD", dict(lr=0.1, momentum=0.9))])
def test_float32_close_to_torch(name, kwargs):
    def run(lib):
        ps = [lib.tensor(a.astype(np.float32), requires_grad=True) for a in INIT]
        opt = getattr(lib.optim, name)(ps, **kwargs)
        x, y = lib.tensor(X.astype(np.float32)), lib.tensor(Y.astype(np.float32))
        for _ in range(10):
            opt.zero_grad()
            _loss(lib, ps, x, y).backward()
            opt.step()
        return [p.detach().numpy() for p in ps]

    for a, b in zip(run(tapegrad), run(torch)):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# ---- the classical rules, by hand ---------------------------------------------------------
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_nesterov_is_classical_lookahead_nesterov(weight_decay):
    lr, mu = 0.05, 0.9
    ours = _trajectory(tapegrad, lambda ps: Nesterov(ps, lr=lr, momentum=mu,
                                                     weight_decay=weight_decay))
    # Classical: the gradient of EVERY parameter is taken at the whole shifted model w + mu*v.
    w = [a.copy() for a in INIT]
    v = [np.zeros_like(a) for a in INIT]
    ref = []
    for _ in range(STEPS):
        look = [wi + mu * vi for wi, vi in zip(w, v)]
        g = [gi + weight_decay * li for gi, li in zip(_grads(look), look)]
        v = [mu * vi - lr * gi for vi, gi in zip(v, g)]
        w = [wi + vi for wi, vi in zip(w, v)]
        ref.append([wi + mu * vi for wi, vi in zip(w, v)])  # the optimizer stores w + mu*v
    _assert_same(ours, ref)


def test_nesterov_differs_from_per_parameter_substitution():
    # The mistake the seed article warns about: shift only the parameter being differentiated.
    lr, mu = 0.05, 0.9
    ours = _trajectory(tapegrad, lambda ps: Nesterov(ps, lr=lr, momentum=mu), steps=10)
    w = [a.copy() for a in INIT]
    v = [np.zeros_like(a) for a in INIT]
    for _ in range(10):
        g = []
        for i in range(len(w)):
            shifted = [wj + mu * vj if j == i else wj for j, (wj, vj) in enumerate(zip(w, v))]
            g.append(_grads(shifted)[i])
        v = [mu * vi - lr * gi for vi, gi in zip(v, g)]
        w = [wi + vi for wi, vi in zip(w, v)]
    wrong = [wi + mu * vi for wi, vi in zip(w, v)]
    assert max(np.max(np.abs(a - b)) for a, b in zip(ours[-1], wrong)) > 1e-6


def test_nesterov_is_not_chainers_nesterov_ag():
    lr, mu = 0.05, 0.9
    ours = _trajectory(tapegrad, lambda ps: Nesterov(ps, lr=lr, momentum=mu), steps=5)
    w = [a.copy() for a in INIT]
    v = [np.zeros_like(a) for a in INIT]
    for _ in range(5):  # chainer NesterovAG: v <- mu*v - lr*g; w <- w + mu*mu*v_NEW - (1+mu)*lr*g
        g = _grads(w)
        v = [mu * vi - lr * gi for vi, gi in zip(v, g)]
        w = [wi + mu * mu * vi - (1 + mu) * lr * gi for wi, vi, gi in zip(w, v, g)]
    assert max(np.max(np.abs(a - b)) for a, b in zip(ours[-1], w)) > 1e-6


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_momentum_is_heavy_ball(weight_decay):
    lr, mu = 0.05, 0.9
    ours = _trajectory(tapegrad, lambda ps: Momentum(ps, lr=lr, momentum=mu,
                                                     weight_decay=weight_decay))
    w = [a.copy() for a in INIT]
    v = [np.zeros_like(a) for a in INIT]
    ref = []
    for _ in range(STEPS):
        g = [gi + weight_decay * wi for gi, wi in zip(_grads(w), w)]
        v = [mu * vi - lr * gi for vi, gi in zip(v, g)]
        w = [wi + vi for wi, vi in zip(w, v)]
        ref.append(w)
    _assert_same(ours, ref)


def test_momentum_dampened_is_theano_tutorial_update():
    # updates = [(w, w - lr*u), (u, mu*u + (1 - mu)*grad(cost, w))], applied simultaneously.
    lr, mu = 0.05, 0.9
    ours = _trajectory(tapegrad, lambda ps: Momentum(ps, lr=lr, momentum=mu, dampening=mu))
    w = [a.copy() for a in INIT]
    u = [np.zeros_like(a) for a in INIT]
    ref = []
    for _ in range(STEPS):
        g = _grads(w)
        w, u = ([wi - lr * ui for wi, ui in zip(w, u)],
                [mu * ui + (1 - mu) * gi for ui, gi in zip(u, g)])
        ref.append(w)
    _assert_same(ours, ref)
    _assert_same(ours[:1], [INIT])  # u starts at zero: the first step leaves w where it is


def test_sgd_momentum_equals_heavy_ball_at_constant_lr():
    a = _trajectory(tapegrad, lambda ps: SGD(ps, lr=0.05, momentum=0.9))
    b = _trajectory(tapegrad, lambda ps: Momentum(ps, lr=0.05, momentum=0.9))
    _assert_same(a, b, 1e-12)


# ---- state dicts ----------------------------------------------------------------------------
ROUND_TRIP = [
    lambda ps: SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01),
    lambda ps: Momentum(ps, lr=0.05, momentum=0.9),
    lambda ps: Momentum(ps, lr=0.05, momentum=0.9, dampening=0.9),
    lambda ps: Nesterov(_groups(ps, {"lr": 0.02}), lr=0.05, momentum=0.9),
    lambda ps: Adam(ps, lr=0.02, amsgrad=True),
    lambda ps: AdamW(ps, lr=0.02),
    lambda ps: RMSprop(ps, lr=0.01, centered=True, momentum=0.9),
    lambda ps: Adagrad(ps, lr=0.1, lr_decay=0.01),
]


@pytest.mark.parametrize("make", ROUND_TRIP, ids=["SGD", "Momentum", "Momentum-damp", "Nesterov",
                                                  "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_state_dict_round_trip_continues_identically(make):
    ps = _params(tapegrad)
    opt = make(ps)
    _trajectory(tapegrad, None, steps=5, ps=ps, opt=opt)
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1, 2, 3]
    assert [i for g in sd["param_groups"] for i in g["params"]] == [0, 1, 2, 3]
    ps2 = [tapegrad.tensor(p.detach().numpy().copy(), requires_grad=True) for p in ps]
    opt2 = make(ps2)
    opt2.load_state_dict(sd)
    cont1 = _trajectory(tapegrad, None, steps=10, ps=ps, opt=opt)
    cont2 = _trajectory(tapegrad, None, steps=10, ps=ps2, opt=opt2)
    _assert_same(cont2, cont1, 0.0)  # bit for bit, and the two share no buffers


@needs_torch
@pytest.mark.parametrize("name,kwargs", [("Adam", dict(lr=0.02, amsgrad=True)),
                                         ("SGD", dict(lr=0.05, momentum=0.9))])
def test_state_dict_carries_over_from_torch(name, kwargs):
    tps = _params(torch)
    topt = getattr(torch.optim, name)(tps, foreach=False, **kwargs)
    _trajectory(torch, None, steps=5, ps=tps, opt=topt)
    tsd = topt.state_dict()
    sd = {"state": {k: {n: tapegrad.tensor(v.numpy()) for n, v in st.items()}
                    for k, st in tsd["state"].items()},
          "param_groups": copy.deepcopy(tsd["param_groups"])}
    ps = [tapegrad.tensor(p.detach().numpy().copy(), requires_grad=True) for p in tps]
    opt = getattr(tapegrad.optim, name)(ps, **kwargs)
    opt.load_state_dict(sd)
    ours = _trajectory(tapegrad, None, steps=10, ps=ps, opt=opt)
    ref = _trajectory(torch, None, steps=10, ps=tps, opt=topt)
    _assert_same(ours, ref)


def _snapshot(opt):
    return ([{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups],
            {id(p): {k: v.numpy().copy() for k, v in st.items()} for p, st in opt.state.items()})


def test_load_state_dict_mismatch_raises_and_changes_nothing():
    ps = _params(tapegrad)
    opt = Adam(_groups(ps, {"lr": 0.1}), lr=0.02)
    _trajectory(tapegrad, None, steps=2, ps=ps, opt=opt)
    good = copy.deepcopy(opt.state_dict())
    before = _snapshot(opt)

    one_group = Adam(ps, lr=0.02)
    _trajectory(tapegrad, None, steps=1, ps=ps, opt=one_group)
    with pytest.raises(ValueError, match=r"number of parameter groups \(1\).*\(2\)"):
        opt.load_state_dict(one_group.state_dict())

    bad = copy.deepcopy(good)
    bad["param_groups"][1]["params"] = [2]
    with pytest.raises(ValueError, match="group 1 has 1 parameters in the state dict and 2"):
        opt.load_state_dict(bad)

    bad = copy.deepcopy(good)
    bad["param_groups"][0]["lr"] = 0.5  # would change if the load went through
    bad["state"][2]["exp_avg"] = tapegrad.zeros(2, 5, dtype=tapegrad.float64)
    with pytest.raises(ValueError, match=r"'exp_avg' of parameter 2 has shape \(2, 5\), but "
                                         r"the parameter has shape \(5, 2\)"):
        opt.load_state_dict(bad)

    bad = copy.deepcopy(good)
    bad["param_groups"][0]["lr"] = -1.0
    with pytest.raises(ValueError, match="Invalid learning rate: -1.0"):
        opt.load_state_dict(bad)

    after = _snapshot(opt)
    assert after[0] == before[0]
    for k in before[1]:
        for n in before[1][k]:
            np.testing.assert_array_equal(after[1][k][n], before[1][k][n])


# ---- numba kernels against the reference ----------------------------------------------------
def _kernel_args(name, rng, dtype, flags):
    n = 37
    p, g = rng.randn(n).astype(dtype), rng.randn(n).astype(dtype)
    buf = lambda: np.abs(rng.randn(n)).astype(dtype)  # noqa: E731 - positive, valid for sqrt
    if name == "sgd_step":
        return (p, g, buf(), 0.1, 0.9, flags[0] * 0.3, flags[1] * 0.01, flags[2], flags[3],
                flags[0])
    if name == "momentum_step":
        return p, g, buf(), 0.1, 0.9, flags[0] * 0.9, flags[1] * 0.01, flags[3]
    if name == "nesterov_step":
        return p, g, buf(), 0.1, 0.9, flags[1] * 0.01, flags[3]
    if name == "adam_step":
        m, v = buf(), buf()
        return (p, g, m, v, v + buf() if flags[2] else None, 0.01, 0.9, 0.999, 1e-8,
                flags[1] * 0.1, flags[0], flags[2], flags[3], 3.0)
    if name == "rmsprop_step":
        sq = buf() + 2.0
        return (p, g, sq, buf() * 0.1 if flags[0] else None, buf() if flags[2] else None, 0.01,
                0.99, 1e-8, flags[1] * 0.1, 0.9 * flags[2], flags[0], flags[3])
    return p, g, buf(), 0.1, 0.01 * flags[0], 1e-10, flags[1] * 0.1, flags[3], 4.0


FLAG_SETS = [(False, False, False, False), (True, True, True, False), (True, False, True, True),
             (False, True, False, True)]


def _run_kernel(table, name, args, calls=3):
    args = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)
    for _ in range(calls):
        table[name](*args)
    return [a for a in args if isinstance(a, np.ndarray)]


@pytest.mark.parametrize("name", sorted(ref_optim.KERNELS))
def test_numba_kernels_match_reference(name):
    numba_optim = pytest.importorskip("tapegrad.backends.numba_optim")
    assert sorted(numba_optim.KERNELS) == sorted(ref_optim.KERNELS)
    rng = np.random.RandomState(1)
    for flags in FLAG_SETS:
        for dtype, tol in ((np.float64, 1e-13), (np.float32, 2e-6)):
            args = _kernel_args(name, rng, dtype, flags)
            ref = _run_kernel(ref_optim.KERNELS, name, args)
            ours = _run_kernel(numba_optim.KERNELS, name, args)
            assert not np.array_equal(ref[0], args[0])  # the parameter moved
            for a, b in zip(ours, ref):
                assert a.dtype == dtype
                np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_numba_kernel_on_non_contiguous_parameter_updates_in_place():
    numba_optim = pytest.importorskip("tapegrad.backends.numba_optim")
    base = np.arange(12.0).reshape(3, 4)
    p = base.T  # a transposed view: flattening would copy
    g = np.ones((4, 3))
    numba_optim.KERNELS["sgd_step"](p, g, None, 0.5, 0.0, 0.0, 0.0, False, False, False)
    np.testing.assert_array_equal(base, np.arange(12.0).reshape(3, 4) - 0.5)


def test_whole_optimizers_agree_across_backends(monkeypatch):
    numba_optim = pytest.importorskip("tapegrad.backends.numba_optim")
    refs = [_trajectory(tapegrad, make, steps=8) for make in ROUND_TRIP]
    table = dict(backends.get_backend("numpy").k, **numba_optim.KERNELS)
    monkeypatch.setattr(backends, "CPU_BACKEND", backends.Backend("numba-optim", np, table))
    for make, ref in zip(ROUND_TRIP, refs):
        _assert_same(_trajectory(tapegrad, make, steps=8), ref, 1e-12)
    monkeypatch.undo()
    if "numba" in backends.available_backends():  # the real numba backend, once it exists
        with backends.use("numba"):
            for make, ref in zip(ROUND_TRIP, refs):
                _assert_same(_trajectory(tapegrad, make, steps=8), ref, 1e-12)


# ---- the Optimizer base ---------------------------------------------------------------------
BAD = [
    (SGD, dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (SGD, dict(lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
    (SGD, dict(lr=0.1, weight_decay=-1), "Invalid weight_decay value: -1"),
    (SGD, dict(lr=0.1, nesterov=True), "Nesterov momentum requires a momentum and zero"),
    (SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "zero dampening"),
    (Momentum, dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (Momentum, dict(momentum=-0.1), "Invalid momentum value: -0.1"),
    (Momentum, dict(dampening=1.5), "Invalid dampening value: 1.5"),
    (Nesterov, dict(lr=-1e-3), "Invalid learning rate: -0.001"),
    (Nesterov, dict(momentum=-0.9), "Invalid momentum value: -0.9"),
    (Adam, dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (Adam, dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (Adam, dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (AdamW, dict(weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
    (RMSprop, dict(alpha=-0.5), "Invalid alpha value: -0.5"),
    (RMSprop, dict(momentum=-0.5), "Invalid momentum value: -0.5"),
    (Adagrad, dict(lr_decay=-1.0), "Invalid lr_decay value: -1.0"),
    (Adagrad, dict(initial_accumulator_value=-1.0), "initial_accumulator_value value: -1.0"),
]


@pytest.mark.parametrize("cls,kwargs,msg", BAD, ids=[f"{c.__name__}-{m[:24]}" for c, _, m in BAD])
def test_bad_hyper_parameters_raise(cls, kwargs, msg):
    w = tapegrad.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=re.escape(msg)):
        cls([w], **kwargs)
    opt = cls([w])  # and in a group added later, leaving the optimizer as it was
    group = dict(kwargs, params=[tapegrad.zeros(2, requires_grad=True)])
    with pytest.raises(ValueError, match="Invalid|Nesterov"):
        opt.add_param_group(group)
    assert len(opt.param_groups) == 1


def test_bad_params_raise():
    w = tapegrad.zeros(2, requires_grad=True)
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        SGD(w, lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors.*float"):
        SGD([w, 1.5], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        SGD([w * 2], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        SGD({w}, lr=0.1)


def test_param_groups_defaults_and_add_param_group():
    a, b = tapegrad.ones(2, requires_grad=True), tapegrad.ones(3, requires_grad=True)
    opt = SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]
    assert opt.param_groups[1]["momentum"] == 0.9
    a.grad, b.grad = tapegrad.ones(2), tapegrad.ones(3)
    opt.step()
    np.testing.assert_allclose(a.detach().numpy(), 0.9)
    np.testing.assert_allclose(b.detach().numpy(), 0.99)
    named = Adam([("w", a), ("b", b)], lr=0.1)
    assert named.param_groups[0]["param_names"] == ["w", "b"]
    assert "Parameter Group 0" in repr(opt) and "lr: 0.01" in repr(opt)


def test_zero_grad_step_skips_missing_grads_and_closure():
    a, b = tapegrad.ones(2, requires_grad=True), tapegrad.ones(2, requires_grad=True)
    opt = Adam([a, b], lr=0.1)
    (a * 3).sum().backward()
    opt.step()
    assert b.grad is None and len(opt.state[b]) == 0
    np.testing.assert_array_equal(b.detach().numpy(), 1.0)
    assert float(opt.state[a]["step"]) == 1.0
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad.numpy(), 0.0)
    opt.zero_grad()
    assert a.grad is None

    def closure():
        opt.zero_grad()
        loss = (a * a).sum()
        loss.backward()
        return loss

    with tapegrad.no_grad():  # the closure still records: step turns grad mode back on
        loss = opt.step(closure)
    assert float(loss) > 0 and a.grad is not None


def test_step_bumps_version_so_stale_graphs_refuse_backward():
    w = tapegrad.ones(3, requires_grad=True)
    opt = SGD([w], lr=0.1)
    (w * w).sum().backward()
    stale = (w * w).sum()  # saved w at the current version
    v0 = w._version
    opt.step()
    assert w._version == v0 + 1
    assert w.grad_fn is None and w.requires_grad  # still a leaf after the update
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*SGD"):
        stale.backward()
