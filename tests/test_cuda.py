"""The CUDA backend. Marker ``cuda``: in CI these run with TAPEGRAD_CUDA_SIMULATOR=1, where
NumPy arrays stand in for CuPy arrays and our numba.cuda kernels run in Numba's CUDA
simulator; on a machine with a GPU the same tests run against real CuPy."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from optable import CASES, make_inputs

import tapegrad

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not tapegrad.cuda.is_available(),
                                 reason="run with TAPEGRAD_CUDA_SIMULATOR=1 (or on a GPU)")]
IDS = [c.id for c in CASES]


def _to_cuda(xs):
    out = []
    for x in xs:
        if isinstance(x, tapegrad.Tensor):
            c = x.detach().to("cuda")
            if x.requires_grad:
                c.requires_grad_()
            out.append(c)
        else:
            out.append(x)
    return out


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_op_on_cuda_matches_cpu(case):
    xs = make_inputs(case, tapegrad)
    cs = _to_cuda(xs)
    ref = case.fn(tapegrad, *xs)
    out = case.fn(tapegrad, *cs)
    assert out.device == tapegrad.device("cuda")
    assert out.dtype is ref.dtype and tuple(out.shape) == tuple(ref.shape)
    np.testing.assert_allclose(out.cpu().numpy(force=True), ref.detach().numpy(), rtol=1e-12,
                               atol=1e-12)
    if ref.requires_grad:
        g = np.random.default_rng(1).standard_normal(tuple(ref.shape))
        ref.backward(tapegrad.tensor(g, dtype=ref.dtype))
        out.backward(tapegrad.tensor(g, dtype=out.dtype, device="cuda"))
        for x, c in zip(xs, cs):
            if getattr(x, "requires_grad", False):
                assert c.grad.device == tapegrad.device("cuda")
                np.testing.assert_allclose(c.grad.cpu().numpy(), x.grad.numpy(), rtol=1e-12,
                                           atol=1e-12)


KERNELS_1 = ["tanh", "sigmoid", "relu"]
KERNELS_2 = ["tanh_backward", "sigmoid_backward", "relu_backward"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", KERNELS_1 + KERNELS_2)
def test_cuda_kernel_matches_reference(name, dtype):
    from tapegrad import backends
    from tapegrad.backends.numpy_backend import reference_kernels

    be = backends.backend_for_device(tapegrad.device("cuda"))
    k = be.k[name]
    assert hasattr(k, "cuda_kernel"), f"{name} is not a numba.cuda kernel"
    ref = reference_kernels()[name]
    rng = np.random.default_rng(0)
    args = [rng.uniform(-3, 3, (7, 5)).astype(dtype) for _ in range(1 if name in KERNELS_1
                                                                    else 2)]
    dev_args = [backends.move_array(a, tapegrad.device("cpu"), tapegrad.device("cuda"))
                for a in args]
    got = backends.to_host(k(*dev_args))
    np.testing.assert_allclose(got, ref(*args), rtol=1e-6 if dtype == np.float32 else 1e-14,
                               atol=1e-7 if dtype == np.float32 else 1e-15)
    # non-contiguous and broadcast operands take the reference path with the same result
    nc = [a.T for a in dev_args]
    np.testing.assert_allclose(backends.to_host(k(*nc)), ref(*[a.T for a in args]),
                               rtol=1e-6, atol=1e-6)


def test_mixed_devices_raise_naming_both():
    a = tapegrad.ones(2, 3)
    b = tapegrad.ones(2, 3, device="cuda")
    with pytest.raises(RuntimeError, match=r"cpu.*cuda:0|cuda:0.*cpu"):
        a + b
    with pytest.raises(RuntimeError, match="matmul"):
        tapegrad.matmul(a, b.T)


def test_moves_keep_gradients_flowing():
    x = tapegrad.randn(3, 4, dtype=tapegrad.float64, requires_grad=True)
    y = (x.cuda() * 2).tanh().cpu().sum()
    y.backward()
    expected = 2 * (1 - np.tanh(2 * x.detach().numpy()) ** 2)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12)
    assert x.grad.device == tapegrad.device("cpu")


def test_creation_on_cuda():
    for t in [tapegrad.zeros(2, 3, device="cuda"), tapegrad.ones(2, device="cuda:0"),
              tapegrad.randn(4, device="cuda"), tapegrad.arange(5, device="cuda"),
              tapegrad.tensor([1.0, 2.0], device="cuda"), tapegrad.eye(3, device="cuda")]:
        assert t.device == tapegrad.device("cuda:0") and t.is_cuda
    assert tapegrad.cuda.device_count() >= 1
    tapegrad.cuda.synchronize()
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        tapegrad.zeros(2, device="cuda:7")


def test_numpy_of_cuda_tensor_needs_cpu():
    t = tapegrad.ones(2, device="cuda")
    with pytest.raises(TypeError, match="cpu"):
        t.numpy()
    assert t.cpu().numpy().tolist() == [1.0, 1.0]


def test_missing_cupy_message():
    # Without the simulator and without CuPy, asking for 'cuda' says how to install it.
    code = ("import tapegrad\n"
            "try:\n    tapegrad.zeros(1, device='cuda')\n"
            "except RuntimeError as e:\n    print(e)\n")
    env = dict(os.environ, TAPEGRAD_CUDA_SIMULATOR="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120).stdout
    try:
        import cupy  # noqa: F401
        assert "no NVIDIA GPU" in out or out == ""
    except ImportError:
        assert 'pip install "tapegrad[cuda]"' in out


def test_gpu_benchmark_smoke(capsys):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    import gpu

    rows = gpu.main(["--tiny"])
    out = capsys.readouterr().out
    assert "fused tanh bandwidth" in out
    assert [r[0] for r in rows] == ["MLP step", "RNN BPTT", "fused tanh"]
    assert all(r[1] > 0 for r in rows)


OPTIM_CASES = [
    ("sgd_step", 1, (0.1, 0.9, 0.0, 0.01, True, False, False)),
    ("sgd_step", 1, (0.1, 0.9, 0.1, 0.0, False, True, True)),
    ("momentum_step", 1, (0.1, 0.9, 0.0, 0.01, False)),
    ("momentum_step", 1, (0.01, 0.9, 0.9, 0.0, False)),
    ("nesterov_step", 1, (0.1, 0.9, 0.01, False)),
    ("adam_step", 3, (1e-2, 0.9, 0.999, 1e-8, 0.01, False, True, False, 3)),
    ("adam_step", 3, (1e-2, 0.9, 0.999, 1e-8, 0.01, True, False, True, 1)),
    ("rmsprop_step", 3, (1e-2, 0.99, 1e-8, 0.01, 0.9, True, False)),
    ("rmsprop_step", 3, (1e-2, 0.99, 1e-8, 0.0, 0.0, False, False)),
    ("adagrad_step", 1, (1e-2, 0.1, 1e-10, 0.01, False, 4)),
]


@pytest.mark.parametrize("name,nbuf,scalars", OPTIM_CASES)
def test_cuda_optimizer_kernel_matches_reference(name, nbuf, scalars):
    from tapegrad import backends
    from tapegrad.backends.numpy_backend import reference_kernels

    be = backends.backend_for_device(tapegrad.device("cuda"))
    assert getattr(be.k[name], "cuda_kernel", False)
    rng = np.random.default_rng(3)
    p, g = rng.standard_normal((2, 6, 5))
    bufs = [np.abs(rng.standard_normal((6, 5))) for _ in range(nbuf)]
    if name == "rmsprop_step":
        bufs[0] = bufs[0] + 4.0  # a running mean of squares dominates the squared mean
        bufs[1] = bufs[1] * 0.1
    if name == "rmsprop_step" and not scalars[5]:
        bufs[1] = None  # uncentered: no gradient average
        bufs[2] = None  # no momentum buffer
    cpu = tapegrad.device("cpu")
    dev = tapegrad.device("cuda")
    p_ref, bufs_ref = p.copy(), [None if b is None else b.copy() for b in bufs]
    for _ in range(3):
        reference_kernels()[name](p_ref, g, *bufs_ref, *scalars)
    p_d = backends.move_array(p, cpu, dev)
    g_d = backends.move_array(g, cpu, dev)
    bufs_d = [None if b is None else backends.move_array(b, cpu, dev) for b in bufs]
    for _ in range(3):
        be.k[name](p_d, g_d, *bufs_d, *scalars)
    np.testing.assert_allclose(backends.to_host(p_d), p_ref, rtol=1e-13, atol=1e-14)
    for b_d, b_ref in zip(bufs_d, bufs_ref):
        if b_ref is not None:
            np.testing.assert_allclose(backends.to_host(b_d), b_ref, rtol=1e-13, atol=1e-14)


def _train(model, device, steps=3, seq=False):
    tapegrad.manual_seed(0)
    model = model.to(device)
    opt = tapegrad.optim.Adam(model.parameters(), lr=0.01)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        if seq:
            x = tapegrad.tensor(rng.standard_normal((3, 2, 4)), device=device)
            out, _ = model(x)
            loss = out.pow(2).mean()
        else:
            x = tapegrad.tensor(rng.standard_normal((5, 4)), device=device)
            y = tapegrad.tensor(rng.integers(0, 3, 5), device=device)
            loss = tapegrad.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {k: v.cpu().numpy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("kind", ["mlp", "lstm"])
def test_training_on_cuda_gives_the_cpu_weights(kind):
    nn = tapegrad.nn

    def make():
        tapegrad.manual_seed(1)
        if kind == "mlp":
            return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()
        return nn.LSTM(4, 5, num_layers=2).double()

    cpu = _train(make(), "cpu", seq=kind == "lstm")
    gpu = _train(make(), "cuda", seq=kind == "lstm")
    assert cpu.keys() == gpu.keys()
    for k in cpu:
        np.testing.assert_allclose(gpu[k], cpu[k], rtol=1e-9, atol=1e-9)


def test_module_to_cuda_and_back():
    nn = tapegrad.nn
    m = nn.Linear(3, 2).double()
    m.cuda()
    assert all(p.device == tapegrad.device("cuda") for p in m.parameters())
    assert all(isinstance(p, nn.Parameter) for p in m.parameters())
    x = tapegrad.randn(4, 3, dtype=tapegrad.float64, device="cuda")
    m(x).sum().backward()
    assert m.weight.grad.device == tapegrad.device("cuda")
    m.cpu()
    assert m.weight.device == tapegrad.device("cpu")
    with pytest.raises(RuntimeError, match="cuda"):
        m(x)


def test_compile_replays_on_cuda_like_eager():
    rng = np.random.default_rng(0)
    w = tapegrad.tensor(rng.standard_normal((4, 5)), device="cuda", requires_grad=True)
    f = tapegrad.compile(lambda x: (x @ w).tanh().sum())
    for k in range(3):
        x = tapegrad.tensor(rng.standard_normal((3, 4)), device="cuda")
        w.grad = None
        loss = f(x)
        loss.backward()
        ref = tapegrad.tensor(w.detach().cpu().numpy(), requires_grad=True)
        r = (x.cpu() @ ref).tanh().sum()
        r.backward()
        assert loss.device.type == "cuda" and w.grad.device.type == "cuda"
        np.testing.assert_allclose(loss.item(), r.item(), rtol=1e-12)
        np.testing.assert_allclose(w.grad.cpu().numpy(), ref.grad.numpy(), rtol=1e-12)
    assert type(loss.grad_fn).__name__ == "CompiledFunctionBackward"
