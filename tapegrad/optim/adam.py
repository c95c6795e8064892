r"""Adam and AdamW, with PyTorch's exact update.

.. math::
    g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1}) \quad (\text{negated if maximize}) \\
    &\text{Adam: } g_t \leftarrow g_t + \lambda\theta_{t-1}
     \qquad \text{AdamW: } \theta_{t-1} \leftarrow \theta_{t-1}(1 - \gamma\lambda) \\
    m_t &\leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
    v_t &\leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
    \hat v_t &\leftarrow \max(\hat v_{t-1}, v_t) \ \text{if amsgrad, else } v_t \\
    \theta_t &\leftarrow \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t}\,
        \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

Plain text: m <- b1*m + (1-b1)*g; v <- b2*v + (1-b2)*g*g;
w <- w - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). State: ``"step"`` (a 0-d float32
count), ``"exp_avg"`` (m), ``"exp_avg_sq"`` (v), and ``"max_exp_avg_sq"`` with ``amsgrad``.

Honest notes. Kingma & Ba write the update as m_hat / (sqrt(v_hat) + eps) with both moments
bias-corrected; PyTorch (and this) puts eps outside the corrected sqrt(v) as above, which is
the same formula. AMSGrad here keeps the maximum of the UNcorrected v and corrects it, as
PyTorch does; Reddi et al. use no bias correction at all. AdamW scales the weights by
(1 - lr*lambda), so the decay follows the learning rate schedule, whereas Loshchilov & Hutter
multiply lambda by a separate schedule multiplier.

>>> opt = AdamW(params, lr=1e-3, weight_decay=1e-2)
>>> loss.backward(); opt.step(); opt.zero_grad()
"""

from __future__ import annotations

from tapegrad.autograd.grad_mode import no_grad
from tapegrad.optim.optimizer import (Optimizer, backend_of, bump_step, bump_version,
                                      check_nonneg, step_counter, zeros_state)

__all__ = ["Adam", "AdamW", "adam"]


def adam(params, grads, states, *, lr: float, beta1: float, beta2: float, eps: float,
         weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False,
         decoupled_weight_decay: bool = False) -> None:
    """Functional Adam/AdamW: one in-place kernel call per parameter. ``states[i]`` is the
    parameter's state dict (``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``).

    >>> adam([w], [w.grad], [opt.state[w]], lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
    """
    for p, g, st in zip(params, grads, states):
        step = bump_step(st["step"])
        vmax = st["max_exp_avg_sq"]._data if amsgrad else None
        backend_of(p).k["adam_step"](p._data, g._data, st["exp_avg"]._data,
                                     st["exp_avg_sq"]._data, vmax, float(lr), beta1, beta2, eps,
                                     weight_decay, decoupled_weight_decay, amsgrad, maximize,
                                     step)
        bump_version(p, "Adam")


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's variant; ``decoupled_weight_decay=True`` is AdamW.

    >>> opt = Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), amsgrad=True)
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *,
                 maximize: bool = False, decoupled_weight_decay: bool = False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        check_nonneg("lr", group["lr"], "learning rate")
        check_nonneg("eps", group["eps"], "epsilon value")
        betas = group["betas"]
        if len(betas) != 2:
            raise ValueError(f"Invalid betas: expected two values, got {betas}")
        for i in (0, 1):
            if not 0.0 <= betas[i] < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {betas[i]}")
        check_nonneg("weight_decay", group["weight_decay"])

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            params, grads, states = [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = step_counter()
                    state["exp_avg"] = zeros_state(p)
                    state["exp_avg_sq"] = zeros_state(p)
                if group["amsgrad"] and "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = zeros_state(p)
                params.append(p)
                grads.append(p.grad)
                states.append(state)
            beta1, beta2 = group["betas"]
            adam(params, grads, states, lr=group["lr"], beta1=beta1, beta2=beta2,
                 eps=group["eps"], weight_decay=group["weight_decay"], amsgrad=group["amsgrad"],
                 maximize=group["maximize"],
                 decoupled_weight_decay=group["decoupled_weight_decay"])
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): the weights shrink by
    ``(1 - lr*weight_decay)`` each step instead of the decay entering the gradient.

    >>> opt = AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True)
