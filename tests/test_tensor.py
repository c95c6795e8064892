"""The Tensor API of API.md "Tensors": attributes, conversions, copies and ``repr``."""

from __future__ import annotations

import re

import numpy as np
import pytest

import tapegrad

torch = pytest.importorskip("torch")


def _both(expr):
    """Evaluate ``expr`` with ``lib`` bound to tapegrad, then to torch."""
    return eval(expr, {"lib": tapegrad, "np": np}), eval(expr, {"lib": torch, "np": np})


# ---- repr ---------------------------------------------------------------------------------------
REPR_CASES = [
    "lib.tensor([1, 2, 3])",
    "lib.tensor([-5, 100000])",
    "lib.tensor([1, -2], dtype=lib.int32)",
    "lib.zeros(3, dtype=lib.int32)",
    "lib.tensor([1.5, 2.0, -3.25])",
    "lib.tensor([1.0, 2.0, 3.0])",
    "lib.tensor([[1.0, -2.0], [3.0, 4.0]])",
    "lib.tensor(3.5)",
    "lib.tensor(3)",
    "lib.tensor(-0.0)",
    "lib.tensor(2.5, dtype=lib.float64)",
    "lib.tensor([])",
    "lib.tensor([], dtype=lib.int64)",
    "lib.zeros(0, 3)",
    "lib.zeros(2, 0, dtype=lib.int32)",
    "lib.tensor([True, False])",
    "lib.tensor([[True], [False]])",
    "lib.tensor([1.5, 2.0], dtype=lib.float64)",
    "lib.tensor([1.123456789, 2.0], dtype=lib.float64)",
    "lib.tensor([1.5, 2.5], dtype=lib.float16)",
    "lib.tensor([65504.0, 1.0], dtype=lib.float16)",
    "lib.tensor([1e-5, 1.0, 1e5])",
    "lib.tensor([1e10, 2e10])",
    "lib.tensor([1e-8, 2e-8])",
    "lib.tensor([123456.0, 1.5])",
    "lib.tensor([12345.678, 0.5])",
    "lib.tensor([100000000.0, 1.0])",
    "lib.tensor([1000.0, 1.0])",
    "lib.tensor([1001.0, 1.0])",
    "lib.tensor([0.001, 1.0])",
    "lib.tensor([0.0001, 1.0])",
    "lib.tensor([-1e-3, 5.0])",
    "lib.tensor([0.0, 0.0])",
    "lib.tensor([-0.0])",
    "lib.tensor([1.0, float('nan'), float('inf')])",
    "lib.tensor([float('nan'), float('-inf')])",
    "lib.tensor([0.0, float('nan')])",
    "lib.arange(24).reshape(2, 3, 4)",
    "lib.arange(24.).reshape(2, 3, 4) / 7",
    "lib.arange(8.).reshape(2, 2, 2) - 3.5",
    "lib.ones(1, 1, 1, 2)",
    "lib.arange(2000.)",
    "lib.arange(3000).reshape(1000, 3)",
    "lib.arange(3000.).reshape(10, 300) / 3",
    "lib.arange(30.).reshape(1, 30) * 1000.5",
    "lib.tensor(np.linspace(-2, 2, 60).reshape(3, 20).astype(np.float32))",
    "lib.tensor([1.5, 2.5], requires_grad=True)",
    "lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)",
    "lib.tensor([1.5, 2.5], requires_grad=True) * 2",
    "lib.tensor([1.5, 2.5], requires_grad=True).sum()",
    "lib.tensor([[1e-5, 2.0], [3.0, 4.0]], requires_grad=True) * 1",
    "lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True).exp()",
]


def _torch_repr(t):
    s = repr(t).replace("torch.", "tapegrad.")
    return re.sub(r"grad_fn=<(\w+?)\d*>", r"grad_fn=<\1>", s)


@pytest.mark.parametrize("expr", REPR_CASES)
def test_repr_matches_torch(expr):
    ours, ref = _both(expr)
    assert repr(ours) == _torch_repr(ref)
    assert str(ours) == repr(ours)


def test_repr_follows_default_dtype():
    tapegrad.set_default_dtype(tapegrad.float64)
    try:
        assert repr(tapegrad.tensor([1.5])) == "tensor([1.5000])"
        assert repr(tapegrad.tensor([1.5], dtype=tapegrad.float32)) == \
            "tensor([1.5000], dtype=tapegrad.float32)"
    finally:
        tapegrad.set_default_dtype(tapegrad.float32)


def test_format_of_0d_tensor():
    assert f"{tapegrad.tensor(2.5):.2f}" == "2.50"
    assert f"{tapegrad.tensor(3)}" == "tensor(3)"


