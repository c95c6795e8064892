"""The op table: one row per (op, input shapes) case, shared by every op-level test.

A row's ``fn(lib, *inputs)`` is written once and runs against ``lib = tapegrad`` and
``lib = torch`` alike, since the two speak the same dialect. Input specs say how to draw
each input (float64 values in a range, integer indices, boolean masks) and which inputs are
differentiated. The drivers are ``test_ops.py`` (forward/backward vs PyTorch, gradcheck) and,
later, the higher-order and forward-mode tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class F:
    """A float64 input of ``shape`` drawn uniformly in ``[lo, hi]``."""

    shape: tuple
    lo: float = -1.0
    hi: float = 1.0
    grad: bool = True
    distinct: bool = False  # well-separated values (max/sort: no near-ties)

    def draw(self, rng):
        n = int(np.prod(self.shape)) if self.shape else 1
        if self.distinct:
            v = rng.permutation(n).astype(np.float64) / max(n, 1) * (self.hi - self.lo) + self.lo
            v += rng.uniform(0, 0.1 / max(n, 1), n)
            return v.reshape(self.shape)
        return rng.uniform(self.lo, self.hi, self.shape).astype(np.float64)


@dataclass(frozen=True)
class I:  # noqa: E742 - short spec names keep the table rows on one line
    """An int64 input of ``shape`` with values in ``[lo, hi)`` (indices, class labels)."""

    shape: tuple
    hi: int
    lo: int = 0
    grad: bool = False
    unique: bool = False

    def draw(self, rng):
        if self.unique:
            return rng.permutation(self.hi)[: int(np.prod(self.shape))].reshape(self.shape)
        return rng.integers(self.lo, self.hi, self.shape).astype(np.int64)


@dataclass(frozen=True)
class B:
    """A boolean input (masks, conditions)."""

    shape: tuple
    grad: bool = False

    def draw(self, rng):
        return rng.random(self.shape) < 0.5


@dataclass
class Case:
    name: str
    fn: object
    inputs: tuple
    torch_fn: object = None  # when PyTorch spells it differently
    atol: float = 1e-9
    rtol: float = 1e-7
    gradcheck: bool = True
    gradgrad: bool = True
    jvp: bool = True
    tags: tuple = field(default_factory=tuple)
    why: str = ""  # required when gradcheck, gradgrad or jvp is False: the reason

    @property
    def id(self):
        return self.name


def make_inputs(case, lib, seed=0):
    """The case's inputs as ``lib`` tensors (same values for tapegrad and torch)."""
    rng = np.random.default_rng(seed)
    out = []
    for spec in case.inputs:
        if isinstance(spec, (F, I, B)):
            arr = spec.draw(rng)
            t = lib.tensor(arr)
            if spec.grad:
                t.requires_grad_(True)
            out.append(t)
        else:
            out.append(spec)
    return out


CASES: list[Case] = []


def case(name, fn, *inputs, **kw):
    CASES.append(Case(name, fn, tuple(inputs), **kw))


# ---- binary arithmetic (with broadcasting and 0-d) -----------------------------------------
_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (3,)), ((3,), ())]
for sa, sb in _PAIRS:
    tag = f"{sa}x{sb}"
    case(f"add{tag}", lambda m, a, b: a + b, F(sa), F(sb))
    case(f"sub{tag}", lambda m, a, b: a - b, F(sa), F(sb))
    case(f"mul{tag}", lambda m, a, b: a * b, F(sa), F(sb))
    case(f"div{tag}", lambda m, a, b: a / b, F(sa), F(sb, 0.5, 2.0))
    case(f"maximum{tag}", lambda m, a, b: m.maximum(a, b), F(sa), F(sb))
    case(f"minimum{tag}", lambda m, a, b: m.minimum(a, b), F(sa), F(sb))
    case(f"pow{tag}", lambda m, a, b: a ** b, F(sa, 0.5, 2.0), F(sb, -1.5, 1.5))
    case(f"atan2{tag}", lambda m, a, b: m.atan2(a, b), F(sa), F(sb, 0.5, 2.0))
