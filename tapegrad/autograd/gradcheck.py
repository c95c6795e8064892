"""Finite-difference checks of gradients: ``gradcheck`` and ``gradgradcheck``.

The analytical Jacobian comes from one reverse pass per output element; the numerical one
from central differences ``(f(x + eps) - f(x - eps)) / 2 eps`` in float64.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError", "numerical_jacobian",
           "analytical_jacobian"]


class GradcheckError(RuntimeError):
    """Raised when analytical and numerical gradients disagree."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _outputs(fn, inputs):
    from tapegrad.tensor import Tensor

    return tuple(o for o in _as_tuple(fn(*inputs)) if isinstance(o, Tensor))


def numerical_jacobian(fn, inputs, eps=1e-6):
    """Per (input, output) pair, the matrix d out.flatten() / d in.flatten()."""
    from tapegrad.autograd.grad_mode import no_grad
    from tapegrad.tensor import Tensor

    with no_grad():
        outs = _outputs(fn, inputs)
        jac = []
        for x in inputs:
            if not (isinstance(x, Tensor) and x.requires_grad):
                jac.append(None)
                continue
            flat = x._data.reshape(-1)  # a view: perturb in place, then restore
            if not np.shares_memory(flat, x._data):
                raise GradcheckError("gradcheck: inputs must be contiguous tensors")
            cols = [np.zeros((x.numel(), o.numel())) for o in outs]
            for i in range(flat.size):
                orig = flat[i].item()
                flat[i] = orig + eps
                plus = [o._host().astype(np.float64).reshape(-1).copy()
                        for o in _outputs(fn, inputs)]
                flat[i] = orig - eps
                minus = [o._host().astype(np.float64).reshape(-1).copy()
                         for o in _outputs(fn, inputs)]
                flat[i] = orig
                for c, p, m in zip(cols, plus, minus):
                    c[i] = (p - m) / (2 * eps)
            jac.append(cols)
    return jac, outs


def analytical_jacobian(fn, inputs):
    from tapegrad.autograd.engine import grad
    from tapegrad.creation import zeros_like
    from tapegrad.tensor import Tensor

    outs = _outputs(fn, inputs)
    diff = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    jac = {id(x): [np.zeros((x.numel(), o.numel())) for o in outs] for x in diff}
    for k, o in enumerate(outs):
        if not o.requires_grad:
            continue
        for j in range(o.numel()):
            go = zeros_like(o)
            go._data.reshape(-1)[j] = 1.0
            gs = grad(o, diff, go, retain_graph=True, allow_unused=True)
            for x, g in zip(diff, gs):
                if g is not None:
                    jac[id(x)][k][:, j] = g._host().astype(np.float64).reshape(-1)
    return [jac.get(id(x)) if isinstance(x, Tensor) and x.requires_grad else None
            for x in inputs], outs


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True,
              check_undefined_grad=True, **_ignored) -> bool:
    """Compare reverse-mode gradients of ``func`` at ``inputs`` with central differences.

    >>> x = tapegrad.randn(3, dtype=tapegrad.float64, requires_grad=True)
    >>> gradcheck(tapegrad.sin, (x,))
    True
    """
    from tapegrad.tensor import Tensor

    inputs = _as_tuple(inputs)
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.requires_grad and x.dtype.name != "float64":
            import warnings

            warnings.warn(f"gradcheck: input {i} is {x.dtype}, not float64; the check may "
                          "fail for precision reasons", stacklevel=2)
    num, _ = numerical_jacobian(func, inputs, eps)
    ana, _ = analytical_jacobian(func, inputs)
    for i, (n, a) in enumerate(zip(num, ana)):
        if n is None:
            continue
        for k, (nk, ak) in enumerate(zip(n, a)):
            if not np.allclose(ak, nk, rtol=rtol, atol=atol, equal_nan=False):
                if not raise_exception:
                    return False
                raise GradcheckError(
                    f"gradcheck: Jacobian mismatch for output {k} with respect to input {i}"
                    f"\nnumerical:\n{nk}\nanalytical:\n{ak}\nmax abs diff: "
                    f"{np.max(np.abs(nk - ak)) if nk.size else 0}")
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  gen_non_contig_grad_outputs=False, raise_exception=True, **_ignored) -> bool:
    """Check second derivatives: gradcheck of ``(inputs, v) -> vjp(func, inputs, v)``."""
    from tapegrad.autograd.engine import grad
    from tapegrad.creation import randn
    from tapegrad.tensor import Tensor

    inputs = _as_tuple(inputs)
    outs = _outputs(func, inputs)
    if grad_outputs is None:
        rng_state = np.random.default_rng(0)
        grad_outputs = tuple(
            Tensor._make(rng_state.standard_normal(o.shape).astype(o.dtype.np)).requires_grad_()
            for o in outs)
        del randn
    grad_outputs = _as_tuple(grad_outputs)
    n_in = len(inputs)
    diff_pos = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]

    def first_grads(*args):
        # The numerical Jacobian calls this under no_grad; the first derivatives must still be
        # recorded, or there is nothing to differentiate and the check passes vacuously.
        from tapegrad.autograd.grad_mode import enable_grad

        xs, vs = args[:n_in], args[n_in:]
        with enable_grad():
            os_ = [o for o in _outputs(func, xs)]
            pairs = [(o, v) for o, v in zip(os_, vs) if o.requires_grad]
            gs = grad([o for o, _ in pairs], [xs[i] for i in diff_pos], [v for _, v in pairs],
                      create_graph=True, materialize_grads=True)
        return tuple(gs)

    return gradcheck(first_grads, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
