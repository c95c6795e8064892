"""Higher-level derivatives of whole functions: ``jacobian``, ``hessian``, ``vjp``, ``jvp``,
``hvp``, ``vhp``, with PyTorch's signatures and semantics.

Each takes ``func`` (tensors in, a tensor or a tuple of tensors out) and ``inputs`` (a tensor
or a tuple of tensors); results mirror that structure. ``create_graph=True`` returns results
that are themselves differentiable; ``strict=True`` raises where an output does not depend on
an input instead of returning zeros.

How each is computed:

* ``vjp``: one reverse pass. ``jvp``: one forward-mode pass (``forward_ad``), not PyTorch's
  double-backward trick.
* ``jacobian``: one reverse pass per output element (``strategy="reverse-mode"``), or one
  forward-mode pass per input element (``"forward-mode"``): pick the side with fewer elements.
* ``hessian``: the Jacobian of the reverse-mode gradient (outer Jacobian in either mode).
* ``hvp``: forward over reverse (the backward pass of a dual tensor carries H v as its tangent);
  ``vhp``: reverse over reverse. For twice-differentiable functions H is symmetric, so both are
  the same vector.

>>> from tapegrad.autograd.functional import hessian
>>> hessian(lambda x: (x ** 3).sum(), tapegrad.tensor([1.0, 2.0]))
tensor([[ 6.,  0.],
        [ 0., 12.]])
"""

from __future__ import annotations

from tapegrad.autograd import forward_ad as fwAD
from tapegrad.autograd.engine import grad as _grad
from tapegrad.autograd.grad_mode import enable_grad, is_grad_enabled, set_grad_enabled

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]


# ---- argument handling --------------------------------------------------------------------
def _as_tuple(x, what, fn):
    """``(was_tuple, tuple_of_tensors)``; TypeError naming ``fn`` for anything else."""
    from tapegrad.tensor import Tensor

    is_tuple = isinstance(x, (tuple, list))
    xs = tuple(x) if is_tuple else (x,)
    for i, el in enumerate(xs):
        if not isinstance(el, Tensor):
            where = f"the value at index {i} has" if is_tuple else f"the given {what} has"
            raise TypeError(f"{fn}: the {what} must be either a Tensor or a tuple of Tensors "
                            f"but {where} type {type(el).__name__}.")
    return is_tuple, xs


def _untuple(res, was_tuple):
    """Undo ``_as_tuple``; ``was_tuple`` may be a pair (outer, inner) for nested results."""
    if isinstance(was_tuple, tuple):
        outer, inner = was_tuple
        if not inner:
            res = tuple(r[0] for r in res)
        return res if outer else res[0]
    return res if was_tuple else res[0]


def _prepare(inputs, create_graph, need_graph):
    """Fresh tensor objects for ``inputs`` (so captured globals are not mistaken for them):
    a differentiable view when the caller wants a graph back to them, else detached."""
    out = []
    for x in inputs:
        if create_graph and x.requires_grad:
            out.append(x.view_as(x))
        else:
            out.append(x.detach().requires_grad_(need_graph))
    return tuple(out)


def _finish(res, create_graph):
    """Detach results (recursively through nested tuples) unless a graph was asked for."""
    if create_graph:
        return res
    return tuple(_finish(r, False) if isinstance(r, tuple) else r.detach() for r in res)


def _check_v(v, like, like_is_tuple, fn):
    if len(v) != len(like):
        if like_is_tuple:
            raise RuntimeError(f"{fn}: v is a tuple of invalid length: should be {len(like)} "
                               f"but got {len(v)}.")
        raise RuntimeError(f"{fn}: the given v should contain a single Tensor.")
    for i, (a, b) in enumerate(zip(v, like)):
        if tuple(a.shape) != tuple(b.shape):
            pre = f"entry {i} in " if like_is_tuple else ""
            raise RuntimeError(f"{fn}: {pre}v has invalid size: should be {tuple(b.shape)} but "
                               f"got {tuple(a.shape)}.")


