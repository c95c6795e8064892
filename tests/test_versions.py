"""In-place safety: version counters, and backward errors that name the op that saved the
tensor, its shape, both versions, the line of the in-place change and (in anomaly mode) the
line where it was saved."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import tapegrad

A = tapegrad.autograd


def _line():
    return inspect.currentframe().f_back.f_lineno


def _leaf(vals):
    return tapegrad.tensor(vals, requires_grad=True)


def test_version_counter_bumps_on_every_inplace_op_and_is_shared_by_views():
    x = tapegrad.zeros(2, 3)
    v = x.view(6)
    d = x.detach()
    assert x._version == 0
    x.add_(1)
    x.mul_(2)
    x[0, 1] = 5.0
    v.zero_()
    d.fill_(3.0)
    x.copy_(tapegrad.ones(2, 3))
    assert x._version == v._version == d._version == 6
    y = x + 1  # out-of-place: a fresh counter
    assert y._version == 0


def test_saved_input_modified_names_everything():
    a = _leaf([1.0, 2.0, 3.0])
    b = a * 1
    c = b * a  # mul saves both inputs
    line = _line(); b.add_(1)  # noqa: E702
    with pytest.raises(RuntimeError) as ei:
        c.sum().backward()
    msg = str(ei.value)
    assert "modified by an inplace operation" in msg
    assert "mul" in msg and "MulBackward" in msg
    assert "shape (3,)" in msg
    assert "version 0" in msg and "version 1" in msg
    assert f"add_ at {__file__}:{line}" in msg
    assert "set_detect_anomaly(True)" in msg  # how to learn the saving line
    assert a.grad is None


def test_saved_output_modified():
    a = _leaf([0.5, 1.0])
    b = a.exp()  # exp saves its output
    line = _line(); b.mul_(2)  # noqa: E702
    with pytest.raises(RuntimeError, match=rf"exp.*shape \(2,\).*mul_ at .*:{line}"):
        b.sum().backward()


def test_anomaly_mode_adds_the_saving_line():
    with A.detect_anomaly():
        a = _leaf([1.0, 2.0])
        b = a.exp()
        save_line = _line(); c = b.sin()  # noqa: E702
        mod_line = _line(); b.sub_(1)  # noqa: E702
    with pytest.raises(RuntimeError) as ei:
        c.sum().backward()
    msg = str(ei.value)
    assert f"saved by sin at {__file__}:{save_line}" in msg
    assert "c = b.sin()" in msg
    assert f"sub_ at {__file__}:{mod_line}" in msg


def test_modification_through_a_view_is_caught():
    a = _leaf([[1.0, 2.0], [3.0, 4.0]])
    b = a * 2
    c = b.tanh()  # saves its output
    with tapegrad.no_grad():
        line = _line(); c.view(4)[0] = 0.0  # noqa: E702
    with pytest.raises(RuntimeError, match=rf"tanh.*shape \(2, 2\).*setitem at .*:{line}"):
        c.sum().backward()


def test_several_changes_report_the_last_version_and_line():
    a = _leaf([1.0, 2.0])
    b = a + 0
    c = b.exp() * b
    b.add_(1)
    line = _line(); b.mul_(3)  # noqa: E702
    pattern = rf"version 0 and is now at version 2.*mul_ at .*:{line}"
    with pytest.raises(RuntimeError, match=pattern):
        c.sum().backward()


def test_unsaved_tensor_may_be_modified_and_grads_match_torch():
    torch = pytest.importorskip("torch")

    def run(lib):
        a = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
        b = a * 2
        c = b + 1  # add saves nothing: changing b afterwards is harmless
        b.mul_(5)
        d = (c * c).sum() + b.sum()
        d.backward()
        return d.item(), a.grad.detach().numpy().copy()

    ours, theirs = run(tapegrad), run(torch)
    assert ours[0] == pytest.approx(theirs[0])
    np.testing.assert_allclose(ours[1], theirs[1])


def test_same_exception_type_as_torch():
    torch = pytest.importorskip("torch")
    for lib in (tapegrad, torch):
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = a.sigmoid()
        b.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            b.sum().backward()


def test_inplace_on_leaf_requiring_grad_raises_and_changes_nothing():
    a = _leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"add_.*leaf.*shape \(2,\)"):
        a.add_(1)
    np.testing.assert_array_equal(a.detach().numpy(), [1.0, 2.0])
    assert a._version == 0


def test_inplace_under_no_grad_on_leaf_is_allowed():
    a = _leaf([1.0, 2.0])
    with tapegrad.no_grad():
        a.sub_(0.5)
    assert a._version == 1 and a.is_leaf and a.requires_grad
    (a * a).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [1.0, 3.0])


def test_retain_graph_second_backward_sees_later_change():
    a = _leaf([1.0, 2.0])
    b = a * 1
    c = (b * b).sum()
    c.backward(retain_graph=True)
    np.testing.assert_allclose(a.grad.numpy(), [2.0, 4.0])
    b.add_(1)
    with pytest.raises(RuntimeError, match="version 0 and is now at version 1"):
        c.backward()
    np.testing.assert_allclose(a.grad.numpy(), [2.0, 4.0])


@pytest.mark.parametrize("expr,grad", [
    ("v * w", "w"),            # d/dv needs w only: v may change afterwards
    ("w * v", "w"),
    ("v @ m", "m"),            # d/dv of v @ m needs m only
    ("v / w", "1 / w"),        # d/dv of v / w needs w only
])
def test_an_input_no_rule_reads_may_change_in_place(expr, grad):
    # PyTorch keeps a product's factor only for the other factor's gradient; so do we:
    # changing the unused one in place before backward is no error, and the result is right.
    v = _leaf([[1.0, 2.0], [3.0, 4.0]])
    w = tapegrad.tensor([[2.0, 3.0], [5.0, 7.0]])   # no grad: its factor v is not needed
    m = tapegrad.tensor([[1.0, -1.0], [0.5, 2.0]])
    y = eval(expr, {"v": v, "w": w, "m": m})
    with tapegrad.no_grad():
        v.mul_(3)
    y.sum().backward()
    want = eval(grad, {"w": w, "m": m})
    want = want.sum(1).expand(2, 2) if expr == "v @ m" else want
    np.testing.assert_allclose(v.grad.numpy(), want.numpy())


def test_a_factor_a_rule_reads_still_raises_when_changed():
    v = _leaf([1.0, 2.0])
    w = tapegrad.tensor([2.0, 3.0])
    y = w * v          # d/dv needs w
    w.mul_(3)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    n = _leaf([1.0, 2.0])
    d = _leaf([2.0, 4.0])
    z = n / d          # d/dd needs n
    with tapegrad.no_grad():
        n.mul_(3)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()
