"""The public surface of API.md: every listed module, name and signature, checked against PyTorch.

API.md lives outside the repository, so its lists are written out here. For each name the test
checks that it exists in tapegrad and, where PyTorch exposes a signature, that argument names,
their order and their defaults agree:

* Python-level PyTorch objects (``nn`` modules, optimizers, ``autograd.functional``, ...): the
  signature from ``inspect.signature`` (for classes, of ``__init__``).
* C builtins (``torch.add``, ``Tensor.sum``, ...) have no Python signature; the type stubs
  PyTorch ships (``torch/_C/_VariableFunctions.pyi``, ``TensorBase`` in ``torch/_C/__init__.pyi``,
  ``torch/_C/_nn.pyi``) list one ``@overload`` per signature its argument parser accepts, and
  each overload is checked. Overloads that one Python signature cannot name the PyTorch way
  are in ``TOLERATED`` with the reason, and ``test_tolerated_overloads_behave`` runs those calls
  in both libraries.
* Names with no signature anywhere (``NO_SIGNATURE``) are only checked for existence; a test
  keeps that list honest.
* Operators (``__getitem__`` ...) are called positionally, so only their arity is compared.

Arguments PyTorch has for features outside tapegrad's scope (``out=``, memory layouts, pinned
memory, fused/foreach kernels) are listed in ``OUT_OF_SCOPE`` and not required.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os

import numpy as np
import pytest

import tapegrad

torch = pytest.importorskip("torch")

MODULES = ["autograd", "autograd.functional", "autograd.forward_ad", "nn", "nn.functional",
           "nn.init", "nn.utils", "optim", "optim.lr_scheduler", "utils.data", "cuda",
           "distributed", "backends"]

DTYPES = ["float16", "float32", "float", "float64", "double", "int32", "int64", "long", "bool"]

CREATION = ["tensor", "as_tensor", "from_numpy", "zeros", "ones", "full", "empty", "eye",
            "arange", "linspace", "rand", "randn", "randint", "zeros_like", "ones_like",
            "full_like", "empty_like", "rand_like", "randn_like", "randint_like", "manual_seed",
            "set_default_dtype", "get_default_dtype", "device", "save", "load", "cuda.is_available"]

OPS = ["add", "sub", "mul", "div", "pow", "matmul", "mm", "bmm", "outer", "dot", "einsum", "abs",
       "neg", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh",
       "sigmoid", "relu", "sign", "floor", "ceil", "round", "clamp", "clip", "maximum", "minimum",
       "where", "erf", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
       "logical_not", "logical_xor", "isnan", "isinf", "isfinite", "sum", "mean", "prod", "max",
       "min", "amax", "amin", "argmax", "argmin", "var", "std", "norm", "logsumexp", "cumsum",
       "all", "any", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze", "transpose",
       "permute", "t", "broadcast_to", "flip", "cat", "stack", "split", "chunk", "unbind",
       "narrow", "gather", "scatter", "scatter_add", "index_select", "masked_fill",
       "take_along_dim"]

GRAD_MODE = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode"]

TENSOR_ATTRIBUTES = ["shape", "dtype", "device", "ndim", "requires_grad", "grad", "grad_fn",
                     "is_leaf", "T", "data"]

# Tensor methods: the "Tensors" list plus the method form of every op PyTorch has one for.
TENSOR_METHODS = [
    "size", "dim", "numel", "item", "tolist", "numpy", "detach", "clone", "requires_grad_",
    "retain_grad", "register_hook", "backward", "to", "cpu", "cuda", "float", "double", "long",
    "int", "bool", "zero_", "fill_", "copy_", "type_as", "contiguous", "__array__", "__dlpack__",
    "add", "sub", "mul", "div", "pow", "matmul", "mm", "bmm", "outer", "dot", "abs", "neg", "exp",
    "log", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh", "sigmoid", "relu",
    "sign", "floor", "ceil", "round", "clamp", "clip", "maximum", "minimum", "where", "erf", "eq",
    "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_not", "logical_xor",
    "isnan", "isinf", "isfinite", "sum", "mean", "prod", "max", "min", "amax", "amin", "argmax",
    "argmin", "var", "std", "norm", "logsumexp", "cumsum", "all", "any", "reshape", "view",
    "flatten", "unflatten", "squeeze", "unsqueeze", "transpose", "permute", "t", "expand",
    "expand_as", "broadcast_to", "repeat", "flip", "split", "chunk", "unbind", "narrow", "gather",
    "scatter", "scatter_add", "index_select", "masked_fill", "take_along_dim", "add_", "sub_",
    "mul_", "div_", "clamp_", "__setitem__", "__getitem__", "__iadd__", "__isub__", "__imul__",
    "__itruediv__"]

AUTOGRAD = ["autograd.grad", "autograd.backward", "autograd.Function",
            "autograd.functional.jacobian", "autograd.functional.hessian",
            "autograd.functional.vjp", "autograd.functional.jvp", "autograd.functional.hvp",
            "autograd.functional.vhp", "autograd.forward_ad.dual_level",
            "autograd.forward_ad.make_dual", "autograd.forward_ad.unpack_dual",
            "autograd.gradcheck", "autograd.gradgradcheck", "autograd.detect_anomaly",
            "autograd.set_detect_anomaly"]

NN_CLASSES = ["Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "Linear",
              "Bilinear", "Embedding", "Dropout", "LayerNorm", "BatchNorm1d", "Conv1d", "Conv2d",
              "MaxPool2d", "Flatten", "Identity", "ReLU", "LeakyReLU", "GELU", "Tanh", "Sigmoid",
              "Softmax", "LogSoftmax", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell",
              "MSELoss", "L1Loss", "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss",
              "HuberLoss"]

MODULE_METHODS = ["parameters", "named_parameters", "children", "modules", "train", "eval",
                  "zero_grad", "state_dict", "load_state_dict", "to", "cpu", "cuda", "float",
                  "double", "half", "requires_grad_", "apply", "register_buffer",
                  "named_modules", "named_children", "register_forward_hook",
                  "register_forward_pre_hook", "register_full_backward_hook", "__call__"]

# The functional forms of the layers, activations and losses above.
NN_FUNCTIONAL = ["linear", "bilinear", "embedding", "dropout", "layer_norm", "batch_norm",
                 "conv1d", "conv2d", "max_pool2d", "relu", "leaky_relu", "gelu", "tanh",
                 "sigmoid", "softmax", "log_softmax", "mse_loss", "l1_loss", "cross_entropy",
                 "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
                 "huber_loss"]

NN_INIT = ["xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "normal_",
           "uniform_", "zeros_", "ones_", "constant_", "calculate_gain"]

NN_UTILS = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
            "vector_to_parameters"]

OPTIMIZERS = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]
OPTIMIZER_METHODS = ["zero_grad", "step", "state_dict", "load_state_dict", "add_param_group"]
SCHEDULERS = ["StepLR", "ExponentialLR", "CosineAnnealingLR", "LambdaLR", "ReduceLROnPlateau"]
DATA = ["Dataset", "TensorDataset", "DataLoader", "random_split"]

SIGNATURE_NAMES = (
    CREATION + OPS + GRAD_MODE + AUTOGRAD
    + ["Tensor." + m for m in TENSOR_METHODS]
    + ["nn." + c for c in NN_CLASSES]
    + ["nn.Module." + m for m in MODULE_METHODS]
    + ["nn.functional." + f for f in NN_FUNCTIONAL]
    + ["nn.init." + f for f in NN_INIT]
    + ["nn.utils." + f for f in NN_UTILS]
    + ["optim." + c for c in OPTIMIZERS]
    + ["optim.Optimizer." + m for m in OPTIMIZER_METHODS]
    + ["optim.lr_scheduler." + s for s in SCHEDULERS]
    + ["utils.data." + d for d in DATA])

# PyTorch builtins with neither a Python signature nor a signature line in the docstring:
# only their existence is checked.
NO_SIGNATURE = {"Tensor.__itruediv__"}

# PyTorch arguments for features tapegrad does not have (output buffers, memory layout and
# pinning, sparse gradients, fused/foreach/capturable kernels, pickle/zipfile internals, the
# deprecated grad_variables, vmap-batched grads, gradcheck modes).
OUT_OF_SCOPE = {"out", "layout", "pin_memory", "memory_format", "sparse_grad", "non_blocking",
                "foreach", "capturable", "differentiable", "fused", "pickle_module",
                "pickle_protocol", "_use_new_zipfile_serialization", "_disable_byteorder_record",
                "mmap", "grad_variables", "only_inputs", "is_grads_batched", "nondet_tol",
                "check_grad_dtypes", "check_batched_grad", "check_batched_forward_grad",
                "check_forward_ad", "check_backward_ad", "fast_mode", "masked",
                "check_fwd_over_rev", "check_rev_over_rev", "_stacklevel", "pin_memory_device",
                "in_order", "multiprocessing_context", "worker_init_fn", "prefetch_factor",
                "persistent_workers", "timeout", "strategy", "vectorize", "outer_jacobian_strategy",
                "sparse", "scale_grad_by_freq", "_weight", "_freeze", "names", "out_dtype",
                "implicit"}

# Overloads that one Python signature cannot name the PyTorch way, but whose calls tapegrad
# accepts: (name, torch argument) -> why. ``test_tolerated_overloads_behave`` runs each form.
TOLERATED = {
    ("arange", "end"): "arange(end) overload: one positional argument is the end",
    ("randint", "high"): "randint(high, size) overload: shifted like arange",
    ("randint", "size"): "randint(high, size) overload: shifted like arange",
    ("randint_like", "high"): "randint_like(input, high) overload: shifted like arange",
    ("linspace", "steps"): "the stub lists a `steps=None` overload that PyTorch's parser refuses",
    ("max", "other"): "max(input, other) is the binary maximum; tapegrad dispatches on the type "
                      "of the second positional argument (keyword `other=` is not accepted)",
    ("min", "other"): "as max",
    ("Tensor.max", "other"): "as max", ("Tensor.min", "other"): "as max",
    ("var", "unbiased"): "var(input, unbiased) overload: a bool second argument is `unbiased`; "
                         "tapegrad's unbiased=None means 'use correction' (default 1)",
    ("std", "unbiased"): "as var", ("Tensor.var", "unbiased"): "as var",
    ("Tensor.std", "unbiased"): "as var",
    ("scatter", "value"): "scatter(input, dim, index, value) overload: a number `src` is taken "
                          "as the value",
    ("Tensor.scatter", "value"): "as scatter",
    ("Tensor.requires_grad_", "mode"): "the stub says `mode`, PyTorch's parser takes "
                                       "`requires_grad` (as the docs and tapegrad)",
    ("nn.functional.conv1d", "padding"): "the padding='valid' default belongs to the string "
                                         "overload; the int overload's default 0 wins",
    ("nn.functional.conv2d", "padding"): "as conv1d",
    ("utils.data.random_split", "generator"): "torch's default is its global generator object; "
                                              "tapegrad's None means its global RNG",
}


@pytest.mark.parametrize("lib", ["tapegrad", "torch"])
def test_tolerated_overloads_behave(lib):
    """The PyTorch calls behind TOLERATED give the same results in both libraries."""
    t = tapegrad if lib == "tapegrad" else torch
    x = t.tensor([[1.0, 5.0], [4.0, 2.0]])
    got = [t.arange(3).tolist(), t.arange(end=3).tolist(),
           list(t.randint(5, (2,)).shape), list(t.randint(high=5, size=(3,)).shape),
           t.max(x, t.ones(2, 2) * 3).tolist(), x.min(t.ones(2, 2) * 3).tolist(),
           t.max(x, 1).values.tolist(), t.max(x, dim=0).indices.tolist(),
           t.var(x, False).item(), x.std(False).item(), t.var(x, 0).tolist(),
           x.std(dim=1, unbiased=False).tolist(), t.var(x, correction=0).item(),
           t.scatter(t.zeros(3), 0, t.tensor([1]), 2.0).tolist(),
           t.zeros(3).scatter(0, t.tensor([2]), 7.0).tolist(),
           t.ones(2).requires_grad_(requires_grad=True).requires_grad,
           t.nn.functional.conv1d(t.ones(1, 1, 3), t.ones(1, 1, 2)).tolist()]
    ref = [[0, 1, 2], [0, 1, 2], [2], [3], [[3.0, 5.0], [4.0, 3.0]], [[1.0, 3.0], [3.0, 2.0]],
           [5.0, 4.0], [1, 0], 2.5, 1.5811388300841898, [4.5, 4.5], [2.0, 1.0], 2.5,
           [0.0, 2.0, 0.0], [0.0, 0.0, 7.0], True, [[[2.0, 2.0]]]]
    for g, r in zip(got, ref):
        assert np.allclose(g, r), (lib, got)


def _get(root, path):
    obj = root
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


# ---- signatures as (name, kind, default) lists ----------------------------------------------
P, K, VAR, VARKW = "positional", "keyword", "*args", "**kwargs"
_NO_DEFAULT = object()


def _from_inspect(sig: inspect.Signature) -> list:
    kinds = {inspect.Parameter.POSITIONAL_ONLY: P, inspect.Parameter.POSITIONAL_OR_KEYWORD: P,
             inspect.Parameter.KEYWORD_ONLY: K, inspect.Parameter.VAR_POSITIONAL: VAR,
             inspect.Parameter.VAR_KEYWORD: VARKW}
    out = []
    for p in sig.parameters.values():
        default = _NO_DEFAULT if p.default is inspect.Parameter.empty else p.default
        out.append((p.name, kinds[p.kind], default))
    return out


def _from_ast(fn: ast.FunctionDef) -> list:
    args = fn.args
    out = []
    positional = args.posonlyargs + args.args
    pos_defaults = [_NO_DEFAULT] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for arg, default in zip(positional, pos_defaults):
        out.append((arg.arg, P, default))
    if args.vararg is not None:
        out.append((args.vararg.arg, VAR, _NO_DEFAULT))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        out.append((arg.arg, K, _NO_DEFAULT if default is None else default))
    if args.kwarg is not None:
        out.append((args.kwarg.arg, VARKW, _NO_DEFAULT))
    return [(name, kind, _literal(default)) for name, kind, default in out]


def _literal(node):
    if node is _NO_DEFAULT:
        return node
    try:
        return ast.literal_eval(node)
    except ValueError:
        return "<unparsed>"


_STUBS: dict = {}


def _stub_functions(relpath: str, cls: str | None = None) -> dict:
    """name -> [overload signatures] from one of PyTorch's shipped ``.pyi`` stubs."""
    key = (relpath, cls)
    if key not in _STUBS:
        table: dict = {}
        path = os.path.join(os.path.dirname(torch.__file__), relpath)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
            body = tree.body
            if cls is not None:
                body = next(n.body for n in body if isinstance(n, ast.ClassDef) and n.name == cls)
            for node in body:
                if isinstance(node, ast.FunctionDef):
                    sig = _from_ast(node)
                    if cls is not None:
                        sig = sig[1:]  # self
                    table.setdefault(node.name, []).append(sig)
        _STUBS[key] = table
    return _STUBS[key]


