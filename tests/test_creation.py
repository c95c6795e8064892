"""Creation functions of API.md: values, shapes and inferred dtypes against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad

torch = pytest.importorskip("torch")

SAME = [
    # dtype inference from Python and NumPy data
    "lib.tensor(1)", "lib.tensor(1.0)", "lib.tensor(True)", "lib.tensor([1, 2])",
    "lib.tensor([1.0, 2])", "lib.tensor([True, False])", "lib.tensor([[1, 2], [3, 4.5]])",
    "lib.tensor([True, 2])", "lib.tensor([True, 2.5])", "lib.tensor((1, 2, 3))",
    "lib.tensor(np.array([1, 2], dtype=np.int32))", "lib.tensor(np.array([1.0]))",
    "lib.tensor(np.array([1.0], dtype=np.float16))", "lib.tensor(np.array([True]))",
    "lib.tensor(np.array([1, 2], dtype=np.int16))", "lib.tensor(np.array(5))",
    "lib.tensor(np.float64(2.0))", "lib.tensor(np.int32(3))", "lib.tensor(np.float32(3))",
    "lib.tensor([np.float64(1.0), np.float64(2.0)])", "lib.tensor([np.int32(1), np.int32(2)])",
    "lib.tensor([])", "lib.tensor([[]])", "lib.tensor([1, 2], dtype=lib.float64)",
    "lib.tensor([1.7, -1.7], dtype=lib.int64)", "lib.tensor([[1], [2]], dtype=lib.bool)",
    "lib.tensor([lib.tensor(1.5), lib.tensor(2.5)])",
    "lib.as_tensor([1, 2])", "lib.as_tensor(np.arange(3))", "lib.as_tensor(2.5)",
    "lib.as_tensor([1.0], dtype=lib.float64)",
    # shapes and fills
    "lib.zeros(2, 3)", "lib.zeros((2, 3))", "lib.zeros([2, 3])", "lib.zeros(2, dtype=lib.int64)",
    "lib.zeros(())", "lib.ones(3)", "lib.ones(2, 2, dtype=lib.bool)", "lib.empty(2, 2).shape",
    "lib.full((2,), 3)", "lib.full((2,), 3.0)", "lib.full((2,), True)",
    "lib.full([2, 2], 1.5, dtype=lib.float64)", "lib.eye(3)", "lib.eye(2, 3)",
    "lib.eye(2, dtype=lib.int64)",
    # ranges
    "lib.arange(5)", "lib.arange(5.0)", "lib.arange(1, 4)", "lib.arange(0, 1, 0.25)",
    "lib.arange(1, 10, 3)", "lib.arange(10, 0, -3)", "lib.arange(5, dtype=lib.float64)",
    "lib.arange(np.int64(4))", "lib.arange(-1.0, 1.0, 0.5)", "lib.arange(0, 5, 2.0)",
    "lib.arange(lib.tensor(3))", "lib.arange(0, 1, 0.1).shape", "lib.arange(0, 1.0001, 0.1).shape",
    "lib.linspace(0, 1, 5)", "lib.linspace(-1, 1, 4, dtype=lib.float64)",
    "lib.linspace(0, 10, 1)", "lib.linspace(0, 10, 0)", "lib.linspace(0, 10, 6, dtype=lib.int64)",
    # *_like
    "lib.zeros_like(lib.ones(2, dtype=lib.int32))", "lib.ones_like(lib.zeros(2, 2))",
    "lib.full_like(lib.zeros(2), 7)", "lib.full_like(lib.zeros(2, dtype=lib.int64), 7.9)",
    "lib.empty_like(lib.zeros(2, 3, dtype=lib.float64)).dtype",
    "lib.zeros_like(lib.zeros(2), dtype=lib.float64)",
    "lib.rand_like(lib.zeros(2, dtype=lib.float64)).dtype", "lib.randn_like(lib.zeros(2, 3)).shape",
    "lib.randint_like(lib.zeros(3), 10).dtype",
    # random dtypes and shapes
    "lib.rand(2, 3).dtype", "lib.randn(4).dtype", "lib.randn((2, 3)).shape",
    "lib.randint(0, 5, (3,)).dtype", "lib.randint(5, (2, 2)).dtype",
    "lib.randint(0, 5, (3,), dtype=lib.int32).dtype", "lib.rand(2, 3, dtype=lib.float64).dtype",
    "lib.rand(0).shape",
]


def _ev(expr, lib):
    return eval(expr, {"lib": lib, "np": np})


@pytest.mark.parametrize("expr", SAME)
def test_creation_matches_torch(expr):
    ours, ref = _ev(expr, tapegrad), _ev(expr, torch)
    if hasattr(ref, "dtype") and hasattr(ref, "shape"):
        assert str(ours.dtype).split(".")[-1] == str(ref.dtype).split(".")[-1]
        assert tuple(ours.shape) == tuple(ref.shape)
        assert ours.tolist() == ref.tolist()
        assert not ours.requires_grad and ours.is_leaf
    else:
        assert str(ours).replace("tapegrad.", "torch.") == str(ref)


@pytest.mark.parametrize("args,dt", [((0, 1, 0.1), "float32"), ((-3.3, 7.1, 0.37), "float32"),
                                     ((1.5, 100.0, 0.7), "float64"), ((-7, 11, 2), "int64")])
def test_arange_values_match_torch(args, dt):
    ours = tapegrad.arange(*args, dtype=getattr(tapegrad, dt)).numpy()
    ref = torch.arange(*args, dtype=getattr(torch, dt)).numpy()
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    # PyTorch's vectorised lanes round differently from its scalar tail; allow one ulp
    np.testing.assert_allclose(ours, ref, rtol=2 * np.finfo(ours.dtype).eps
                               if ours.dtype.kind == "f" else 0, atol=0)


@pytest.mark.parametrize("args,dt", [((0, 1, 7), "float32"), ((-3.3, 7.1, 11), "float32"),
                                     ((0, 1, 10), "float64"), ((2, -5, 9), "float32"),
                                     ((-7, 10, 9), "int64"), ((0.3, 1.9, 7), "float16"),
                                     ((-1e3, 1e3, 1001), "float32")])
def test_linspace_bit_identical_to_torch(args, dt):
    ours = tapegrad.linspace(*args, dtype=getattr(tapegrad, dt)).numpy()
    ref = torch.linspace(*args, dtype=getattr(torch, dt)).numpy()
    np.testing.assert_array_equal(ours, ref)


def test_requires_grad_on_creation():
    for t in (tapegrad.zeros(2, requires_grad=True), tapegrad.ones(2, requires_grad=True),
              tapegrad.randn(2, requires_grad=True), tapegrad.full((2,), 1.0, requires_grad=True),
              tapegrad.tensor([1.0], requires_grad=True),
              tapegrad.arange(3.0, requires_grad=True),
              tapegrad.zeros_like(tapegrad.ones(2), requires_grad=True)):
        assert t.requires_grad and t.is_leaf
    with pytest.raises(RuntimeError, match="floating point"):
        tapegrad.arange(3, requires_grad=True)


def test_tensor_copies_but_from_numpy_and_as_tensor_share():
    a = np.arange(4.0)
    t = tapegrad.tensor(a)
    f = tapegrad.from_numpy(a)
    s = tapegrad.as_tensor(a)
    a[0] = 100.0
    assert t[0].item() == 0.0
    assert f[0].item() == 100.0 and s[0].item() == 100.0
    assert f.dtype is tapegrad.float64
    f[1] = -1.0
    assert a[1] == -1.0
    assert tapegrad.as_tensor(f) is f
    assert tapegrad.as_tensor(a, dtype=tapegrad.float32).data_ptr() != f.data_ptr()
    src = tapegrad.tensor([1.0, 2.0])
    copy = tapegrad.tensor(src)
    copy[0] = 5.0
    assert src[0].item() == 1.0


def test_from_numpy_rejects_non_arrays_and_bad_dtypes():
    with pytest.raises(TypeError, match="from_numpy.*list"):
        tapegrad.from_numpy([1, 2])
    with pytest.raises(TypeError, match="complex|unsupported"):
        tapegrad.from_numpy(np.zeros(2, dtype=np.complex64))


def test_creation_errors_match_torch_types():
    cases = [("lib.arange(0, 5, -1)", RuntimeError, "inconsistent with step sign"),
             ("lib.arange(0, 5, 0)", RuntimeError, "step must be nonzero"),
             ("lib.zeros(-1)", RuntimeError, "negative"),
             ("lib.linspace(0, 1, -1)", RuntimeError, "non-negative"),
             ("lib.randint(5, 3, (2,))", RuntimeError, "5"),
             ("lib.tensor([[1, 2], [3]])", ValueError, "tensor"),
             ("lib.tensor('a')", TypeError, "str"),
             ("lib.full((2,), 'x')", TypeError, "fill_value"),
             ("lib.set_default_dtype(lib.int64)", TypeError, "floating")]
    for expr, exc, msg in cases:
        for lib in (torch, tapegrad):
            with pytest.raises(exc, match=msg if lib is tapegrad else None):
                _ev(expr, lib)


def test_manual_seed_reproducible():
    tapegrad.manual_seed(123)
    a = (tapegrad.rand(5), tapegrad.randn(3, 2), tapegrad.randint(0, 100, (4,)))
    tapegrad.manual_seed(123)
    b = (tapegrad.rand(5), tapegrad.randn(3, 2), tapegrad.randint(0, 100, (4,)))
    for x, y in zip(a, b):
        assert x.tolist() == y.tolist()
    tapegrad.manual_seed(124)
    assert tapegrad.rand(5).tolist() != a[0].tolist()


def test_generator_and_rng_state():
    g = tapegrad.Generator().manual_seed(7)
    x = tapegrad.randn(4, generator=g)
    g.manual_seed(7)
    assert tapegrad.randn(4, generator=g).tolist() == x.tolist()
    state = tapegrad.get_rng_state()
    u = tapegrad.rand(3)
    tapegrad.set_rng_state(state)
    assert tapegrad.rand(3).tolist() == u.tolist()


def test_random_distributions_are_sane():
    tapegrad.manual_seed(0)
    u = tapegrad.rand(10000)
    assert 0.0 <= u.min().item() and u.max().item() < 1.0
    assert abs(u.mean().item() - 0.5) < 0.02
    n = tapegrad.randn(10000, dtype=tapegrad.float64)
    assert abs(n.mean().item()) < 0.05 and abs(n.std().item() - 1.0) < 0.05
    r = tapegrad.randint(3, 7, (1000,))
    assert set(r.tolist()) == {3, 4, 5, 6}
    p = tapegrad.randperm(6)
    assert sorted(p.tolist()) == list(range(6)) and p.dtype is tapegrad.int64


def test_device_argument():
    t = tapegrad.zeros(2, device="cpu")
    assert t.device == tapegrad.device("cpu")
    assert tapegrad.tensor([1.0], device=tapegrad.device("cpu")).device.type == "cpu"
    assert tapegrad.ones_like(t, device="cpu").device.type == "cpu"
