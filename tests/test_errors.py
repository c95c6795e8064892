"""The errors table: bad inputs raise the exception type PyTorch raises, with a message that
names the operation and the offending shapes or values, and leave every tensor, gradient,
module and optimizer state exactly as it was.

A row's ``setup(lib)`` builds the objects (tensors, modules, optimizers) that ``act(lib, env)``
misuses; the same row runs against ``lib = tapegrad`` (type, message, snapshot) and, when it is
installed, ``lib = torch`` (type only).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytest

import tapegrad

try:
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None


@dataclass
class Bad:
    name: str
    act: object            # act(lib, env) must raise
    exc: type              # the type PyTorch raises
    says: tuple            # substrings our message must contain (op name, shapes, values)
    setup: object = None   # setup(lib) -> env dict; default: no objects
    torch: bool = True     # also check PyTorch's exception type


ROWS: list[Bad] = []


def row(name, act, exc, says, setup=None, torch=True):
    ROWS.append(Bad(name, act, exc, tuple(says), setup, torch))


def T(m, *shape, rg=False, dtype=None):
    """A deterministic float64 tensor (values 0.5, 0.64, ...), optionally requiring grad."""
    n = int(np.prod(shape)) if shape else 1
    t = m.tensor(np.arange(n, dtype=np.float64).reshape(shape) / 7 + 0.5)
    if dtype is not None:
        t = t.to(getattr(m, dtype))
    return t.requires_grad_(rg)


def two(sa, sb, rg=True):
    """Setup with tensors a and b of the given shapes, both requiring grad, with grads set."""
    def setup(m):
        a, b = T(m, *sa, rg=rg), T(m, *sb, rg=rg)
        if rg:
            (a.sum() + b.sum()).backward()  # non-empty .grad that must survive the error
        return {"a": a, "b": b}
    return setup


# ---- shape mismatches in every broadcasting op ------------------------------------------------
_BIN = [
    ("add", lambda m, e: e["a"] + e["b"]),
    ("sub", lambda m, e: m.sub(e["a"], e["b"])),
    ("mul", lambda m, e: e["a"] * e["b"]),
    ("div", lambda m, e: e["a"] / e["b"]),
    ("pow", lambda m, e: e["a"] ** e["b"]),
    ("maximum", lambda m, e: m.maximum(e["a"], e["b"])),
    ("minimum", lambda m, e: m.minimum(e["a"], e["b"])),
    ("atan2", lambda m, e: m.atan2(e["a"], e["b"])),
    ("remainder", lambda m, e: e["a"] % e["b"]),
    ("eq", lambda m, e: e["a"] == e["b"]),
    ("lt", lambda m, e: e["a"] < e["b"]),
]
for _op, _fn in _BIN:
    row(f"{_op}_broadcast", _fn, RuntimeError, (_op, "(3, 4)", "(5,)"), two((3, 4), (5,)))
row("mul_broadcast_3d", lambda m, e: e["a"] * e["b"], RuntimeError, ("mul", "(2, 3)", "(4, 1, 2)"),
    two((2, 3), (4, 1, 2)))
row("where_broadcast", lambda m, e: m.where(e["a"] > 1, e["a"], e["b"]), RuntimeError,
    ("where", "(3,)", "(2,)"), two((3,), (2,)))
row("masked_fill_broadcast", lambda m, e: e["a"].masked_fill(e["b"] > 1, 0.0), RuntimeError,
    ("masked_fill", "(3, 4)", "(3,)"), two((3, 4), (3,)))
row("add__output_shape", lambda m, e: e["a"].add_(e["b"]), RuntimeError,
    ("add_", "(3,)", "(2, 3)"), two((3,), (2, 3), rg=False))
row("mse_loss_broadcast", lambda m, e: m.nn.functional.mse_loss(e["a"], e["b"]), RuntimeError,
    ("(3,)", "(4,)"), two((3,), (4,)))

# ---- matmul family ----------------------------------------------------------------------------
row("matmul_2d", lambda m, e: e["a"] @ e["b"], RuntimeError, ("matmul", "(3, 4)", "(5, 6)"),
    two((3, 4), (5, 6)))
row("matmul_vec", lambda m, e: m.matmul(e["a"], e["b"]), RuntimeError,
    ("matmul", "(3,)", "(4,)"), two((3,), (4,)))
row("matmul_batch", lambda m, e: m.matmul(e["a"], e["b"]), RuntimeError,
    ("matmul", "(2, 3, 4)", "(3, 4, 5)"), two((2, 3, 4), (3, 4, 5)))
row("mm_not_2d", lambda m, e: m.mm(e["a"], e["b"]), RuntimeError, ("mm", "(3,)", "(3, 4)"),
    two((3,), (3, 4)))
row("bmm_batch", lambda m, e: m.bmm(e["a"], e["b"]), RuntimeError,
    ("bmm", "(2, 3, 4)", "(3, 4, 5)"), two((2, 3, 4), (3, 4, 5)))
row("dot_sizes", lambda m, e: m.dot(e["a"], e["b"]), RuntimeError, ("dot", "3", "4"),
    two((3,), (4,)))
row("einsum_sizes", lambda m, e: m.einsum("ij,jk->ik", e["a"], e["b"]), RuntimeError,
    ("einsum", "(4, 5)"), two((2, 3), (4, 5)))


def _linear(m):
    m.manual_seed(0)
    return {"lin": m.nn.Linear(3, 2)}


row("linear_in_features", lambda m, e: e["lin"](T(m, 4, 5, dtype="float32")), RuntimeError,
    ("linear", "(4, 5)"), _linear)

# ---- cat / stack / reshape / view / expand ------------------------------------------------------
row("cat_sizes", lambda m, e: m.cat([e["a"], e["b"]], 0), RuntimeError,
    ("cat", "(2, 3)", "(2, 4)"), two((2, 3), (2, 4)))
row("cat_ndim", lambda m, e: m.cat([e["a"], e["b"]]), RuntimeError, ("cat", "(2, 3)", "(3,)"),
    two((2, 3), (3,)))
row("cat_empty", lambda m, e: m.cat([], 0), ValueError, ("cat", "non-empty"))
row("cat_dim", lambda m, e: m.cat([e["a"], e["b"]], 2), IndexError, ("cat", "[-2, 1]", "2"),
    two((2, 3), (2, 3)))
row("stack_sizes", lambda m, e: m.stack([e["a"], e["b"]]), RuntimeError,
    ("stack", "(2, 3)", "(3, 2)"), two((2, 3), (3, 2)))
row("stack_dim", lambda m, e: m.stack([e["a"], e["b"]], 4), IndexError, ("stack", "4"),
    two((2, 3), (2, 3)))
row("reshape_size", lambda m, e: e["a"].reshape(5, 3), RuntimeError,
    ("reshape", "[5, 3]", "12", "(3, 4)"), two((3, 4), (1,)))
row("reshape_two_inferred", lambda m, e: e["a"].reshape(-1, -1), RuntimeError,
    ("reshape", "(-1, -1)"), two((3, 4), (1,)))
row("view_size", lambda m, e: e["a"].view(7), RuntimeError, ("view", "[7]", "(3, 4)"),
    two((3, 4), (1,)))
row("view_non_contiguous", lambda m, e: e["a"].t().view(12), RuntimeError,
    ("view", "[12]", "reshape"), two((3, 4), (1,)))
row("expand_size", lambda m, e: e["a"].expand(3, 4), RuntimeError, ("expand", "[3, 4]", "(2)"),
    two((3, 2), (1,)))
row("expand_fewer_dims", lambda m, e: e["a"].expand(2), RuntimeError, ("expand", "(3, 2)"),
    two((3, 2), (1,)))
row("split_sizes", lambda m, e: e["a"].split([1, 1], 1), RuntimeError,
    ("split", "[1, 1]", "4"), two((3, 4), (1,)))
row("unflatten_sizes", lambda m, e: e["a"].unflatten(1, (3, 2)), RuntimeError,
    ("unflatten", "[3, 2]", "(3, 4)"), two((3, 4), (1,)))
row("repeat_fewer_dims", lambda m, e: e["a"].repeat(2), RuntimeError, ("repeat", "(1)", "(2)"),
    two((2, 3), (1,)))

# ---- indexing ---------------------------------------------------------------------------------
row("index_int", lambda m, e: e["a"][3], IndexError, ("index", "3", "(3, 4)"), two((3, 4), (1,)))
row("index_too_many", lambda m, e: e["a"][0, 1, 2], IndexError, ("index", "(3, 4)"),
    two((3, 4), (1,)))
row("index_tensor", lambda m, e: e["a"][m.tensor([0, 5])], IndexError, ("index", "5", "(3, 4)"),
    two((3, 4), (1,)))
row("index_bool_shape", lambda m, e: e["a"][m.tensor([True, False])], IndexError,
    ("index", "(3, 4)"), two((3, 4), (1,)))
row("index_float", lambda m, e: e["a"][m.tensor([0.5])], IndexError, ("index", "long"),
    two((3, 4), (1,)))
row("gather_out_of_range", lambda m, e: m.gather(e["a"], 1, m.tensor([[0, 9]])), RuntimeError,
    ("gather", "9", "4"), two((3, 4), (1,)))
row("gather_negative", lambda m, e: m.gather(e["a"], 1, m.tensor([[-1]])), RuntimeError,
    ("gather", "-1"), two((3, 4), (1,)))
row("index_select_out_of_range", lambda m, e: m.index_select(e["a"], 0, m.tensor([3])),
    IndexError, ("index_select", "3", "(3, 4)"), two((3, 4), (1,)))
row("scatter_out_of_range", lambda m, e: e["a"].scatter(1, m.tensor([[5]]), 1.0), RuntimeError,
    ("scatter", "5", "3"), two((2, 3), (1,)))
row("narrow_length", lambda m, e: e["a"].narrow(1, 3, 2), RuntimeError,
    ("narrow", "3", "2", "4"), two((3, 4), (1,)))
row("narrow_start", lambda m, e: e["a"].narrow(1, 5, 1), IndexError, ("narrow", "5"),
    two((3, 4), (1,)))
row("setitem_shape", lambda m, e: e["a"].__setitem__(0, e["b"]), RuntimeError,
    ("setitem", "(5,)", "(4,)"), two((3, 4), (5,), rg=False))
row("copy__shape", lambda m, e: e["a"].copy_(e["b"]), RuntimeError, ("copy_", "(5,)", "(3, 4)"),
    two((3, 4), (5,), rg=False))


def _embedding(m):
    m.manual_seed(0)
    return {"emb": m.nn.Embedding(5, 2)}


row("embedding_index", lambda m, e: e["emb"](m.tensor([1, 5])), IndexError, ("embedding", "5"),
    _embedding)

def _bn(m):
    m.manual_seed(0)
    bn = m.nn.BatchNorm1d(5)
    bn(m.randn(8, 5))  # non-trivial running statistics
    return {"bn": bn}


row("batch_norm_channels", lambda m, e: e["bn"](m.randn(3, 4)), RuntimeError,
    ("batch_norm", "running_mean", "4", "5"), _bn)
row("layer_norm_shape", lambda m, e: m.nn.LayerNorm(5)(T(m, 3, 4, dtype="float32")),
    RuntimeError, ("layer_norm", "[5]", "[3, 4]"))
row("conv2d_channels", lambda m, e: m.nn.Conv2d(3, 4, 3)(m.ones(1, 2, 5, 5)), RuntimeError,
    ("conv2d", "3 channels", "2 channels"))
row("dropout_probability", lambda m, e: m.nn.Dropout(1.5), ValueError, ("dropout", "1.5"))


# ---- bad dims ---------------------------------------------------------------------------------
for _op, _fn in [("sum", lambda m, e: e["a"].sum(2)),
                 ("mean", lambda m, e: e["a"].mean(-3)),
                 ("max", lambda m, e: e["a"].max(2)),
                 ("logsumexp", lambda m, e: m.logsumexp(e["a"], 3)),
                 ("cumsum", lambda m, e: e["a"].cumsum(2)),
                 ("transpose", lambda m, e: e["a"].transpose(0, 2)),
                 ("squeeze", lambda m, e: e["a"].squeeze(3)),
                 ("unsqueeze", lambda m, e: e["a"].unsqueeze(4)),
                 ("softmax", lambda m, e: m.nn.functional.softmax(e["a"], 5)),
                 ("log_softmax", lambda m, e: m.nn.functional.log_softmax(e["a"], dim=2))]:
    row(f"{_op}_dim", _fn, IndexError, (_op, "Dimension out of range", "[-"), two((3, 4), (1,)))
row("permute_repeated", lambda m, e: e["a"].permute(0, 0), RuntimeError, ("permute", "(0, 0)"),
    two((3, 4), (1,)))
row("permute_length", lambda m, e: e["a"].permute(0), RuntimeError, ("permute", "(3, 4)"),
    two((3, 4), (1,)))
row("chunk_zero", lambda m, e: e["a"].chunk(0), RuntimeError, ("chunk", "0"), two((3, 4), (1,)))

# ---- dtypes -----------------------------------------------------------------------------------
row("requires_grad_int", lambda m, e: m.tensor([1, 2], requires_grad=True), RuntimeError,
    ("requires_grad", "int64", "floating point"))
row("requires_grad__int", lambda m, e: e["i"].requires_grad_(), RuntimeError,
    ("requires_grad", "int64", "(2,)"), lambda m: {"i": m.tensor([1, 2])})
row("requires_grad_bool", lambda m, e: m.ones(2, dtype=m.bool, requires_grad=True), RuntimeError,
    ("requires_grad", "bool"))
row("mean_int", lambda m, e: e["i"].mean(), RuntimeError, ("mean", "int64"),
    lambda m: {"i": m.tensor([1, 2, 3])})
row("int_add__float", lambda m, e: e["i"].add_(0.5), RuntimeError, ("add_", "float", "int64"),
    lambda m: {"i": m.tensor([1, 2])})
row("bitwise_float", lambda m, e: e["a"] & e["b"], NotImplementedError, ("bitwise_and", "float"),
    two((3,), (3,), rg=False))
row("linear_dtype", lambda m, e: e["lin"](T(m, 4, 3)), RuntimeError, ("float64", "float32"),
    _linear)

# ---- devices ----------------------------------------------------------------------------------
# Without a CUDA device, creating a CUDA tensor is the device error we can provoke. PyTorch
# raises RuntimeError when its CUDA build finds no GPU (its CPU-only build raises
# AssertionError: "not compiled with CUDA"); tapegrad's CUDA backend is always built in, so the
# RuntimeError is the one to match, and the row is not compared with a CPU-only torch.
if tapegrad.cuda.is_available():
    row("device_mismatch", lambda m, e: e["a"] + e["b"].to("cuda"), RuntimeError,
        ("add", "cpu", "cuda"), two((3,), (3,)), torch=False)
else:
    row("cuda_create", lambda m, e: m.zeros(2, device="cuda"), RuntimeError, ("CUDA",),
        torch=False)
    row("cuda_move", lambda m, e: e["a"].to("cuda"), RuntimeError, ("CUDA",), two((3,), (3,)),
        torch=False)
row("bad_device_string", lambda m, e: m.zeros(2, device="tpu"), RuntimeError, ("tpu",))


# ---- losses -----------------------------------------------------------------------------------
def _logits(m):
    return {"x": T(m, 3, 4, rg=True)}


_F = lambda m: m.nn.functional  # noqa: E731
row("cross_entropy_target_high", lambda m, e: _F(m).cross_entropy(e["x"], m.tensor([0, 1, 4])),
    IndexError, ("Target 4", "out of bounds", "4 classes"), _logits)
row("cross_entropy_target_negative",
    lambda m, e: _F(m).cross_entropy(e["x"], m.tensor([0, -2, 1])), IndexError,
    ("Target -2", "out of bounds"), _logits)
row("nll_loss_target_high", lambda m, e: _F(m).nll_loss(e["x"], m.tensor([7, 1, 2])),
    IndexError, ("nll_loss", "Target 7"), _logits)
row("cross_entropy_batch", lambda m, e: _F(m).cross_entropy(e["x"], m.tensor([0, 1])),
    ValueError, ("batch_size (3)", "batch_size (2)"), _logits)
row("cross_entropy_reduction", lambda m, e: _F(m).cross_entropy(e["x"], m.tensor([0, 1, 2]),
                                                                reduction="avg"),
    ValueError, ("cross_entropy", "avg"), _logits)
row("bce_input_range", lambda m, e: _F(m).binary_cross_entropy(m.tensor([1.5]), m.tensor([1.0])),
    RuntimeError, ("binary_cross_entropy", "between 0 and 1"))
row("bce_with_logits_shape",
    lambda m, e: _F(m).binary_cross_entropy_with_logits(e["x"][0], m.tensor([1.0])),
    ValueError, ("(1,)", "(4,)"), _logits)


# ---- backward misuse --------------------------------------------------------------------------
def _nonscalar(m):
    x = T(m, 3, rg=True)
    return {"x": x, "y": x * 2}


row("backward_non_scalar", lambda m, e: e["y"].backward(), RuntimeError,
    ("backward", "scalar", "(3,)"), _nonscalar)
row("backward_gradient_shape", lambda m, e: e["y"].backward(m.ones(4)), RuntimeError,
    ("backward", "(4,)", "(3,)"), _nonscalar)
row("backward_no_grad_fn", lambda m, e: e["x"].detach().sum().backward(), RuntimeError,
    ("backward", "does not require grad"), _nonscalar)


def _done_once(m):
    a, b = T(m, 3, rg=True), T(m, 2, rg=True)
    y = a.exp().sum() + (b + 3).sum()   # b's path saves nothing: it could run twice
    y.backward()
    return {"a": a, "b": b, "y": y}


row("second_backward", lambda m, e: e["y"].backward(), RuntimeError,
    ("exp", "second time", "retain_graph=True"), _done_once)


def _modified(m):
    a, b = T(m, 3, rg=True), T(m, 2, rg=True)
    h = (a * 1).sigmoid()          # sigmoid saves its output...
    y = h.sum() + (b * 3).sum()
    h.add_(1)                      # ...which is then changed in place
    return {"a": a, "b": b, "y": y, "h": h}


row("inplace_modified_saved", lambda m, e: e["y"].backward(), RuntimeError,
    ("sigmoid", "(3,)", "version 0", "version 1", "add_ at"), _modified)
row("inplace_on_leaf", lambda m, e: e["a"].mul_(2), RuntimeError, ("mul_", "leaf", "(3, 4)"),
    two((3, 4), (1,)))
row("grad_unused_input", lambda m, e: m.autograd.grad((e["a"] * 2).sum(), [e["a"], e["b"]]),
    RuntimeError, ("grad", "input 1", "allow_unused"), two((2,), (2,)))


# ---- optimizers and state dicts ---------------------------------------------------------------
def _trained(m):
    """A model and an optimizer with non-empty state (momentum buffers) and grads."""
    m.manual_seed(0)
    model = m.nn.Linear(3, 2)
    opt = m.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        opt.zero_grad()
        model(m.ones(4, 3)).pow(2).sum().backward()
        opt.step()
    return {"model": model, "opt": opt, "p": list(model.parameters())}


_O = lambda m: m.optim  # noqa: E731
row("sgd_lr_negative", lambda m, e: _O(m).SGD(e["p"], lr=-1), ValueError,
    ("learning rate", "-1"), _trained)
row("sgd_momentum_negative", lambda m, e: _O(m).SGD(e["p"], lr=0.1, momentum=-0.5), ValueError,
    ("momentum", "-0.5"), _trained)
row("sgd_weight_decay_negative", lambda m, e: _O(m).SGD(e["p"], lr=0.1, weight_decay=-1),
    ValueError, ("weight_decay", "-1"), _trained)
row("sgd_nesterov_without_momentum", lambda m, e: _O(m).SGD(e["p"], lr=0.1, nesterov=True),
    ValueError, ("Nesterov", "momentum"), _trained)
row("adam_beta", lambda m, e: _O(m).Adam(e["p"], betas=(1.0, 0.9)), ValueError,
    ("beta", "1.0"), _trained)
row("adam_eps", lambda m, e: _O(m).Adam(e["p"], eps=-1e-8), ValueError, ("epsilon", "-1e-08"),
    _trained)
row("rmsprop_alpha", lambda m, e: _O(m).RMSprop(e["p"], alpha=-1), ValueError, ("alpha", "-1"),
    _trained)
row("adagrad_lr_decay", lambda m, e: _O(m).Adagrad(e["p"], lr_decay=-1), ValueError,
    ("lr_decay", "-1"), _trained)
row("optimizer_empty", lambda m, e: _O(m).SGD([], lr=0.1), ValueError, ("empty",))
row("optimizer_param_twice", lambda m, e: _O(m).SGD([{"params": e["p"]}, {"params": e["p"]}],
                                                    lr=0.1),
    ValueError, ("more than one parameter group",), _trained)


def _groups_doubled(m, e):
    sd = e["opt"].state_dict()
    e["opt"].load_state_dict({"state": sd["state"],
                              "param_groups": sd["param_groups"] + sd["param_groups"]})


def _group_sizes(m, e):
    other = m.optim.SGD([m.nn.Parameter(m.ones(2))], lr=0.5, momentum=0.5)
    e["opt"].load_state_dict(other.state_dict())


row("optimizer_load_groups", _groups_doubled, ValueError, ("parameter groups", "2", "1"),
    _trained)
row("optimizer_load_sizes", _group_sizes, ValueError, ("size", "group"), _trained)


def _module_lsd(kind):
    def act(m, e):
        sd = {k: v.clone() + 1 for k, v in e["model"].state_dict().items()}
        if kind == "missing":
            sd.pop("bias")
        elif kind == "unexpected":
            sd["extra"] = m.ones(1)
        else:
            sd["bias"] = m.ones(5)  # weight is fine and must NOT be loaded either
        e["model"].load_state_dict(sd)
    return act


row("module_load_missing", _module_lsd("missing"), RuntimeError, ("Missing key", '"bias"'),
    _trained)
row("module_load_unexpected", _module_lsd("unexpected"), RuntimeError,
    ("Unexpected key", '"extra"'), _trained)
row("module_load_size", _module_lsd("size"), RuntimeError,
    ("size mismatch for bias", "(5,)", "(2,)"), _trained)


# ---- snapshots --------------------------------------------------------------------------------
def _arr(t):
    return None if t is None else np.array(t.detach().cpu().numpy(), copy=True)


def _snap_tensor(t):
    return ("tensor", tuple(t.shape), str(t.dtype), _arr(t), t._version, t.requires_grad,
            id(t.grad_fn), _arr(t.grad), id(t.grad))


def snapshot(obj):
    """A deep, comparable picture of tensors, modules and optimizers (values, versions,
    grads, graph links, optimizer state and hyper-parameters)."""
    if isinstance(obj, tapegrad.Tensor):
        return _snap_tensor(obj)
    if isinstance(obj, tapegrad.nn.Module):
        return ("module", obj.training,
                [(n, _snap_tensor(p)) for n, p in obj.named_parameters()],
                [(n, _snap_tensor(b)) for n, b in obj.named_buffers()])
    if isinstance(obj, tapegrad.optim.Optimizer):
        groups = [{k: (v if k != "params" else [id(p) for p in v]) for k, v in g.items()}
                  for g in obj.param_groups]
        state = {id(p): snapshot(dict(s)) for p, s in obj.state.items()}
        return ("optimizer", snapshot(groups), state)
    if isinstance(obj, dict):
        return {k: snapshot(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [snapshot(v) for v in obj]
    return obj


def same(x, y) -> bool:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return (isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.shape == y.shape
                and np.array_equal(x, y, equal_nan=True))
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)):
        return (type(x) is type(y) and len(x) == len(y)
                and all(same(a, b) for a, b in zip(x, y)))
    return x == y


# ---- the tests --------------------------------------------------------------------------------
IDS = [r.name for r in ROWS]


def test_table_is_large():
    assert len(ROWS) >= 40
    assert len(set(IDS)) == len(IDS)


@pytest.mark.parametrize("r", ROWS, ids=IDS)
def test_error_type_message_and_nothing_changed(r):
    env = r.setup(tapegrad) if r.setup else {}
    before = snapshot(env)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception) as ei:
            r.act(tapegrad, env)
    assert type(ei.value) is r.exc, f"raised {type(ei.value).__name__}: {ei.value}"
    msg = str(ei.value)
    for s in r.says:
        assert s in msg, f"{s!r} not in message: {msg}"
    assert same(before, snapshot(env)), "state changed by a failing call"


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
@pytest.mark.parametrize("r", [r for r in ROWS if r.torch], ids=[r.name for r in ROWS if r.torch])
def test_pytorch_raises_the_same_type(r):
    env = r.setup(torch) if r.setup else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception) as ei:
            r.act(torch, env)
    assert type(ei.value) is r.exc, f"PyTorch raised {type(ei.value).__name__}: {ei.value}"
