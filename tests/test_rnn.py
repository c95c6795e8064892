"""Recurrent layers and cells against PyTorch (float64, identical weights, 1e-10), plus the
fused scans against their own step functions, gradcheck, double backward and forward mode."""

import warnings

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn as nn
from tapegrad.autograd import forward_ad as fwAD
from tapegrad.autograd.gradcheck import gradcheck, gradgradcheck
from tapegrad.backends import ref_rnn
from tapegrad.nn import _rnn_ops as R

torch = pytest.importorskip("torch")

TOL = 1e-10
I, H, T, B = 5, 4, 6, 3


def _pair(kind, *args, **kw):
    """A tapegrad module and a torch module holding the same float64 weights."""
    t = getattr(torch.nn, kind)(*args, **kw).double()
    m = getattr(nn, kind)(*args, **kw, dtype=tg.float64)
    m.load_state_dict({k: tg.tensor(v.numpy()) for k, v in t.state_dict().items()})
    return m, t


def _both(a, grad=True):
    return (tg.tensor(a, requires_grad=grad),
            torch.tensor(a, requires_grad=grad))


def _close(a, b, what=""):
    a = a.detach().numpy() if hasattr(a, "detach") else a
    b = b.detach().numpy() if hasattr(b, "detach") else b
    assert a.shape == b.shape, (what, a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=0, atol=TOL, err_msg=what)


def _close_grads(m, t):
    tp = dict(t.named_parameters())
    names = [n for n, _ in m.named_parameters()]
    assert names == list(tp)
    for n, p in m.named_parameters():
        _close(p.grad, tp[n].grad, n)


def _run_and_compare(m, t, x, states, rng):
    """Forward both modules, backward a random projection of every output, compare all."""
    xg, xt = _both(x)
    sg = [tg.tensor(s, requires_grad=True) for s in states] if states else None
    st = [torch.tensor(s, requires_grad=True) for s in states] if states else None
    lstm = isinstance(t, torch.nn.LSTM)

    def hx(s):
        return None if s is None else (tuple(s) if lstm else s[0])

    out_g, hid_g = m(xg, hx(sg))
    out_t, hid_t = t(xt, hx(st))
    hid_g = hid_g if lstm else (hid_g,)
    hid_t = hid_t if lstm else (hid_t,)
    _close(out_g, out_t, "output")
    for a, b in zip(hid_g, hid_t):
        _close(a, b, "final state")
    weights = [rng.standard_normal(tuple(o.shape)) for o in (out_t, *hid_t)]
    sum(((o * tg.tensor(w)).sum() for o, w in zip((out_g, *hid_g), weights))).backward()
    sum(((o * torch.tensor(w)).sum() for o, w in zip((out_t, *hid_t), weights))).backward()
    _close(xg.grad, xt.grad, "input grad")
    for a, b in zip(sg or (), st or ()):
        _close(a.grad, b.grad, "initial state grad")
    _close_grads(m, t)


# kind, num_layers, bidirectional, batch_first, extra arguments, pass initial states
CASES = [
    ("RNN", 1, False, False, {}, True),
    ("RNN", 3, True, True, {"nonlinearity": "relu"}, True),
    ("RNN", 3, True, False, {}, False),
    ("RNN", 1, True, True, {"nonlinearity": "relu", "bias": False}, False),
    ("LSTM", 1, True, True, {}, True),
    ("LSTM", 3, False, False, {}, True),
    ("LSTM", 3, True, False, {"bias": False}, False),
    ("LSTM", 2, True, True, {}, True),
    ("GRU", 1, False, True, {}, True),
    ("GRU", 3, True, False, {}, True),
    ("GRU", 3, True, True, {"bias": False}, False),
]


