"""split / chunk / unbind as one multi-output node (SplitBackward / UnbindBackward).

Values and gradients are in the op table (tests/optable.py: gradcheck, gradgradcheck,
forward mode, PyTorch); here: the node structure, that no piece's gradient is padded to the
input's size any more, that the pieces stay views, and PyTorch's piece counts."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.ops import index as index_ops


def _x(*shape):
    return tg.tensor(np.arange(float(np.prod(shape))).reshape(shape), requires_grad=True)


@pytest.mark.parametrize("make, name, n", [
    (lambda x: x.chunk(4, 1), "SplitBackward", 4),
    (lambda x: x.split([1, 2, 5], 1), "SplitBackward", 3),
    (lambda x: tg.split(x, 3, 1), "SplitBackward", 3),
    (lambda x: x.unbind(0), "UnbindBackward", 3),
    (lambda x: tuple(x), "UnbindBackward", 3),
])
def test_one_node_for_all_pieces(make, name, n):
    ps = make(_x(3, 8))
    assert len(ps) == n
    fns = {id(p.grad_fn) for p in ps}
    assert len(fns) == 1 and ps[0].grad_fn.name_backward() == name
    assert [p._out_nr for p in ps] == list(range(n))


@pytest.mark.parametrize("make, slices, join", [
    (lambda x: x.chunk(4, 1), [slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 8)],
     lambda ps: ps[0] * ps[1] - ps[3]),
    (lambda x: x.unbind(1), list(range(8)), lambda ps: ps[0] * ps[5] + ps[7].sin()),
    (lambda x: x.split([3, 5], 1), [slice(0, 3), slice(3, 8)],
     lambda ps: ps[1].sum(1) * ps[0].prod(1)),
])
def test_backward_pads_no_piece(monkeypatch, make, slices, join):
    # The old backward padded each piece's gradient with zeros to the input's shape
    # (IndexAddInto) and summed the padded arrays; one cat / stack now joins them.
    def boom(*a, **k):
        raise AssertionError("a piece's gradient was padded to the input's shape")

    monkeypatch.setattr(index_ops.IndexAddInto, "forward", staticmethod(boom))
    x = _x(3, 8)
    join(make(x)).sum().backward()
    monkeypatch.undo()
    # The same pieces taken by indexing (whose backward does pad): the same gradient.
    y = _x(3, 8)
    join([y[:, i] for i in slices]).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), y.grad.numpy())


def test_pieces_are_views_sharing_memory_and_versions():
    x = _x(4, 6)
    y = x * 1
    a, b = y.chunk(2, 1)
    assert np.shares_memory(a.detach().numpy(), y.detach().numpy()) and a._base is y
    s = (a * a).sum()  # saves a
    with tg.no_grad():
        y.add_(1)  # a's memory changed under the saved tensor
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        s.backward()


def test_in_place_on_a_piece_is_refused_while_recording():
    y = _x(4, 6) * 1
    with pytest.raises(RuntimeError, match="Output 1 of Split is a view.*multiple views"):
        y.chunk(2, 1)[1].mul_(2)
    with pytest.raises(RuntimeError, match="Output 0 of Unbind is a view.*multiple views"):
        y.unbind(0)[0].add_(1)


def test_unused_pieces_get_zero_gradient_of_the_right_dtype():
    x = tg.tensor(np.ones((2, 6), np.float32), requires_grad=True)
    ps = x.split([2, 4], 1)
    (ps[1] * 3).sum().backward()
    assert x.grad.dtype == tg.float32
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0, 3, 3, 3, 3]] * 2)
    x.grad = None
    (x.unbind(1)[4] * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0, 0, 0, 2, 0]] * 2)


@pytest.mark.parametrize("n, s", [(5, 2), (4, 2), (1, 3), (0, 1), (0, 2)])
def test_split_piece_sizes_follow_pytorch(n, s):
    # At least one piece, an empty dim giving one empty piece (as torch.split).
    sizes = [p.shape[0] for p in tg.zeros(n, 2).split(s)]
    want = {(5, 2): [2, 2, 1], (4, 2): [2, 2], (1, 3): [1], (0, 1): [0], (0, 2): [0]}
    assert sizes == want[(n, s)]


@pytest.mark.parametrize("n, c", [(5, 3), (6, 4), (0, 3), (1, 3), (7, 3)])
def test_chunk_piece_sizes_follow_pytorch(n, c):
    sizes = [p.shape[0] for p in tg.zeros(n, 2).chunk(c)]
    want = {(5, 3): [2, 2, 1], (6, 4): [2, 2, 2], (0, 3): [0, 0, 0], (1, 3): [1],
            (7, 3): [3, 3, 1]}
    assert sizes == want[(n, c)]


def test_against_pytorch_piece_counts_and_gradients():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((3, 7, 5))
    for args in [("split", 3, 1), ("split", [2, 5], 1), ("chunk", 3, 2), ("chunk", 4, 1),
                 ("unbind", 2), ("unbind", -1)]:
        got = []
        for lib in (tg, torch):
            x = lib.tensor(x0, requires_grad=True)
            ps = getattr(x, args[0])(*args[1:])
            loss = sum((p * (k + 1)).sin().sum() for k, p in enumerate(ps) if k != 1)
            loss.backward()
            got.append(([tuple(p.shape) for p in ps], x.grad.numpy()))
        assert got[0][0] == got[1][0], args
        np.testing.assert_allclose(got[0][1], got[1][1], rtol=1e-12, atol=1e-12)


def test_random_splits_against_pytorch_to_second_order():
    # Random shapes (empty dims included), dims, split specs and subsets of the pieces used:
    # piece shapes, gradients and gradients of gradients as PyTorch's, and whether the
    # gradient is part of a graph (an empty piece may carry it: cat keeps empty 1-D inputs).
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for trial in range(150):
        nd = int(rng.integers(1, 4))
        shape = tuple(int(s) for s in rng.integers(0, 6, nd))
        dim = int(rng.integers(-nd, nd))
        kind = ("split", "split_sizes", "chunk", "unbind")[trial % 4]
        n = shape[dim]
        cuts = sorted(int(c) for c in rng.integers(0, n + 1, 2))
        args = {"split": (int(rng.integers(1, 4)), dim),
                "split_sizes": ([cuts[0], cuts[1] - cuts[0], n - cuts[1]], dim),
                "chunk": (int(rng.integers(1, 5)), dim), "unbind": (dim,)}[kind]
        x0 = rng.standard_normal(shape)
        got = []
        for lib in (tg, torch):
            x = lib.tensor(x0, requires_grad=True)
            ps = getattr(x, kind.replace("_sizes", ""))(*args)
            used = [k for k in range(len(ps)) if (k * 7 + trial) % 3]
            row = [tuple(p.shape) for p in ps]
            if used:
                loss = sum(((ps[k] * (k + 1)).sin() ** 2).sum() for k in used)
                (g,) = lib.autograd.grad(loss, x, create_graph=True)
                row += [g.requires_grad, g.detach().numpy()]
                if g.requires_grad:
                    row.append(lib.autograd.grad((g * g).sum(), x)[0].numpy())
            got.append(row)
        ours, theirs = got
        assert len(ours) == len(theirs), (trial, kind, shape, args)
        for a, b in zip(ours, theirs):
            if isinstance(a, np.ndarray):
                np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
            else:
                assert a == b, (trial, kind, shape, args)