def _default_v(xs, fn, what):
    from tapegrad.creation import ones_like

    if len(xs) != 1 or xs[0].numel() != 1:
        raise RuntimeError(f"{fn}: the vector v can only be None if the {what} is a single "
                           "Tensor with a single element.")
    return (ones_like(xs[0]),)


def _strict_outputs(outputs, strict, fn):
    if strict:
        for i, o in enumerate(outputs):
            if not o.requires_grad:
                raise RuntimeError(f"{fn}: output {i} of the user-provided function does not "
                                   "require gradients. The outputs must be computed in a "
                                   "differentiable manner from the input when running in "
                                   "strict mode.")


def _single_scalar(outputs, is_tuple, fn):
    if is_tuple:
        raise RuntimeError(f"{fn}: the function given to {fn} should return a single Tensor")
    if outputs[0].numel() != 1:
        raise RuntimeError(f"{fn}: the Tensor returned by the function given to {fn} should "
                           f"contain a single element, got shape {tuple(outputs[0].shape)}")


def _grads(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None):
    """``autograd.grad`` that skips outputs needing no grad; None for unreached inputs."""
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o is not None and o.requires_grad]
    if not pairs:
        return (None,) * len(inputs)
    return _grad([o for o, _ in pairs], inputs, [g for _, g in pairs], retain_graph=retain_graph,
                 create_graph=create_graph, allow_unused=True)


def _zeros_for_none(grads, refs, strict, create_graph, fn, why):
    from tapegrad.creation import zeros_like

    out = []
    for i, (g, r) in enumerate(zip(grads, refs)):
        if g is None:
            if strict:
                raise RuntimeError(f"{fn}: {why.format(i=i)} This is not allowed in strict "
                                   "mode.")
            g = zeros_like(r)
        elif strict and create_graph and not g.requires_grad:
            raise RuntimeError(f"{fn}: the result for input {i} does not depend on the inputs "
                               "(it is constant). This is not allowed in strict mode when "
                               "create_graph=True.")
        out.append(g)
    return tuple(out)


# ---- vjp / jvp ----------------------------------------------------------------------------
def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), v^T J)``: the vector-Jacobian product, one reverse pass.

    >>> vjp(lambda x: x ** 2, tapegrad.tensor([1.0, 2.0]), tapegrad.ones(2))
    (tensor([1., 4.]), tensor([2., 4.]))
    """
    with enable_grad():
        in_tuple, xs = _as_tuple(inputs, "inputs", "vjp")
        xs = _prepare(xs, create_graph, need_graph=True)
        out_tuple, outs = _as_tuple(func(*xs), "outputs of the user-provided function", "vjp")
        _strict_outputs(outs, strict, "vjp")
        if v is None:
            if len(outs) != 1 or outs[0].numel() != 1:
                raise RuntimeError("vjp: the vector v can only be None if the user-provided "
                                   "function returns a single Tensor with a single element.")
        else:
            _, v = _as_tuple(v, "v", "vjp")
            v = _prepare(v, create_graph, need_graph=False)
            _check_v(v, outs, out_tuple, "vjp")
    with set_grad_enabled(True if create_graph else is_grad_enabled()):
        res = _grads(outs, xs, v, create_graph=create_graph)
        res = _zeros_for_none(res, xs, strict, create_graph, "vjp", "the output of the "
                              "user-provided function is independent of input {i}.")
    return (_untuple(_finish(outs, create_graph), out_tuple),
            _untuple(_finish(res, create_graph), in_tuple))


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), J v)``: the Jacobian-vector product, one forward-mode pass.

    >>> jvp(lambda x: x ** 2, tapegrad.tensor([1.0, 2.0]), tapegrad.ones(2))
    (tensor([1., 4.]), tensor([2., 4.]))
    """
    from tapegrad.creation import zeros_like

    with enable_grad():
        in_tuple, xs = _as_tuple(inputs, "inputs", "jvp")
        # A tape is only needed to hand back a differentiable result or to check strictness.
        xs = _prepare(xs, create_graph, need_graph=create_graph or strict)
        if v is None:
            v = _default_v(xs, "jvp", "input to the user-provided function")
        else:
            _, v = _as_tuple(v, "v", "jvp")
            v = _prepare(v, create_graph, need_graph=False)
            _check_v(v, xs, in_tuple, "jvp")
        with fwAD.dual_level():
            duals = tuple(fwAD.make_dual(x, t) for x, t in zip(xs, v))
            out_tuple, outs = _as_tuple(func(*duals), "outputs of the user-provided function",
                                        "jvp")
            pairs = [fwAD.unpack_dual(o) for o in outs]
        prims = tuple(p.primal for p in pairs)
        _strict_outputs(prims, strict, "jvp")
        if strict:
            reached = _grads(prims, xs, tuple(zeros_like(p) for p in prims), retain_graph=True)
            for i, r in enumerate(reached):
                if r is None:
                    raise RuntimeError(f"jvp: the output of the user-provided function is "
                                       f"independent of input {i}. This is not allowed in "
                                       "strict mode.")
        tangents = _zeros_for_none([p.tangent for p in pairs], prims, strict, create_graph,
                                   "jvp", "output {i} of the user-provided function is "
                                   "independent of the inputs.")
    return (_untuple(_finish(prims, create_graph), out_tuple),
            _untuple(_finish(tangents, create_graph), out_tuple))


