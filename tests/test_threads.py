"""Threads: grad mode is per thread, and two threads training two independent models at the
same time get exactly the numbers they get one after the other."""

from __future__ import annotations

import threading

import numpy as np

import tapegrad

nn = tapegrad.nn


def _data(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((64, 5))
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1)
    return tapegrad.tensor(x, dtype=tapegrad.float32), tapegrad.tensor(y)


def _model(seed):
    # Initial weights drawn from a private NumPy generator: the global tapegrad RNG is shared
    # between threads, so seeding it would make the two runs depend on interleaving.
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))
    with tapegrad.no_grad():
        for p in model.parameters():
            p.copy_(tapegrad.tensor(rng.uniform(-0.5, 0.5, tuple(p.shape))))
    return model


def _train(seed, steps, barrier=None, out=None):
    model = _model(seed)
    opt = tapegrad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = _data(seed + 100)
    losses = []
    for i in range(steps):
        if barrier is not None and i % 10 == 0:
            barrier.wait()  # keep the two threads in the same phase, so they truly interleave
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i % 5 == 0:
            with tapegrad.no_grad():  # toggling grad mode here must not leak into the other
                losses.append(nn.functional.cross_entropy(model(x), y).item())
    result = (losses, [p.detach().numpy().copy() for p in model.parameters()])
    if out is not None:
        out[seed] = result
    return result


def test_two_threads_match_sequential_runs():
    steps = 60
    sequential = {s: _train(s, steps) for s in (1, 2)}
    barrier = threading.Barrier(2)
    results, errors = {}, []

    def worker(seed):
        try:
            _train(seed, steps, barrier, results)
        except BaseException as e:  # surfaces in the main thread below
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for s in (1, 2):
        assert results[s][0] == sequential[s][0]
        for a, b in zip(results[s][1], sequential[s][1]):
            np.testing.assert_array_equal(a, b)
    assert sequential[1][0][-1] < sequential[1][0][0]  # it trained
    assert sequential[1][0] != sequential[2][0]       # two different problems


def test_grad_mode_is_thread_local():
    inside = threading.Event()
    release = threading.Event()
    seen = {}

    def other():
        with tapegrad.no_grad():
            seen["other"] = tapegrad.is_grad_enabled()
            inside.set()
            release.wait(5)

    t = threading.Thread(target=other)
    t.start()
    inside.wait(5)
    x = tapegrad.ones(2, requires_grad=True)
    seen["main"] = tapegrad.is_grad_enabled()
    seen["recorded"] = (x * 2).requires_grad
    release.set()
    t.join()
    assert seen == {"other": False, "main": True, "recorded": True}


def test_new_threads_start_with_grad_enabled():
    seen = []
    with tapegrad.no_grad():
        t = threading.Thread(target=lambda: seen.append(tapegrad.is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]


def test_backward_in_threads_on_shared_leaf_accumulates_every_gradient():
    # Large enough that NumPy releases the GIL inside `grad += g`: without a lock in the
    # engine's accumulation, concurrent updates get lost.
    w = tapegrad.ones(1_000_000, requires_grad=True)
    n, per = 4, 8
    barrier = threading.Barrier(n)

    def worker(k):
        barrier.wait()
        for _ in range(per):
            (w * (k + 1)).sum().backward()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = per * sum(k + 1 for k in range(n))
    g = w.grad.numpy()
    assert g.min() == g.max() == expected
