"""Hooks: Tensor.register_hook (may replace the gradient), Module forward / forward-pre /
full-backward hooks, each with a handle whose ``remove()`` takes it away. Each scenario is
written once and run with tapegrad and with PyTorch; the recorded values must agree."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad

torch = pytest.importorskip("torch")


def _np(t):
    if t is None:
        return None
    return np.array(t.detach().numpy(), dtype=np.float64)


def _same(ours, theirs):
    """Compare nested records (lists/tuples/dicts of tensors, numbers, None, strings)."""
    if isinstance(ours, dict):
        assert ours.keys() == theirs.keys()
        for k in ours:
            _same(ours[k], theirs[k])
    elif isinstance(ours, (list, tuple)):
        assert len(ours) == len(theirs), (ours, theirs)
        for a, b in zip(ours, theirs):
            _same(a, b)
    elif ours is None or theirs is None:
        assert ours is None and theirs is None, (ours, theirs)
    elif hasattr(ours, "detach"):
        np.testing.assert_allclose(_np(ours), _np(theirs), rtol=1e-6, atol=1e-9)
    else:
        assert ours == theirs


def both(fn):
    _same(fn(tapegrad), fn(torch))


def x64(m, vals, rg=True):
    return m.tensor(vals, dtype=m.float64, requires_grad=rg)


# ---- Tensor.register_hook ---------------------------------------------------------------------
def test_leaf_hook_replaces_gradient_and_remove_restores():
    def run(m):
        x = x64(m, [1.0, 2.0, 3.0])
        seen = []
        h = x.register_hook(lambda g: (seen.append(g.clone()), g * 10)[1])
        (x * x).sum().backward()
        first = x.grad.clone()
        h.remove()
        x.grad = None
        (x * x).sum().backward()
        return seen, first, x.grad

    both(run)


def test_nonleaf_hook_changes_what_flows_on():
    def run(m):
        x = x64(m, [0.5, -1.0])
        y = x.exp()
        h = y.register_hook(lambda g: g + 1)
        (y * 3).sum().backward()
        g1 = x.grad.clone()
        h.remove()
        x.grad = None
        y2 = x.exp()
        (y2 * 3).sum().backward()
        return g1, x.grad

    both(run)


def test_hook_returning_none_observes_only_and_hooks_chain_in_order():
    def run(m):
        x = x64(m, [1.0, 2.0])
        y = x * 2
        log = []
        y.register_hook(lambda g: log.append(("first", g.clone())))
        y.register_hook(lambda g: g * 3)
        y.register_hook(lambda g: log.append(("third", g.clone())))
        y.sum().backward()
        return log, x.grad

    both(run)


def test_hook_fires_once_with_the_summed_gradient():
    def run(m):
        x = x64(m, [1.0, 2.0])
        y = x * 1
        calls = []
        y.register_hook(lambda g: calls.append(g.clone()))
        (y * 2 + y * y).sum().backward()
        return calls, x.grad

    both(run)


def test_retain_grad_sees_the_hooked_gradient():
    def run(m):
        x = x64(m, [1.0, 2.0])
        y = x * 3
        y.retain_grad()
        y.register_hook(lambda g: g * 2)
        y.sum().backward()
        return y.grad, x.grad

    both(run)


def test_hooks_fire_in_autograd_grad_too():
    def run(m):
        x = x64(m, [1.0, 2.0])
        y = x.sin()
        y.register_hook(lambda g: g * -1)
        (gx,) = m.autograd.grad(y.sum(), x)
        return gx

    both(run)


def test_hook_on_tensor_without_grad_raises():
    for m in (tapegrad, torch):
        with pytest.raises(RuntimeError, match="doesn't require"):
            m.ones(2).register_hook(lambda g: g)


def test_removing_twice_is_harmless():
    x = x64(tapegrad, [1.0])
    h = x.register_hook(lambda g: g * 5)
    h.remove()
    h.remove()
    (x * 2).sum().backward()
    assert x.grad.item() == 2.0


# ---- Module hooks -----------------------------------------------------------------------------
def _lin(m):
    m.manual_seed(0)
    lin = m.nn.Linear(3, 2).double()
    with m.no_grad():
        lin.weight.copy_(m.tensor([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]], dtype=m.float64))
        lin.bias.copy_(m.tensor([0.05, -0.05], dtype=m.float64))
    return lin


def test_forward_pre_hook_replaces_input_and_handle_removes_it():
    def run(m):
        lin = _lin(m)
        x = x64(m, [[1.0, 2.0, 3.0]], rg=False)
        seen = []

        def pre(mod, args):
            seen.append((mod is lin, len(args), args[0].clone()))
            return (args[0] * 2,)

        h = lin.register_forward_pre_hook(pre)
        a = lin(x)
        h.remove()
        b = lin(x)
        return seen, a, b

    both(run)


def test_forward_hook_replaces_output_and_with_kwargs():
    def run(m):
        lin = _lin(m)
        x = x64(m, [[1.0, 2.0, 3.0]], rg=False)
        seen = []
        h1 = lin.register_forward_hook(lambda mod, args, out: (seen.append(out.clone()),
                                                               out + 100)[1])
        h2 = lin.register_forward_hook(lambda mod, args, kwargs, out: seen.append(sorted(kwargs)),
                                       with_kwargs=True)
        a = lin(x)
        h1.remove()
        h2.remove()
        b = lin(x)
        return seen, a, b

    both(run)


def test_full_backward_hook_sees_grads_and_can_replace_grad_input():
    def run(m):
        lin = _lin(m)
        x = x64(m, [[1.0, 2.0, 3.0], [0.0, -1.0, 1.0]])
        seen = []

        def hook(mod, grad_input, grad_output):
            seen.append((mod is lin, list(grad_input), list(grad_output)))
            return (grad_input[0] * 0.5,)

        h = lin.register_full_backward_hook(hook)
        (lin(x) ** 2).sum().backward()
        g_hooked, w_hooked = x.grad.clone(), lin.weight.grad.clone()
        h.remove()
        x.grad = None
        lin.weight.grad = None
        (lin(x) ** 2).sum().backward()
        return seen, g_hooked, w_hooked, x.grad, len(seen)

    both(run)


@pytest.mark.filterwarnings("ignore:Full backward hook")
def test_full_backward_hook_with_input_not_requiring_grad():
    def run(m):
        lin = _lin(m)
        x = x64(m, [[1.0, 2.0, 3.0]], rg=False)
        seen = []
        lin.register_full_backward_hook(lambda mod, gi, go: seen.append((list(gi), list(go))))
        lin(x).sum().backward()
        return seen, lin.weight.grad

    both(run)


def test_full_backward_pre_hook_replaces_grad_output():
    def run(m):
        lin = _lin(m)
        x = x64(m, [[1.0, 2.0, 3.0]])
        h = lin.register_full_backward_pre_hook(lambda mod, go: (go[0] * 3,))
        lin(x).sum().backward()
        g = x.grad.clone()
        h.remove()
        x.grad = None
        lin(x).sum().backward()
        return g, x.grad

    both(run)


def test_hooks_on_children_fire_in_order():
    def run(m):
        m.manual_seed(0)
        net = m.nn.Sequential(m.nn.Linear(2, 3), m.nn.Tanh(), m.nn.Linear(3, 1)).double()
        log = []
        handles = []
        for i, child in enumerate(net):
            handles.append(child.register_forward_pre_hook(
                lambda mod, args, i=i: log.append(f"pre{i}")))
            handles.append(child.register_forward_hook(
                lambda mod, args, out, i=i: log.append(f"fwd{i}")))
            handles.append(child.register_full_backward_hook(
                lambda mod, gi, go, i=i: log.append(f"bwd{i}")))
        net(x64(m, [[0.5, -0.5]])).sum().backward()
        for h in handles:
            h.remove()
        net(x64(m, [[0.5, -0.5]])).sum().backward()  # nothing more is logged
        return log

    both(run)


def test_module_hook_dicts_empty_after_remove():
    lin = _lin(tapegrad)
    hs = [lin.register_forward_pre_hook(lambda *a: None),
          lin.register_forward_hook(lambda *a: None),
          lin.register_full_backward_hook(lambda *a: None)]
    for h in hs:
        h.remove()
    assert not lin._forward_pre_hooks and not lin._forward_hooks and not lin._backward_hooks
