"""``autograd.Function``: user-defined ops with their own forward and backward.

>>> class Square(Function):
...     @staticmethod
...     def forward(ctx, x):
...         ctx.save_for_backward(x)
...         return x * x
...     @staticmethod
...     def backward(ctx, g):
...         (x,) = ctx.saved_tensors
...         return 2 * x * g
>>> y = Square.apply(tapegrad.tensor(3.0, requires_grad=True))
"""

from __future__ import annotations

from tapegrad.autograd import node as _node
from tapegrad.autograd.grad_mode import STATE as _GRAD
from tapegrad.autograd.node import Node, SavedOutput, _edge

__all__ = ["Function", "FunctionCtx", "once_differentiable"]


class FunctionCtx(Node):
    """The ``ctx`` handed to a custom Function; it is also the node on the tape."""

    name = "function"

    def save_for_backward(self, *tensors) -> None:
        self._to_save = tensors

    def save_for_forward(self, *tensors) -> None:
        """Keep tensors for ``jvp``; inside ``jvp``, ``ctx.saved_tensors`` returns them."""
        self._fw_saved = tensors

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_diff = {id(t) for t in tensors}

    def mark_dirty(self, *tensors) -> None:
        self._dirty = tensors

    def set_materialize_grads(self, value: bool) -> None:
        self._materialize = bool(value)

    @property
    def saved_tensors(self):
        if self.__dict__.get("_in_jvp") and "_fw_saved" in self.__dict__:
            return tuple(self._fw_saved)
        return tuple(self.saved)

    @property
    def needs_input_grad(self):
        return self._needs

    def name_backward(self) -> str:
        return self._fn_cls.__name__ + "Backward"

    def vjp(self, *grads):
        grads = list(grads)
        if self._materialize:
            from tapegrad.creation import zeros

            for i, g in enumerate(grads):
                if g is None:
                    shape, dt, dev = self._out_meta[i]
                    grads[i] = zeros(shape, dtype=dt, device=dev)
        res = self._fn_cls.backward(self, *grads)
        if not isinstance(res, tuple):
            res = (res,)
        n = len(self._tensor_pos)
        if len(res) < len(self._all_inputs):
            res = res + (None,) * (len(self._all_inputs) - len(res))
        if len(res) > len(self._all_inputs) and any(r is not None
                                                    for r in res[len(self._all_inputs):]):
            raise RuntimeError(f"function {self.name_backward()} returned an incorrect number of "
                               f"gradients (expected {len(self._all_inputs)}, got {len(res)})")
        out = tuple(res[p] for p in self._tensor_pos)
        assert len(out) == n
        return out

    def jvp(self, inputs, out, *tangents):
        fn = self._fn_cls
        if fn.jvp is Function.jvp:
            raise RuntimeError(f"{fn.__name__}: this custom Function has no jvp(ctx, *tangents) "
                               "staticmethod, so it cannot be used with forward-mode AD")
        # PyTorch's convention: one tangent per forward() argument (None for non-tensors),
        # zeros for tensor arguments without a tangent unless materialization is off.
        full = [None] * len(self._all_inputs)
        for p, x, t in zip(self._tensor_pos, inputs, tangents):
            if t is None and self._materialize and x.dtype.is_floating_point:
                from tapegrad.creation import zeros_like

                t = zeros_like(x)
            full[p] = t
        self._in_jvp = True
        try:
            return fn.jvp(self, *full)
        finally:
            self._in_jvp = False


class Function:
    """Base class of custom differentiable operations; subclass and call ``.apply``."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for "
                                  "your custom autograd.Function to use it with backward mode "
                                  "AD.")

    vjp = backward

    @staticmethod
    def jvp(ctx, *grad_inputs):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        from tapegrad.autograd import hooks_state as _hs
        from tapegrad.tensor import Tensor

        ctx = FunctionCtx.__new__(FunctionCtx)
        ctx._pre_hooks = ctx._post_hooks = None
        ctx._freed = False
        ctx._saved = ()
        ctx._versions = ()
        ctx._to_save = ()
        ctx._non_diff = set()
        ctx._materialize = True
        ctx._fn_cls = cls
        ctx.name = cls.__name__
        ctx._needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        prev = _GRAD.grad_enabled
        _GRAD.grad_enabled = False
        try:
            outs = cls.forward(ctx, *args, **kwargs)
        finally:
            _GRAD.grad_enabled = prev
        single = not isinstance(outs, tuple)
        outs_t = (outs,) if single else outs
        tensor_pos = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        needs = prev and any(ctx._needs)
        result = []
        for k, o in enumerate(outs_t):
            if isinstance(o, Tensor):
                if any(o is a for a in args):
                    o = o.detach()  # an input passed through becomes a new output tensor
                if needs and id(o) not in ctx._non_diff and o.dtype.is_floating_point:
                    o.grad_fn = ctx
                    o._out_nr = k
                    o._requires_grad = True
            result.append(o)
        ctx._nout = len(outs_t)
        ctx._out_meta = [(tuple(o.shape), o.dtype, o.device) if isinstance(o, Tensor) else None
                         for o in result]
        ctx._tensor_pos = tensor_pos
        ctx._all_inputs = args
        if needs:
            ctx.next = tuple(_edge(args[p]) for p in tensor_pos)
            _node.number(ctx, ctx.next)
            saved, versions = [], []
            for t in ctx._to_save:
                hit = next((k for k, o in enumerate(result) if o is t), None)
                if hit is not None and t.grad_fn is ctx:
                    saved.append(SavedOutput(t._data, t._vc, hit, t._device))
                    versions.append(t._vc[0])
                else:
                    saved.append(t)
                    versions.append(t._vc[0] if isinstance(t, Tensor) else 0)
            ctx._saved, ctx._versions = saved, versions
        else:
            ctx.next = ()
            _node.number(ctx, ())
            ctx._saved = list(ctx._to_save)
            ctx._versions = [t._vc[0] if isinstance(t, Tensor) else 0 for t in ctx._to_save]
        ctx._to_save = ()
        if _hs.FORWARD_AD:
            _hs.forward_ad_hook(ctx, tuple(args[p] for p in tensor_pos),
                                result[0] if single else tuple(result))
        if _hs.ANOMALY:
            _hs.anomaly_after(ctx, args, result[0] if single else tuple(result))
        return result[0] if single else tuple(result)


def once_differentiable(fn):
    """Decorator for ``backward``: run it without recording (no double backward)."""
    import functools

    from tapegrad.autograd.grad_mode import no_grad

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        with no_grad():
            return fn(ctx, *args)

    return wrapper
