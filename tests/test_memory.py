"""A memory-safe tape: no reference cycles (everything is freed by reference counting alone,
with the garbage collector off), saved tensors released as soon as their node has run, flat
memory over a long training loop, and a million-node chain walked without recursion."""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
import weakref

import numpy as np
import pytest

import tapegrad
from tapegrad.autograd.node import Node


@pytest.fixture
def no_gc():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _graph():
    """A small graph touching saved inputs, saved outputs, views, multi-output ops, indexing
    and an in-place op; returns the leaves, the output and weakrefs to the intermediates."""
    a = tapegrad.randn(4, 3, requires_grad=True)
    b = tapegrad.randn(3, requires_grad=True)
    h = a * b                    # saves both inputs
    e = h.exp()                  # saves its output
    v = e.view(12)[2:10]         # views
    m, idx = e.max(1)            # multi-output
    s = h + 1                    # add saves nothing, so s may change in place
    s.mul_(2)                    # in-place on a non-leaf
    g = e[tapegrad.tensor([0, 2])]
    out = v.sum() + m.sum() + s.sum() + g.pow(2).mean()
    inter = [h, e, v, m, s, g]
    refs = [weakref.ref(t) for t in inter] + [weakref.ref(t.grad_fn) for t in inter]
    return (a, b), out, refs


def test_intermediates_and_nodes_freed_after_backward(no_gc):
    leaves, out, refs = _graph()
    out.backward()
    del out
    alive = [r() for r in refs if r() is not None]
    assert alive == []
    assert all(x.grad is not None for x in leaves)


def test_intermediates_freed_when_output_dropped_without_backward(no_gc):
    leaves, out, refs = _graph()
    del out
    assert [r() for r in refs if r() is not None] == []


def test_retain_graph_then_drop(no_gc):
    leaves, out, refs = _graph()
    out.backward(retain_graph=True)
    out.backward()
    del out
    assert [r() for r in refs if r() is not None] == []


def test_create_graph_then_drop(no_gc):
    x = tapegrad.randn(5, requires_grad=True)
    y = (x.tanh() * x).sum()
    (g,) = tapegrad.autograd.grad(y, x, create_graph=True)
    gg = g.sum()
    gg.backward()
    refs = [weakref.ref(t) for t in (y, g, gg)] + [weakref.ref(y.grad_fn),
                                                   weakref.ref(g.grad_fn)]
    del y, g, gg
    assert [r() for r in refs if r() is not None] == []
    assert x.grad is not None


def test_leaf_and_its_accumulator_do_not_keep_each_other(no_gc):
    x = tapegrad.randn(3, requires_grad=True)
    (x * 2).sum().backward()
    rx = weakref.ref(x)
    del x
    assert rx() is None


def test_module_and_optimizer_freed(no_gc):
    nn = tapegrad.nn
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    opt = tapegrad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = model(tapegrad.randn(2, 3)).pow(2).mean()
    loss.backward()
    opt.step()
    refs = [weakref.ref(model), weakref.ref(opt), weakref.ref(loss.grad_fn)]
    refs += [weakref.ref(p) for p in model.parameters()]
    del model, opt, loss
    assert [r() for r in refs if r() is not None] == []


def test_saved_tensors_freed_as_soon_as_their_node_ran(no_gc):
    a = tapegrad.randn(4, requires_grad=True)
    b = a * 2           # b's node (mul by a number) saves nothing about b
    c = b.sin()         # sin saves b
    d = c.exp()         # exp saves its output (held as an array, not as c)
    out = d.sum()
    rb, rc = weakref.ref(b), weakref.ref(c)
    d_array = weakref.ref(d.grad_fn._saved[0].data) if hasattr(np.ndarray, "__weakref__") \
        else None
    seen = {}

    def at_sin(grads):  # runs just before sin's vjp: exp has run and released its output
        seen["exp_released"] = d.grad_fn._freed
        seen["c alive"] = rc() is not None

    def at_mul(grads):  # runs just before mul's vjp: sin has run and released b
        seen["b alive"] = rb() is not None
        seen["sin_saved"] = len(c_node_ref()._saved)

    c_node_ref = weakref.ref(c.grad_fn)
    c.grad_fn.register_prehook(at_sin)
    b.grad_fn.register_prehook(at_mul)
    del b, c
    out.backward()
    assert seen == {"exp_released": True, "c alive": False, "b alive": False, "sin_saved": 0}
    assert d_array is None or d_array() is not None  # d itself still holds its array
    np.testing.assert_allclose(a.grad.numpy(), np.exp(np.sin(2 * a.detach().numpy())) *
                               np.cos(2 * a.detach().numpy()) * 2, rtol=1e-5)


def test_memory_flat_over_1000_training_steps():
    nn = tapegrad.nn
    tapegrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))
    opt = tapegrad.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = tapegrad.randn(32, 8)
    y = tapegrad.randint(0, 3, (32,))

    def step():
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    first = step()
    for _ in range(99):  # warm caches (kernels, optimizer state) before measuring
        step()
    tracemalloc.start()
    try:
        for _ in range(200):
            step()
        gc.collect()  # a full collection empties CPython's free lists: compare like with like
        base, _ = tracemalloc.get_traced_memory()
        for _ in range(700):
            last = step()
        gc.collect()
        now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert last < first  # it trained
    assert now - base < 16 * 1024, f"memory grew by {now - base} bytes over 700 steps"
    assert peak - base < 1024 * 1024


class _Scale(Node):
    """The cheapest possible recorded op, to build a long chain quickly."""

    name = "scale"

    @staticmethod
    def forward(ctx, be, x):
        return x * 0.999999

    def vjp(self, g):
        # Straight to a tensor, skipping op dispatch: this test times the engine's walk.
        return (tapegrad.Tensor._make(g._data * 0.999999),)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for memory")
def test_million_node_chain_backward():
    n = 1_000_000
    limit = sys.getrecursionlimit()
    x0 = tapegrad.ones(1, dtype=tapegrad.float64, requires_grad=True)
    r0 = _rss_mb()
    t0 = time.perf_counter()
    x = x0
    for _ in range(n):
        x = _Scale.apply(x)
    grown = _rss_mb() - r0
    x.sum().backward()
    elapsed = time.perf_counter() - t0
    np.testing.assert_allclose(x0.grad.numpy(), [0.999999 ** n], rtol=1e-9)
    assert sys.getrecursionlimit() == limit  # nothing raised the limit to get through
    assert grown < 600, f"{grown:.0f} MB for a {n}-node tape"
    del x  # freeing a million-node chain must not overflow the C stack either
    assert _rss_mb() - r0 < grown / 2 + 50
    assert elapsed < 120, f"{elapsed:.1f} s"  # ~10 s on an idle 2-core machine
