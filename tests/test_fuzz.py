"""Fuzzing the tape: hypothesis builds random expression graphs (ops drawn from a list, leaf
shapes that broadcast against each other, values reused by several later ops), and the
gradients are checked against central finite differences and against PyTorch.

Every op below keeps a value's shape broadcastable with the drawn base shape (reductions keep
their dims, slices keep size 1), so any two values can meet in a binary op. Only smooth ops
with safe domains are used, so finite differences are meaningful at every drawn point.
"""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import tapegrad  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

UNARY = {
    "sin": lambda m, x: x.sin(),
    "cos": lambda m, x: m.cos(x),
    "tanh": lambda m, x: x.tanh(),
    "sigmoid": lambda m, x: x.sigmoid(),
    "exp_half": lambda m, x: (x * 0.5).exp(),
    "square": lambda m, x: x * x,
    "cube": lambda m, x: x ** 3,
    "softplus": lambda m, x: m.log1p(x.exp()),
    "sqrt1p": lambda m, x: (x * x + 1).sqrt(),
    "neg": lambda m, x: -x,
    "erf": lambda m, x: m.erf(x),
    "atan": lambda m, x: m.atan(x),
    "reshape_roundtrip": lambda m, x: x.reshape(-1).sin().reshape(x.shape),
    "clone": lambda m, x: x.clone(),
}
BINARY = {
    "add": lambda m, a, b: a + b,
    "sub": lambda m, a, b: m.sub(a, b, alpha=0.5),
    "mul": lambda m, a, b: a * b,
    "safe_div": lambda m, a, b: a / (1 + b * b),
    "atan2": lambda m, a, b: m.atan2(a, b * b + 0.5),
    "hypot1": lambda m, a, b: (a * a + b * b + 1).sqrt(),
    "pow_pos": lambda m, a, b: (a * a + 0.5) ** b.tanh(),
    "lerp_like": lambda m, a, b: a + 0.3 * (b - a),
}
DIMWISE = {  # op(m, x, d) along dim d, shape-preserving or keepdim
    "sum": lambda m, x, d: x.sum(d, keepdim=True),
    "mean": lambda m, x, d: x.mean(d, keepdim=True),
    "logsumexp": lambda m, x, d: m.logsumexp(x, d, keepdim=True),
    "cumsum": lambda m, x, d: x.cumsum(d),
    "softmax": lambda m, x, d: x.softmax(d),
    "var0": lambda m, x, d: x.var(d, keepdim=True, correction=0),
    "flip": lambda m, x, d: x.flip(d),
    "narrow1": lambda m, x, d: x.narrow(d, x.shape[d] - 1, 1),
    "prod": lambda m, x, d: (x.tanh() + 2).prod(d, keepdim=True),
    "norm": lambda m, x, d: (x * x + 0.1).sum(d, keepdim=True).sqrt(),
}
OPS = sorted(UNARY) + sorted(BINARY) + sorted(DIMWISE) + ["unsqueeze0", "expand_to_base"]


@st.composite
def programs(draw):
    """A base shape, 1-3 leaf shapes that broadcast to it, and 1-7 steps over the values."""
    nd = draw(st.integers(0, 3))
    base = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    leaves = []
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.integers(0, nd))  # a suffix of the base ...
        shape = [s if draw(st.booleans()) else 1 for s in base[nd - k:]]  # ... with some 1s
        leaves.append(tuple(shape))
    shapes = list(leaves)
    steps = []
    for _ in range(draw(st.integers(1, 7))):
        op = draw(st.sampled_from(OPS))
        i = draw(st.integers(0, len(shapes) - 1))
        s = shapes[i]
        if op in BINARY:
            j = draw(st.integers(0, len(shapes) - 1))
            steps.append((op, i, j))
            shapes.append(tuple(np.broadcast_shapes(s, shapes[j])))
        elif op in DIMWISE:
            if not s:
                continue  # a 0-d value has no dim
            d = draw(st.integers(-len(s), len(s) - 1))
            steps.append((op, i, d))
            keep = op not in ("sum", "mean", "logsumexp", "var0", "narrow1", "prod", "norm")
            shapes.append(s if keep else tuple(1 if k == d % len(s) else n
                                               for k, n in enumerate(s)))
        elif op == "unsqueeze0":
            if len(s) >= nd:
                continue
            steps.append((op, i, None))
            shapes.append((1,) + s)
        elif op == "expand_to_base":
            steps.append((op, i, None))
            shapes.append(base)
        else:
            steps.append((op, i, None))
            shapes.append(s)
    seed = draw(st.integers(0, 2**31 - 1))
    return base, leaves, steps, seed


