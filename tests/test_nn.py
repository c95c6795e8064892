"""nn layers against PyTorch (float64, copied weights, forward and every gradient to 1e-10)
and the Module API: registration, traversal, state dicts, modes, casts, hooks, containers,
reprs, gradient clipping."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import tapegrad
import tapegrad.nn as nn

torch = pytest.importorskip("torch")

TOL = dict(rtol=1e-10, atol=1e-10)


def _np(t):
    return t.detach().numpy()


def copy_weights(ours, theirs):
    """Load PyTorch's state dict into our module through NumPy."""
    return ours.load_state_dict({k: tapegrad.tensor(v.detach().numpy())
                                 for k, v in theirs.state_dict().items()})


def run_both(make, shapes, seed=0, int_input=None):
    """Build the layer in both libraries (float64, same weights), run forward and backward
    with the same upstream gradient; return both modules, inputs and outputs."""
    rng = np.random.default_rng(seed)
    theirs = make(torch.nn).double()
    ours = make(nn).double()
    copy_weights(ours, theirs)
    if int_input is not None:
        xs = [int_input]
        tx = [torch.tensor(int_input)]
        ox = [tapegrad.tensor(int_input)]
    else:
        xs = [rng.standard_normal(s) for s in shapes]
        tx = [torch.tensor(x, requires_grad=True) for x in xs]
        ox = [tapegrad.tensor(x, requires_grad=True) for x in xs]
    ty = theirs(*tx)
    oy = ours(*ox)
    g = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(g))
    oy.backward(tapegrad.tensor(g))
    return ours, theirs, ox, tx, oy, ty


def assert_same(ours, theirs, ox, tx, oy, ty, tol=TOL):
    assert tuple(oy.shape) == tuple(ty.shape)
    np.testing.assert_allclose(_np(oy), _np(ty), **tol)
    for a, b in zip(ox, tx):
        if b.requires_grad:
            np.testing.assert_allclose(_np(a.grad), _np(b.grad), **tol)
    tp = dict(theirs.named_parameters())
    op = dict(ours.named_parameters())
    assert list(op) == list(tp)
    for k, p in op.items():
        np.testing.assert_allclose(_np(p.grad), _np(tp[k].grad), **tol, err_msg=k)
    tb = dict(theirs.named_buffers())
    for k, b in ours.named_buffers():
        np.testing.assert_allclose(_np(b), _np(tb[k]), **tol, err_msg=k)


