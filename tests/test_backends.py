"""The CPU backend switch, lazy loading of the numba backend, threads, and the whole op table
run forward and backward under both backends with the same numbers."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from optable import CASES, make_inputs

import tapegrad
from tapegrad import backends

HAS_NUMBA = backends.numba_installed()
needs_numba = pytest.mark.skipif(not HAS_NUMBA, reason="numba is not installed")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code: str, **env) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.pop("TAPEGRAD_BACKEND", None)
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=e, cwd=ROOT, timeout=120)


# ---- the switch -----------------------------------------------------------------------------
def test_known_backends_and_unknown_name():
    assert backends.available_backends() == ["numba", "numpy"]
    before = backends.current()
    with pytest.raises(ValueError, match=r"unknown backend 'cupy'.*numba, numpy"):
        backends.set_backend("cupy")
    with pytest.raises(ValueError, match="known backends"):
        with backends.use("nope"):
            pass
    assert backends.current() is before  # nothing half-switched


def test_set_backend_and_use_restore():
    before = backends.current()
    try:
        backends.set_backend("numpy")
        assert backends.current().name == "numpy"
        with backends.use("numba" if HAS_NUMBA else "numpy") as be:
            assert backends.current() is be
        assert backends.current().name == "numpy"
        with pytest.raises(KeyError):
            with backends.use("numpy"):
                raise KeyError("inside")
        assert backends.current().name == "numpy"
    finally:
        backends.CPU_BACKEND = before


def test_ops_go_through_the_current_backend():
    calls = []
    ref = backends.get_backend("numpy")
    table = dict(ref.k)
    table["tanh"] = lambda x: calls.append(x.shape) or np.tanh(x)
    spy = backends.Backend("spy", np, table)
    before = backends.current()
    backends.CPU_BACKEND = spy
    try:
        tapegrad.tanh(tapegrad.ones(3))
    finally:
        backends.CPU_BACKEND = before
    assert calls == [(3,)]


@needs_numba
def test_default_is_numba_and_import_compiles_nothing():
    r = _python("import sys, tapegrad\n"
                "print(tapegrad.backends.current().name, 'numba' in sys.modules)\n"
                "x = tapegrad.ones(3, requires_grad=True)\n"
                "(x * 2 + 1).backward(tapegrad.ones(3))\n"  # no kernel of the table runs here
                "print('numba' in sys.modules)\n"
                "tapegrad.tanh(x)\n"
                "print('numba' in sys.modules,\n"
                "      type(tapegrad.backends.current().k['tanh']).__name__ != '_Lazy')")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "numba False"
    assert lines[1] == "False"
    assert lines[2] == "True True"  # the stand-ins were replaced by the loaded kernels


def test_environment_variable_is_read_at_import():
    r = _python("import tapegrad; print(tapegrad.backends.current().name)",
                TAPEGRAD_BACKEND="numpy")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "numpy"
    r = _python("import tapegrad", TAPEGRAD_BACKEND="theano")
    assert r.returncode != 0
    assert "unknown backend 'theano'" in r.stderr and "numba, numpy" in r.stderr


@needs_numba
def test_lazy_table_loads_every_kernel_module_once():
    from tapegrad.backends import numba_backend

    be = backends.get_backend("numba")
    kernels = numba_backend.load()
    assert numba_backend.load() is kernels
    from tapegrad.backends import numba_core, numba_nn, numba_softmax

    for name, fn in {**numba_core.KERNELS, **numba_nn.KERNELS,
                     **numba_softmax.KERNELS}.items():
        assert be.k[name] is fn
    ref = backends.get_backend("numpy").k
    assert set(ref) <= set(be.k)  # every reference kernel has an entry
    with pytest.raises(KeyError):
        be.k["no_such_kernel"]


@needs_numba
def test_a_broken_kernel_module_falls_back_with_a_warning(monkeypatch, tmp_path):
    from tapegrad.backends import numba_backend

    monkeypatch.setattr(numba_backend, "_WARNED", set())
    broken = tmp_path / "tg_broken_kernels.py"
    broken.write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(numba_backend.importlib, "import_module",
                        lambda name: __import__("tg_broken_kernels"))
    with pytest.warns(RuntimeWarning, match="could not be imported.*boom"):
        assert numba_backend._module_kernels("numba_core") == {}
    assert numba_backend._module_kernels("numba_core") == {}  # warned once only


# ---- threads --------------------------------------------------------------------------------
def test_num_threads():
    n = tapegrad.get_num_threads()
    assert isinstance(n, int) and n >= 1
    try:
        tapegrad.set_num_threads(1)
        assert tapegrad.get_num_threads() == 1
        if HAS_NUMBA:
            import numba

            assert numba.get_num_threads() == 1
    finally:
        tapegrad.set_num_threads(n if not HAS_NUMBA else
                                 min(n, __import__("numba").config.NUMBA_NUM_THREADS))
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="set_num_threads"):
            tapegrad.set_num_threads(bad)
    if HAS_NUMBA:
        with pytest.raises(ValueError, match="at most"):
            tapegrad.set_num_threads(10 ** 6)


# ---- the op table under both backends -------------------------------------------------------
def _run(case, name):
    with backends.use(name):
        xs = make_inputs(case, tapegrad)
        out = case.fn(tapegrad, *xs)
        grads = []
        if getattr(out, "requires_grad", False):
            g = np.random.default_rng(1).standard_normal(tuple(out.shape))
            out.backward(tapegrad.tensor(g, dtype=out.dtype))
            grads = [None if getattr(x, "grad", None) is None else x.grad.numpy() for x in xs]
    return out.detach().numpy(), grads


@needs_numba
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_op_table_same_numbers_on_both_backends(case):
    want, want_g = _run(case, "numpy")
    got, got_g = _run(case, "numba")
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert len(got_g) == len(want_g)
    for a, b in zip(got_g, want_g):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@needs_numba
def test_float32_training_step_same_on_both_backends():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 8)).astype(np.float32)
    w1 = rng.standard_normal((8, 12)).astype(np.float32)
    w2 = rng.standard_normal((12, 3)).astype(np.float32)

    def step(name):
        with backends.use(name):
            a = tapegrad.tensor(w1, requires_grad=True)
            b = tapegrad.tensor(w2, requires_grad=True)
            h = tapegrad.tanh(tapegrad.tensor(x) @ a)
            y = tapegrad.sigmoid(tapegrad.relu(h) @ b + 0.1)
            loss = (y * y).sum()
            loss.backward()
            return loss.item(), a.grad.numpy(), b.grad.numpy()

    l0, a0, b0 = step("numpy")
    l1, a1, b1 = step("numba")
    assert abs(l0 - l1) <= 1e-5 * abs(l0)
    np.testing.assert_allclose(a1, a0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b1, b0, rtol=1e-5, atol=1e-6)