case("add_alpha", lambda m, a, b: m.add(a, b, alpha=2.5), F((3,)), F((3,)))
case("sub_alpha", lambda m, a, b: m.sub(a, b, alpha=0.5), F((3,)), F((3,)))
case("rsub_scalar", lambda m, a: 2.0 - a, F((4,)))
case("rdiv_scalar", lambda m, a: 2.0 / a, F((4,), 0.5, 2.0))
case("pow_scalar", lambda m, a: a ** 3, F((2, 3)))
case("pow_half", lambda m, a: a ** 0.5, F((2, 3), 0.5, 2.0))
case("rpow_scalar", lambda m, a: 2.0 ** a, F((2, 3)))
case("remainder", lambda m, a, b: m.remainder(a, b), F((5,), -3, 3), F((5,), 0.7, 1.3))
case("fmod", lambda m, a, b: m.fmod(a, b), F((5,), -3, 3), F((5,), 0.7, 1.3))
case("where", lambda m, c, a, b: m.where(c, a, b), B((3, 4)), F((3, 4)), F((4,)))
case("where_scalar", lambda m, c, a: m.where(c, a, 0.0), B((3, 4)), F((3, 4)))
case("clamp", lambda m, a: m.clamp(a, -0.5, 0.5), F((4, 5)))
case("clamp_min", lambda m, a: a.clamp(min=0.1), F((4, 5)))
case("clamp_tensor", lambda m, a, lo: m.clamp(a, min=lo), F((4, 5)), F((5,)))
case("clamp_min_fn", lambda m, a: m.clamp_min(a, 0.2), F((4, 5)))
case("clamp_max_method", lambda m, a: a.clamp_max(-0.1), F((4, 5)))
case("clip_both", lambda m, a: m.clip(a, -0.3, 0.4), F((3, 4)))
case("max_binary", lambda m, a, b: m.max(a, b), F((3, 4)), F((4,)))
case("min_binary", lambda m, a, b: m.min(a, b), F((3, 4)), F((3, 4)))
case("div_by_int_scalar", lambda m, a: a / 3, F((2, 3)))
case("rsub_fn", lambda m, a, b: m.rsub(a, b, alpha=2.0), F((3,)), F((3,)))

# ---- unary ---------------------------------------------------------------------------------
for nm, lo, hi in [("neg", -1, 1), ("exp", -1, 1), ("log", 0.2, 2), ("log2", 0.2, 2),
                   ("log10", 0.2, 2), ("log1p", -0.5, 1), ("expm1", -1, 1), ("sqrt", 0.2, 2),
                   ("rsqrt", 0.2, 2), ("sin", -3, 3), ("cos", -3, 3), ("tan", -1, 1),
                   ("tanh", -2, 2), ("sigmoid", -3, 3), ("relu", -1, 1), ("abs", -1, 1),
                   ("erf", -2, 2), ("reciprocal", 0.5, 2), ("asin", -0.9, 0.9),
                   ("acos", -0.9, 0.9), ("atan", -2, 2), ("sinh", -2, 2), ("cosh", -2, 2),
                   ("square", -1, 1), ("exp2", -1, 1), ("sign", -1, 1), ("floor", -2, 2),
                   ("ceil", -2, 2), ("round", -2, 2), ("trunc", -2, 2), ("frac", -2, 2)]:
    for shp in [(3, 4), ()]:
        case(f"{nm}{shp}", (lambda n: lambda m, a: getattr(m, n)(a))(nm), F(shp, lo, hi))