LAYERS = [
    ("Linear", lambda m: m.Linear(4, 3), [(5, 4)]),
    ("Linear_nobias_3d", lambda m: m.Linear(4, 3, bias=False), [(2, 5, 4)]),
    ("Bilinear", lambda m: m.Bilinear(3, 2, 4), [(5, 3), (5, 2)]),
    ("Conv1d", lambda m: m.Conv1d(2, 4, 3, padding=1), [(2, 2, 7)]),
    ("Conv1d_groups", lambda m: m.Conv1d(4, 6, 2, stride=2, dilation=2, groups=2), [(2, 4, 9)]),
    ("Conv2d", lambda m: m.Conv2d(3, 5, 3), [(2, 3, 6, 5)]),
    ("Conv2d_all_options", lambda m: m.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2),
                                              dilation=(1, 2), groups=2), [(2, 4, 7, 8)]),
    ("Conv2d_same_reflect", lambda m: m.Conv2d(2, 3, 4, padding="same",
                                               padding_mode="reflect"), [(2, 2, 6, 6)]),
    ("Conv2d_replicate", lambda m: m.Conv2d(2, 3, 3, padding=1, padding_mode="replicate"),
     [(1, 2, 5, 4)]),
    ("Conv2d_circular", lambda m: m.Conv2d(2, 3, 3, padding=(1, 2), padding_mode="circular"),
     [(1, 2, 5, 6)]),
    ("Conv2d_unbatched", lambda m: m.Conv2d(3, 2, 2, stride=2, bias=False), [(3, 6, 6)]),
    ("MaxPool2d", lambda m: m.MaxPool2d(3, 2, 1), [(2, 3, 7, 8)]),
    ("MaxPool2d_ceil_dilation", lambda m: m.MaxPool2d(2, 2, 1, dilation=2, ceil_mode=True),
     [(2, 3, 9, 8)]),
    ("MaxPool1d", lambda m: m.MaxPool1d(3, 2, 1), [(2, 3, 9)]),
    ("AvgPool2d", lambda m: m.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
     [(2, 3, 8, 7)]),
    ("AvgPool2d_include_pad", lambda m: m.AvgPool2d((2, 3), padding=1), [(2, 3, 8, 7)]),
    ("AvgPool1d", lambda m: m.AvgPool1d(2), [(2, 3, 9)]),
    ("AdaptiveAvgPool2d", lambda m: m.AdaptiveAvgPool2d((3, None)), [(2, 3, 8, 7)]),
    ("AdaptiveAvgPool1d", lambda m: m.AdaptiveAvgPool1d(4), [(2, 3, 9)]),
    ("LayerNorm", lambda m: m.LayerNorm((3, 4)), [(2, 3, 4)]),
    ("LayerNorm_no_bias", lambda m: m.LayerNorm(4, bias=False), [(2, 3, 4)]),
    ("LayerNorm_no_affine", lambda m: m.LayerNorm(4, elementwise_affine=False), [(2, 4)]),
    ("BatchNorm1d", lambda m: m.BatchNorm1d(3), [(5, 3)]),
    ("BatchNorm1d_3d", lambda m: m.BatchNorm1d(3), [(5, 3, 4)]),
    ("BatchNorm1d_momentum_none", lambda m: m.BatchNorm1d(3, momentum=None), [(5, 3)]),
    ("BatchNorm1d_untracked", lambda m: m.BatchNorm1d(3, track_running_stats=False,
                                                      affine=False), [(5, 3)]),
    ("BatchNorm2d", lambda m: m.BatchNorm2d(3), [(4, 3, 2, 3)]),
    ("GroupNorm", lambda m: m.GroupNorm(2, 4), [(3, 4, 5)]),
    ("Flatten", lambda m: m.Flatten(), [(2, 3, 4)]),
    ("Unflatten", lambda m: m.Unflatten(1, (2, 2)), [(3, 4)]),
    ("Identity", lambda m: m.Identity(3, x=1), [(3, 4)]),
    ("Dropout_eval", lambda m: m.Dropout(0.4).eval(), [(3, 4)]),
    ("GELU", lambda m: m.GELU(), [(3, 4)]),
    ("GELU_tanh", lambda m: m.GELU("tanh"), [(3, 4)]),
    ("LeakyReLU", lambda m: m.LeakyReLU(0.3), [(3, 4)]),
    ("Softmax", lambda m: m.Softmax(dim=1), [(3, 4)]),
    ("LogSoftmax", lambda m: m.LogSoftmax(dim=0), [(3, 4)]),
    ("Softmin", lambda m: m.Softmin(dim=-1), [(3, 4)]),
    ("Softplus", lambda m: m.Softplus(beta=2.0, threshold=1.0), [(3, 4)]),
    ("ELU", lambda m: m.ELU(0.5), [(3, 4)]),
    ("CELU", lambda m: m.CELU(0.5), [(3, 4)]),
    ("Hardtanh", lambda m: m.Hardtanh(-0.5, 0.7), [(3, 4)]),
    ("Threshold", lambda m: m.Threshold(0.1, 20.0), [(3, 4)]),
    ("GLU", lambda m: m.GLU(0), [(4, 3)]),
    ("PReLU_channels", lambda m: m.PReLU(3), [(2, 3, 4)]),
    ("MLP", lambda m: m.Sequential(m.Linear(3, 8), m.Tanh(), m.Linear(8, 8), m.Sigmoid(),
                                   m.Linear(8, 2), m.LogSoftmax(1)), [(6, 3)]),
    ("CNN", lambda m: m.Sequential(m.Conv2d(1, 4, 3, padding=1), m.BatchNorm2d(4), m.ReLU(),
                                   m.MaxPool2d(2), m.Flatten(), m.Linear(16, 3)),
     [(2, 1, 4, 4)]),
]
for _name in ["ReLU", "ReLU6", "Tanh", "Sigmoid", "Softsign", "SELU", "SiLU", "Mish",
              "Hardswish", "LogSigmoid", "Tanhshrink", "PReLU"]:
    LAYERS.append((_name, (lambda n: lambda m: getattr(m, n)())(_name), [(3, 4)]))