# ---- attributes ----------------------------------------------------------------------------------
def test_basic_attributes():
    x = tapegrad.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert x.shape == (2, 3) and isinstance(x.shape, tuple)
    assert x.size() == (2, 3) and x.size(1) == 3 and x.size(-2) == 2
    assert x.dim() == 2 and x.ndim == 2 and x.numel() == 6 and len(x) == 2
    assert x.dtype is tapegrad.float32 and x.dtype == tapegrad.float
    assert x.device == tapegrad.device("cpu") and str(x.device) == "cpu"
    assert x.requires_grad and x.is_leaf and x.grad is None and x.grad_fn is None
    y = x * 2
    assert not y.is_leaf and y.grad_fn is not None and y.requires_grad
    assert repr(x.shape) == "tapegrad.Size([2, 3])"


def test_size_dim_out_of_range():
    x = tapegrad.zeros(2, 3)
    with pytest.raises(IndexError, match=r"size.*\[-2, 1\].*got 2"):
        x.size(2)


def test_T_and_data():
    x = tapegrad.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    np.testing.assert_array_equal(x.T.detach().numpy(), x.detach().numpy().T)
    assert "PermuteBackward" in repr(x.T)
    d = x.data
    assert not d.requires_grad and d.is_leaf
    d[0, 0] = 10.0  # shares memory with x
    assert x[0, 0].item() == 10.0
    x.data = tapegrad.ones(2, 3)
    np.testing.assert_array_equal(x.detach().numpy(), np.ones((2, 3)))
    assert x.requires_grad


def test_item_and_tolist():
    assert tapegrad.tensor([1.5]).item() == 1.5
    v = tapegrad.tensor(3).item()
    assert v == 3 and type(v) is int
    assert tapegrad.tensor(True).item() is True
    assert type(tapegrad.tensor(2.5, dtype=tapegrad.float64).item()) is float
    with pytest.raises(RuntimeError, match=r"4 elements.*\(2, 2\)"):
        tapegrad.zeros(2, 2).item()
    assert tapegrad.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert tapegrad.tensor(2.5).tolist() == 2.5
    assert tapegrad.tensor([True]).tolist() == [True]


def test_python_number_conversions():
    assert float(tapegrad.tensor([2.5])) == 2.5 and int(tapegrad.tensor(3.7)) == 3
    assert bool(tapegrad.tensor([1.0])) is True
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(tapegrad.tensor([1.0, 2.0]))
    assert [10, 20, 30][tapegrad.tensor(1)] == 20


def test_numpy_shares_memory_and_refuses_grad():
    x = tapegrad.tensor([1.0, 2.0])
    a = x.numpy()
    a[0] = 7.0
    assert x[0].item() == 7.0
    x.add_(1)
    assert a[1] == 3.0
    w = tapegrad.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"requires grad.*detach\(\)"):
        w.numpy()
    assert w.detach().numpy()[0] == 1.0


def test_detach_shares_memory_and_cuts_tape():
    x = tapegrad.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert np.shares_memory(d.numpy(), y.detach().numpy())
    assert d.data_ptr() == y.data_ptr()


def test_clone_copies_and_keeps_history():
    x = tapegrad.tensor([1.0, 2.0], requires_grad=True)
    c = x.clone()
    assert "CloneBackward" in repr(c)
    assert c.data_ptr() != x.data_ptr()
    (c * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])
    plain = tapegrad.tensor([1, 2])
    cc = plain.clone()
    cc[0] = 5
    assert plain[0].item() == 1