# ---- reductions ----------------------------------------------------------------------------
case("sum_all", lambda m, a: a.sum(), F((3, 4)))
case("sum_dim", lambda m, a: a.sum(1), F((3, 4)))
case("sum_dims_keep", lambda m, a: a.sum((0, 2), keepdim=True), F((2, 3, 4)))
case("sum_0d", lambda m, a: a.sum(), F(()))
case("mean_all", lambda m, a: a.mean(), F((3, 4)))
case("mean_dim", lambda m, a: a.mean(-1, keepdim=True), F((3, 4)))
case("prod_all", lambda m, a: a.prod(), F((2, 3), 0.5, 1.5))
case("prod_dim", lambda m, a: a.prod(1), F((3, 4), 0.5, 1.5))
case("max_all", lambda m, a: a.max(), F((3, 4), distinct=True))
case("max_dim", lambda m, a: a.max(1)[0], F((3, 4), distinct=True))
case("max_dim_keep", lambda m, a: a.max(0, keepdim=True).values, F((3, 4), distinct=True))
case("min_dim", lambda m, a: a.min(-1)[0], F((3, 4), distinct=True))
case("min_all", lambda m, a: m.min(a), F((3, 4), distinct=True))
case("max_dim_named", lambda m, a: m.max(a, dim=0).values, F((3, 4), distinct=True))
case("amax", lambda m, a: m.amax(a, (0, 1)), F((3, 4, 2), distinct=True))
case("amin", lambda m, a: m.amin(a, 1, keepdim=True), F((3, 4), distinct=True))
case("var", lambda m, a: a.var(), F((3, 4)))
case("var_dim", lambda m, a: a.var(1, keepdim=True), F((3, 4)))
case("var_biased", lambda m, a: m.var(a, 0, unbiased=False), F((3, 4)))
case("std", lambda m, a: a.std(1), F((3, 4)))
case("std_correction", lambda m, a: m.std(a, 0, correction=0), F((3, 4)))
case("norm", lambda m, a: a.norm(), F((3, 4)))
case("norm_dim", lambda m, a: m.norm(a, dim=1), F((3, 4)))
case("norm_p1", lambda m, a: m.norm(a, p=1, dim=0), F((3, 4)))
case("norm_p3", lambda m, a: m.norm(a, p=3), F((3, 4)))
case("norm_inf", lambda m, a: m.norm(a, p=float("inf")), F((3, 4), distinct=True))
case("logsumexp", lambda m, a: m.logsumexp(a, 1), F((3, 4), -3, 3))
case("logsumexp_keep", lambda m, a: m.logsumexp(a, (0, 1), keepdim=True), F((3, 4), -3, 3))
case("cumsum", lambda m, a: a.cumsum(1), F((3, 4)))
case("cumprod", lambda m, a: a.cumprod(0), F((4, 3), 0.5, 1.5))

# ---- shape ---------------------------------------------------------------------------------
case("reshape", lambda m, a: a.reshape(4, 3), F((3, 4)))
case("reshape_infer", lambda m, a: a.reshape(-1, 2), F((3, 4)))
case("reshape_copy", lambda m, a: a.t().reshape(-1, 4), F((4, 3)))  # strides force a copy
case("view", lambda m, a: a.view(2, 6), F((3, 4)))
case("flatten", lambda m, a: a.flatten(1), F((2, 3, 4)))
case("unflatten", lambda m, a: a.unflatten(1, (2, 2)), F((3, 4)))
case("squeeze", lambda m, a: a.squeeze(), F((3, 1, 4)))
case("squeeze_dim", lambda m, a: a.squeeze(1), F((3, 1, 4)))
case("unsqueeze", lambda m, a: a.unsqueeze(-1), F((3, 4)))
case("transpose", lambda m, a: a.transpose(0, 2), F((2, 3, 4)))
case("permute", lambda m, a: a.permute(2, 0, 1), F((2, 3, 4)))
case("t", lambda m, a: a.t(), F((3, 4)))
case("T", lambda m, a: a.T, F((3, 4)))
case("expand", lambda m, a: a.expand(3, 4), F((3, 1)))
case("expand_new", lambda m, a: a.expand(2, 3, 4), F((4,)))
case("broadcast_to", lambda m, a: m.broadcast_to(a, (2, 3, 4)), F((3, 1)))
case("expand_as", lambda m, a, b: a.expand_as(b), F((1, 4)), F((3, 4), grad=False))
case("repeat", lambda m, a: a.repeat(2, 3), F((3, 4)))
case("repeat_new", lambda m, a: a.repeat(2, 1, 2), F((3, 4)))
case("flip", lambda m, a: a.flip(0), F((3, 4)))
case("flip2", lambda m, a: m.flip(a, (0, 1)), F((3, 4)))
case("cat", lambda m, a, b: m.cat([a, b], 0), F((2, 4)), F((3, 4)))
case("cat_dim1", lambda m, a, b, c: m.cat([a, b, c], 1), F((2, 1)), F((2, 3)), F((2, 2)))
case("stack", lambda m, a, b: m.stack([a, b], 1), F((3, 4)), F((3, 4)))
case("split", lambda m, a: m.split(a, 2, 1)[1], F((3, 5)))
case("split_sizes", lambda m, a: a.split([1, 4], 1)[1], F((3, 5)))
case("chunk", lambda m, a: a.chunk(3, 0)[2], F((7, 2)))
case("unbind", lambda m, a: m.unbind(a, 1)[2], F((3, 4)))
# Every piece used, each differently (SplitBackward / UnbindBackward join all their grads).
case("chunk_all", lambda m, a: (lambda p: p[0] * p[1] + p[2].exp())(a.chunk(3, 1)), F((2, 6)))
case("split_all", lambda m, a: (lambda p: p[0].sum(1, keepdim=True) * p[2] - p[1][:, :1])(
    a.split([2, 1, 3], 1)), F((3, 6)))