@pytest.mark.parametrize("name,make,shapes", LAYERS, ids=[c[0] for c in LAYERS])
def test_layer_matches_torch(name, make, shapes):
    assert_same(*run_both(make, shapes))


def test_hardsigmoid_matches_torch_up_to_its_float32_constant():
    # PyTorch's CPU backward multiplies by 1/6 rounded to float32; ours is exact.
    assert_same(*run_both(lambda m: m.Hardsigmoid(), [(3, 4)]), tol=dict(rtol=1e-7, atol=1e-9))


def test_embedding_matches_torch_with_padding_idx():
    idx = np.array([[1, 2, 1, 0], [4, 2, 2, 3]])
    ours, theirs, *rest = run_both(lambda m: m.Embedding(5, 3, padding_idx=2), None,
                                   int_input=idx)
    assert_same(ours, theirs, *rest)
    assert np.all(_np(ours.weight.grad)[2] == 0)


def test_embedding_max_norm_renormalises_rows_like_torch():
    idx = np.array([0, 3, 3, 1])
    ours, theirs, *rest = run_both(lambda m: m.Embedding(5, 4, max_norm=0.8), None,
                                   int_input=idx)
    assert_same(ours, theirs, *rest, tol=dict(rtol=1e-7, atol=1e-9))
    np.testing.assert_allclose(_np(ours.weight), _np(theirs.weight), rtol=1e-7, atol=1e-9)


def test_embedding_init_and_from_pretrained():
    tapegrad.manual_seed(0)
    e = nn.Embedding(4000, 8, padding_idx=-1)
    w = _np(e.weight)
    assert e.padding_idx == 3999 and np.all(w[-1] == 0)
    assert abs(w[:-1].mean()) < 0.02 and abs(w[:-1].std() - 1) < 0.02
    pre = nn.Embedding.from_pretrained(tapegrad.eye(3))
    assert not pre.weight.requires_grad
    assert pre(tapegrad.tensor([2])).tolist() == [[0.0, 0.0, 1.0]]
    with pytest.raises(IndexError, match="index 7 is out of range"):
        pre(tapegrad.tensor([7]))


def test_batchnorm_running_statistics_follow_torch_over_steps_then_eval():
    rng = np.random.default_rng(3)
    for momentum in (0.1, None):
        theirs = torch.nn.BatchNorm1d(3, momentum=momentum).double()
        ours = nn.BatchNorm1d(3, momentum=momentum).double()
        for _ in range(4):
            x = rng.standard_normal((6, 3)) * 2 + 1
            theirs(torch.tensor(x))
            ours(tapegrad.tensor(x))
        for k, b in ours.named_buffers():
            np.testing.assert_allclose(_np(b), _np(dict(theirs.named_buffers())[k]), **TOL)
        assert ours.num_batches_tracked.dtype == tapegrad.int64
        theirs.eval()
        ours.eval()
        x = rng.standard_normal((2, 3))
        np.testing.assert_allclose(_np(ours(tapegrad.tensor(x))), _np(theirs(torch.tensor(x))),
                                   **TOL)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(tapegrad.ones(1, 3))
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        nn.BatchNorm1d(3)(tapegrad.ones(2, 3, 4, 5))