# ---- jacobian / hessian -------------------------------------------------------------------
def _one_hot(like, j):
    from tapegrad.creation import zeros_like

    e = zeros_like(like)
    e._data.reshape(-1)[j] = 1  # fresh contiguous zeros: reshape is a view
    return e


def _stack_rows(rows, lead_shape, tail_shape, like):
    """Stack per-element results into a tensor of shape ``lead_shape + tail_shape``."""
    from tapegrad.ops.shape import reshape, stack

    shape = tuple(lead_shape) + tuple(tail_shape)
    if not rows:
        from tapegrad.creation import zeros

        return zeros(shape, dtype=like.dtype, device=like.device)
    return reshape(stack(rows, 0), shape)


def _jac_reverse(func, inputs, create_graph, strict):
    from tapegrad.creation import zeros_like

    with enable_grad():
        in_tuple, xs = _as_tuple(inputs, "inputs", "jacobian")
        xs = _prepare(xs, create_graph, need_graph=True)
        out_tuple, outs = _as_tuple(func(*xs), "outputs of the user-provided function",
                                    "jacobian")
        _strict_outputs(outs, strict, "jacobian")
        jac = []
        for i, o in enumerate(outs):
            rows = [[] for _ in xs]
            for j in range(o.numel()):
                gs = _grads((o,), xs, (_one_hot(o, j),), retain_graph=True,
                            create_graph=create_graph)
                for k, (g, x) in enumerate(zip(gs, xs)):
                    if g is None:
                        if strict:
                            raise RuntimeError(f"jacobian: output {i} of the user-provided "
                                               f"function is independent of input {k}. This "
                                               "is not allowed in strict mode.")
                        g = zeros_like(x)
                    elif strict and create_graph and not g.requires_grad:
                        raise RuntimeError(f"jacobian: the jacobian of the user-provided "
                                           f"function is independent of input {k}. This is "
                                           "not allowed in strict mode when create_graph=True.")
                    rows[k].append(g)
            jac.append(tuple(_stack_rows(r, o.shape, x.shape, x) for r, x in zip(rows, xs)))
    return _untuple(_finish(tuple(jac), create_graph), (out_tuple, in_tuple))