case("unbind_all", lambda m, a: (lambda p: p[0] * p[1].sin() + p[3])(m.unbind(a, -1)), F((2, 3, 4)))
case("narrow", lambda m, a: a.narrow(1, 1, 2), F((3, 4)))
case("movedim", lambda m, a: m.movedim(a, 0, -1), F((2, 3, 4)))

# ---- indexing ------------------------------------------------------------------------------
case("index_int", lambda m, a: a[1], F((3, 4)))
case("index_slice", lambda m, a: a[:, 1:3], F((3, 4)))
case("index_step", lambda m, a: a[::2, ::-1] if m.__name__ == "tapegrad" else
     a[::2].flip(1), F((5, 4)))
case("index_none_ellipsis", lambda m, a: a[None, ..., 0], F((3, 4)))
case("index_neg", lambda m, a: a[-1, -2], F((3, 4)))
case("index_tensor", lambda m, a, i: a[i], F((5, 3)), I((4,), 5))
case("index_tensor_repeat", lambda m, a: a[m.tensor([0, 2, 0, 0])], F((5, 3)))
case("index_tensor_2d", lambda m, a, i, j: a[i, j], F((5, 4)), I((3,), 5), I((3,), 4))
case("index_mixed", lambda m, a, i: a[1:, i], F((5, 4)), I((2, 2), 4))
case("index_bool", lambda m, a, k: a[k], F((3, 4)), B((3, 4)))
case("index_bool_rows", lambda m, a: a[m.tensor([True, False, True])], F((3, 4)))
case("gather", lambda m, a, i: m.gather(a, 1, i), F((3, 4)), I((3, 2), 4))
case("gather_repeat", lambda m, a: a.gather(0, m.tensor([[0, 0], [0, 1]])), F((3, 2)))
case("scatter", lambda m, a, s: a.scatter(1, m.tensor([[0, 2], [1, 3]]), s),
     F((2, 4)), F((2, 2)))
case("scatter_add", lambda m, a, s: a.scatter_add(1, m.tensor([[0, 0], [1, 3]]), s),
     F((2, 4)), F((2, 2)))
case("index_select", lambda m, a, i: m.index_select(a, 1, i), F((3, 4)), I((5,), 4))
case("masked_fill", lambda m, a, k: a.masked_fill(k, 0.5), F((3, 4)), B((4,)))
case("take_along_dim", lambda m, a, i: m.take_along_dim(a, i, 1), F((3, 4)), I((3, 2), 4))

