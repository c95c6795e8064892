"""Anomaly mode: the first op that makes a NaN/Inf raises, in forward and in backward, naming
the op, the shapes and the user's line; off by default and free when off."""

from __future__ import annotations

import inspect
import threading
import warnings

import numpy as np
import pytest

import tapegrad
from tapegrad.autograd import hooks_state

A = tapegrad.autograd


def _line():
    return inspect.currentframe().f_back.f_lineno


@pytest.fixture(autouse=True)
def _quiet_and_reset():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's divide-by-zero warnings
        yield
    A.set_detect_anomaly(False)


def test_off_by_default_and_records_nothing():
    assert not A.is_anomaly_enabled()
    x = tapegrad.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    assert getattr(y.grad_fn, "_trace", None) is None
    z = tapegrad.tensor([0.0]) / tapegrad.tensor([0.0])  # NaN, no error when off
    assert np.isnan(z.item())


def test_off_costs_no_hook_call(monkeypatch):
    def boom(*a):
        raise AssertionError("anomaly hook called while anomaly mode is off")

    monkeypatch.setattr(hooks_state, "anomaly_after", boom)
    monkeypatch.setattr(hooks_state, "anomaly_before", boom)
    monkeypatch.setattr(hooks_state, "anomaly_vjp", boom)
    x = tapegrad.tensor([1.0, 0.0], requires_grad=True)
    (x.sqrt() * x).sum().backward()
    assert x.grad is not None


def test_forward_nan_names_op_shapes_and_user_line():
    x = tapegrad.tensor([0.0, 1.0, 2.0], requires_grad=True)
    zero = tapegrad.zeros(3)
    with A.detect_anomaly():
        with pytest.raises(RuntimeError) as ei:
            line = _line(); y = x / zero  # noqa: E702,F841
    msg = str(ei.value)
    assert "div" in msg and "(3,)" in msg and "float32" in msg
    assert "NaN" in msg and "Inf" in msg
    assert f"test_anomaly.py:{line}" in msg
    assert "y = x / zero" in msg  # the source text of the user's line


def test_forward_inf_from_log():
    x = tapegrad.tensor([[1.0, 0.0], [2.0, 3.0]])
    with A.detect_anomaly(), pytest.raises(RuntimeError, match=r"log.*\(2, 2\)"):
        x.log()


def test_forward_nan_already_in_input_is_not_blamed():
    x = tapegrad.tensor([float("nan"), 1.0], requires_grad=True)
    with A.detect_anomaly():
        y = (x * 2 + 1).sum()  # the NaN came in from outside: no op made it
    assert np.isnan(y.item())


def test_forward_scalar_nan_constant_is_an_input():
    x = tapegrad.tensor([1.0, 2.0])
    with A.detect_anomaly():
        y = x * float("nan")
    assert np.isnan(y.numpy()).all()


def test_finite_run_is_unchanged():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 3))

    def f():
        x = tapegrad.tensor(a, requires_grad=True)
        y = (x.tanh() @ x.T).logsumexp(1).sum()
        y.backward()
        return y.item(), x.grad.numpy().copy()

    off = f()
    with A.detect_anomaly():
        on = f()
    assert off[0] == on[0]
    np.testing.assert_array_equal(off[1], on[1])


def test_inplace_nan_leaves_tensor_untouched():
    x = tapegrad.tensor([0.0, 1.0])
    v0 = x._version
    with A.detect_anomaly(), pytest.raises(RuntimeError, match="div"):
        x.div_(tapegrad.tensor([0.0, 1.0]))
    np.testing.assert_array_equal(x.numpy(), [0.0, 1.0])
    assert x._version == v0


def test_backward_nan_names_node_and_forward_traceback():
    x = tapegrad.tensor([0.0, 4.0], requires_grad=True)
    with A.detect_anomaly():
        line = _line(); r = x.sqrt()  # noqa: E702
        y = (r * 3).sum()
        with pytest.raises(RuntimeError) as ei:
            y.backward()
    msg = str(ei.value)
    assert "SqrtBackward" in msg
    assert "shape (2,)" in msg
    assert "Traceback of the forward call" in msg
    assert f'line {line}' in msg and "r = x.sqrt()" in msg
    assert "tapegrad" + "/ops" not in msg  # internal frames are left out
    assert x.grad is None


