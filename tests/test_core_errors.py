"""Error messages of the core ops: PyTorch's exception type, a message naming the op and the
offending shapes / dtypes / values, and nothing modified when raising."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad

torch = pytest.importorskip("torch")

# (expression, exception type shared with PyTorch, regex our message must match)
CASES = [
    ("lib.zeros(3, 4) @ lib.zeros(5, 6)", RuntimeError,
     r"^matmul: shapes \(3, 4\) and \(5, 6\) cannot be multiplied \(4 != 5\)$"),
    ("lib.matmul(lib.zeros(3), lib.zeros(4))", RuntimeError, r"matmul.*\(3,\).*\(4,\)"),
    ("lib.zeros(2, 3, 4) @ lib.zeros(3, 4, 5)", RuntimeError, r"matmul.*\(2, 3, 4\).*\(3, 4, 5\)"),
    ("lib.zeros(()) @ lib.zeros(3)", RuntimeError, r"matmul.*1D"),
    ("lib.mm(lib.zeros(3, 4), lib.zeros(5, 6))", RuntimeError, r"mm.*\(3, 4\).*\(5, 6\)"),
    ("lib.mm(lib.zeros(3), lib.zeros(3, 2))", RuntimeError, r"mm.*\(3,\).*\(3, 2\)"),
    ("lib.bmm(lib.zeros(2, 3, 4), lib.zeros(3, 4, 5))", RuntimeError,
     r"bmm.*\(2, 3, 4\).*\(3, 4, 5\)"),
    ("lib.dot(lib.zeros(3), lib.zeros(4))", RuntimeError, r"dot.*\[3\].*\[4\]"),
    ("lib.outer(lib.zeros(2, 2), lib.zeros(2))", RuntimeError, r"outer.*\(2, 2\)"),
    ("lib.einsum('ij,jk->ik', lib.zeros(3, 4), lib.zeros(5, 6))", RuntimeError, r"einsum.*j"),
    ("lib.zeros(3, 4) + lib.zeros(5)", RuntimeError,
     r"^add: shapes \(3, 4\) and \(5,\) cannot be broadcast$"),
    ("lib.zeros(3, 4) * lib.zeros(2, 4)", RuntimeError, r"mul: shapes \(3, 4\) and \(2, 4\)"),
    ("lib.zeros(2) - lib.zeros(3)", RuntimeError, r"sub: shapes \(2,\) and \(3,\)"),
    ("lib.zeros(2) / lib.zeros(3)", RuntimeError, r"div: shapes \(2,\) and \(3,\)"),
    ("lib.maximum(lib.zeros(2), lib.zeros(3))", RuntimeError, r"maximum.*\(2,\).*\(3,\)"),
    ("lib.where(lib.zeros(2, dtype=lib.bool), lib.zeros(3), 0.0)", RuntimeError,
     r"where.*\(2,\).*\(3,\)"),
    ("lib.zeros(2) == lib.zeros(3)", RuntimeError, r"eq.*\(2,\).*\(3,\)"),
    ("lib.cat([lib.zeros(2, 3), lib.zeros(2, 4)])", RuntimeError,
     r"cat.*Expected size 3 but got size 4.*\(2, 3\).*\(2, 4\)"),
    ("lib.cat([lib.zeros(2, 3), lib.zeros(2)])", RuntimeError,
     r"cat.*same number of dimensions.*\(2, 3\).*\(2,\)"),
    ("lib.cat([])", ValueError, r"cat.*non-empty"),
    ("lib.cat([lib.zeros(2)], dim=1)", IndexError, r"cat.*Dimension out of range"),
    ("lib.stack([lib.zeros(2, 3), lib.zeros(3, 2)])", RuntimeError,
     r"stack.*\(2, 3\) at entry 0 and \(3, 2\) at entry 1"),
    ("lib.stack([])", RuntimeError, r"stack.*non-empty"),
    ("lib.stack([lib.zeros(2)], dim=3)", IndexError, r"stack.*\[-2, 1\].*got 3"),
    ("lib.zeros(3, 4).reshape(5, 2)", RuntimeError,
     r"reshape.*'\[5, 2\]' is invalid for input of size 12.*\(3, 4\)"),
    ("lib.zeros(3, 4).view(5, -1)", RuntimeError, r"view.*'\[5, -1\]'.*size 12"),
    ("lib.zeros(3, 4).reshape(-1, -1)", RuntimeError, r"reshape.*only one dimension"),
    ("lib.zeros(3, 4).t().view(12)", RuntimeError, r"view.*\[4, 3\].*reshape"),
    ("lib.zeros(3, 1).expand(2, 4)", RuntimeError,
     r"expand.*\(2\).*\(3\).*dimension 0.*\[2, 4\].*\[3, 1\]"),
    ("lib.zeros(3, 2).expand(4)", RuntimeError, r"expand.*\(1\).*\(2\)"),
    ("lib.zeros(3)[5]", IndexError, r"index 5 is out of bounds for dimension 0 with size 3"),
    ("lib.zeros(3, 4)[1, 7]", IndexError, r"index 7.*dimension 1 with size 4.*\(3, 4\)"),
    ("lib.zeros(3)[lib.tensor([0, 3])]", IndexError, r"index 3.*size 3"),
    ("lib.zeros(3)[lib.tensor([True, False])]", IndexError, r"\(3,\)"),
    ("lib.zeros(3)[0, 0]", IndexError, r"too many indices.*\(3,\)"),
    ("lib.zeros(3)[lib.tensor([0.5])]", IndexError, r"long, int, byte or bool"),
    ("lib.zeros(3, 4).sum(2)", IndexError, r"sum: Dimension out of range.*\[-2, 1\].*got 2"),
    ("lib.zeros(3, 4).transpose(0, 2)", IndexError, r"transpose: Dimension out of range"),
    ("lib.zeros(3, 4).squeeze(3)", IndexError, r"squeeze: Dimension out of range"),
    ("lib.zeros(3, 4).unsqueeze(4)", IndexError, r"unsqueeze.*\[-3, 2\].*got 4"),
    ("lib.zeros(3, 4).max(3)", IndexError, r"max: Dimension out of range"),
    ("lib.zeros(3, 4).cumsum(-3)", IndexError, r"cumsum.*got -3"),
    ("lib.zeros(3, 4).flatten(3)", IndexError, r"flatten: Dimension out of range"),
    ("lib.zeros(3, 4).split(2, dim=2)", IndexError, r"split: Dimension out of range"),
    ("lib.zeros(3, 4).flip(2)", IndexError, r"flip: Dimension out of range"),
    ("lib.zeros(3, 4).permute(0, 0)", RuntimeError, r"permute.*\(0, 0\)"),
    ("lib.zeros(3, 4).permute(0)", RuntimeError, r"permute.*\(3, 4\)"),
    ("lib.zeros(3, 4).narrow(1, 3, 2)", RuntimeError, r"narrow.*\(3\).*\(2\).*\(4\)"),
    ("lib.zeros(3, 4).chunk(0)", RuntimeError, r"chunk.*greater than 0"),
    ("lib.zeros(3).unflatten(0, (2, 2))", RuntimeError, r"unflatten.*\[2, 2\].*\(3\)"),
    ("lib.zeros(3, 4).repeat(2)", RuntimeError, r"repeat.*\(1\).*\(2\)"),
    ("lib.zeros(3, 4).argmax(2)", IndexError, r"argmax: Dimension out of range"),
    ("lib.zeros(3, 4).gather(1, lib.zeros(3, 4))", RuntimeError, r"gather.*int64.*float32"),
    ("lib.zeros(3, 4).gather(1, lib.tensor([[5]]))", RuntimeError, r"gather.*index 5"),
    ("lib.zeros(3, 4).index_select(0, lib.tensor([3]))", IndexError, r"index_select.*3"),
    ("lib.zeros(3, 4).masked_fill(lib.zeros(3, 4), 1.0)", RuntimeError,
     r"masked_fill.*bool.*float32"),
    ("lib.zeros(3, 4).masked_fill(lib.zeros(5, dtype=lib.bool), 1.0)", RuntimeError,
     r"masked_fill.*\(3, 4\).*\(5,\)"),
    ("lib.zeros(3, 4).item()", RuntimeError, r"item.*12 elements.*\(3, 4\)"),
    ("lib.tensor([1, 2], requires_grad=True)", RuntimeError, r"floating point.*int64"),
    ("lib.tensor([1, 2]).requires_grad_()", RuntimeError, r"floating point.*int64"),
    ("lib.zeros(2, dtype=lib.int32, requires_grad=True)", RuntimeError,
     r"floating point.*int32"),
    ("lib.zeros(2) + 'a'", TypeError, r"add.*str"),
    ("lib.tensor([True]) - lib.tensor([True])", RuntimeError, r"sub.*bool"),
]


@pytest.mark.parametrize("expr,exc,pattern", CASES, ids=[c[0] for c in CASES])
def test_error_type_matches_torch_and_message_names_op(expr, exc, pattern):
    with pytest.raises(exc):
        eval(expr, {"lib": torch})
    with pytest.raises(exc, match=pattern):
        eval(expr, {"lib": tapegrad})


def test_errors_inside_recorded_graph_leave_no_grad_and_no_state():
    a = tapegrad.randn(3, 4, requires_grad=True)
    b = tapegrad.randn(5, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"add: shapes \(3, 4\) and \(5,\)"):
        a + b
    with pytest.raises(RuntimeError, match="matmul"):
        a @ b
    assert a.grad is None and b.grad is None and a.is_leaf and b.is_leaf
    (a.sum() + b.sum()).backward()  # the tape is still usable
    np.testing.assert_array_equal(a.grad.numpy(), np.ones((3, 4)))


def test_failed_inplace_ops_leave_tensor_untouched():
    x = tapegrad.tensor([[1.0, 2.0], [3.0, 4.0]])
    before = x.numpy().copy()
    for bad in (lambda: x.add_(tapegrad.ones(3)),
                lambda: x.mul_(tapegrad.ones(2, 2, 2)),
                lambda: x.copy_(tapegrad.ones(3, 3)),
                lambda: x.fill_(tapegrad.ones(2)),
                lambda: x.__setitem__(5, 1.0),
                lambda: x.__setitem__((0, slice(None)), tapegrad.ones(3))):
        with pytest.raises((RuntimeError, IndexError)):
            bad()
        np.testing.assert_array_equal(x.numpy(), before)
        assert x._version == 0


def test_failed_setitem_with_grad_leaves_tensor_and_history():
    x = tapegrad.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    m = x * 1
    node = m.grad_fn
    with pytest.raises(IndexError, match=r"index 5.*\(2, 2\)"):
        m[5] = tapegrad.tensor(1.0, requires_grad=True)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        m[0] = tapegrad.ones(3, requires_grad=True)
    assert m.grad_fn is node and m._version == 0
    np.testing.assert_array_equal(m.detach().numpy(), [[1.0, 2.0], [3.0, 4.0]])


def test_backward_errors_leave_grads_untouched():
    x = tapegrad.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"Mismatch in shape.*\(3,\).*\(2,\)"):
        y.backward(tapegrad.ones(3))
    with pytest.raises(RuntimeError, match="scalar"):
        y.backward()
    assert x.grad is None
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_device_mismatch_error_names_devices(monkeypatch):
    if not tapegrad.cuda.is_available():
        monkeypatch.setenv("TAPEGRAD_CUDA_SIMULATOR", "1")  # no GPU: the simulated device
    a = tapegrad.zeros(2)
    b = tapegrad.zeros(2, device="cuda")
    with pytest.raises(RuntimeError, match=r"add.*cpu.*cuda"):
        a + b