# ---- linear algebra ------------------------------------------------------------------------
case("matmul_2d", lambda m, a, b: a @ b, F((3, 4)), F((4, 5)))
case("matmul_vec_mat", lambda m, a, b: a @ b, F((4,)), F((4, 5)))
case("matmul_mat_vec", lambda m, a, b: a @ b, F((3, 4)), F((4,)))
case("matmul_vec_vec", lambda m, a, b: m.matmul(a, b), F((4,)), F((4,)))
case("matmul_batched", lambda m, a, b: a @ b, F((2, 3, 4)), F((4, 5)))
case("matmul_batched_4d", lambda m, a, b: a @ b, F((2, 2, 3, 4)), F((4, 5)))
case("matmul_batched_strided", lambda m, a, b: a.transpose(0, 1) @ b, F((3, 2, 4)), F((4, 5)))
case("matmul_broadcast", lambda m, a, b: a @ b, F((2, 1, 3, 4)), F((3, 4, 2)))
case("mm", lambda m, a, b: m.mm(a, b), F((3, 4)), F((4, 2)))
case("bmm", lambda m, a, b: m.bmm(a, b), F((2, 3, 4)), F((2, 4, 2)))
case("outer", lambda m, a, b: m.outer(a, b), F((3,)), F((4,)))
case("dot", lambda m, a, b: m.dot(a, b), F((4,)), F((4,)))
case("einsum_mm", lambda m, a, b: m.einsum("ij,jk->ik", a, b), F((3, 4)), F((4, 2)))
case("einsum_batch", lambda m, a, b: m.einsum("bij,bjk->bik", a, b), F((2, 3, 4)),
     F((2, 4, 2)))
case("einsum_trace_sum", lambda m, a: m.einsum("ij->", a), F((3, 4)))
case("einsum_outer3", lambda m, a, b, c: m.einsum("i,j,k->ijk", a, b, c), F((2,)), F((3,)),
     F((2,)))
case("einsum_implicit", lambda m, a, b: m.einsum("ij,jk", a, b), F((3, 4)), F((4, 2)))

# ---- casts and copies ----------------------------------------------------------------------
case("clone", lambda m, a: a.clone(), F((3, 4)))
case("contiguous", lambda m, a: a.t().contiguous(), F((3, 4)))
case("to_float32_and_back", lambda m, a: a.float().double() * 2, F((3,)), atol=1e-6,
     rtol=1e-6, gradcheck=False,
     why="float32 in the middle: central differences need float64 all the way through")
case("composite_chain", lambda m, a, b: ((a * b).tanh() + a.exp() / (1 + b * b)).sum(0),
     F((3, 4)), F((4,)))

# ---- nn: activations, softmax family, conv, pooling, normalisation, embedding, losses ------
case("nn_softmax", lambda m, a: m.nn.functional.softmax(a, 1), F((3, 4), -2, 2))
case("nn_softmax_dim0_3d", lambda m, a: a.softmax(0), F((3, 2, 2), -2, 2))
case("nn_log_softmax", lambda m, a: m.nn.functional.log_softmax(a, -1), F((3, 4), -2, 2))
case("nn_gelu", lambda m, a: m.nn.functional.gelu(a), F((3, 4), -3, 3))
case("nn_gelu_tanh", lambda m, a: m.nn.functional.gelu(a, approximate="tanh"), F((3, 4), -3, 3))
case("nn_softplus", lambda m, a: m.nn.functional.softplus(a, beta=2.0, threshold=3.0),
     F((3, 4), -3, 3))
case("nn_leaky_relu", lambda m, a: m.nn.functional.leaky_relu(a, 0.2), F((3, 4)))
case("nn_elu", lambda m, a: m.nn.functional.elu(a, 0.7), F((3, 4), -2, 2))
case("nn_selu", lambda m, a: m.nn.functional.selu(a), F((3, 4), -2, 2))
case("nn_silu", lambda m, a: m.nn.functional.silu(a), F((3, 4), -3, 3))
case("nn_mish", lambda m, a: m.nn.functional.mish(a), F((3, 4), -3, 3))
case("nn_logsigmoid", lambda m, a: m.nn.functional.logsigmoid(a), F((3, 4), -4, 4))
case("nn_hardtanh", lambda m, a: m.nn.functional.hardtanh(a, -0.5, 0.6), F((3, 4)))
case("nn_linear", lambda m, x, w, b: m.nn.functional.linear(x, w, b), F((2, 3, 4)), F((5, 4)),
     F((5,)))
