"""``nn.functional`` beyond the op table (which already checks forward, gradients, gradcheck,
double backward and forward mode of every functional against PyTorch): options, indices,
numerical edge cases, in-place forms, signatures and error messages."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import tapegrad
import tapegrad.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional
TOL = dict(rtol=1e-10, atol=1e-10)


def _both(a, grad=False):
    return (tapegrad.tensor(a, requires_grad=grad), torch.tensor(a, requires_grad=grad))


def _close(ours, ref, tol=TOL):
    assert tuple(ours.shape) == tuple(ref.shape)
    np.testing.assert_allclose(ours.detach().numpy(), ref.detach().numpy(), **tol)


def test_signatures_match_torch():
    checked = 0
    for name in F.__all__:
        ref = getattr(TF, name, None)
        if ref is None:
            continue
        try:
            tsig = inspect.signature(ref)
        except (TypeError, ValueError):
            continue  # a C builtin without a Python signature
        osig = inspect.signature(getattr(F, name))
        if "args" in tsig.parameters:
            continue  # a dispatch wrapper (max_pool2d with/without indices)
        tnames = [p for p in tsig.parameters if not p.startswith("_")]
        onames = [p for p in osig.parameters if not p.startswith("_")]
        assert onames[:len(tnames)] == tnames, name
        for p in tnames:
            d = tsig.parameters[p].default
            if d is not inspect.Parameter.empty and isinstance(d, (int, float, str, bool)):
                assert osig.parameters[p].default == d, f"{name}({p}=...)"
        checked += 1
    assert checked >= 25


def test_softmax_implicit_dim_and_dtype_like_torch():
    rng = np.random.default_rng(0)
    for shape in [(4,), (3, 4), (2, 3, 4), (2, 3, 2, 2)]:
        o, t = _both(rng.standard_normal(shape))
        with pytest.warns(UserWarning, match="Implicit dimension"):
            ours = F.softmax(o)
        with pytest.warns(UserWarning):
            ref = TF.softmax(t)
        _close(ours, ref)
    o, t = _both(np.arange(6).reshape(2, 3))
    _close(F.log_softmax(o, 1, dtype=tapegrad.float64), TF.log_softmax(t, 1, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="integer dtype"):
        F.softmax(o, 1)
    x = tapegrad.tensor([[1.0, 2.0]], requires_grad=True)
    assert np.allclose(x.softmax(-1).detach().numpy(), x.log_softmax(1).exp().detach().numpy())


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_softmax_family_is_stable_for_extreme_inputs():
    a = np.array([[1000.0, 0.0, -1000.0], [-1e300, -1e300, 0.0]])
    for f, g in [(F.softmax, TF.softmax), (F.log_softmax, TF.log_softmax)]:
        o, t = _both(a, grad=True)
        ours, ref = f(o, 1), g(t, 1)
        _close(ours, ref)
        ours.sum().backward()
        ref.sum().backward()
        _close(o.grad, t.grad)


def test_softplus_gelu_leaky_relu_across_regions():
    a = np.linspace(-30, 30, 61)
    for kw in [dict(), dict(beta=0.5, threshold=5.0), dict(beta=3.0, threshold=1.0)]:
        o, t = _both(a, grad=True)
        ours, ref = F.softplus(o, **kw), TF.softplus(t, **kw)
        _close(ours, ref)
        ours.sum().backward()
        ref.sum().backward()
        _close(o.grad, t.grad)
    for approx in ["none", "tanh"]:
        o, t = _both(a, grad=True)
        _close(F.gelu(o, approximate=approx), TF.gelu(t, approximate=approx))
    with pytest.raises(RuntimeError, match="approximate"):
        F.gelu(tapegrad.ones(2), approximate="fast")


def test_inplace_activations_bump_version_and_keep_gradients():
    for f, g in [(F.relu, TF.relu), (lambda x, inplace: F.leaky_relu(x, 0.1, inplace),
                                     lambda x, inplace: TF.leaky_relu(x, 0.1, inplace)),
                 (F.elu, TF.elu), (F.hardtanh, TF.hardtanh), (F.silu, TF.silu)]:
        a = np.array([-2.0, -0.5, 0.3, 1.7])
        o, t = _both(a, grad=True)
        ho, ht = o * 1.5, t * 1.5
        v = ho._version
        ro, rt = f(ho, inplace=True), g(ht, inplace=True)
        assert ro is ho and ho._version > v
        _close(ho, ht)
        (ro * ro).sum().backward()
        (rt * rt).sum().backward()
        _close(o.grad, t.grad)
    leaf = tapegrad.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        F.relu_(leaf)


@pytest.mark.parametrize("kw", [dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=(2, 3), stride=(1, 2), dilation=(2, 1)),
                                dict(kernel_size=2, padding=1, ceil_mode=True),
                                dict(kernel_size=3, stride=2, ceil_mode=True)])
def test_max_pool2d_indices_equal_torch(kw):
    a = np.random.default_rng(0).standard_normal((2, 3, 7, 8))
    o, t = _both(a)
    ov, oi = F.max_pool2d(o, return_indices=True, **kw)
    tv, ti = TF.max_pool2d(t, return_indices=True, **kw)
    _close(ov, tv)
    np.testing.assert_array_equal(oi.numpy(), ti.numpy())
    assert oi.dtype == tapegrad.int64
    ov1, oi1 = F.max_pool1d(o[0], 3, 2, 1, return_indices=True)
    tv1, ti1 = TF.max_pool1d(t[0], 3, 2, 1, return_indices=True)
    _close(ov1, tv1)
    np.testing.assert_array_equal(oi1.numpy(), ti1.numpy())


def test_max_pool_ties_nan_and_infinities_like_torch():
    a = np.array([[[[1.0, 1.0, 0.0, np.nan], [1.0, -np.inf, 2.0, 2.0],
                    [-np.inf, -np.inf, 5.0, np.nan], [-np.inf, -np.inf, 3.0, 4.0]]]])
    o, t = _both(a, grad=True)
    ov, oi = F.max_pool2d(o, 2, 1, return_indices=True)
    tv, ti = TF.max_pool2d(t, 2, 1, return_indices=True)
    np.testing.assert_array_equal(ov.detach().numpy(), tv.detach().numpy())
    np.testing.assert_array_equal(oi.numpy(), ti.numpy())
    F.max_pool2d(o, 2, 1).sum().backward()
    TF.max_pool2d(t, 2, 1).sum().backward()
    np.testing.assert_array_equal(o.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_modes_match_torch(mode):
    rng = np.random.default_rng(1)
    for shape, pad in [((2, 3, 5), (2, 1)), ((1, 2, 4, 5), (1, 2, 3, 0))]:
        o, t = _both(rng.standard_normal(shape), grad=True)
        ours, ref = F.pad(o, pad, mode=mode), TF.pad(t, pad, mode=mode)
        _close(ours, ref)
        g = rng.standard_normal(tuple(ref.shape))
        ours.backward(tapegrad.tensor(g))
        ref.backward(torch.tensor(g))
        _close(o.grad, t.grad)
    o, t = _both(np.arange(4.0).reshape(1, 4))
    _close(F.pad(o, (1, 1), value=-3.0), TF.pad(t, (1, 1), value=-3.0))


def test_pad_errors():
    with pytest.raises(RuntimeError, match="divisible by 2"):
        F.pad(tapegrad.ones(2, 3), (1,))
    with pytest.raises(RuntimeError, match=r"padding \(3, 3\) at dimension 1"):
        F.pad(tapegrad.ones(1, 3), (3, 3), mode="reflect")
    with pytest.raises(NotImplementedError, match="unsupported padding mode"):
        F.pad(tapegrad.ones(1, 3), (1, 1), mode="mirror")


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("kw", [dict(padding="valid"), dict(padding="same"),
                                dict(padding="same", dilation=2), dict(stride=3, padding=2),
                                dict(groups=2, padding=(1, 0))])
def test_conv2d_options_match_torch(kw):
    rng = np.random.default_rng(2)
    xo, xt = _both(rng.standard_normal((2, 4, 7, 6)), grad=True)
    wo, wt = _both(rng.standard_normal((6, 4 // kw.get("groups", 1), 4, 3)), grad=True)
    bo, bt = _both(rng.standard_normal(6), grad=True)
    ours, ref = F.conv2d(xo, wo, bo, **kw), TF.conv2d(xt, wt, bt, **kw)
    _close(ours, ref)
    g = rng.standard_normal(tuple(ref.shape))
    ours.backward(tapegrad.tensor(g))
    ref.backward(torch.tensor(g))
    for a, b in [(xo, xt), (wo, wt), (bo, bt)]:
        _close(a.grad, b.grad)


def test_conv1d_unbatched_and_errors():
    rng = np.random.default_rng(3)
    xo, xt = _both(rng.standard_normal((3, 9)))
    wo, wt = _both(rng.standard_normal((2, 3, 4)))
    _close(F.conv1d(xo, wo, padding="same"), TF.conv1d(xt, wt, padding="same"))
    with pytest.raises(RuntimeError, match=r"Expected 2D \(unbatched\) or 3D"):
        F.conv1d(tapegrad.ones(3), wo)
    with pytest.raises(RuntimeError, match="Input type .*float32.* weight type .*float64"):
        F.conv1d(tapegrad.ones(1, 3, 9), wo)
    with pytest.raises(RuntimeError, match="bias"):
        F.conv1d(xo, wo, tapegrad.ones(3, dtype=tapegrad.float64))
    with pytest.raises(ValueError, match="Invalid padding string"):
        F.conv1d(xo, wo, padding="full")


def test_unfold_fold_match_torch():
    rng = np.random.default_rng(4)
    xo, xt = _both(rng.standard_normal((2, 3, 6, 5)))
    kw = dict(kernel_size=(2, 3), dilation=(2, 1), padding=1, stride=(1, 2))
    uo, ut = F.unfold(xo, **kw), TF.unfold(xt, **kw)
    _close(uo, ut)
    _close(F.fold(uo, (6, 5), **kw), TF.fold(ut, (6, 5), **kw))
    with pytest.raises(RuntimeError, match="sliding blocks"):
        F.fold(uo[:, :, :-1], (6, 5), **kw)


def test_avg_and_adaptive_pools_match_torch():
    rng = np.random.default_rng(5)
    xo, xt = _both(rng.standard_normal((2, 3, 7, 9)))
    _close(F.avg_pool2d(xo, 3, 2, 1, divisor_override=5),
           TF.avg_pool2d(xt, 3, 2, 1, divisor_override=5))
    _close(F.avg_pool2d(xo[0], 2, ceil_mode=True), TF.avg_pool2d(xt[0], 2, ceil_mode=True))
    _close(F.adaptive_avg_pool2d(xo, 1), TF.adaptive_avg_pool2d(xt, 1))
    _close(F.adaptive_avg_pool2d(xo, (4, 5)), TF.adaptive_avg_pool2d(xt, (4, 5)))
    _close(F.adaptive_avg_pool1d(xo[0], 4), TF.adaptive_avg_pool1d(xt[0], 4))


def test_one_hot_embedding_and_normalisation_helpers():
    labels = np.array([[0, 3], [2, 1]])
    o, t = _both(labels)
    np.testing.assert_array_equal(F.one_hot(o).numpy(), TF.one_hot(t).numpy())
    np.testing.assert_array_equal(F.one_hot(o, 6).numpy(), TF.one_hot(t, 6).numpy())
    assert F.one_hot(o).dtype == tapegrad.int64
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        F.one_hot(o, 3)
    with pytest.raises(IndexError, match="index 5 is out of range .* 5 rows"):
        F.embedding(tapegrad.tensor([5]), tapegrad.ones(5, 2))
    with pytest.raises(RuntimeError, match="Long, Int"):
        F.embedding(tapegrad.tensor([1.0]), tapegrad.ones(5, 2))
    rng = np.random.default_rng(6)
    ao, at = _both(rng.standard_normal((3, 4)))
    bo, bt = _both(rng.standard_normal((3, 4)))
    _close(F.normalize(ao, p=1, dim=0), TF.normalize(at, p=1, dim=0))
    _close(F.cosine_similarity(ao, bo, dim=0), TF.cosine_similarity(at, bt, dim=0))
    _close(F.pairwise_distance(ao, bo, p=3, keepdim=True),
           TF.pairwise_distance(at, bt, p=3, keepdim=True))
    _close(F.layer_norm(ao, (4,), eps=1e-3), TF.layer_norm(at, (4,), eps=1e-3))
    with pytest.raises(RuntimeError, match="divisible by num_groups"):
        F.group_norm(tapegrad.ones(2, 3, 4), 2)


def test_batch_norm_functional_running_stats_like_torch():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 3, 2)) * 3 + 2
    rm_o, rm_t = _both(np.zeros(3))
    rv_o, rv_t = _both(np.ones(3))
    ours = F.batch_norm(tapegrad.tensor(x), rm_o, rv_o, training=True, momentum=0.3)
    ref = TF.batch_norm(torch.tensor(x), rm_t, rv_t, training=True, momentum=0.3)
    _close(ours, ref)
    _close(rm_o, rm_t)
    _close(rv_o, rv_t)
    _close(F.batch_norm(tapegrad.tensor(x), rm_o, rv_o), TF.batch_norm(torch.tensor(x), rm_t,
                                                                       rv_t))
    with pytest.raises(RuntimeError, match="running_mean should contain 3 elements not 2"):
        F.batch_norm(tapegrad.tensor(x), tapegrad.zeros(2), tapegrad.ones(2))


def test_dropout_functional_forms():
    tapegrad.manual_seed(0)
    x = tapegrad.ones(1000)
    assert F.dropout(x, 0.0) is x and F.dropout(x, 0.7, training=False) is x
    assert np.all(F.dropout(x, 1.0).numpy() == 0)
    kept = (F.dropout(x, 0.3).numpy() != 0).mean()
    assert 0.65 < kept < 0.75
    tapegrad.manual_seed(5)
    a = F.dropout(x, 0.5).numpy()
    tapegrad.manual_seed(5)
    assert np.array_equal(a, F.dropout(x, 0.5).numpy())  # the global seed drives the masks
    y = F.dropout1d(tapegrad.ones(4, 50, 3), 0.5).numpy()
    assert np.all((y == 0).all(-1) | (y == 2).all(-1))
    with pytest.raises(RuntimeError, match="dropout1d: Expected 2D or 3D"):
        F.dropout1d(tapegrad.ones(2, 3, 4, 5))
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, -0.1)
