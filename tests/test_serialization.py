"""tapegrad.save / tapegrad.load: round trips, and refusal of anything that could run code."""

import io
import math
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import tapegrad


def _roundtrip(obj, **load_kw):
    buf = io.BytesIO()
    tapegrad.save(obj, buf)
    buf.seek(0)
    return tapegrad.load(buf, **load_kw)


@pytest.mark.parametrize("dtype", [tapegrad.float16, tapegrad.float32, tapegrad.float64,
                                   tapegrad.int8, tapegrad.uint8, tapegrad.int16,
                                   tapegrad.int32, tapegrad.int64, tapegrad.bool])
def test_tensor_dtype_shape_values(dtype, tmp_path):
    rng = np.random.default_rng(0)
    arr = (rng.standard_normal((3, 4, 2)) * 50).astype(dtype.np)
    t = tapegrad.from_numpy(arr)
    path = tmp_path / "t.pt"
    tapegrad.save(t, path)
    back = tapegrad.load(path)
    assert isinstance(back, tapegrad.Tensor)
    assert back.dtype == dtype and back.shape == (3, 4, 2)
    assert np.array_equal(back.numpy(), arr)
    assert not back.requires_grad


def test_scalar_empty_and_noncontiguous_tensors():
    x = tapegrad.arange(12.0).reshape(3, 4)
    obj = [tapegrad.tensor(3.5), tapegrad.zeros(0, 5), x.t(), x[:, 1::2]]
    s, e, xt, xs = _roundtrip(obj)
    assert s.shape == () and s.item() == 3.5
    assert e.shape == (0, 5)
    assert xt.tolist() == x.t().tolist() and xs.tolist() == x[:, 1::2].tolist()


def test_requires_grad_kept_and_loaded_as_leaf():
    w = tapegrad.randn(2, 3, requires_grad=True)
    h = w * 2  # a non-leaf: loads as a leaf that requires grad, like PyTorch
    a, b = _roundtrip((w, h))
    assert a.requires_grad and a.is_leaf and b.requires_grad and b.is_leaf
    assert a.grad is None
    assert np.allclose(b.detach().numpy(), 2 * w.detach().numpy())


def test_nested_containers():
    t1, t2 = tapegrad.ones(2), tapegrad.arange(3)
    obj = {
        "list": [1, 2.5, None, True, "text", t1],
        "tuple": (t2, (3, "x")),
        7: {"inner": OrderedDict([("b", t1), ("a", 1e300)])},
        (1, "k"): b"\x00\xffbytes",
        "special": [math.inf, -math.inf],
        "size": tapegrad.Size([2, 3]),
        "dtype": tapegrad.float64,
        "device": tapegrad.device("cpu"),
        "np": np.arange(4, dtype=np.int16),
        "npscalar": np.float32(1.5),
    }
    back = _roundtrip(obj)
    assert list(back) == list(obj)
    assert back["list"][:5] == [1, 2.5, None, True, "text"]
    assert type(back["list"][0]) is int and type(back["list"][1]) is float
    assert back["list"][5].tolist() == [1.0, 1.0]
    assert isinstance(back["tuple"], tuple) and back["tuple"][1] == (3, "x")
    assert back["tuple"][0].dtype == tapegrad.int64
    inner = back[7]["inner"]
    assert isinstance(inner, OrderedDict) and list(inner) == ["b", "a"] and inner["a"] == 1e300
    assert back[(1, "k")] == b"\x00\xffbytes"
    assert back["special"] == [math.inf, -math.inf]
    assert isinstance(back["size"], tapegrad.Size) and back["size"] == (2, 3)
    assert back["dtype"] is tapegrad.float64
    assert back["device"] == tapegrad.device("cpu")
    assert isinstance(back["np"], np.ndarray) and back["np"].dtype == np.int16
    assert back["npscalar"] == 1.5
    nan = _roundtrip([math.nan])[0]
    assert math.isnan(nan)


def test_shared_tensor_loads_as_one_object():
    w = tapegrad.randn(3)
    back = _roundtrip({"enc": w, "dec": w, "other": w.clone()})
    assert back["enc"] is back["dec"] and back["other"] is not back["enc"]


def test_ordered_dict_metadata_kept():
    sd = OrderedDict(weight=tapegrad.ones(2))
    sd._metadata = {"": {"version": 1}}
    back = _roundtrip(sd)
    assert back._metadata == {"": {"version": 1}}