case("nn_linear_2d", lambda m, x, w, b: m.nn.functional.linear(x, w, b), F((3, 4)), F((5, 4)),
     F((5,)))
case("nn_linear_no_bias", lambda m, x, w: m.nn.functional.linear(x, w), F((3, 4)), F((5, 4)))
case("nn_linear_no_bias_3d", lambda m, x, w: m.nn.functional.linear(x, w), F((2, 3, 4)),
     F((5, 4)))
case("nn_bilinear", lambda m, x, y, w, b: m.nn.functional.bilinear(x, y, w, b), F((3, 2)),
     F((3, 4)), F((5, 2, 4)), F((5,)))
case("nn_pad_constant", lambda m, a: m.nn.functional.pad(a, (1, 2, -1, 1), value=0.5),
     F((2, 3, 4)))
case("nn_pad_reflect", lambda m, a: m.nn.functional.pad(a, (2, 1, 1, 2), mode="reflect"),
     F((1, 2, 3, 4)))
case("nn_pad_replicate", lambda m, a: m.nn.functional.pad(a, (2, 3), mode="replicate"),
     F((2, 3, 4)))
case("nn_pad_circular", lambda m, a: m.nn.functional.pad(a, (1, 2, 2, 1), mode="circular"),
     F((1, 2, 3, 4)))
case("nn_conv1d", lambda m, x, w, b: m.nn.functional.conv1d(x, w, b, stride=2, padding=1),
     F((2, 3, 7)), F((4, 3, 3)), F((4,)))
case("nn_conv1d_same_dilated", lambda m, x, w: m.nn.functional.conv1d(x, w, padding="same",
                                                                      dilation=2),
     F((1, 2, 6)), F((3, 2, 2)))
case("nn_conv2d", lambda m, x, w, b: m.nn.functional.conv2d(x, w, b, padding=1), F((2, 2, 4, 5)),
     F((3, 2, 3, 3)), F((3,)))
case("nn_conv2d_strided_groups", lambda m, x, w: m.nn.functional.conv2d(
    x, w, stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2), F((1, 4, 5, 6)),
     F((4, 2, 2, 2)))
case("nn_max_pool2d", lambda m, x: m.nn.functional.max_pool2d(x, 2), F((2, 2, 4, 4),
                                                                      distinct=True))
case("nn_max_pool2d_pad_ceil", lambda m, x: m.nn.functional.max_pool2d(
    x, 3, 2, 1, ceil_mode=True), F((1, 2, 6, 5), distinct=True))
case("nn_max_pool2d_indices", lambda m, x: m.nn.functional.max_pool2d(
    x, (2, 3), (1, 2), return_indices=True)[0], F((1, 2, 4, 5), distinct=True))
case("nn_max_pool1d", lambda m, x: m.nn.functional.max_pool1d(x, 3, 2, 1), F((2, 2, 7),
                                                                             distinct=True))
case("nn_avg_pool2d", lambda m, x: m.nn.functional.avg_pool2d(
    x, 3, 2, 1, ceil_mode=True, count_include_pad=False), F((1, 2, 6, 5)))
case("nn_adaptive_avg_pool2d", lambda m, x: m.nn.functional.adaptive_avg_pool2d(x, (2, 3)),
     F((1, 2, 5, 7)))
case("nn_unfold", lambda m, x: m.nn.functional.unfold(x, (2, 3), padding=1, stride=(2, 1)),
     F((1, 2, 4, 5)))
case("nn_fold", lambda m, x: m.nn.functional.fold(x, (4, 5), (2, 3), padding=1, stride=(2, 1)),
     F((1, 12, 15)))
