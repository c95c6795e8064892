"""Backward walks nodes by recording number, with no dependency counts (``engine._walk``),
and skips its checking pre-pass over a fresh graph (``engine._fresh``): one recorded after the
last in-place change and the last backward that freed nodes. Gradients must not depend on
the order, and the pre-pass must run whenever something in the graph may have been changed
in place or freed, so that such a backward raises before writing any gradient."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.autograd import engine


@pytest.fixture
def walks(monkeypatch):
    """How many backward passes ran a walk ("walk") and how many the pre-pass ("pre_pass")."""
    seen = {"walk": 0, "pre_pass": 0}
    walk, pre_pass = engine._walk, engine._reachable

    def count_walk(*a, **k):
        seen["walk"] += 1
        return walk(*a, **k)

    def count_pre_pass(*a, **k):
        seen["pre_pass"] += 1
        return pre_pass(*a, **k)

    monkeypatch.setattr(engine, "_walk", count_walk)
    monkeypatch.setattr(engine, "_reachable", count_pre_pass)
    return seen


def _random_graph(rng, leaves, n_ops):
    """A random DAG over ``leaves``: shared operands, x * x, two-output splits, dead branches
    and constants, ending in one scalar."""
    pool = list(leaves)
    for _ in range(n_ops):
        k = rng.integers(7)
        a = pool[rng.integers(len(pool))]
        b = pool[rng.integers(len(pool))]
        if k == 0:
            r = a + b
        elif k == 1:
            r = a * b
        elif k == 2:
            r = a * a  # two edges from one node to the same producer
        elif k == 3:
            r = tg.tanh(a) * 0.5
        elif k == 4:
            h1, h2 = a.split(2)  # a multi-output node feeding both halves onward
            r = tg.cat([h2, h1 * 2.0])
        elif k == 5:
            _ = a.exp()  # a dead branch: recorded, never reached from the root
            r = a - b.detach()  # and a constant
        else:
            r = (a * b).sigmoid()
        pool.append(r)
    return sum(p.sum() * (i + 1) for i, p in enumerate(pool[len(leaves):]))


@pytest.mark.parametrize("seed", range(8))
def test_gradients_do_not_depend_on_skipping_the_pre_pass(seed, monkeypatch, walks):
    rng = np.random.default_rng(seed)
    data = [rng.standard_normal(4) * 0.5 for _ in range(3)]
    grads = []
    for fresh in (True, False):
        if not fresh:
            monkeypatch.setattr(engine, "_fresh", lambda roots: False)
        leaves = [tg.tensor(d, requires_grad=True) for d in data]
        _random_graph(np.random.default_rng(seed + 100), leaves, 25).backward()
        grads.append([None if x.grad is None else x.grad.numpy() for x in leaves])
    assert walks == {"walk": 2, "pre_pass": 1}
    for a, b in zip(*grads):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_random_graph_gradients_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    data = [rng.standard_normal(4) * 0.5 for _ in range(3)]
    grads = []
    for lib in (tg, torch):
        leaves = [lib.tensor(d, requires_grad=True) for d in data]
        pool = list(leaves)
        for i in range(12):  # the same shapes of graph as above, in both libraries
            a, b = pool[(5 * i) % len(pool)], pool[(3 * i + 1) % len(pool)]
            pool.append([a * a, a + b, lib.tanh(a) * b, lib.cat(a.split(2)[::-1])][i % 4])
        sum(p.sum() for p in pool[3:]).backward()
        grads.append([x.grad.numpy() for x in leaves])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_fresh_graphs_skip_the_pre_pass_and_others_do_not(walks):
    w = tg.ones(3, requires_grad=True)
    (w * 2.0).sum().backward()
    assert walks == {"walk": 1, "pre_pass": 0}

    y = (w * w).sum()  # saves w
    with tg.no_grad():
        w.mul_(1.0)  # an in-place change after y's graph was recorded: check it first
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()  # (raised by the pre-pass, before any walk)
    assert walks == {"walk": 1, "pre_pass": 1}
    assert np.allclose(w.grad.numpy(), 2.0)  # untouched by the backward that raised
    y2 = (w * 3.0).sum()
    with tg.no_grad():
        w.add_(0.0)  # no saved tensor changed, but the graph is older: checked
    y2.backward()
    assert walks == {"walk": 2, "pre_pass": 2}

    z = (w * 4.0).sum()  # recorded after the change: fresh again
    z.backward(retain_graph=True)
    assert walks == {"walk": 3, "pre_pass": 2}
    z.backward()  # adding into w.grad was an in-place change: checked again
    assert walks == {"walk": 4, "pre_pass": 3}
    with pytest.raises(RuntimeError, match="second time"):
        z.backward()  # freed by the last backward: the pre-pass says so, nothing written
    assert walks == {"walk": 4, "pre_pass": 4}
    np.testing.assert_allclose(w.grad.numpy(), 2.0 + 3.0 + 8.0)


def test_a_graph_recorded_before_another_backward_freed_nodes_is_checked(walks):
    x = tg.ones(2, requires_grad=True)
    h = x * 2.0
    a, b = (h * 3.0).sum(), (h * 5.0).sum()
    a.backward()  # frees h's node
    with pytest.raises(RuntimeError, match="second time"):
        b.backward()  # (raised by the pre-pass, before any walk)
    assert walks == {"walk": 1, "pre_pass": 1}
    np.testing.assert_allclose(x.grad.numpy(), 6.0)  # only a's gradient


def test_hooks_see_summed_gradients_once_per_node():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy().copy()))
    (h * h + h).sum().backward()  # three uses of h: one summed gradient
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], 2 * np.array([3.0, 6.0]) + 1)
    np.testing.assert_allclose(x.grad.numpy(), 3 * seen[0])


def test_several_roots_one_of_them_inside_the_other():
    x = tg.tensor([0.5, -1.0], requires_grad=True)
    y = (x * x).sum()
    z = y * 3.0 + x.sum()
    tg.autograd.backward([z, y], [tg.tensor(1.0, dtype=tg.float64),
                                  tg.tensor(2.0, dtype=tg.float64)])
    np.testing.assert_allclose(x.grad.numpy(), (3.0 + 2.0) * 2 * x.detach().numpy() + 1.0)
