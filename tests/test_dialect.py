"""The promise of API.md: a PyTorch script runs after ``import tapegrad as torch`` and gives
PyTorch's numbers.

Each file in ``dialect_scripts/`` is written as a PyTorch user would write it and defines
``run(torch) -> dict``. It runs once with tapegrad and once with PyTorch (CPU, float64 default
dtype), and every returned number, list or tensor must agree to 1e-8 relative (plus a 1e-11
absolute floor for values that are zero up to rounding, where a relative test means nothing).
Weights come from NumPy since the two libraries' random generators differ.
"""

from __future__ import annotations

import importlib.util
import math
import pathlib

import numpy as np
import pytest

import tapegrad

torch = pytest.importorskip("torch")

pytestmark = [
    # Raised inside PyTorch's own modules, nothing to do with the scripts.
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
    # tensor_manipulation divides by zero on purpose (isfinite); NumPy warns where PyTorch
    # stays silent.
    pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning"),
]

SCRIPTS = sorted((pathlib.Path(__file__).parent / "dialect_scripts").glob("*.py"))
RTOL, ATOL = 1e-8, 1e-11


def _load(path: pathlib.Path):
    spec = importlib.util.spec_from_file_location(f"dialect_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(lib, script):
    previous = lib.get_default_dtype()
    lib.set_default_dtype(lib.float64)
    try:
        return script.run(lib)
    finally:
        lib.set_default_dtype(previous)


def _plain(value):
    """Tensors (of either library) to NumPy arrays; containers kept; numbers as they are."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "detach"):
        return np.asarray(value.detach().cpu().numpy())
    return value


def _assert_close(ours, theirs, where):
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs), where
        for k in theirs:
            _assert_close(ours[k], theirs[k], f"{where}[{k!r}]")
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            _assert_close(a, b, f"{where}[{i}]")
    elif isinstance(theirs, np.ndarray):
        assert isinstance(ours, np.ndarray), f"{where}: {type(ours).__name__}, not a tensor"
        assert ours.shape == theirs.shape, f"{where}: shape {ours.shape} != {theirs.shape}"
        assert ours.dtype == theirs.dtype, f"{where}: dtype {ours.dtype} != {theirs.dtype}"
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=where)
    else:
        assert type(ours) is type(theirs), f"{where}: {type(ours)} != {type(theirs)}"
        if isinstance(theirs, float) and not math.isnan(theirs):
            assert math.isclose(ours, theirs, rel_tol=RTOL, abs_tol=ATOL), \
                f"{where}: {ours!r} != {theirs!r}"
        else:
            assert ours == theirs or ours != ours and theirs != theirs, \
                f"{where}: {ours!r} != {theirs!r}"


def test_there_are_enough_scripts():
    assert len(SCRIPTS) >= 8


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_script_matches_pytorch(path):
    script = _load(path)
    theirs = _plain(_run(torch, script))
    ours = _plain(_run(tapegrad, script))
    assert tapegrad.get_default_dtype() is tapegrad.float32
    _assert_close(ours, theirs, path.stem)
