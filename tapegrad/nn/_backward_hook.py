"""Module backward hooks: identity nodes around a module's inputs and outputs.

An identity node on the outputs sees ``grad_output``; one on the inputs sees ``grad_input``
and then calls ``hook(module, grad_input, grad_output)``, whose return value may replace the
gradients flowing on. This is how PyTorch's ``register_full_backward_hook`` works, and it
needs nothing from the engine beyond an ordinary custom Function.
"""

from __future__ import annotations

from tapegrad.autograd.function import Function
from tapegrad.autograd.grad_mode import is_grad_enabled
from tapegrad.tensor import Tensor


class _Identity(Function):
    @staticmethod
    def forward(ctx, state, kind, *tensors):
        ctx.state = state
        ctx.kind = kind
        ctx.set_materialize_grads(False)  # unused outputs report None, as in PyTorch
        return tensors

    @staticmethod
    def backward(ctx, *grads):
        if ctx.kind == "output":
            res = ctx.state.on_output_grads(grads)
        else:
            res = ctx.state.on_input_grads(grads)
        return (None, None) + tuple(res)


def _wrap(state, kind, items):
    """Pass the tensors of ``items`` that require grad through one identity node."""
    pos = [i for i, t in enumerate(items) if isinstance(t, Tensor) and t.requires_grad]
    if not pos or not is_grad_enabled():
        return items, pos
    outs = _Identity.apply(state, kind, *[items[i] for i in pos])
    items = list(items)
    for i, o in zip(pos, outs):
        items[i] = o
    return items, pos


class BackwardHook:
    """The per-call state shared by the input and output identity nodes."""

    def __init__(self, module, hooks, pre_hooks):
        self.module = module
        self.hooks = hooks
        self.pre_hooks = pre_hooks
        self.grad_outputs = None
        self.n_in = 0
        self.in_pos = []
        self.n_out = 0
        self.out_pos = []

    def setup_input(self, args):
        tensors = [a for a in args if isinstance(a, Tensor)]
        self.n_in = len(tensors)
        wrapped, self.in_pos = _wrap(self, "input", tensors)
        it = iter(wrapped)
        return tuple(next(it) if isinstance(a, Tensor) else a for a in args)

    def setup_output(self, out):
        single = isinstance(out, Tensor)
        items = (out,) if single else out
        if not isinstance(items, tuple):
            return out
        self.n_out = len(items)
        wrapped, self.out_pos = _wrap(self, "output", items)
        if not self.out_pos:
            return out
        return wrapped[0] if single else tuple(wrapped)

    def on_output_grads(self, grads):
        full = [None] * self.n_out
        for i, g in zip(self.out_pos, grads):
            full[i] = g
        full = tuple(full)
        for hook in self.pre_hooks:
            r = hook(self.module, full)
            if r is not None:
                full = _check_len(r, self.n_out, "backward pre-hook", "grad_output")
        self.grad_outputs = full
        if not self.in_pos:
            # No input needs a gradient: PyTorch still calls the hooks, with Nones.
            for hook in self.hooks:
                if hook(self.module, (None,) * self.n_in, full) is not None:
                    raise RuntimeError("Backward hook for Modules where no input requires "
                                       "gradient should always return None or None for all "
                                       "gradients.")
        return [full[i] for i in self.out_pos]

    def on_input_grads(self, grads):
        full = [None] * self.n_in
        for i, g in zip(self.in_pos, grads):
            full[i] = g
        full = tuple(full)
        for hook in self.hooks:
            r = hook(self.module, full, self.grad_outputs)
            if r is not None:
                full = _check_len(r, self.n_in, "backward hook", "grad_input")
        return [full[i] for i in self.in_pos]


def _check_len(r, n, what, name):
    r = tuple(r) if isinstance(r, (tuple, list)) else (r,)
    if len(r) != n:
        raise RuntimeError(f"{what} returned an invalid number of {name}, got {len(r)}, but "
                           f"expected {n}")
    return r