def torch_signatures(path: str) -> list:
    """PyTorch's accepted signatures for ``path``: several for overloaded builtins.

    Python-level objects give ``inspect.signature``; C builtins give the overloads written in
    the type stubs PyTorch ships (``torch/_C/_VariableFunctions.pyi`` for ``torch.*``,
    ``TensorBase`` in ``torch/_C/__init__.pyi`` for ``Tensor.*``), which mirror the argument
    parser's signatures.
    """
    obj = _get(torch, path)
    is_method = path.startswith(("Tensor.", "nn.Module.", "optim.Optimizer."))
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = _from_inspect(inspect.signature(target))
        if inspect.isclass(obj) or is_method:
            sig = sig[1:]  # self
        return [sig]
    except (TypeError, ValueError):
        pass
    short = path.split(".")[-1]
    if path.startswith("Tensor."):
        return _stub_functions("_C/__init__.pyi", "TensorBase").get(short, [])
    if path.startswith("nn.functional."):
        return (_stub_functions("nn/functional.pyi").get(short)
                or _stub_functions("_C/_nn.pyi").get(short)
                or _stub_functions("_C/_VariableFunctions.pyi").get(short, []))
    return (_stub_functions("_C/_VariableFunctions.pyi").get(short)
            or _stub_functions("_C/__init__.pyi").get(short, []))