def _jac_forward(func, inputs, create_graph, strict):
    from tapegrad.creation import zeros_like
    from tapegrad.ops.shape import movedim

    if strict:
        raise RuntimeError("jacobian: strict=True and strategy='forward-mode' are not "
                           "supported together. Please either set strict=False or "
                           "strategy='reverse-mode'.")
    in_tuple, xs = _as_tuple(inputs, "inputs", "jacobian")
    # cols[k][i]: the tangents of output i for each basis direction of input k.
    cols = [None] * len(xs)
    out_tuple, prims = False, ()
    for k, x in enumerate(xs):
        per_out = None
        for j in range(x.numel()):
            with fwAD.dual_level():
                duals = tuple(fwAD.make_dual(xi, _one_hot(xi, j) if i == k else zeros_like(xi))
                              for i, xi in enumerate(xs))
                out_tuple, outs = _as_tuple(func(*duals), "outputs of the user-provided "
                                            "function", "jacobian")
                pairs = [fwAD.unpack_dual(o) for o in outs]
            prims = tuple(p.primal for p in pairs)
            if per_out is None:
                per_out = [[] for _ in outs]
            for i, p in enumerate(pairs):
                per_out[i].append(p.tangent if p.tangent is not None else zeros_like(p.primal))
        cols[k] = per_out
    if not prims:  # every input is empty: run once to learn the outputs
        out_tuple, prims = _as_tuple(func(*xs), "outputs of the user-provided function",
                                     "jacobian")
        cols = [[[] for _ in prims] for _ in xs]
    jac = []
    for i, o in enumerate(prims):
        row = []
        for k, x in enumerate(xs):
            c = cols[k][i]
            if not c:
                row.append(zeros_like(o).reshape(tuple(o.shape) + tuple(x.shape)))
                continue
            # stacked as [input elements, *output shape]; the Jacobian wants output dims first
            s = _stack_rows(c, x.shape, o.shape, o)
            row.append(movedim(s, tuple(range(x.ndim)),
                               tuple(range(o.ndim, o.ndim + x.ndim))) if x.ndim else s)
        jac.append(tuple(row))
    return _untuple(_finish(tuple(jac), create_graph), (out_tuple, in_tuple))


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``: ``J[i][j]`` has shape
    ``outputs[i].shape + inputs[j].shape`` (a plain tensor when both are single tensors).

    ``strategy="reverse-mode"`` costs one backward pass per output element,
    ``"forward-mode"`` one forward-mode pass per input element. ``vectorize`` is accepted for
    compatibility and changes nothing (the result is the same).

    >>> jacobian(lambda x: x.exp(), tapegrad.zeros(2))
    tensor([[1., 0.],
            [0., 1.]])
    """
    if strategy not in ("forward-mode", "reverse-mode"):
        raise ValueError(f"jacobian: expected strategy to be either 'forward-mode' or "
                         f"'reverse-mode', got {strategy!r}. Hint: if your function has more "
                         "outputs than inputs, 'forward-mode' tends to be more performant.")
    if strategy == "forward-mode":
        return _jac_forward(func, inputs, create_graph, strict)
    return _jac_reverse(func, inputs, create_graph, strict)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a scalar ``func``: ``H[i][j]`` has shape
    ``inputs[i].shape + inputs[j].shape`` (one tensor for a single input).

    The inner gradient is reverse mode; ``outer_jacobian_strategy`` picks the outer Jacobian
    (``"forward-mode"`` is forward over reverse).

    >>> hessian(lambda x: (x ** 2).sum(), tapegrad.ones(2))
    tensor([[2., 0.],
            [0., 2.]])
    """
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise ValueError(f"hessian: expected outer_jacobian_strategy to be either "
                         f"'forward-mode' or 'reverse-mode', got {outer_jacobian_strategy!r}")
    in_tuple, xs = _as_tuple(inputs, "inputs", "hessian")

    def scalar_func(*inp):
        out = func(*inp)
        is_tuple, outs = _as_tuple(out, "outputs of the user-provided function", "hessian")
        _strict_outputs(outs, strict, "hessian")
        _single_scalar(outs, is_tuple, "hessian")
        return out.squeeze()

    def grad_func(*inp):
        if outer_jacobian_strategy == "forward-mode":
            # the reverse pass must run on the dual tensors themselves, so they need grad
            inp = tuple(t if t.requires_grad else t.requires_grad_(True) for t in inp)
        jac = jacobian(scalar_func, inp, create_graph=True)
        jac_t = jac if isinstance(jac, tuple) else (jac,)
        if strict:
            for i, g in enumerate(jac_t):
                if not g.requires_grad:
                    raise RuntimeError(f"hessian: while computing the hessian, found that the "
                                       f"jacobian of the user-provided function with respect "
                                       f"to input {i} is independent of the input. This is "
                                       "not allowed in strict mode.")
        return jac

    res = jacobian(grad_func, xs, create_graph=create_graph, strict=strict,
                   vectorize=vectorize, strategy=outer_jacobian_strategy)
    return _untuple(res, (in_tuple, in_tuple))