def test_backward_nan_for_node_made_before_anomaly_mode():
    x = tapegrad.tensor([0.0, 4.0], requires_grad=True)
    y = x.sqrt().sum()
    with A.detect_anomaly(), pytest.raises(RuntimeError, match="not recorded"):
        y.backward()


def test_backward_intermediate_nan_inside_vjp_is_attributed_to_the_node():
    # pow(x, 0.5)'s vjp divides by sqrt(0): the division runs inside the vjp, and the error
    # must blame the pow node, not a "div" forward op.
    x = tapegrad.tensor([0.0, 1.0], requires_grad=True)
    with A.detect_anomaly():
        y = (x ** 0.5).sum()
        with pytest.raises(RuntimeError, match="PowBackward") as ei:
            y.backward()
    assert "anomaly: div" not in str(ei.value)


def test_backward_create_graph_checks_too():
    x = tapegrad.tensor([0.0, 1.0], requires_grad=True)
    with A.detect_anomaly(), pytest.raises(RuntimeError, match="Backward"):
        A.grad(x.sqrt().sum(), x, create_graph=True)


def test_check_nan_false_keeps_traces_without_scanning():
    x = tapegrad.tensor([0.0], requires_grad=True)
    with A.detect_anomaly(check_nan=False):
        line = _line(); y = x / x  # noqa: E702
        assert not A.is_anomaly_check_nan_enabled()
    assert np.isnan(y.item())
    assert f"test_anomaly.py:{line}" in y.grad_fn._trace.location


def test_decorator_and_set_detect_anomaly_nesting():
    @A.detect_anomaly()
    def f(x):
        assert A.is_anomaly_enabled()
        return x.log()

    with pytest.raises(RuntimeError, match="log"):
        f(tapegrad.tensor([0.0]))
    assert not A.is_anomaly_enabled()

    A.set_detect_anomaly(True)
    assert A.is_anomaly_enabled()
    with A.set_detect_anomaly(False):
        assert not A.is_anomaly_enabled()
        tapegrad.tensor([0.0]).log()  # no error in here
    assert A.is_anomaly_enabled()
    A.set_detect_anomaly(False)
    assert not A.is_anomaly_enabled()


def test_exception_inside_block_restores_mode():
    with pytest.raises(ValueError):
        with A.detect_anomaly():
            raise ValueError("x")
    assert not A.is_anomaly_enabled()


def test_custom_function_backward_nan():
    class BadGrad(A.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * float("inf")

    x = tapegrad.tensor([1.0, 2.0], requires_grad=True)
    with A.detect_anomaly():
        line = _line(); y = BadGrad.apply(x).sum()  # noqa: E702
        with pytest.raises(RuntimeError, match="BadGrad") as ei:
            y.backward()
    assert f"line {line}" in str(ei.value)


def test_multi_output_op_traced():
    x = tapegrad.tensor([[1.0, 5.0], [3.0, 2.0]], requires_grad=True)
    with A.detect_anomaly():
        v, i = x.max(1)
    node = v.grad_fn
    assert node._trace is not None and "test_anomaly.py" in node._trace.location


def test_anomaly_is_process_wide_like_pytorch():
    seen = []
    with A.detect_anomaly():
        t = threading.Thread(target=lambda: seen.append(A.is_anomaly_enabled()))
        t.start()
        t.join()
    assert seen == [True]


def test_same_exception_type_as_torch():
    torch = pytest.importorskip("torch")
    x = torch.tensor([0.0, 1.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.detect_anomaly():
            y = (x.sqrt() * 0).sum()  # 0 * inf = NaN (PyTorch checks NaN only)
            with pytest.raises(RuntimeError) as theirs:
                y.backward()
    xt = tapegrad.tensor([0.0, 1.0], requires_grad=True)
    with A.detect_anomaly():
        yt = (xt.sqrt() * 0).sum()
        with pytest.raises(RuntimeError) as ours:
            yt.backward()
    assert type(ours.value) is type(theirs.value)
    assert "SqrtBackward" in str(theirs.value) and "SqrtBackward" in str(ours.value)