def tapegrad_signature(path: str) -> list:
    obj = _get(tapegrad, path)
    target = obj.__init__ if inspect.isclass(obj) else obj
    sig = _from_inspect(inspect.signature(target))
    if inspect.isclass(obj) or path.startswith(("Tensor.", "nn.Module.", "optim.Optimizer.")):
        sig = sig[1:]
    return sig


def _same_default(a, b) -> bool:
    if a is _NO_DEFAULT or a is Ellipsis or isinstance(a, str) and a == "<unparsed>":
        return True
    if b is _NO_DEFAULT:
        return False
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float, str, tuple)) and isinstance(b, (int, float, str, tuple)):
        return a == b
    return a is b or type(a) is type(b)


def compare(path: str, theirs: list, ours: list) -> list[str]:
    """Problems a PyTorch-style call matching ``theirs`` would hit when made against ``ours``."""
    problems = []
    our_names = {p[0] for p in ours}
    unsupported = [p[0] for p in theirs if p[0] in OUT_OF_SCOPE and p[0] not in our_names]
    if any(kind == VAR and name == "args" for name, kind, _ in theirs):
        return problems  # torch's own *args signature carries no names
    if any(p[0] == "self" for p in theirs) and not path.startswith("Tensor."):
        return problems  # deprecated or scalar-first overloads: add(self, alpha, other), ...
    # Positions after an argument tapegrad lacks cannot be reached positionally anyway.
    their_pos = []
    for name, kind, _ in theirs:
        if kind == P and name in unsupported:
            break
        if kind == P:
            their_pos.append(name)
    theirs = [p for p in theirs if p[0] not in unsupported]
    our_pos = [p[0] for p in ours if p[1] == P]
    our_by_name = {p[0]: p for p in ours if p[1] in (P, K)}
    our_var = any(p[1] == VAR for p in ours)
    our_varkw = any(p[1] == VARKW for p in ours)
    for i, name in enumerate(their_pos):
        if (path, name) in TOLERATED:
            continue
        if i < len(our_pos):
            if our_pos[i] != name:
                problems.append(f"positional argument {i} is {our_pos[i]!r}, torch {name!r}")
        elif not our_var:
            problems.append(f"positional argument {i} ({name!r}) missing")
    for name, kind, default in theirs:
        if (path, name) in TOLERATED or kind == VARKW:
            continue
        if kind == VAR:
            if not our_var:
                problems.append(f"*{name} not accepted")
            continue
        mine = our_by_name.get(name)
        if mine is None:
            if not our_varkw and (kind == K or not our_var):
                problems.append(f"argument {name!r} missing")
        elif name not in OUT_OF_SCOPE and not _same_default(default, mine[2]):
            problems.append(f"default of {name!r} is {mine[2]!r}, torch {default!r}")
    named = {p[0] for p in theirs}
    for name, kind, default in ours:
        if kind in (P, K) and default is _NO_DEFAULT and name not in named and theirs:
            problems.append(f"extra required argument {name!r}")
    return problems