# ---- Hessian-vector products --------------------------------------------------------------
def _scalar_setup(func, inputs, v, create_graph, strict, fn):
    in_tuple, xs = _as_tuple(inputs, "inputs", fn)
    xs = _prepare(xs, create_graph, need_graph=True)
    if v is None:
        v = _default_v(xs, fn, "input to the user-provided function")
    else:
        _, v = _as_tuple(v, "v", fn)
        v = _prepare(v, create_graph, need_graph=False)
        _check_v(v, xs, in_tuple, fn)
    return in_tuple, xs, v


def _check_jac(jac, strict, fn):
    if strict:
        for i, g in enumerate(jac):
            if g is None or not g.requires_grad:
                raise RuntimeError(f"{fn}: the jacobian of the user-provided function with "
                                   f"respect to input {i} is independent of the input. This is "
                                   "not allowed in strict mode.")


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), v^T H)`` for a scalar ``func``: reverse over reverse.

    >>> vhp(lambda x: (x ** 3).sum(), tapegrad.tensor([1.0, 2.0]), tapegrad.ones(2))
    (tensor(9.), tensor([ 6., 12.]))
    """
    with enable_grad():
        in_tuple, xs, v = _scalar_setup(func, inputs, v, create_graph, strict, "vhp")
        out_tuple, outs = _as_tuple(func(*xs), "outputs of the user-provided function", "vhp")
        _strict_outputs(outs, strict, "vhp")
        _single_scalar(outs, out_tuple, "vhp")
        jac = _grads(outs, xs, create_graph=True)
        _check_jac(jac, strict, "vhp")
    with set_grad_enabled(True if create_graph else is_grad_enabled()):
        res = _grads(jac, xs, v, create_graph=create_graph)
        res = _zeros_for_none(res, xs, strict, create_graph, "vhp", "the jacobian of the "
                              "user-provided function is independent of input {i}.")
    return (_untuple(_finish(outs, create_graph), out_tuple),
            _untuple(_finish(res, create_graph), in_tuple))


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), H v)`` for a scalar ``func``: forward over reverse, i.e. the gradient
    of a dual tensor, whose tangent is ``H v`` (one forward and one backward pass).

    >>> hvp(lambda x: (x ** 3).sum(), tapegrad.tensor([1.0, 2.0]), tapegrad.ones(2))
    (tensor(9.), tensor([ 6., 12.]))
    """
    with enable_grad():
        in_tuple, xs, v = _scalar_setup(func, inputs, v, create_graph, strict, "hvp")
        with fwAD.dual_level():
            duals = tuple(fwAD.make_dual(x, t) for x, t in zip(xs, v))
            out_tuple, outs = _as_tuple(func(*duals), "outputs of the user-provided function",
                                        "hvp")
            _strict_outputs(outs, strict, "hvp")
            _single_scalar(outs, out_tuple, "hvp")
            # the gradients of dual tensors carry tangents: H v (forward over reverse)
            jac = _grads(outs, duals, create_graph=create_graph)
            _check_jac(jac, strict, "hvp")
            res = [None if g is None else fwAD.unpack_dual(g).tangent for g in jac]
            prims = tuple(fwAD.unpack_dual(o).primal for o in outs)
        res = _zeros_for_none(res, xs, strict, create_graph, "hvp", "the hessian of the "
                              "user-provided function is independent of input {i}.")
    return (_untuple(_finish(prims, create_graph), out_tuple),
            _untuple(_finish(res, create_graph), in_tuple))