def _case_id(c):
    kind, layers, bi, bf, kw, st = c
    extra = "-".join(f"{k}={v}" for k, v in kw.items())
    return (f"{kind}-L{layers}-{'bi' if bi else 'uni'}-{'bf' if bf else 'tf'}"
            f"{'-h0' if st else ''}{'-' + extra if extra else ''}")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_layer_matches_torch(case):
    kind, layers, bi, bf, kw, with_state = case
    rng = np.random.default_rng(len(_case_id(case)))
    m, t = _pair(kind, I, H, num_layers=layers, bidirectional=bi, batch_first=bf, **kw)
    x = rng.standard_normal((B, T, I) if bf else (T, B, I))
    d = 2 if bi else 1
    n_states = 2 if kind == "LSTM" else 1
    states = [rng.standard_normal((layers * d, B, H)) for _ in range(n_states)]
    _run_and_compare(m, t, x, states if with_state else None, rng)


def test_reference_backend_matches_torch():
    # The module tests run on the default CPU backend; this pins the NumPy reference kernels.
    rng = np.random.default_rng(1)
    with tg.backends.use("numpy"):
        for kind in ("RNN", "LSTM", "GRU"):
            m, t = _pair(kind, I, H, num_layers=2, bidirectional=True)
            n_states = 2 if kind == "LSTM" else 1
            states = [rng.standard_normal((4, B, H)) for _ in range(n_states)]
            _run_and_compare(m, t, rng.standard_normal((T, B, I)), states, rng)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_unbatched_input(kind, batch_first):
    rng = np.random.default_rng(2)
    m, t = _pair(kind, I, H, num_layers=2, bidirectional=True, batch_first=batch_first)
    n_states = 2 if kind == "LSTM" else 1
    states = [rng.standard_normal((4, H)) for _ in range(n_states)]
    _run_and_compare(m, t, rng.standard_normal((T, I)), states, rng)
    out, _ = m(tg.tensor(rng.standard_normal((T, I))))
    assert tuple(out.shape) == (T, 2 * H)


def test_default_dtype_float32():
    m = nn.GRU(I, H, num_layers=2, batch_first=True)
    out, h = m(tg.randn(B, T, I))
    assert out.dtype == tg.float32 and h.dtype == tg.float32
    assert tuple(out.shape) == (B, T, H) and tuple(h.shape) == (2, B, H)


def test_double_backward_matches_torch():
    # A gradient penalty: d/dW of |d(out^2)/dx|^2 runs backward through the backward pass.
    rng = np.random.default_rng(3)
    for kind in ("RNN", "LSTM", "GRU"):
        m, t = _pair(kind, 3, 2, bidirectional=True)
        xg, xt = _both(rng.standard_normal((3, 2, 3)))
        (gg,) = tg.autograd.grad((m(xg)[0] ** 2).sum(), xg, create_graph=True)
        (gt,) = torch.autograd.grad((t(xt)[0] ** 2).sum(), xt, create_graph=True)
        _close(gg, gt, "first grad")
        (gg ** 2).sum().backward()
        (gt ** 2).sum().backward()
        _close_grads(m, t)


@pytest.mark.cuda
@pytest.mark.skipif(not tg.cuda.is_available(),
                    reason="run with TAPEGRAD_CUDA_SIMULATOR=1 (or on a GPU)")
def test_layers_on_cuda_match_cpu():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((T, B, I))
    for kind in ("RNN", "LSTM", "GRU"):
        m = getattr(nn, kind)(I, H, num_layers=2, bidirectional=True, dtype=tg.float64)
        out, _ = m(tg.tensor(x))
        out.sum().backward()
        grads = [p.grad.numpy().copy() for p in m.parameters()]
        m.zero_grad()
        m.to("cuda")
        out_c, _ = m(tg.tensor(x).to("cuda"))
        out_c.sum().backward()
        assert out_c.device.type == "cuda"
        _close(out_c.cpu(), out, "cuda output")
        for p, g in zip(m.parameters(), grads):
            _close(p.grad.cpu(), g, "cuda grad")


# ---- cells ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,kw", [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}),
                                     ("LSTMCell", {}), ("GRUCell", {}),
                                     ("GRUCell", {"bias": False})])