# ---- tests ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODULES)
def test_module_importable_both_ways(name):
    via_import = importlib.import_module("tapegrad." + name)
    assert _get(tapegrad, name) is via_import


@pytest.mark.parametrize("name", DTYPES)
def test_dtype_names(name):
    ours = _get(tapegrad, name)
    assert isinstance(ours, tapegrad.dtype)
    assert str(ours) == str(_get(torch, name)).replace("torch.", "tapegrad.")


def test_dtype_aliases_and_default():
    assert tapegrad.float is tapegrad.float32 and tapegrad.double is tapegrad.float64
    assert tapegrad.long is tapegrad.int64
    assert tapegrad.get_default_dtype() is tapegrad.float32


@pytest.mark.parametrize("name", TENSOR_ATTRIBUTES)
def test_tensor_attributes(name):
    ours, theirs = tapegrad.ones(2, 3, requires_grad=True), torch.ones(2, 3, requires_grad=True)
    assert (getattr(ours, name) is None) == (getattr(theirs, name) is None)


def test_non_leaf_attributes():
    x = tapegrad.ones(2, 3, requires_grad=True)
    z = (x * 2).sum()
    assert z.grad_fn is not None and not z.is_leaf and z.requires_grad and x.is_leaf
    assert x.grad_fn is None and x.data.requires_grad is False and x.T.shape == (3, 2)