case("nn_embedding", lambda m, w, i: m.nn.functional.embedding(i, w), F((5, 3)), I((2, 4), 5))
# padding_idx and scale_grad_by_freq change the gradient on purpose (not the derivative):
_EMB_WHY = ("padding_idx / scale_grad_by_freq alter the reverse-mode gradient on purpose "
            "(PyTorch's convention), so it is not the Jacobian that finite differences and "
            "forward mode measure")
case("nn_embedding_padding_idx", lambda m, w, i: m.nn.functional.embedding(i, w, padding_idx=1),
     F((5, 3)), I((2, 4), 5), gradcheck=False, jvp=False, why=_EMB_WHY)
case("nn_embedding_freq", lambda m, w: m.nn.functional.embedding(
    m.tensor([[0, 2, 2], [4, 2, 0]]), w, scale_grad_by_freq=True), F((5, 3)), gradcheck=False,
     jvp=False, gradgrad=False,  # PyTorch's double backward ignores the frequency scaling
     why=_EMB_WHY + "; PyTorch's double backward ignores the frequency scaling")
case("nn_layer_norm", lambda m, x, w, b: m.nn.functional.layer_norm(x, (3, 4), w, b),
     F((2, 3, 4)), F((3, 4)), F((3, 4)))
case("nn_layer_norm_1d", lambda m, x, w, b: m.nn.functional.layer_norm(x, (4,), w, b, 1e-3),
     F((5, 4), -2, 2), F((4,), 0.5, 1.5), F((4,)))
case("nn_layer_norm_no_affine", lambda m, x: m.nn.functional.layer_norm(x, (4,)), F((2, 3, 4)))
case("nn_layer_norm_2d_no_affine", lambda m, x: m.nn.functional.layer_norm(x, (3, 4)),
     F((2, 3, 4)))
case("nn_layer_norm_weight_only", lambda m, x, w: m.nn.functional.layer_norm(x, (3,), w),
     F((4, 3)), F((3,)))
# PyTorch's own double backward fails with a bias and no weight ("Expected a proper Tensor
# but got None"), so its side spells the same function with the bias added outside.
case("nn_layer_norm_bias_only", lambda m, x, b: m.nn.functional.layer_norm(x, [2, 3], None, b),
     F((2, 2, 3)), F((2, 3)),
     torch_fn=lambda m, x, b: m.nn.functional.layer_norm(x, [2, 3]) + b)
case("nn_layer_norm_params_only", lambda m, x, w, b: m.nn.functional.layer_norm(x, (4,), w, b),
     F((3, 4), grad=False), F((4,)), F((4,)))
case("nn_batch_norm_train", lambda m, x, w, b: m.nn.functional.batch_norm(
    x, None, None, w, b, training=True), F((4, 3, 2)), F((3,)), F((3,)))
case("nn_batch_norm_train_4d", lambda m, x, w, b: m.nn.functional.batch_norm(
    x, None, None, w, b, training=True), F((3, 2, 2, 3)), F((2,)), F((2,)))
case("nn_batch_norm_train_plain", lambda m, x: m.nn.functional.batch_norm(
    x, None, None, training=True), F((5, 3)))
case("nn_group_norm", lambda m, x, w, b: m.nn.functional.group_norm(x, 2, w, b),
     F((2, 4, 3)), F((4,)), F((4,)))
case("nn_normalize", lambda m, x: m.nn.functional.normalize(x, dim=1), F((3, 4)))
case("nn_cosine_similarity", lambda m, x, y: m.nn.functional.cosine_similarity(x, y),
     F((3, 4)), F((3, 4)))
case("nn_mse_loss", lambda m, x, y: m.nn.functional.mse_loss(x, y), F((3, 4)), F((3, 4)))
case("nn_l1_loss_sum", lambda m, x, y: m.nn.functional.l1_loss(x, y, reduction="sum"),
     F((3, 4)), F((3, 4)))
case("nn_huber_loss", lambda m, x, y: m.nn.functional.huber_loss(x, y, delta=0.5, reduction="none"),
     F((3, 4)), F((3, 4)))