@pytest.mark.parametrize("batched", [True, False])
def test_cell_matches_torch(kind, kw, batched):
    rng = np.random.default_rng(4)
    m, t = _pair(kind, I, H, **kw)
    shape = (lambda *s: (B, *s)) if batched else (lambda *s: s)
    xs = [_both(rng.standard_normal(shape(I))) for _ in range(3)]
    lstm = kind == "LSTMCell"
    h0 = [_both(rng.standard_normal(shape(H))) for _ in range(2 if lstm else 1)]
    state_g = tuple(h[0] for h in h0) if lstm else h0[0][0]
    state_t = tuple(h[1] for h in h0) if lstm else h0[0][1]
    # Three steps, the first without a state (zeros), feeding each output back.
    outs_g, outs_t = [], []
    for k, (xg, xt) in enumerate(xs):
        sg = m(xg) if k == 0 else m(xg, state_g)
        st = t(xt) if k == 0 else t(xt, state_t)
        state_g, state_t = sg, st
        outs_g += list(sg) if lstm else [sg]
        outs_t += list(st) if lstm else [st]
    for a, b in zip(outs_g, outs_t):
        _close(a, b, "cell output")
    weights = [rng.standard_normal(tuple(o.shape)) for o in outs_t]
    sum((o * tg.tensor(w)).sum() for o, w in zip(outs_g, weights)).backward()
    sum((o * torch.tensor(w)).sum() for o, w in zip(outs_t, weights)).backward()
    for (xg, xt) in xs:
        _close(xg.grad, xt.grad, "input grad")
    _close_grads(m, t)


def test_cell_errors():
    cell = nn.LSTMCell(32, 8)
    with pytest.raises(RuntimeError, match="got 16, expected 32"):
        cell(tg.randn(3, 16))
    with pytest.raises(RuntimeError, match="batch size 3 doesn't match hidden0 batch size 4"):
        cell(tg.randn(3, 32), (tg.randn(4, 8), tg.randn(4, 8)))
    with pytest.raises(ValueError, match="Expected input to be 1D or 2D, got 3D"):
        nn.GRUCell(32, 8)(tg.randn(2, 3, 32))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNNCell(3, 4, nonlinearity="sigmoid")


# ---- dropout, parameters, state dicts -----------------------------------------------------------
def test_dropout_between_layers():
    rng = np.random.default_rng(5)
    m, t = _pair("LSTM", I, H, num_layers=3, dropout=0.5, bidirectional=True)
    x = rng.standard_normal((T, B, I))
    m.eval()
    t.eval()
    _run_and_compare(m, t, x, None, rng)   # eval: no dropout, equal to torch
    m.zero_grad()
    m.train()
    tg.manual_seed(0)
    out_train, (h, c) = m(tg.tensor(x))
    assert tuple(out_train.shape) == (T, B, 2 * H) and tuple(h.shape) == (6, B, H)
    out_eval, _ = m.eval()(tg.tensor(x))
    assert not np.allclose(out_train.detach().numpy(), out_eval.detach().numpy())
    # Dropout only sits between layers: the first layer's states are untouched.
    _, (h_eval, _) = m(tg.tensor(x))
    _close(h[:2], h_eval[:2], "first layer state under dropout")
    # dropout=0 in training mode is the eval computation.
    m0, t0 = _pair("GRU", I, H, num_layers=3)
    _close(m0.train()(tg.tensor(x))[0], t0.eval()(torch.tensor(x))[0], "dropout=0 train")


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"])
def test_parameters_and_state_dict_like_torch(kind):
    cell = kind.endswith("Cell")
    kw = {} if cell else {"num_layers": 2, "bidirectional": True}
    t = getattr(torch.nn, kind)(I, H, **kw)
    tg.manual_seed(0)
    m = getattr(nn, kind)(I, H, **kw)
    sd_t, sd_g = t.state_dict(), m.state_dict()
    assert list(sd_g) == list(sd_t)
    for k in sd_t:
        assert tuple(sd_g[k].shape) == tuple(sd_t[k].shape), k
    # PyTorch's init: every parameter ~ U(-1/sqrt(H), 1/sqrt(H)).
    bound = 1 / np.sqrt(H)
    a = np.concatenate([p.detach().numpy().ravel() for p in m.parameters()])
    assert np.all(np.abs(a) <= bound) and abs(a.std() / (bound / np.sqrt(3)) - 1) < 0.3
    # The state dict goes back into torch, strictly.
    t.load_state_dict({k: torch.tensor(v.numpy()) for k, v in sd_g.items()})
    assert repr(m) == repr(t)


