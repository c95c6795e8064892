"""Dtypes, the default dtype and PyTorch's type promotion, checked against PyTorch."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

import tapegrad

torch = pytest.importorskip("torch")

DTYPES = ["bool", "int32", "int64", "float16", "float32", "float64"]
OPERANDS = ([("dim", d) for d in DTYPES] + [("zero", d) for d in DTYPES]
            + [("scalar", s) for s in ("bool", "int", "float")])
OPS = {
    "add": lambda m, a, b: a + b,
    "sub": lambda m, a, b: a - b,
    "mul": lambda m, a, b: m.mul(a, b) if hasattr(a, "dtype") else b * a,
    "div": lambda m, a, b: a / b,
    "floordiv": lambda m, a, b: a // b,
    "remainder": lambda m, a, b: a % b,
    "pow": lambda m, a, b: a ** b,
    "maximum": lambda m, a, b: m.maximum(a, b),
    "eq": lambda m, a, b: a == b,
    "lt": lambda m, a, b: a < b,
    "where": lambda m, a, b: m.where(m.tensor([True, False]), a, b),
}


def _operand(lib, kind, spec):
    if kind == "scalar":
        return {"bool": True, "int": 2, "float": 2.5}[spec]
    return lib.tensor([1, 1] if kind == "dim" else 1, dtype=getattr(lib, spec))


def _result(lib, op, a, b):
    try:
        r = OPS[op](lib, _operand(lib, *a), _operand(lib, *b))
    except (RuntimeError, NotImplementedError) as e:
        return type(e).__name__
    return str(r.dtype).split(".")[-1]


PAIRS = [(a, b) for a, b in itertools.product(OPERANDS, OPERANDS)
         if not (a[0] == "scalar" and b[0] == "scalar")]


@pytest.mark.parametrize("op", list(OPS))
def test_promotion_table_matches_torch(op):
    mismatches = []
    for a, b in PAIRS:
        if op == "maximum" and "scalar" in (a[0], b[0]):
            continue  # torch.maximum takes tensors only
        ours, ref = _result(tapegrad, op, a, b), _result(torch, op, a, b)
        if ours != ref:
            mismatches.append((a, b, ours, ref))
    assert not mismatches, mismatches[:10]


@pytest.mark.parametrize("a,b", list(itertools.product(DTYPES, DTYPES)))
def test_promote_types_and_result_type(a, b):
    da, db = getattr(tapegrad, a), getattr(tapegrad, b)
    ref = torch.promote_types(getattr(torch, a), getattr(torch, b))
    assert tapegrad.promote_types(da, db).name == str(ref).split(".")[-1]
    ours = tapegrad.result_type(tapegrad.tensor([1], dtype=da), tapegrad.tensor(1, dtype=db))
    theirs = torch.result_type(torch.tensor([1], dtype=getattr(torch, a)),
                               torch.tensor(1, dtype=getattr(torch, b)))
    assert ours.name == str(theirs).split(".")[-1]


def test_values_computed_in_promoted_dtype():
    i = tapegrad.tensor([7, -7])
    assert (i / 2).tolist() == [3.5, -3.5]
    assert (i // 2).tolist() == [3, -4]          # floor, as PyTorch
    assert (i % 3).tolist() == [1, 2]            # sign of the divisor
    assert (i * 0.5).dtype is tapegrad.float32
    h = tapegrad.tensor([1.0], dtype=tapegrad.float16)
    assert (h + 1e-4).dtype is tapegrad.float16
    assert (h + tapegrad.tensor(1.0, dtype=tapegrad.float64)).dtype is tapegrad.float16
    assert (h + tapegrad.tensor([1.0], dtype=tapegrad.float64)).dtype is tapegrad.float64


def test_bool_arithmetic_errors_name_the_op():
    b = tapegrad.tensor([True, False])
    with pytest.raises(RuntimeError, match="sub.*bool"):
        b - b
    with pytest.raises(RuntimeError, match="logical_not"):
        1 - b
    with pytest.raises(NotImplementedError, match="pow.*Bool"):
        b ** b


def test_dtype_objects():
    assert tapegrad.float is tapegrad.float32 and tapegrad.double is tapegrad.float64
    assert tapegrad.long is tapegrad.int64 and tapegrad.half is tapegrad.float16
    assert tapegrad.int is tapegrad.int32
    assert repr(tapegrad.float64) == "tapegrad.float64" and str(tapegrad.bool) == "tapegrad.bool"
    assert tapegrad.float32.is_floating_point and not tapegrad.int64.is_floating_point
    assert tapegrad.float16.itemsize == 2
    import pickle

    assert pickle.loads(pickle.dumps(tapegrad.int32)) is tapegrad.int32
    assert tapegrad.is_floating_point(tapegrad.zeros(1))


def test_default_dtype_switch():
    assert tapegrad.get_default_dtype() is tapegrad.float32
    tapegrad.set_default_dtype(tapegrad.float64)
    try:
        assert tapegrad.get_default_dtype() is tapegrad.float64
        assert tapegrad.tensor([1.5]).dtype is tapegrad.float64
        assert tapegrad.zeros(2).dtype is tapegrad.float64
        assert tapegrad.arange(3.0).dtype is tapegrad.float64
        assert tapegrad.randn(2).dtype is tapegrad.float64
        assert tapegrad.linspace(0, 1, 3).dtype is tapegrad.float64
        assert (tapegrad.tensor([1]) * 0.5).dtype is tapegrad.float64
        assert tapegrad.tensor([1]).dtype is tapegrad.int64
        seen = []
        t = threading.Thread(target=lambda: seen.append(tapegrad.get_default_dtype()))
        t.start()
        t.join()
        assert seen == [tapegrad.float64]  # process-wide, as in PyTorch
    finally:
        tapegrad.set_default_dtype(tapegrad.float32)
    assert tapegrad.tensor([1.5]).dtype is tapegrad.float32


def test_set_default_dtype_rejects_integers():
    with pytest.raises(TypeError, match="floating"):
        tapegrad.set_default_dtype(tapegrad.int64)
    assert tapegrad.get_default_dtype() is tapegrad.float32


def test_float16_math_matches_torch():
    v = np.array([0.1, 1.7, -3.3, 1000.0], dtype=np.float16)
    ours = (tapegrad.tensor(v) * 3 + 0.5).numpy()
    ref = (torch.tensor(v) * 3 + 0.5).numpy()
    assert ours.dtype == np.float16
    np.testing.assert_array_equal(ours, ref)