@pytest.mark.parametrize("path", SIGNATURE_NAMES + ["optim.Momentum", "optim.Nesterov"])
def test_name_exists(path):
    assert _get(tapegrad, path) is not None


def test_classical_optimizers_in_own_modules():
    assert tapegrad.optim.Momentum.__module__ == "tapegrad.optim.momentum"
    assert tapegrad.optim.Nesterov.__module__ == "tapegrad.optim.nesterov"


def test_no_signature_list_is_honest():
    """Names in NO_SIGNATURE really have no recoverable PyTorch signature."""
    assert [path for path in sorted(NO_SIGNATURE) if torch_signatures(path)] == []


@pytest.mark.parametrize("path", [p for p in SIGNATURE_NAMES if p not in NO_SIGNATURE])
def test_signature_matches_torch(path):
    overloads = torch_signatures(path)
    assert overloads, f"{path}: no PyTorch signature found; add it to NO_SIGNATURE"
    ours = tapegrad_signature(path)
    if path.split(".")[-1].startswith("__"):
        # Operators are called positionally: only the arity matters, not the names.
        def arity(sig):
            return sum(kind == P and d is _NO_DEFAULT for _, kind, d in sig)
        assert {arity(sig) for sig in overloads} == {arity(ours)}, path
        return
    problems = {msg for sig in overloads for msg in compare(path, sig, ours)}
    assert not problems, f"{path}: " + "; ".join(sorted(problems))


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_optimizer_param_group_defaults(name):
    ours = getattr(tapegrad.optim, name)([tapegrad.zeros(2, requires_grad=True)], lr=0.1)
    theirs = getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], lr=0.1)
    expected = {k: v for k, v in theirs.param_groups[0].items()
                if k != "params" and k not in OUT_OF_SCOPE}
    got = {k: v for k, v in ours.param_groups[0].items() if k != "params"}
    assert got == expected
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["state", "param_groups"]


