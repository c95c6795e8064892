"""Floating-point edge cases behave as in PyTorch: inf / nan results come silently (NumPy
would warn from inside tapegrad), integer division by zero raises, and a variance with no
degrees of freedom warns once, naming the op."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tapegrad as tg

CASES = {
    "div by 0": lambda L: L.tensor([1.0, 0.0, -1.0]) / 0,
    "rdiv by 0": lambda L: 1 / L.tensor([0.0]),
    "log of 0 and -1": lambda L: L.tensor([0.0, -1.0]).log(),
    "sqrt of -1": lambda L: L.tensor([-1.0]).sqrt(),
    "pow 0 ** -1": lambda L: L.tensor([0.0]) ** -1,
    "exp overflow": lambda L: L.tensor([1000.0]).exp(),
    "float32 overflow": lambda L: L.tensor([1e38]) * 10,
    "acos of 2": lambda L: L.tensor([2.0]).acos(),
    "inf - inf": lambda L: L.tensor([float("inf")]) - float("inf"),
    "rsqrt of 0": lambda L: L.tensor([0.0]).rsqrt(),
    "fmod by 0.0": lambda L: L.tensor([1.0]).fmod(0.0),
}


def _loud():
    # Record every warning, but *after* tapegrad's own filter (append=True): this is what a
    # user with default filters sees.
    ctx = warnings.catch_warnings(record=True)
    rec = ctx.__enter__()
    warnings.filterwarnings("always", append=True)
    return ctx, rec


@pytest.mark.parametrize("name", list(CASES))
def test_inf_and_nan_results_come_without_numpy_warnings(name):
    ctx, rec = _loud()
    try:
        got = CASES[name](tg).numpy()
    finally:
        ctx.__exit__(None, None, None)
    assert [str(w.message) for w in rec] == []
    assert not np.isfinite(got).all()  # the case really produced inf or nan
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(got, CASES[name](torch).numpy())


def test_backward_through_a_singularity_is_silent_too():
    x = tg.tensor([0.0, 4.0], requires_grad=True)
    ctx, rec = _loud()
    try:
        (x.sqrt() + x.log()).sum().backward()
    finally:
        ctx.__exit__(None, None, None)
    assert rec == [] and np.isinf(x.grad.numpy()[0]) and x.grad.numpy()[1] == 0.5


def test_numpy_warnings_in_user_code_are_untouched():
    import tapegrad  # noqa: F401  (the filter is installed at import)

    ctx, rec = _loud()
    try:
        np.log(np.zeros(1))
    finally:
        ctx.__exit__(None, None, None)
    assert len(rec) == 1 and "divide by zero" in str(rec[0].message)


@pytest.mark.parametrize("op", ["//", "%", "fmod"])
def test_integer_division_by_zero_raises_like_pytorch(op):
    a, b = tg.tensor([3, 4]), tg.tensor([1, 0])
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        a // b if op == "//" else (a % b if op == "%" else a.fmod(b))
    with pytest.raises(RuntimeError, match=r"ZeroDivisionError.*\(2,\) and \(\)"):
        a // 0 if op == "//" else (a % 0 if op == "%" else a.fmod(0))
    assert (a // 2).tolist() == [1, 2]


def test_inplace_integer_division_by_zero_leaves_the_tensor_alone():
    x = tg.tensor([3, 4])
    with pytest.raises(RuntimeError, match="remainder: ZeroDivisionError"):
        x.remainder_(0)
    assert x.tolist() == [3, 4] and x._version == 0


@pytest.mark.parametrize("fn,name", [(lambda t: t.var(), "var"), (lambda t: t.std(), "std"),
                                     (lambda t: tg.var(t, 0), "var")])
def test_variance_without_degrees_of_freedom_warns_naming_the_op(fn, name):
    with pytest.warns(UserWarning, match=rf"{name}\(\): degrees of freedom is <= 0") as rec:
        r = fn(tg.tensor([2.0]))
    assert np.isnan(r.numpy()).all()
    assert [w.filename for w in rec if w.category is UserWarning] == [__file__]  # your line