case("nn_smooth_l1_loss", lambda m, x, y: m.nn.functional.smooth_l1_loss(x, y), F((3, 4)),
     F((3, 4)))
case("nn_smooth_l1_loss_beta", lambda m, x, y: m.nn.functional.smooth_l1_loss(
    x, y, reduction="none", beta=0.5), F((3, 4)), F((3, 4)))
case("nn_smooth_l1_loss_beta0", lambda m, x, y: m.nn.functional.smooth_l1_loss(
    x, y, reduction="sum", beta=0.0), F((3, 4)), F((3, 4)))
case("nn_huber_loss_mean", lambda m, x, y: m.nn.functional.huber_loss(x, y, delta=2.0),
     F((3, 4), -3, 3), F((3, 4)))
case("nn_cross_entropy", lambda m, x, t: m.nn.functional.cross_entropy(x, t), F((5, 4)),
     I((5,), 4))
case("nn_cross_entropy_smooth_weight", lambda m, x, t, w: m.nn.functional.cross_entropy(
    x, t, w, label_smoothing=0.2, reduction="sum"), F((5, 4, 2)), I((5, 2), 4),
     F((4,), 0.5, 2.0, grad=False))
# (2-D logits with class indices take the fused CrossEntropy op of ops/loss_ops.py)
case("nn_cross_entropy_sum_ignore", lambda m, x, t: m.nn.functional.cross_entropy(
    x, t, reduction="sum", ignore_index=1), F((6, 3)), I((6,), 3))
case("nn_cross_entropy_none", lambda m, x, t: m.nn.functional.cross_entropy(
    x, t, reduction="none"), F((4, 5), -3.0, 3.0), I((4,), 5))
case("nn_cross_entropy_probs", lambda m, x, p: m.nn.functional.cross_entropy(x, p),
     F((3, 4)), F((3, 4), 0.0, 1.0))
case("nn_nll_loss", lambda m, x, t: m.nn.functional.nll_loss(x, t, reduction="none"),
     F((5, 4)), I((5,), 4))
case("nn_bce", lambda m, x, t: m.nn.functional.binary_cross_entropy(x, t), F((3, 4), 0.1, 0.9),
     F((3, 4), 0.0, 1.0))
case("nn_bce_with_logits", lambda m, x, t, pw: m.nn.functional.binary_cross_entropy_with_logits(
    x, t, pos_weight=pw), F((3, 4), -3, 3), F((3, 4), 0.0, 1.0), F((4,), 0.5, 2.0, grad=False))
case("nn_kl_div", lambda m, x, t: m.nn.functional.kl_div(x, t, reduction="batchmean"),
     F((3, 4), -3, -0.1), F((3, 4), 0.1, 1.0))

# ---- paths that only special values reach (zeros, 0-d indices, repeated subscripts) --------
case("cumprod_with_zeros", lambda m, a: (a * m.tensor([1.0, 0.0, 1.0, 0.0], dtype=a.dtype,
                                                      device=a.device)).cumprod(1),
     F((3, 4), 0.5, 1.5))
case("prod_with_zero", lambda m, a: (a * m.tensor([1.0, 0.0, 1.0], dtype=a.dtype,
                                                  device=a.device)).prod(1),
     F((2, 3), 0.5, 1.5))
case("index_0d_tensor", lambda m, a: a[m.tensor(2)], F((5, 3)))
case("index_0d_result", lambda m, a: a[m.tensor(1), m.tensor(2)], F((3, 4)))
case("einsum_diag", lambda m, a: m.einsum("ii->i", a), F((3, 3)))
case("einsum_trace_mm", lambda m, a, b: m.einsum("iij,jk->ik", a, b), F((2, 2, 3)), F((3, 2)))
case("pow_tensor_zero_exponent", lambda m, a, b: a ** (b * m.tensor([1.0, 0.0, 1.0],
     dtype=b.dtype, device=b.device)), F((3,), 0.5, 2.0), F((3,)))