def test_names_and_repr_like_torch():
    t = torch.nn.RNN(I, H, num_layers=3, nonlinearity="relu", batch_first=True,
                     bidirectional=True, bias=False)
    m = nn.RNN(I, H, num_layers=3, nonlinearity="relu", batch_first=True,
               bidirectional=True, bias=False)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert repr(m) == repr(t)
    assert repr(nn.LSTM(I, H, 2, dropout=0.25)) == repr(torch.nn.LSTM(I, H, 2, dropout=0.25))
    assert repr(nn.RNNCell(I, H, nonlinearity="relu", bias=False)) == \
        repr(torch.nn.RNNCell(I, H, nonlinearity="relu", bias=False))
    lstm = nn.LSTM(I, H, 2, bidirectional=True)
    assert [[tuple(w.shape) for w in ws] for ws in lstm.all_weights] == \
        [[tuple(w.shape) for w in ws] for ws in torch.nn.LSTM(I, H, 2, bidirectional=True)
         .all_weights]


# ---- truncated BPTT ------------------------------------------------------------------------------
def test_truncated_bptt_matches_torch():
    """Chunks of 4 steps; the carried (h, c) is detached; SGD after each chunk, as users do."""
    rng = np.random.default_rng(6)
    m, t = _pair("LSTM", 3, 5, num_layers=2)
    x = rng.standard_normal((12, 2, 3))
    target = rng.standard_normal((12, 2, 5))
    state_g = state_t = None
    lr = 0.1
    for k in range(3):
        sl = slice(4 * k, 4 * k + 4)
        out_g, state_g = m(tg.tensor(x[sl]), state_g)
        out_t, state_t = t(torch.tensor(x[sl]), state_t)
        ((out_g - tg.tensor(target[sl])) ** 2).mean().backward()
        ((out_t - torch.tensor(target[sl])) ** 2).mean().backward()
        _close_grads(m, t)
        with tg.no_grad():
            for p in m.parameters():
                p.sub_(lr * p.grad)
                p.grad = None
        with torch.no_grad():
            for p in t.parameters():
                p.sub_(lr * p.grad)
                p.grad = None
        state_g = tuple(s.detach() for s in state_g)
        state_t = tuple(s.detach() for s in state_t)
        assert not state_g[0].requires_grad
        for a, b in zip(state_g, state_t):
            _close(a, b, f"carried state after chunk {k}")


