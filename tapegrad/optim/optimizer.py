"""The optimizer base: parameter groups, per-parameter state, ``zero_grad``, ``state_dict``.

A concrete optimizer is a thin class: it validates its hyper-parameters (``_check_group``),
creates per-parameter state on first use, and calls one backend kernel per parameter
(``backend.k["sgd_step"](param_array, grad_array, buffer_array, lr, ...)``) that updates the
raw arrays in place. The base class owns everything else, in PyTorch's format: a
``state_dict`` keys state by integer index and lists those indices in each group's
``"params"``, so state dicts carry over between the two frameworks.

>>> w = tapegrad.zeros(3, requires_grad=True)
>>> opt = tapegrad.optim.SGD([w], lr=0.1)
>>> (w - 1.0).pow(2).sum().backward(); opt.step(); w
tensor([0.2000, 0.2000, 0.2000], requires_grad=True)
"""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable

import numpy as np

from tapegrad.autograd.node import bump_inplace
from tapegrad import backends as _backends
from tapegrad.autograd.grad_mode import enable_grad
from tapegrad._dtype import float64, get_default_dtype
from tapegrad.tensor import Tensor

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Marks a hyper-parameter that every parameter group must give."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def backend_of(p: Tensor):
    """The backend whose kernels update ``p`` (the CPU backend, or the device's)."""
    if p._device.type == "cpu":
        return _backends.CPU_BACKEND
    return _backends.backend_for_device(p._device)


def zeros_state(p: Tensor, value: float = 0.0) -> Tensor:
    """A fresh state buffer shaped like ``p``, on its device, filled with ``value``."""
    xp = backend_of(p).xp
    arr = xp.full(p._data.shape, value, dtype=p._data.dtype)
    return Tensor._make(arr, False, None, 0, p._device)


def _step_dtype():
    # PyTorch's _get_scalar_dtype: float64 when that is the default dtype, else float32.
    return np.float64 if get_default_dtype() is float64 else np.float32


def step_counter() -> Tensor:
    """A 0-d step count, as PyTorch keeps ``state["step"]`` (float32, or float64 when that
    is the default dtype)."""
    return Tensor._make(np.zeros((), dtype=_step_dtype()))


def bump_step(t: Tensor) -> float:
    """Add one to a step counter in place and return the new count."""
    t._data += 1
    bump_inplace(t._vc)
    return float(t._data)


def bump_version(p: Tensor, rule: str) -> None:
    """Record an in-place update of ``p`` so that graphs that saved the old value refuse to
    backpropagate, naming the optimizer that changed it."""
    vc = p._vc
    bump_inplace(vc)
    vc[1] = f"an optimizer step ({rule})"


def check_nonneg(name: str, value, what: str | None = None) -> None:
    """PyTorch's ``Invalid <what>: <value>`` ValueError for a negative hyper-parameter."""
    if not 0.0 <= value:
        raise ValueError(f"Invalid {what or name + ' value'}: {value}")


def _typename(obj) -> str:
    if isinstance(obj, Tensor):
        return f"tapegrad.Tensor of shape {tuple(obj.shape)}"
    return type(obj).__name__