def test_dropout_statistics_train_and_eval():
    tapegrad.manual_seed(1)
    d = nn.Dropout(0.25)
    x = tapegrad.ones(200, 100, requires_grad=True)
    y = d(x)
    v = _np(y)
    zero = (v == 0).mean()
    assert 0.22 < zero < 0.28
    assert np.allclose(v[v != 0], 1 / 0.75)
    y.sum().backward()
    assert np.array_equal(_np(x.grad), v)  # the gradient is the same mask
    d.eval()
    assert d(x) is x
    with pytest.raises(ValueError, match="between 0 and 1, but got 1.5"):
        nn.Dropout(1.5)
    z = nn.Dropout2d(0.5)(tapegrad.ones(8, 16, 3, 3))
    per_channel = _np(z).reshape(8, 16, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))


# ---- the Module API -------------------------------------------------------------------------
def make_model(m, lib):
    class Block(m.Module):
        def __init__(self):
            super().__init__()
            self.conv = m.Conv2d(1, 4, 3, padding=1, bias=False)
            self.bn = m.BatchNorm2d(4)
            self.pool = m.MaxPool2d(2)
            self.drop = m.Dropout(0.1)

        def forward(self, x):
            return self.drop(self.pool(self.bn(self.conv(x)).relu()))

    class Net(m.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()
            self.emb = m.Embedding(10, 6, padding_idx=0)
            self.layers = m.ModuleList([m.Linear(6, 6) for _ in range(3)] + [m.LayerNorm(6)])
            self.heads = m.ModuleDict({"a": m.Linear(6, 2),
                                       "b": m.Sequential(m.Linear(6, 3), m.GELU(),
                                                         m.Softmax(dim=1))})
            self.register_buffer("scale", lib.ones(1))
            self.register_buffer("scratch", lib.ones(1), persistent=False)
            self.loss = m.CrossEntropyLoss(weight=lib.ones(2))
            self.act = m.LeakyReLU(0.2)
            self.flat = m.Flatten()
            self.extra = m.ParameterList([m.Parameter(lib.zeros(2)) for _ in range(2)])
            self.table = m.ParameterDict({"p": m.Parameter(lib.ones(3))})

        def forward(self, x, idx):
            h = self.flat(self.block(x))[:, :6] + self.emb(idx)
            for layer in self.layers:
                h = self.act(layer(h))
            return self.heads["a"](h) * self.scale, self.heads["b"](h)

    return Net()


def test_model_names_keys_and_repr_equal_torch():
    a, b = make_model(torch.nn, torch), make_model(nn, tapegrad)
    assert list(b.state_dict()) == list(a.state_dict())
    assert [n for n, _ in b.named_modules()] == [n for n, _ in a.named_modules()]
    assert [n for n, _ in b.named_parameters()] == [n for n, _ in a.named_parameters()]
    assert [n for n, _ in b.named_buffers()] == [n for n, _ in a.named_buffers()]
    assert [n for n, _ in b.named_children()] == [n for n, _ in a.named_children()]
    assert repr(b) == repr(a).replace("torch.", "tapegrad.")
    assert "scratch" not in b.state_dict() and any(t is b.scratch for t in b.buffers())


def test_model_forward_backward_match_torch_after_load():
    a, b = make_model(torch.nn, torch).double(), make_model(nn, tapegrad).double()
    copy_weights(b, a)
    a.eval()
    b.eval()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 4, 4))
    idx = np.array([3, 0])
    ta, tb = a(torch.tensor(x), torch.tensor(idx))
    oa, ob = b(tapegrad.tensor(x), tapegrad.tensor(idx))
    (ta.sum() + (tb * tb).sum()).backward()
    (oa.sum() + (ob * ob).sum()).backward()
    np.testing.assert_allclose(_np(oa), _np(ta), **TOL)
    tp = dict(a.named_parameters())
    for k, p in b.named_parameters():
        g = tp[k].grad
        if g is None:
            assert p.grad is None, k
        else:
            np.testing.assert_allclose(_np(p.grad), _np(g), **TOL, err_msg=k)


