r"""Adagrad, with PyTorch's exact update.

.. math::
    g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1}) + \lambda\theta_{t-1}
        \quad (\text{gradient negated first if maximize}) \\
    \tilde\gamma_t &\leftarrow \gamma / (1 + (t - 1)\,\eta) \quad (\text{lr\_decay } \eta) \\
    s_t &\leftarrow s_{t-1} + g_t^2, \qquad s_0 = \text{initial\_accumulator\_value} \\
    \theta_t &\leftarrow \theta_{t-1} - \tilde\gamma_t\, g_t / (\sqrt{s_t} + \epsilon)

Plain text: s <- s + g*g; w <- w - lr/(1 + (t-1)*lr_decay) * g/(sqrt(s) + eps). State:
``"step"`` and ``"sum"`` (s), created for every parameter when the optimizer is built, as in
PyTorch.

Honest notes. Duchi et al. use a fixed step size; ``lr_decay`` (a 1/t-style decay of the
step) is PyTorch's addition. The sum starts at 0 by default, as in PyTorch (TensorFlow's
Adagrad starts it at 0.1), and eps sits outside the square root.

>>> opt = Adagrad(params, lr=1e-2)
>>> loss.backward(); opt.step(); opt.zero_grad()
"""

from __future__ import annotations

from tapegrad.autograd.grad_mode import no_grad
from tapegrad.optim.optimizer import (Optimizer, backend_of, bump_step, bump_version,
                                      check_nonneg, step_counter, zeros_state)

__all__ = ["Adagrad", "adagrad"]


def adagrad(params, grads, states, *, lr: float, lr_decay: float = 0.0, eps: float = 1e-10,
            weight_decay: float = 0.0, maximize: bool = False) -> None:
    """Functional Adagrad: one in-place kernel call per parameter; ``states[i]`` holds the
    parameter's ``step`` and ``sum``.

    >>> adagrad([w], [w.grad], [opt.state[w]], lr=1e-2)
    """
    for p, g, st in zip(params, grads, states):
        step = bump_step(st["step"])
        backend_of(p).k["adagrad_step"](p._data, g._data, st["sum"]._data, float(lr), lr_decay,
                                        eps, weight_decay, maximize, step)
        bump_version(p, "Adagrad")


class Adagrad(Optimizer):
    """Adagrad (Duchi, Hazan & Singer), PyTorch's variant with ``lr_decay``.

    >>> opt = Adagrad(model.parameters(), lr=0.1, lr_decay=1e-3)
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *,
                 maximize: bool = False):
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize)
        self._check_group(defaults)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _check_group(self, group: dict) -> None:
        check_nonneg("lr", group["lr"], "learning rate")
        check_nonneg("lr_decay", group["lr_decay"])
        check_nonneg("weight_decay", group["weight_decay"])
        check_nonneg("initial_accumulator_value", group["initial_accumulator_value"],
                     "initial_accumulator_value value")
        check_nonneg("eps", group["eps"], "epsilon value")

    def _init_state(self, p, group) -> dict:
        state = self.state[p]
        if len(state) == 0:
            state["step"] = step_counter()
            state["sum"] = zeros_state(p, float(group["initial_accumulator_value"]))
        return state

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            params, grads, states = [], [], []
            for p in group["params"]:
                if p.grad is not None:
                    params.append(p)
                    grads.append(p.grad)
                    states.append(self._init_state(p, group))  # groups added later
            adagrad(params, grads, states, lr=group["lr"], lr_decay=group["lr_decay"],
                    eps=group["eps"], weight_decay=group["weight_decay"],
                    maximize=group["maximize"])
        return loss