LAYERS = ["Linear(3, 4)", "Linear(3, 4, bias=False)", "Bilinear(2, 3, 4)", "Embedding(5, 3)",
          "LayerNorm(4)", "LayerNorm([2, 4], elementwise_affine=False)", "BatchNorm1d(4)",
          "Conv1d(2, 3, 3)", "Conv2d(2, 3, (3, 2), stride=2, padding=1, bias=False)",
          "RNN(3, 4, num_layers=2, nonlinearity='relu')",
          "LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)",
          "GRU(3, 4, bias=False)", "RNNCell(3, 4)", "LSTMCell(3, 4)", "GRUCell(3, 4)",
          "Sequential(Linear(2, 2), ReLU(), Dropout(0.1), Linear(2, 1))",
          "ModuleList([Linear(1, 1), Tanh()])", "ModuleDict({'a': Linear(1, 2)})",
          "MaxPool2d(2)", "Flatten()", "Identity()", "LeakyReLU(0.2)", "GELU()", "Sigmoid()",
          "Softmax(dim=1)", "LogSoftmax(dim=1)", "MSELoss()", "L1Loss()", "CrossEntropyLoss()",
          "NLLLoss()", "BCELoss()", "BCEWithLogitsLoss()", "HuberLoss(delta=0.5)"]


@pytest.mark.parametrize("expr", LAYERS)
def test_layer_state_dict_layout(expr):
    """The same parameter and buffer names, shapes and dtypes, and the same repr."""
    ours = eval(expr, vars(tapegrad.nn))
    theirs = eval(expr, vars(torch.nn))
    got = {k: (tuple(v.shape), str(v.dtype)) for k, v in ours.state_dict().items()}
    want = {k: (tuple(v.shape), str(v.dtype).replace("torch.", "tapegrad."))
            for k, v in theirs.state_dict().items()}
    assert list(got.items()) == list(want.items())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert repr(ours) == repr(theirs)