def test_state_dict_is_detached_and_shares_memory():
    m = nn.Linear(2, 2)
    sd = m.state_dict()
    assert type(sd).__name__ == "OrderedDict"
    assert not sd["weight"].requires_grad and type(sd["weight"]) is tapegrad.Tensor
    with tapegrad.no_grad():
        sd["weight"].fill_(3.0)
    assert _np(m.weight).tolist() == [[3.0, 3.0], [3.0, 3.0]]
    assert m.state_dict(keep_vars=True)["weight"] is m.weight
    assert list(m.state_dict(prefix="fc.")) == ["fc.weight", "fc.bias"]


def test_load_state_dict_strict_errors_change_nothing():
    m = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    before = {k: _np(v).copy() for k, v in m.state_dict().items()}
    good = {k: tapegrad.zeros(v.shape) for k, v in m.state_dict().items()}
    bad_shape = dict(good)
    bad_shape["0.weight"] = tapegrad.zeros(3, 5)
    with pytest.raises(RuntimeError) as e:
        m.load_state_dict(bad_shape)
    msg = str(e.value)
    assert "0.weight" in msg and "(3, 5)" in msg and "(3, 4)" in msg
    missing = dict(good)
    del missing["1.bias"]
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "1.bias"'):
        m.load_state_dict(missing)
    extra = dict(good)
    extra["2.weight"] = tapegrad.zeros(1)
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "2.weight"'):
        m.load_state_dict(extra)
    for k, v in m.state_dict().items():
        assert np.array_equal(_np(v), before[k]), f"{k} changed by a failed load"
    # Non-strict: reports, loads what matches; a shape mismatch still raises.
    res = m.load_state_dict(missing | {"2.weight": tapegrad.zeros(1)}, strict=False)
    assert res.missing_keys == ["1.bias"] and res.unexpected_keys == ["2.weight"]
    assert np.all(_np(m[0].weight) == 0) and np.array_equal(_np(m[1].bias), before["1.bias"])
    with pytest.raises(RuntimeError, match="size mismatch for 0.weight"):
        m.load_state_dict(bad_shape, strict=False)
    assert repr(m.load_state_dict(good)) == "<All keys matched successfully>"


def test_load_state_dict_casts_and_keeps_parameter_objects():
    m = nn.Linear(2, 1)
    w = m.weight
    m.load_state_dict({"weight": tapegrad.tensor([[1.0, 2.0]], dtype=tapegrad.float64),
                       "bias": tapegrad.tensor([0.5], dtype=tapegrad.float64)})
    assert m.weight is w and m.weight.dtype == tapegrad.float32
    assert m.weight.tolist() == [[1.0, 2.0]]


def test_parameter_behaviour():
    p = nn.Parameter(tapegrad.tensor([1.0, 2.0]))
    assert isinstance(p, tapegrad.Tensor) and p.requires_grad and p.is_leaf
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    assert type(p * 2) is tapegrad.Tensor and type(p.detach()) is tapegrad.Tensor
    q = copy.deepcopy(p)
    assert type(q) is nn.Parameter and q.requires_grad and q.tolist() == [1.0, 2.0]
    assert not nn.Parameter(tapegrad.zeros(2), requires_grad=False).requires_grad
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(tapegrad.tensor([1, 2]))
    assert tuple(nn.Parameter().shape) == (0,)