def test_unsupported_object_raises_and_leaves_no_file(tmp_path):
    path = tmp_path / "bad.pt"
    with pytest.raises(TypeError, match=r"cannot save object of type .*Foo at obj\['x'\]\[1\]"):
        class Foo:
            pass

        tapegrad.save({"x": [1, Foo()]}, path)
    assert not path.exists()
    cyc = []
    cyc.append(cyc)
    with pytest.raises(ValueError, match="contains itself"):
        tapegrad.save(cyc, io.BytesIO())


def test_map_location():
    t = tapegrad.ones(2)
    for loc in ("cpu", tapegrad.device("cpu"), {"cpu": "cpu"}):
        assert _roundtrip(t, map_location=loc).device == tapegrad.device("cpu")
    seen = []
    back = _roundtrip(t, map_location=lambda x, where: seen.append(where) or x * 3)
    assert seen == ["cpu"] and back.tolist() == [3.0, 3.0]
    with pytest.raises(TypeError, match="map_location"):
        _roundtrip(t, map_location=3)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickle_is_refused_without_running_it(tmp_path, monkeypatch):
    payload = pickle.dumps(_Evil())
    calls = []  # if anything unpickled the payload, os.system would be called
    monkeypatch.setattr(os, "system", lambda cmd: calls.append(cmd))
    path = tmp_path / "evil.pt"
    path.write_bytes(payload)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load a pickle"):
        tapegrad.load(path)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        tapegrad.load(path, weights_only=False)
    # the same pickle inside a PyTorch-style zip archive
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match="global posix.system"):
        tapegrad.load(buf)
    assert calls == []


def test_torch_save_of_malicious_object_is_refused(monkeypatch):
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2), "evil": _Evil()}, buf)
    buf.seek(0)
    calls = []
    monkeypatch.setattr(os, "system", lambda cmd: calls.append(cmd))
    with pytest.raises(pickle.UnpicklingError, match="global posix.system"):
        tapegrad.load(buf)
    assert calls == []


def test_pytorch_checkpoint_loads(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1, momentum=0.9)
    lin(torch.ones(4, 3)).pow(2).sum().backward()
    opt.step()
    x = torch.arange(12.0, dtype=torch.float64).reshape(3, 4)
    path = tmp_path / "torch.pt"
    torch.save({"model": lin.state_dict(), "opt": opt.state_dict(), "param": lin.weight,
                "view": x.t()[1:], "half": x.half(), "ints": torch.arange(5)[::2],
                "flags": torch.tensor([True, False]), "dtype": torch.int32,
                "size": torch.Size([2, 3]), "meta": [1, "a", None, 2.5]}, path)
    back = tapegrad.load(path)
    sd = back["model"]
    assert isinstance(sd, OrderedDict) and list(sd) == ["weight", "bias"]
    assert sd._metadata == {"": {"version": 1}}
    assert np.array_equal(sd["weight"].numpy(), lin.weight.detach().numpy())
    assert sd["weight"].dtype == tapegrad.float32 and not sd["weight"].requires_grad
    st = back["opt"]["state"]
    assert set(st) == {0, 1}
    assert np.array_equal(st[0]["momentum_buffer"].numpy(),
                          opt.state[lin.weight]["momentum_buffer"].numpy())
    assert back["opt"]["param_groups"][0]["lr"] == 0.1
    assert back["param"].requires_grad
    assert np.array_equal(back["param"].detach().numpy(), lin.weight.detach().numpy())
    assert back["view"].tolist() == x.t()[1:].tolist()
    assert back["half"].dtype == tapegrad.float16
    assert back["ints"].tolist() == [0, 2, 4] and back["ints"].dtype == tapegrad.int64
    assert back["flags"].tolist() == [True, False]
    assert back["dtype"] is tapegrad.int32 and back["size"] == (2, 3)
    assert back["meta"] == [1, "a", None, 2.5]
    seen = []
    tapegrad.load(path, map_location=lambda t, loc: seen.append(loc))
    assert seen == ["cpu"] * 9  # weight, bias, 2 buffers, param, 4 more tensors


def _torch_style_archive(pickle_bytes, storages):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickle_bytes)
        for key, raw in storages.items():
            zf.writestr(f"archive/data/{key}", raw)
    buf.seek(0)
    return buf