# ---- errors --------------------------------------------------------------------------------------
def test_errors_name_the_sizes():
    rnn = nn.RNN(32, 8, num_layers=2)
    with pytest.raises(RuntimeError, match="Expected 32, got 16"):
        rnn(tg.randn(5, 2, 16))
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(2, 2, 8\), got \(1, 2, 8\)"):
        rnn(tg.randn(5, 2, 32), tg.randn(1, 2, 8))
    with pytest.raises(RuntimeError, match=r"hidden\[1\] size \(1, 2, 8\), got \(1, 2, 7\)"):
        nn.LSTM(32, 8)(tg.randn(5, 2, 32), (tg.randn(1, 2, 8), tg.randn(1, 2, 7)))
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D, got 4D"):
        rnn(tg.randn(5, 2, 3, 32))
    with pytest.raises(RuntimeError, match="unbatched 2-D input, hx should also be 2-D"):
        nn.GRU(32, 8)(tg.randn(5, 32), tg.randn(1, 2, 8))
    with pytest.raises(RuntimeError, match="float64.*float32"):
        rnn(tg.randn(5, 2, 32, dtype=tg.float64))
    with pytest.raises(ValueError, match="Unknown nonlinearity 'sigmoid'"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout"):
        nn.GRU(3, 4, 2, dropout=1.5)
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        nn.LSTM(3, 0)
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        nn.LSTM(3, 4, dropout=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.LSTM(3, 4, 2, dropout=0.2)


# ---- the fused scans -----------------------------------------------------------------------------
def _scan_case(mode, reverse, rng, n=3, b=2, h=2):
    gates = {"tanh": 1, "relu": 1, "lstm": 4, "gru": 3}[mode]
    xw = tg.tensor(rng.standard_normal((n, b, gates * h)), requires_grad=True)
    h0 = tg.tensor(rng.standard_normal((b, h)), requires_grad=True)
    c0 = tg.tensor(rng.standard_normal((b, h)), requires_grad=True)
    w = tg.tensor(rng.standard_normal((gates * h, h)) * 0.5, requires_grad=True)
    bias = tg.tensor(rng.standard_normal(gates * h) * 0.5, requires_grad=True)
    if mode == "lstm":
        return (lambda *a: R.lstm_scan(*a, reverse=reverse),
                lambda *a: R._lstm_steps(*a, reverse), (xw, h0, c0, w, bias))
    if mode == "gru":
        return (lambda *a: R.gru_scan(*a, reverse=reverse),
                lambda *a: R._gru_steps(*a, reverse), (xw, h0, w, bias))
    return (lambda *a: R.rnn_scan(*a, nonlinearity=mode, reverse=reverse),
            lambda *a: R._rnn_steps(*a, mode, reverse), (xw, h0, w, bias))


MODES = [(m, r) for m in ("tanh", "relu", "lstm", "gru") for r in (False, True)]


@pytest.mark.parametrize("mode,reverse", MODES)
def test_scan_equals_its_step_functions(mode, reverse):
    rng = np.random.default_rng(7)
    fused, steps, args = _scan_case(mode, reverse, rng, n=5, b=3, h=4)
    outs = []
    for f in (fused, steps):
        for a in args:
            a.grad = None
        y = f(*args)
        y = y if isinstance(y, tuple) else (y,)
        ws = [np.random.default_rng(8).standard_normal(tuple(o.shape)) for o in y]
        sum((o * tg.tensor(w)).sum() for o, w in zip(y, ws)).backward()
        outs.append([o.detach().numpy() for o in y] + [a.grad.numpy() for a in args])
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode,reverse", MODES)
def test_scan_gradcheck(mode, reverse):
    fused, _, args = _scan_case(mode, reverse, np.random.default_rng(9))
    assert gradcheck(fused, args)


@pytest.mark.parametrize("mode", ["tanh", "relu", "lstm", "gru"])
def test_scan_gradgradcheck(mode):
    # The vjp under create_graph differentiates the step functions: second order is exact.
    fused, _, args = _scan_case(mode, mode == "gru", np.random.default_rng(9), n=2, b=1)
    assert gradgradcheck(fused, args)


@pytest.mark.parametrize("mode", ["tanh", "lstm", "gru"])
def test_scan_forward_mode(mode):
    """<J v, u> from forward mode equals <v, J^T u> from the fused backward."""
    rng = np.random.default_rng(10)
    fused, _, args = _scan_case(mode, True, rng, n=4, b=2, h=3)
    vs = [rng.standard_normal(tuple(a.shape)) for a in args]
    with fwAD.dual_level():
        y = fused(*[fwAD.make_dual(a.detach(), tg.tensor(v)) for a, v in zip(args, vs)])
        y = y[0] if isinstance(y, tuple) else y
        tangent = fwAD.unpack_dual(y).tangent.numpy()
    u = rng.standard_normal(tangent.shape)
    y = fused(*args)
    y = y[0] if isinstance(y, tuple) else y
    (y * tg.tensor(u)).sum().backward()
    lhs = (tangent * u).sum()
    rhs = sum((a.grad.numpy() * v).sum() for a, v in zip(args, vs))
    assert abs(lhs - rhs) < 1e-10


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_numba_kernels_match_reference(dt):
    # float64 to 1e-12; float32 bit for bit in forward (the loops compute in float32 with
    # the reference's order of operations), and to float32 rounding in backward, where the
    # jitted loop's BLAS may sum a product in another order than NumPy's.
    pytest.importorskip("numba")
    from tapegrad.backends import numba_rnn

    rng = np.random.default_rng(11)

    def r(*s):
        return rng.standard_normal(s).astype(dt)

    def _all_close(xs, ys, forward=False):
        assert len(xs) == len(ys)
        for a, b in zip(xs, ys):
            assert a.dtype == b.dtype == dt and a.shape == b.shape
            if dt == np.float64:
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
            elif forward:
                np.testing.assert_array_equal(a, b)
            else:
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)

    n, b, h = 6, 5, 19  # (an odd width: the vectorised loops have a tail)
    for rev in (False, True):
        for act in ("tanh", "relu"):
            xw, h0, w, gy = r(n, b, h), r(b, h), r(h, h), r(n, b, h)
            ys = [k[f"rnn_{act}_seq"](xw, h0, w, rev) for k in (ref_rnn.KERNELS,
                                                                 numba_rnn.KERNELS)]
            gs = [k[f"rnn_{act}_seq_backward"](gy, y, h0, w, rev)
                  for k, y in zip((ref_rnn.KERNELS, numba_rnn.KERNELS), ys)]
            _all_close([ys[0]], [ys[1]], forward=True)
            _all_close(gs[0], gs[1])
        xw, h0, c0, w, gc = r(n, b, 4 * h), r(b, h), r(b, h), r(4 * h, h), r(n, b, h)
        fw = [mod.lstm_seq(xw, h0, c0, w, rev) for mod in (ref_rnn, numba_rnn)]
        bw = [mod.lstm_seq_backward(gy, gc, f[1], f[2], c0, w, rev)
              for mod, f in zip((ref_rnn, numba_rnn), fw)]
        _all_close(fw[0], fw[1], forward=True)
        _all_close(bw[0], bw[1])
        xw, w, bias = r(n, b, 3 * h), r(3 * h, h), r(3 * h)
        fw = [mod.gru_seq(xw, h0, w, bias, rev) for mod in (ref_rnn, numba_rnn)]
        bw = [mod.gru_seq_backward(gy, f[0], f[1], f[2], h0, w, rev)
              for mod, f in zip((ref_rnn, numba_rnn), fw)]
        _all_close(fw[0], fw[1], forward=True)
        _all_close(bw[0], bw[1])


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_layer_adds_its_hidden_bias_to_the_input_bias_not_to_every_step(kind):
    # RNN / LSTM: b_hh is added to each step's input projection as it is, so it joins b_ih
    # (one add of two bias vectors, then the bias goes into the product's output) instead
    # of a pass over (T, B, gates) in the scan. A GRU's b_hn sits inside r * (...): its scan
    # keeps b_hh. Gradients against PyTorch: test_layer_matches_torch.
    m = getattr(tg.nn, kind)(3, 4, num_layers=2, bidirectional=True)
    out = m(tg.randn(5, 2, 3))[0]
    nodes, stack, seen = [], [out.grad_fn], set()
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        nodes.append(n)
        stack.extend(e[0] for e in n.next if e is not None)
    scans = [n for n in nodes if n.name.endswith("_scan")]
    adds = [n for n in nodes if n.name == "add"]
    assert len(scans) == 4
    gates = {"RNN": 4, "LSTM": 16, "GRU": 12}[kind]
    if kind == "GRU":
        assert all(n.next[-1] is not None for n in scans) and not adds
    else:
        assert all(n.next[-1] is None for n in scans)
        assert len(adds) == 4 and all(n.shapes == ((gates,), (gates,)) for n in adds)