def build(m, base, steps, leaves):
    """Run the program with library ``m``; the output is the last value plus every value
    that no step consumed (broadcast-summed), so each leaf reaches the output."""
    vals = list(leaves)
    used = set()
    for op, i, arg in steps:
        used.add(i)
        x = vals[i]
        if op in UNARY:
            y = UNARY[op](m, x)
        elif op in BINARY:
            used.add(arg)
            y = BINARY[op](m, x, vals[arg])
        elif op in DIMWISE:
            y = DIMWISE[op](m, x, arg)
        elif op == "unsqueeze0":
            y = x.unsqueeze(0)
        else:
            y = x.expand(*base) if base else x.reshape(())
        vals.append(y)
    out = vals[-1]
    for k, v in enumerate(vals[:-1]):
        if k not in used:
            out = out + v
    return out


def _draw_values(leaves, seed):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, s) for s in leaves], rng


@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_random_graph_gradients(prog):
    base, leaf_shapes, steps, seed = prog
    values, rng = _draw_values(leaf_shapes, seed)
    xs = [tapegrad.tensor(v, dtype=tapegrad.float64, requires_grad=True) for v in values]
    out = build(tapegrad, base, steps, xs)
    u = rng.standard_normal(tuple(out.shape))

    # 1. finite differences on the scalar <u, f(x)>: exercises every leaf and every op
    def scalar(*ins):
        return (build(tapegrad, base, steps, list(ins)) * tapegrad.tensor(u)).sum()

    assert tapegrad.autograd.gradcheck(scalar, xs, eps=1e-6, atol=1e-5, rtol=1e-4)

    # 2. the same vector-Jacobian product from PyTorch
    out.backward(tapegrad.tensor(u))
    if torch is None:
        return
    txs = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    tout = build(torch, base, steps, txs)
    assert tuple(tout.shape) == tuple(out.shape), (steps, tout.shape, out.shape)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    tout.backward(torch.tensor(u))
    for x, tx in zip(xs, txs):
        assert x.grad is not None and tx.grad is not None
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=str(steps))


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(programs())
def test_random_graph_second_order_matches_torch(prog):
    """create_graph through the same random graphs: the Hessian-vector product agrees."""
    if torch is None:
        pytest.skip("PyTorch is not installed")
    base, leaf_shapes, steps, seed = prog
    values, rng = _draw_values(leaf_shapes, seed)
    vs = [rng.standard_normal(s) for s in leaf_shapes]
    res = []
    for m in (tapegrad, torch):
        xs = [m.tensor(v, dtype=m.float64, requires_grad=True) for v in values]
        y = build(m, base, steps, xs).pow(2).sum()
        gs = m.autograd.grad(y, xs, create_graph=True)
        dot = sum((g * m.tensor(v)).sum() for g, v in zip(gs, vs))
        hv = m.autograd.grad(dot, xs, allow_unused=True)
        res.append([None if h is None else h.detach().numpy() for h in hv])
    for a, b in zip(*res):
        if a is None or b is None:
            assert a is None or not np.any(a)
            assert b is None or not np.any(b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10, err_msg=str(steps))