def test_pytorch_archive_with_bad_tensor_geometry_is_refused():
    torch = pytest.importorskip("torch")

    class Fake:
        pass

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", 4) if obj is storage else None

        def reducer_override(self, obj):
            if isinstance(obj, Fake):
                # size (3, 3) with stride (3, 1) reaches element 8 of a 4-element storage
                return (torch._utils._rebuild_tensor_v2,
                        (storage, 0, (3, 3), (3, 1), False, OrderedDict()))
            return NotImplemented

    storage = object()
    out = io.BytesIO()
    P(out, protocol=2).dump(Fake())
    buf = _torch_style_archive(out.getvalue(), {"0": np.zeros(4, np.float32).tobytes()})
    with pytest.raises(pickle.UnpicklingError, match="runs past its storage"):
        tapegrad.load(buf)


def test_unknown_or_damaged_files_are_refused(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world, not an archive")
    with pytest.raises(pickle.UnpicklingError, match="unknown format"):
        tapegrad.load(junk)
    np.savez(tmp_path / "arrays.npz", a=np.ones(2))
    with pytest.raises(pickle.UnpicklingError, match="no tapegrad/manifest.json"):
        tapegrad.load(tmp_path / "arrays.npz")
    # a valid archive whose manifest and data disagree
    buf = io.BytesIO()
    tapegrad.save(tapegrad.ones(3), buf)
    raw = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(raw, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith(".npy"):
                tmp = io.BytesIO()
                np.save(tmp, np.ones(4, np.float32))
                data = tmp.getvalue()
            dst.writestr(name, data)
    raw.seek(0)
    with pytest.raises(RuntimeError, match="corrupt tapegrad archive.*shape"):
        tapegrad.load(raw)


def test_object_arrays_never_loaded(tmp_path):
    buf = io.BytesIO()
    tapegrad.save(tapegrad.ones(1), buf)
    raw = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(raw, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith(".npy"):
                tmp = io.BytesIO()
                np.save(tmp, np.array([_Evil()], dtype=object), allow_pickle=True)
                data = tmp.getvalue()
            dst.writestr(name, data)
    raw.seek(0)
    with pytest.raises(RuntimeError, match="corrupt tapegrad archive"):
        tapegrad.load(raw)


def _model():
    from tapegrad import nn

    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def test_module_state_dict_roundtrip(tmp_path):
    from tapegrad import nn

    tapegrad.manual_seed(0)
    model = _model()
    model.train()
    model(tapegrad.randn(16, 4))  # moves the BatchNorm running statistics
    model.eval()
    path = tmp_path / "model.pt"
    tapegrad.save(model.state_dict(), path)
    sd = tapegrad.load(path)
    assert list(sd) == list(model.state_dict())
    assert sd["1.num_batches_tracked"].dtype == tapegrad.int64
    twin = _model()
    twin.load_state_dict(sd)
    twin.eval()
    x = tapegrad.randn(5, 4)
    assert np.array_equal(twin(x).detach().numpy(), model(x).detach().numpy())
    tapegrad.save(list(model.parameters()), path)
    params = tapegrad.load(path)
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in params)


def test_optimizer_state_dict_roundtrip():
    from tapegrad import nn

    def make():
        tapegrad.manual_seed(1)
        m = nn.Linear(3, 2)
        return m, tapegrad.optim.Adam(m.parameters(), lr=0.01, betas=(0.8, 0.9))

    def train(m, opt, steps, seed):
        g = tapegrad.Generator().manual_seed(seed)
        for _ in range(steps):
            opt.zero_grad()
            m(tapegrad.randn(4, 3, generator=g)).pow(2).sum().backward()
            opt.step()

    m1, o1 = make()
    train(m1, o1, 3, seed=0)
    buf = io.BytesIO()
    tapegrad.save({"model": m1.state_dict(), "opt": o1.state_dict()}, buf)
    buf.seek(0)
    ck = tapegrad.load(buf)
    assert ck["opt"]["param_groups"][0]["betas"] == (0.8, 0.9)
    m2, o2 = make()
    m2.load_state_dict(ck["model"])
    o2.load_state_dict(ck["opt"])
    train(m1, o1, 2, seed=5)
    train(m2, o2, 2, seed=5)
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())


def test_pytorch_lstm_checkpoint_drives_tapegrad_lstm(tmp_path):
    torch = pytest.importorskip("torch")
    from tapegrad import nn

    torch.manual_seed(0)
    ref = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True).double()
    path = tmp_path / "lstm.pt"
    torch.save(ref.state_dict(), path)
    ours = nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True).double()
    ours.load_state_dict(tapegrad.load(path))
    x = np.random.default_rng(0).standard_normal((2, 4, 3))
    want, _ = ref(torch.from_numpy(x))
    got, _ = ours(tapegrad.tensor(x))
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
