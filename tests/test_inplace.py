"""In-place ops: differentiable on non-leaves, version counters, errors, ``__setitem__``."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
X0 = RNG.uniform(0.5, 1.5, (3, 4))
V0 = RNG.uniform(-1.0, 1.0, (3, 4))


def _run(lib, fn, x0=X0, v0=V0):
    """``fn(lib, m, v)`` on a non-leaf ``m = x * 1``; returns output, x.grad, v.grad."""
    x = lib.tensor(x0, requires_grad=True)
    v = lib.tensor(v0, requires_grad=True)
    m = x * 1.5
    out = fn(lib, m, v)
    g = np.random.default_rng(1).standard_normal(tuple(out.shape))
    (out * lib.tensor(g)).sum().backward()
    gx = None if x.grad is None else x.grad.numpy()
    gv = None if v.grad is None else v.grad.numpy()
    return out.detach().numpy(), gx, gv


def _compare(fn, **kw):
    ours = _run(tapegrad, fn, **kw)
    ref = _run(torch, fn, **kw)
    for o, r in zip(ours, ref):
        if r is None:
            assert o is None or not np.any(o)
        else:
            assert o is not None
            np.testing.assert_allclose(o, r, rtol=1e-12, atol=1e-12)


def _inplace_then(m, r):
    assert r is m  # in-place methods return self
    return (m * m).sum(1)


INPLACE_CASES = {
    "add_": lambda lib, m, v: _inplace_then(m, m.add_(v)),
    "add_alpha": lambda lib, m, v: _inplace_then(m, m.add_(v, alpha=2.0)),
    "sub_": lambda lib, m, v: _inplace_then(m, m.sub_(v)),
    "mul_": lambda lib, m, v: _inplace_then(m, m.mul_(v)),
    "mul_scalar": lambda lib, m, v: _inplace_then(m, m.mul_(3.0)),
    "div_": lambda lib, m, v: _inplace_then(m, m.div_(v + 3)),
    "clamp_": lambda lib, m, v: _inplace_then(m, m.clamp_(0.9, 1.6)),
    "clamp_min": lambda lib, m, v: _inplace_then(m, m.clamp_(min=1.2)),
    "zero_": lambda lib, m, v: _inplace_then(m, m.zero_()) + v.sum(),
    "fill_": lambda lib, m, v: _inplace_then(m, m.fill_(2.5)) + v.sum(),
    "fill_tensor": lambda lib, m, v: _inplace_then(m, m.fill_(v[0, 0])),
    "copy_": lambda lib, m, v: _inplace_then(m, m.copy_(v * 2)),
    "copy_broadcast": lambda lib, m, v: _inplace_then(m, m.copy_(v[0])),
    "add_broadcast": lambda lib, m, v: _inplace_then(m, m.add_(v[1])),
    "log_": lambda lib, m, v: _inplace_then(m, m.log_()),
    "sin_": lambda lib, m, v: _inplace_then(m, m.sin_()),
    "neg_then_add": lambda lib, m, v: _inplace_then(m, m.neg_().add_(v)),
    "rsqrt_": lambda lib, m, v: _inplace_then(m, m.rsqrt_()),
    "clamp_min_": lambda lib, m, v: _inplace_then(m, m.clamp_min_(1.3)),
    "clamp_max_": lambda lib, m, v: _inplace_then(m, m.clamp_max_(1.3)),
    "fmod_": lambda lib, m, v: _inplace_then(m, m.fmod_(0.7)),
    "pow_": lambda lib, m, v: _inplace_then(m, m.pow_(v)),
    "masked_fill_": lambda lib, m, v: _inplace_then(m, m.masked_fill_(v > 0, 0.5)),
    "sub_tensor_alpha": lambda lib, m, v: _inplace_then(m, m.sub_(v, alpha=0.5)),
}


def _iadd(lib, m, v):
    m += v
    m *= v
    m -= 0.5
    m /= 2.0
    return m.exp()


INPLACE_CASES["augmented"] = _iadd


@pytest.mark.parametrize("name", list(INPLACE_CASES))
def test_inplace_on_non_leaf_matches_torch(name):
    _compare(INPLACE_CASES[name])


def test_inplace_saved_output_rule():
    # exp saves its output; an in-place on the output itself must be caught
    def fn(lib, m, v):
        y = m.exp()
        y.mul_(2)
        return y

    x = tapegrad.tensor(X0, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"exp.*version 0.*version 1"):
        fn(tapegrad, x * 1, None).sum().backward()


def test_inplace_chain_keeps_gradient_flowing_through_earlier_history():
    # tanh_ saves its output; a later out-of-place use keeps everything consistent
    def fn(lib, m, v):
        m.tanh_()
        return m * v

    _compare(fn)


# ---- setitem -------------------------------------------------------------------------------------
SETITEM_CASES = {
    "int": lambda lib, m, v: (m.__setitem__(1, v[0]), m)[1],
    "slice": lambda lib, m, v: (m.__setitem__((slice(None), slice(1, 3)), v[:, :2]), m)[1],
    "scalar": lambda lib, m, v: (m.__setitem__((0, 0), 7.0), m * v)[1],
    "step": lambda lib, m, v: (m.__setitem__(slice(None, None, 2), v[:2] * 3), m)[1],
    "ellipsis": lambda lib, m, v: (m.__setitem__((Ellipsis, 0), v[:, 1]), m)[1],
    "broadcast": lambda lib, m, v: (m.__setitem__(slice(0, 2), v[2]), m)[1],
    "advanced": lambda lib, m, v: (m.__setitem__(lib.tensor([0, 2]), v[:2]), m)[1],
    "advanced_pair": lambda lib, m, v: (m.__setitem__((lib.tensor([0, 2, 1]),
                                                       lib.tensor([3, 0, 1])), v[0, :3]),
                                        m)[1],
    "mixed": lambda lib, m, v: (m.__setitem__((slice(1, None), lib.tensor([1, 3])), v[:2, :2]),
                                m)[1],
    "bool": lambda lib, m, v: (m.__setitem__(lib.tensor(X0 > 1.0), v[lib.tensor(X0 > 1.0)]),
                               m)[1],
    "bool_rows": lambda lib, m, v: (m.__setitem__(lib.tensor([True, False, True]), v[1]), m)[1],
    "bool_scalar_fill": lambda lib, m, v: (m.__setitem__(lib.tensor(V0 > 0), 0.0), m * v)[1],
    "twice": lambda lib, m, v: (m.__setitem__(0, v[1]), m.__setitem__(2, v[0] * 2), m)[2],
}


def test_setitem_reading_itself_raises_like_torch():
    for lib in (tapegrad, torch):
        x = lib.tensor(X0, requires_grad=True)
        v = lib.tensor(V0, requires_grad=True)
        m = x * 1.5
        m[0] = m[1] * v[2]  # mul saved the view m[1]; the write bumps its version
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            m.sum().backward()


@pytest.mark.parametrize("name", list(SETITEM_CASES))
def test_setitem_gradients_match_torch(name):
    _compare(SETITEM_CASES[name])


def test_setitem_value_requires_grad_into_plain_tensor():
    def fn(lib, m, v):
        z = lib.zeros(3, 4, dtype=lib.float64)
        z[1] = v[0] * 2
        return z * m

    _compare(fn)


def test_setitem_without_grad_writes_in_place():
    z = tapegrad.zeros(2, 3)
    data_before = z.numpy()
    z[0, 1:] = tapegrad.tensor([5.0, 6.0])
    z[tapegrad.tensor([1])] = 2.0
    np.testing.assert_array_equal(data_before, [[0, 5, 6], [2, 2, 2]])
    assert z._version == 2


# ---- version counters ----------------------------------------------------------------------------
def test_version_counter_shared_with_views_and_detach():
    x = tapegrad.zeros(3, 4)
    v = x.view(12)
    row = x[0]
    d = x.detach()
    t = x.t()
    assert x._version == 0
    v.add_(1)
    assert x._version == v._version == row._version == d._version == t._version == 1
    row.mul_(2)
    assert x._version == 2 and d._version == 2
    d.zero_()
    assert x._version == 3 and v._version == 3
    np.testing.assert_array_equal(x.numpy(), np.zeros((3, 4)))


def test_version_counter_matches_torch_bumps():
    counts = {}
    for lib in (tapegrad, torch):
        x = lib.ones(2, 2)
        x.add_(1)
        x.mul_(2)
        x[0] = 3.0
        x += 1
        x.zero_()
        x.fill_(1)
        x.copy_(lib.zeros(2, 2))
        counts[lib.__name__] = x._version
    assert counts["tapegrad"] == counts["torch"]


def test_modifying_saved_tensor_raises_naming_op_and_versions():
    x = tapegrad.tensor([1.0, 2.0], requires_grad=True)
    a = x * 2
    y = a * a  # mul saves a
    a.add_(1)
    with pytest.raises(RuntimeError) as ei:
        y.sum().backward()
    msg = str(ei.value)
    assert "modified by an inplace operation" in msg
    assert "mul" in msg and "version 0" in msg and "version 1" in msg
    assert "add_" in msg  # names the in-place change
    assert "test_inplace.py" in msg  # and where it happened
    assert x.grad is None  # nothing was accumulated


def test_modifying_saved_tensor_through_a_view_raises():
    x = tapegrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a = x.exp()
    y = a.sin()  # sin saves its input a
    with tapegrad.no_grad():
        a[0] = 5.0
    with pytest.raises(RuntimeError, match="inplace"):
        y.sum().backward()


def test_modifying_through_detach_is_caught():
    x = tapegrad.tensor([1.0, 2.0], requires_grad=True)
    a = x * 1
    y = a.sin()
    a.detach().zero_()
    with pytest.raises(RuntimeError, match="inplace"):
        y.sum().backward()


def test_unsaved_tensor_may_be_modified():
    x = tapegrad.tensor([1.0, 2.0], requires_grad=True)
    a = x * 1
    y = a + 1  # add saves nothing
    a.mul_(5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


def test_inplace_on_leaf_requiring_grad_raises_and_leaves_data():
    for name, fn in [("add_", lambda t: t.add_(1)), ("mul_", lambda t: t.mul_(2)),
                     ("zero_", lambda t: t.zero_()), ("fill_", lambda t: t.fill_(3)),
                     ("copy_", lambda t: t.copy_(tapegrad.zeros(2))),
                     ("setitem", lambda t: t.__setitem__(0, 5.0)),
                     ("add_", lambda t: t.__iadd__(1.0)),
                     ("clamp_", lambda t: t.clamp_(0, 1))]:
        x = tapegrad.tensor([1.0, 2.0], requires_grad=True)
        with pytest.raises(RuntimeError, match=f"{name}.*leaf Variable that requires grad"):
            fn(x)
        np.testing.assert_array_equal(x.detach().numpy(), [1.0, 2.0])
        assert x._version == 0 and x.is_leaf


def test_inplace_on_view_of_leaf_raises():
    x = tapegrad.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="view of a leaf"):
        x[0].add_(1)


def test_inplace_on_leaf_allowed_under_no_grad():
    x = tapegrad.tensor([1.0, 2.0], requires_grad=True)
    with tapegrad.no_grad():
        x.mul_(2)
        x[0] = 10.0
    np.testing.assert_array_equal(x.detach().numpy(), [10.0, 4.0])
    assert x.is_leaf and x.requires_grad


def test_inplace_dtype_errors_leave_tensor_untouched():
    x = tapegrad.tensor([1, 2])
    with pytest.raises(RuntimeError, match="can't be cast"):
        x.add_(0.5)
    np.testing.assert_array_equal(x.numpy(), [1, 2])
    with pytest.raises(RuntimeError):
        torch.tensor([1, 2]).add_(0.5)


def test_inplace_shape_error_leaves_tensor_untouched():
    x = tapegrad.ones(3)
    with pytest.raises(RuntimeError, match=r"\(3,\)"):
        x.add_(tapegrad.ones(2, 3))
    np.testing.assert_array_equal(x.numpy(), [1, 1, 1])
    assert x._version == 0


def test_inplace_result_keeps_identity_and_becomes_non_leaf():
    x = tapegrad.tensor([1.0, 2.0], requires_grad=True)
    a = x * 1
    ident = id(a)
    a.mul_(3)
    assert id(a) == ident and "MulBackward" in repr(a)
    a.exp_()
    assert "ExpBackward" in repr(a)


def test_inplace_on_plain_tensor_with_grad_argument_matches_torch():
    def fn(lib, m, v):
        z = lib.ones(3, 4, dtype=lib.float64)
        z.mul_(v)  # mul saves z's old values for v's gradient
        z.add_(m)
        z.mul_(m)
        return z

    _compare(fn)


def test_modifying_a_saved_output_in_place_raises_like_torch():
    for lib in (tapegrad, torch):
        x = lib.tensor(X0, requires_grad=True)
        m = x * 1.5
        m.exp_().mul_(2.0)  # exp_ saved its output, which mul_ then overwrites
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            (m * m).sum().backward()


def test_double_backward_through_inplace_ops_matches_torch():
    res = []
    for lib in (tapegrad, torch):
        x = lib.tensor([0.5, 1.2], dtype=lib.float64, requires_grad=True)
        m = x * 2
        m.mul_(x)
        m.sin_()
        m[0] = x[0] * x[1]
        (g,) = lib.autograd.grad(m.sum(), x, create_graph=True)
        (h,) = lib.autograd.grad(g.sum(), x)
        res.append((g.detach().numpy(), h.numpy()))
    for o, r in zip(*res):
        np.testing.assert_allclose(o, r, rtol=1e-12)


def test_gradcheck_through_inplace_and_setitem():
    def f(x, v):
        m = x * 1.0
        m.mul_(v)
        m[1:, 0] = v[0, 1:] * 2
        m[m.detach() > 0.3] = 0.0
        m.clamp_(-0.8, 0.8)
        return m

    x = tapegrad.tensor(np.random.default_rng(5).uniform(-1, 1, (3, 3)), requires_grad=True)
    v = tapegrad.tensor(np.random.default_rng(6).uniform(-1, 1, (3, 3)), requires_grad=True)
    assert tapegrad.autograd.gradcheck(f, (x, v))