class Optimizer:
    """Base class of every optimizer.

    ``params`` is an iterable of tensors, of ``(name, tensor)`` pairs, or of dicts (parameter
    groups, each with a ``"params"`` list and optional per-group hyper-parameters that override
    ``defaults``).

    >>> opt = tapegrad.optim.SGD([{"params": [w1]}, {"params": [w2], "lr": 0.01}], lr=0.1)
    """

    def __init__(self, params, defaults: dict) -> None:
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {_typename(params)}")
        if isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        groups = list(params)
        if len(groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ---- hooks for subclasses ----------------------------------------------------------
    def _check_group(self, group: dict) -> None:
        """Raise ValueError for invalid hyper-parameters in a complete group (override)."""

    # ---- groups --------------------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters, with hyper-parameters defaulting to ``defaults``.

        >>> opt.add_param_group({"params": [new_weight], "lr": 1e-4})
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("add_param_group: the group has no 'params' entry")
        group = dict(param_group)  # never mutate the caller's dict
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names and len(names) != len(params):
            raise ValueError("all optimizer params should be with/without names. Some param "
                             "names are missing")
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                f"{_typename(p)}")
            if not (p.is_leaf or p.retains_grad):
                raise ValueError(f"can't optimize a non-leaf Tensor (shape {tuple(p.shape)})")
        group["params"] = params
        if names:
            group["param_names"] = names
        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise ValueError("parameter group didn't specify a value of required "
                                 f"optimization parameter {key}")
            group.setdefault(key, default)
        self._check_group(group)
        if len({id(p) for p in params}) != len(params):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; "
                          "in future, this will cause an error", UserWarning, stacklevel=3)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # ---- gradients and steps -------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (``None``), or zero it in place.

        >>> opt.zero_grad()
        """
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    g.detach_()  # a create_graph gradient: keep the values, drop the history
                    g._data[...] = 0
                    bump_inplace(g._vc)

    def step(self, closure: Callable[[], float] | None = None):
        """Update every parameter that has a gradient; ``closure`` re-evaluates the loss."""
        raise NotImplementedError

    @staticmethod
    def _eval_closure(closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # ---- persistence ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``.

        The state's tensors are the live buffers (as in PyTorch): copy the dict to freeze it.

        >>> sd = opt.state_dict(); opt2.load_state_dict(sd)
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            ids = []
            for p in group["params"]:
                ids.append(index.setdefault(id(p), len(index)))
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for p, st in self.state.items():
            key = index.get(id(p)) if isinstance(p, Tensor) else p
            if key is not None:
                state[key] = st
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load the state and hyper-parameters saved by :meth:`state_dict` (copied, cast to
        each parameter's dtype and device). Mismatched group or parameter counts, or state
        shaped unlike its parameter, raise ValueError and change nothing.

        >>> opt.load_state_dict(saved)
        """
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict or \
                "state" not in state_dict:
            raise ValueError("load_state_dict: expected a dict with 'state' and 'param_groups' "
                             "entries, as returned by Optimizer.state_dict()")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups "
                             f"({len(saved_groups)}) than the optimizer "
                             f"({len(self.param_groups)})")
        id_map = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"loaded state dict contains a parameter group that doesn't "
                                 f"match the size of optimizer's group: group {i} has "
                                 f"{len(saved['params'])} parameters in the state dict and "
                                 f"{len(group['params'])} in the optimizer")
            id_map.update(zip(saved["params"], group["params"]))

        new_state: defaultdict = defaultdict(dict)
        for key, st in state_dict["state"].items():
            p = id_map.get(key)
            if p is None:
                new_state[key] = copy.deepcopy(st)
                continue
            new_state[p] = {name: _cast_state(p, key, name, value) for name, value in st.items()}

        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            g = copy.deepcopy({k: v for k, v in saved.items() if k != "params"})
            g["params"] = group["params"]
            if "param_names" in group and "param_names" not in g:
                g["param_names"] = group["param_names"]
            self._check_group(g)
            new_groups.append(g)
        # Everything validated: commit both at once.
        self.state = new_state
        self.param_groups = new_groups

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key not in ("params", "param_names"):
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _cast_state(p: Tensor, index, name, value):
    """A copy of one state entry for parameter ``p``: tensors get ``p``'s dtype and device
    (except the step count) and must have ``p``'s shape (except scalars such as the step)."""
    if isinstance(value, Tensor) or isinstance(value, np.ndarray):
        t = value if isinstance(value, Tensor) else Tensor._make(np.asarray(value))
        if name != "step" and t.ndim != 0 and tuple(t.shape) != tuple(p.shape):
            raise ValueError(f"load_state_dict: state '{name}' of parameter {index} has shape "
                             f"{tuple(t.shape)}, but the parameter has shape {tuple(p.shape)}")
        if name == "step":
            # Kept in its own floating dtype, as PyTorch does (pytorch issue 74424).
            dt = t.dtype.np if t.dtype.is_floating_point else _step_dtype()
            return Tensor._make(np.array(float(t.item()), dtype=dt))
        if t.ndim != 0:
            t = t.to(p.device).to(p.dtype)
            return Tensor._make(backend_of(p).xp.array(t._data, copy=True), False, None, 0,
                                p._device)
        return t.detach().clone()
    if isinstance(value, dict):
        return {k: _cast_state(p, index, k, v) for k, v in value.items()}
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return type(value)(_cast_state(p, index, name, v) for v in value)
    return copy.deepcopy(value)