def test_requires_grad_flag():
    x = tapegrad.tensor([1.0])
    assert x.requires_grad_() is x and x.requires_grad
    x.requires_grad_(False)
    assert not x.requires_grad
    for dt in (tapegrad.int64, tapegrad.int32, tapegrad.bool):
        t = tapegrad.tensor([1], dtype=dt)
        with pytest.raises(RuntimeError, match=f"floating point.*{dt.name}"):
            t.requires_grad_()
        assert not t.requires_grad
    with pytest.raises(RuntimeError, match="floating point.*int64"):
        tapegrad.tensor([1, 2], requires_grad=True)
    y = tapegrad.tensor([1.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)


def test_to_dtype_device_tensor():
    x = tapegrad.tensor([1.5, -2.5], requires_grad=True)
    assert x.to(tapegrad.float32) is x and x.to("cpu") is x and x.cpu() is x
    assert x.float() is x
    d = x.to(tapegrad.float64)
    assert d.dtype is tapegrad.float64 and "ToCopyBackward" in repr(d)
    assert x.to(tapegrad.tensor([1])).dtype is tapegrad.int64
    assert x.to("cpu", tapegrad.float16).dtype is tapegrad.float16
    assert x.to(device="cpu", dtype=tapegrad.float64).dtype is tapegrad.float64
    assert x.to(tapegrad.device("cpu")).device.type == "cpu"
    assert x.to(tapegrad.float32, copy=True) is not x
    d.sum().backward()
    assert x.grad.dtype is tapegrad.float32
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


@pytest.mark.parametrize("meth,dt", [("float", "float32"), ("double", "float64"),
                                     ("long", "int64"), ("int", "int32"), ("bool", "bool"),
                                     ("half", "float16")])
def test_cast_methods_match_torch(meth, dt):
    vals = [1.7, -2.2, 0.0, 3.0]
    ours = getattr(tapegrad.tensor(vals), meth)()
    ref = getattr(torch.tensor(vals), meth)()
    assert ours.dtype is getattr(tapegrad, dt)
    assert ours.tolist() == ref.tolist()


def test_type_as_and_contiguous():
    a = tapegrad.tensor([1.7, 2.2])
    assert a.type_as(tapegrad.tensor([1], dtype=tapegrad.int32)).dtype is tapegrad.int32
    t = tapegrad.arange(6.).reshape(2, 3).t()
    assert not t.is_contiguous()
    c = t.contiguous()
    assert c.is_contiguous() and c.tolist() == t.tolist()
    assert c.contiguous() is c


def test_zero_fill_copy_methods():
    x = tapegrad.ones(2, 3)
    assert x.zero_() is x and x.sum().item() == 0
    assert x.fill_(2.5) is x and x.tolist() == [[2.5] * 3] * 2
    x.fill_(tapegrad.tensor(1.0))
    assert x.sum().item() == 6
    assert x.copy_(tapegrad.tensor([1, 2, 3])) is x
    assert x.dtype is tapegrad.float32 and x.tolist() == [[1.0, 2.0, 3.0]] * 2
    with pytest.raises(RuntimeError, match=r"copy_.*\(4,\).*\(2, 3\)"):
        x.copy_(tapegrad.zeros(4))
    assert x.tolist() == [[1.0, 2.0, 3.0]] * 2
    with pytest.raises(RuntimeError, match="fill_.*0-dimension"):
        x.fill_(tapegrad.ones(2))


def test_array_protocol():
    x = tapegrad.tensor([[1.0, 2.0]])
    a = np.asarray(x)
    assert a.dtype == np.float32 and a.shape == (1, 2)
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    assert np.array(tapegrad.tensor([1, 2])).tolist() == [1, 2]
    assert (np.float64(2.0) * tapegrad.tensor([1.0, 2.0])).tolist() == [2.0, 4.0]


def test_dlpack_round_trip():
    x = tapegrad.tensor([[1.0, 2.0], [3.0, 4.0]])
    a = np.from_dlpack(x)
    np.testing.assert_array_equal(a, x.numpy())
    a[0, 0] = 9.0
    assert x[0, 0].item() == 9.0  # zero-copy
    back = tapegrad.from_dlpack(a)
    assert back.tolist() == x.tolist() and back.data_ptr() == x.data_ptr()
    t = torch.from_dlpack(x)
    assert t.tolist() == x.tolist()
    ours = tapegrad.from_dlpack(torch.arange(4))
    assert ours.dtype is tapegrad.int64 and ours.tolist() == [0, 1, 2, 3]


def test_len_iter_and_errors_for_0d():
    x = tapegrad.tensor([[1, 2], [3, 4]])
    assert [r.tolist() for r in x] == [[1, 2], [3, 4]]
    with pytest.raises(TypeError):
        len(tapegrad.tensor(1.0))
    with pytest.raises(TypeError):
        iter(tapegrad.tensor(1.0))


def test_misc_methods_match_torch():
    for expr in ["lib.arange(6.).reshape(2, 3).stride()",
                 "lib.arange(6.).reshape(2, 3).t().is_contiguous()",
                 "lib.zeros(2, 3, dtype=lib.float64).element_size()",
                 "lib.tensor([1.0]).is_floating_point()",
                 "lib.tensor([1]).is_floating_point()",
                 "lib.zeros(2, 3).nelement()",
                 "lib.is_tensor(lib.zeros(1))",
                 "lib.numel(lib.zeros(2, 5))"]:
        ours, ref = _both(expr)
        assert ours == ref, expr


def test_new_tensor_factories_keep_dtype():
    base = tapegrad.zeros(2, dtype=tapegrad.float64)
    assert base.new_zeros((3,)).dtype is tapegrad.float64
    assert base.new_ones(2, 2).shape == (2, 2)
    assert base.new_full((2,), 7).tolist() == [7.0, 7.0]
    assert base.new_tensor([1, 2]).dtype is tapegrad.float64


def test_deepcopy_and_pickle_keep_values_not_tape():
    import copy
    import pickle

    x = tapegrad.tensor([1.0, 2.0], requires_grad=True)
    c = copy.deepcopy(x)
    assert c.requires_grad and c.tolist() == [1.0, 2.0] and c.data_ptr() != x.data_ptr()
    p = pickle.loads(pickle.dumps(x))
    assert p.requires_grad and p.tolist() == [1.0, 2.0]
    with pytest.raises(RuntimeError, match="leaves"):
        copy.deepcopy(x * 2)


# the "Operations" and "Tensors" sections of API.md, by name
API_FUNCTIONS = """abs neg add sub mul div pow matmul mm bmm outer dot einsum exp log log1p expm1
sqrt rsqrt sin cos tan tanh sigmoid relu sign floor ceil round clamp clip maximum minimum where erf
eq ne lt le gt ge logical_and logical_or logical_xor logical_not isnan isinf isfinite sum mean prod
max min amax amin argmax argmin var std norm logsumexp cumsum all any reshape flatten unflatten
squeeze unsqueeze transpose permute t broadcast_to flip cat stack split chunk unbind narrow
gather scatter scatter_add index_select masked_fill take_along_dim tensor as_tensor from_numpy
zeros ones full empty eye arange linspace rand randn randint zeros_like ones_like full_like
empty_like rand_like randn_like randint_like manual_seed float16 float32 float float64 double
int32 int64 long bool set_default_dtype get_default_dtype device no_grad enable_grad
set_grad_enabled is_grad_enabled inference_mode greater less greater_equal less_equal not_equal
clamp_min clamp_max""".split()

API_METHODS = """abs neg add sub mul div pow matmul mm bmm outer dot exp log log1p expm1 sqrt rsqrt
sin cos tan tanh sigmoid relu sign floor ceil round clamp clip maximum minimum where erf eq ne lt
le gt ge logical_and logical_or logical_xor logical_not isnan isinf isfinite sum mean prod max min
amax amin argmax argmin var std norm logsumexp cumsum all any reshape view flatten unflatten
squeeze unsqueeze transpose permute t expand expand_as broadcast_to repeat flip split chunk unbind
narrow gather scatter scatter_add index_select masked_fill take_along_dim add_ sub_ mul_ div_
clamp_ zero_ fill_ copy_ size dim numel item tolist numpy detach clone requires_grad_ retain_grad
register_hook backward to cpu cuda float double long int bool type_as contiguous __array__
__dlpack__ __iadd__ __isub__ __imul__ __itruediv__ __floordiv__ __mod__ __pow__ __matmul__
__neg__ greater less greater_equal less_equal not_equal clamp_min clamp_max addmm float_power
log_ sin_ cos_ exp_ sqrt_ abs_ neg_ tanh_ sigmoid_ relu_ floor_ ceil_ round_ sign_ clamp_min_
clamp_max_ fmod_ remainder_ reciprocal_ rsqrt_ log1p_ expm1_ erf_ masked_fill_ pow_""".split()


def test_every_api_name_exists_as_in_torch():
    missing_fn = [n for n in API_FUNCTIONS if hasattr(torch, n) and not hasattr(tapegrad, n)]
    missing_m = [n for n in API_METHODS
                 if hasattr(torch.Tensor, n) and not hasattr(tapegrad.Tensor, n)]
    assert not missing_fn and not missing_m, (missing_fn, missing_m)
    for attr in ("shape", "dtype", "device", "ndim", "requires_grad", "grad", "grad_fn",
                 "is_leaf", "T", "data"):
        assert hasattr(tapegrad.zeros(1), attr)


@pytest.mark.parametrize("name", ["log_", "sin_", "cos_", "floor_", "ceil_", "round_",
                                  "sign_", "reciprocal_", "rsqrt_", "log1p_", "expm1_",
                                  "erf_", "exp_", "sqrt_", "tanh_", "sigmoid_", "relu_",
                                  "abs_", "neg_"])
def test_unary_inplace_methods_match_torch(name):
    vals = np.array([0.3, 1.7, 2.5, 0.9])
    ours, ref = tapegrad.tensor(vals), torch.tensor(vals)
    assert getattr(ours, name)() is ours
    getattr(ref, name)()
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-15)
    assert ours._version == 1
