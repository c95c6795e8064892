"""The second-order and forward/reverse examples run end to end (small settings) and show what
they claim: Newton in a handful of steps, every kind of critical point, the article's numbers
and each mode winning on its own side."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import tapegrad

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}",
                                                  os.path.join(EXAMPLES, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_newton_converges_in_a_handful_of_steps_where_gd_needs_hundreds(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    newton = _load("newton")
    out = tmp_path / "newton.png"
    res = newton.main(["--gd-steps", "150", "--out", str(out)])
    assert res["newton_steps"] <= 8
    np.testing.assert_allclose(res["newton_point"], [1.0, 1.0], atol=1e-8)
    assert not res["gd_converged"] and res["gd_steps"] == 150
    assert out.stat().st_size > 10_000
    text = capsys.readouterr().out
    assert "Newton f" in text and "grad. descent f" in text and "not converged" in text


def test_newton_hessian_is_the_exact_one():
    newton = _load("newton")
    p = tapegrad.tensor([-1.2, 1.0], dtype=tapegrad.float64)
    h = tapegrad.autograd.functional.hessian(newton.rosenbrock, p).numpy()
    x, y = -1.2, 1.0
    want = [[2 - 400 * (y - x * x) + 800 * x * x, -400 * x], [-400 * x, 200]]
    np.testing.assert_allclose(h, want, rtol=1e-13)


def test_critical_points_finds_and_classifies_every_kind(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    cp = _load("critical_points")
    out = tmp_path / "cp.png"
    res = cp.main(["--grid", "5", "--out", str(out)])
    assert res["counts"] == {"minimum": 4, "maximum": 1, "saddle": 4}
    for r in res["points"]:
        g = cp.gradient(tapegrad.tensor(r["point"]))
        assert float(g.norm()) < 1e-9
        ev = r["eigenvalues"]
        assert r["kind"] == {(True, True): "minimum", (False, False): "maximum"}.get(
            (bool(ev[0] > 0), bool(ev[1] > 0)), "saddle")
    assert out.stat().st_size > 10_000
    assert "maximum" in capsys.readouterr().out
    assert cp.classify(np.array([1.0, 2.0])) == "minimum"
    assert cp.classify(np.array([-1.0, -2.0])) == "maximum"
    assert cp.classify(np.array([-1.0, 2.0])) == "saddle"
    assert cp.classify(np.array([0.0, 2.0])) == "degenerate"


def test_forward_vs_reverse_article_numbers_and_winners(capsys):
    fvr = _load("forward_vs_reverse")
    res = fvr.main(["--n", "40", "--repeats", "2"])
    ex = res["example"]
    assert ex["e"] == 6.0
    assert ex["forward"] == {"a": 2.0, "b": 5.0} == ex["reverse"]
    assert res["many_inputs"]["winner"] == "reverse"
    assert res["many_outputs"]["winner"] == "forward"
    text = capsys.readouterr().out
    assert "de/da = 2" in text and "de/db = 5" in text