def test_buffers_submodule_lookup_and_buffer_marker():
    m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    assert m.get_submodule("1") is m[1] and m.get_parameter("0.bias") is m[0].bias
    assert m.get_buffer("1.running_var") is m[1].running_var
    with pytest.raises(AttributeError, match="has no attribute `9`"):
        m.get_submodule("9")
    m.extra = nn.Buffer(tapegrad.ones(3), persistent=False)
    assert "extra" in m._buffers and "extra" not in m.state_dict()
    assert type(m.extra) is tapegrad.Tensor
    m.register_buffer("extra", tapegrad.zeros(1))  # re-registering makes it persistent
    assert "extra" in m.state_dict()
    assert list(m.state_dict(None, "p.")) == ["p." + k for k in m.state_dict()]


def test_setattr_registration_rules():
    m = nn.Module()
    m.w = nn.Parameter(tapegrad.ones(2))
    m.sub = nn.Linear(2, 2)
    m.register_buffer("b", tapegrad.zeros(2))
    m.plain = 3
    assert list(m._parameters) == ["w"] and list(m._modules) == ["sub"]
    assert list(m._buffers) == ["b"] and m.plain == 3
    with pytest.raises(TypeError, match="cannot assign .* as parameter 'w'"):
        m.w = tapegrad.ones(2)
    m.b = tapegrad.ones(2)  # a tensor may replace a buffer
    assert m.b.tolist() == [1.0, 1.0]
    m.w = None
    assert m.w is None and list(m.parameters()) == list(m.sub.parameters())
    del m.sub
    assert "sub" not in m._modules
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'nothing'"):
        m.nothing
    with pytest.raises(KeyError, match="t contain"):
        m.register_buffer("a.b", None)

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(tapegrad.ones(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        nn.Module()(1)


def test_shared_parameters_listed_once_but_kept_under_each_key():
    def tied(m):
        net = m.Sequential(m.Linear(3, 3), m.Linear(3, 3))
        net[1].weight = net[0].weight
        return net

    a, b = tied(torch.nn), tied(nn)
    assert [n for n, _ in b.named_parameters()] == [n for n, _ in a.named_parameters()]
    assert len(list(b.parameters())) == 3
    assert list(b.state_dict()) == list(a.state_dict())
    assert len(list(b.named_parameters(remove_duplicate=False))) == 4


def test_train_eval_zero_grad_requires_grad_apply():
    m = nn.Sequential(nn.Linear(2, 2), nn.Dropout(), nn.Sequential(nn.BatchNorm1d(2)))
    assert all(x.training for x in m.modules())
    assert m.eval() is m and not any(x.training for x in m.modules())
    m.train()
    assert m[2][0].training
    m(tapegrad.randn(3, 2)).sum().backward()
    assert m[0].weight.grad is not None
    m.zero_grad(set_to_none=False)
    assert np.all(_np(m[0].weight.grad) == 0)
    m.zero_grad()
    assert m[0].weight.grad is None
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    t = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(),
                            torch.nn.Sequential(torch.nn.BatchNorm1d(2)))
    tseen = []
    t.apply(lambda mod: tseen.append(type(mod).__name__))
    assert seen == tseen


def test_to_double_float_half_keep_parameter_identity():
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    w = m[0].weight
    m(tapegrad.randn(4, 2)).sum().backward()
    assert m.to(tapegrad.float64) is m
    assert m[0].weight is w and w.dtype == tapegrad.float64 and w.grad.dtype == tapegrad.float64
    assert m[1].running_mean.dtype == tapegrad.float64
    assert m[1].num_batches_tracked.dtype == tapegrad.int64  # integers keep their dtype
    m.float()
    assert w.dtype == tapegrad.float32
    m.half()
    assert w.dtype == tapegrad.float16
    m.double().to("cpu")
    assert w.dtype == tapegrad.float64 and w.device == tapegrad.device("cpu")
    assert m.cpu() is m
    with pytest.raises(TypeError, match="floating point"):
        m.to(tapegrad.int64)


def test_deepcopy_module_is_independent():
    m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    c = copy.deepcopy(m)
    assert isinstance(c[0].weight, nn.Parameter)
    with tapegrad.no_grad():
        c[0].weight.fill_(7.0)
    assert not np.any(_np(m[0].weight) == 7.0)
    assert list(c.state_dict()) == list(m.state_dict())


# ---- hooks -----------------------------------------------------------------------------------
def test_forward_hooks_modify_and_remove():
    m = nn.Linear(2, 2, bias=False)
    with tapegrad.no_grad():
        m.weight.copy_(tapegrad.eye(2))
    calls = []
    h1 = m.register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
    h2 = m.register_forward_hook(lambda mod, args, out: out + 1)
    m.register_forward_hook(lambda mod, args, out: calls.append("last"))
    m.register_forward_hook(lambda mod, args, out: calls.append("first"), prepend=True)
    x = tapegrad.tensor([[1.0, 2.0]])
    assert m(x).tolist() == [[3.0, 5.0]]
    assert calls == ["first", "last"]
    h1.remove()
    h2.remove()
    assert m(x).tolist() == [[1.0, 2.0]]
    m.register_forward_pre_hook(lambda mod, args, kw: ((args[0] * 0,), kw), with_kwargs=True)
    m.register_forward_hook(lambda mod, args, kw, out: out - 1, with_kwargs=True)
    assert m(x).tolist() == [[-1.0, -1.0]]


def _hooked(lib, scale):
    m = lib.nn.Linear(3, 2).double()
    seen = {}

    def hook(mod, gin, gout):
        seen["gin"] = [None if g is None else g.detach().numpy().copy() for g in gin]
        seen["gout"] = [g.detach().numpy().copy() for g in gout]
        return tuple(None if g is None else g * scale for g in gin)

    m.register_full_backward_hook(hook)
    return m, seen


def test_full_backward_hook_sees_and_replaces_grads_like_torch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    g = rng.standard_normal((4, 2))
    ta, tseen = _hooked(torch, 3.0)
    ob, oseen = _hooked(tapegrad, 3.0)
    copy_weights(ob, ta)
    tx = torch.tensor(x, requires_grad=True)
    ox = tapegrad.tensor(x, requires_grad=True)
    ta(tx).backward(torch.tensor(g))
    ob(ox).backward(tapegrad.tensor(g))
    np.testing.assert_allclose(oseen["gout"][0], tseen["gout"][0], **TOL)
    np.testing.assert_allclose(oseen["gin"][0], tseen["gin"][0], **TOL)
    np.testing.assert_allclose(_np(ox.grad), _np(tx.grad), **TOL)  # scaled by the hook
    np.testing.assert_allclose(_np(ob.weight.grad), _np(ta.weight.grad), **TOL)


def test_backward_hook_without_input_grad_and_pre_hook():
    m = nn.Linear(2, 1)
    got = []
    h = m.register_full_backward_hook(lambda mod, gin, gout: got.append((gin, gout)))
    m(tapegrad.ones(1, 2)).sum().backward()
    assert got[0][0] == (None,) and tuple(got[0][1][0].shape) == (1, 1)
    h.remove()
    m.register_full_backward_pre_hook(lambda mod, gout: (gout[0] * 10,))
    m.zero_grad()
    m(tapegrad.ones(1, 2)).sum().backward()
    assert m.bias.grad.tolist() == [10.0]


# ---- containers --------------------------------------------------------------------------
def test_sequential_indexing_slicing_and_editing_like_torch():
    def build(m):
        return m.Sequential(m.Linear(2, 3), m.ReLU(), m.Linear(3, 4), m.Tanh())

    a, b = build(torch.nn), build(nn)
    assert type(b[0]).__name__ == "Linear" and type(b[-1]).__name__ == "Tanh"
    s = b[1:3]
    assert isinstance(s, nn.Sequential) and list(s._modules) == list(a[1:3]._modules)
    assert s[1] is b[2]
    assert len(b) == 4 and [type(x).__name__ for x in b] == [type(x).__name__ for x in a]
    del a[1]
    del b[1]
    assert list(b.state_dict()) == list(a.state_dict())
    a.append(torch.nn.Sigmoid())
    b.append(nn.Sigmoid())
    a.insert(0, torch.nn.Identity())
    b.insert(0, nn.Identity())
    assert [type(x).__name__ for x in b] == [type(x).__name__ for x in a]
    assert list(b.state_dict()) == list(a.state_dict())
    assert type(b.pop(0)).__name__ == "Identity" and len(b) == 4
    with pytest.raises(IndexError):
        b[10]
    from collections import OrderedDict

    named = nn.Sequential(OrderedDict([("fc", nn.Linear(1, 1)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"] and named.act is named[1]
    assert len(named + nn.Sequential(nn.ReLU())) == 3


def test_modulelist_and_moduledict():
    ml = nn.ModuleList([nn.Linear(2, 2)])
    ml.append(nn.Linear(2, 2))
    ml.extend([nn.ReLU()])
    ml.insert(0, nn.Tanh())
    ml += [nn.Sigmoid()]
    assert [type(x).__name__ for x in ml] == ["Tanh", "Linear", "Linear", "ReLU", "Sigmoid"]
    assert list(ml.state_dict()) == ["1.weight", "1.bias", "2.weight", "2.bias"]
    assert isinstance(ml[1:3], nn.ModuleList) and len(ml[1:3]) == 2
    del ml[0]
    assert list(ml.state_dict())[0] == "0.weight"
    t = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)] + [torch.nn.ReLU()])
    o = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU()])
    assert repr(o) == repr(t)
    md = nn.ModuleDict({"a": nn.Linear(1, 1)})
    md["b"] = nn.ReLU()
    md.update([("c", nn.Tanh())])
    assert list(md.keys()) == ["a", "b", "c"] and "b" in md and len(md) == 3
    assert type(md.pop("b")).__name__ == "ReLU" and list(md) == ["a", "c"]
    assert list(md.state_dict()) == ["a.weight", "a.bias"]


def test_parameter_containers_names_match_torch():
    tl = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(2)), torch.zeros(3)])
    ol = nn.ParameterList([nn.Parameter(tapegrad.zeros(2)), tapegrad.zeros(3)])
    assert [n for n, _ in ol.named_parameters()] == [n for n, _ in tl.named_parameters()]
    assert isinstance(ol[1], nn.Parameter) and len(ol) == 2
    td = torch.nn.ParameterDict({"x": torch.nn.Parameter(torch.ones(1))})
    od = nn.ParameterDict({"x": nn.Parameter(tapegrad.ones(1))})
    assert list(od.state_dict()) == list(td.state_dict()) and "x" in od


# ---- error messages ------------------------------------------------------------------------
def test_layer_errors_name_shapes():
    with pytest.raises(RuntimeError, match=r"\(5, 3\).*\(2, 4\)"):
        nn.Linear(4, 2)(tapegrad.ones(5, 3))
    with pytest.raises(RuntimeError, match=r"expected input\[1, 4, 5, 5\] to have 3 channels"):
        nn.Conv2d(3, 2, 3)(tapegrad.ones(1, 4, 5, 5))
    with pytest.raises(RuntimeError, match="Kernel size can't be greater"):
        nn.Conv2d(1, 1, 5)(tapegrad.ones(1, 1, 3, 3))
    with pytest.raises(RuntimeError, match="Output size is too small"):
        nn.MaxPool2d(3)(tapegrad.ones(1, 1, 2, 2))
    with pytest.raises(RuntimeError, match="pad should be at most half"):
        nn.MaxPool2d(2, padding=2)(tapegrad.ones(1, 1, 6, 6))
    with pytest.raises(RuntimeError, match=r"normalized_shape=\[4\].*\[2, 3\]"):
        nn.LayerNorm(4)(tapegrad.ones(2, 3))
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 2, 3, groups=2)
