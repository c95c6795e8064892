r"""RMSprop, with PyTorch's exact update.

.. math::
    g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1}) + \lambda\theta_{t-1}
        \quad (\text{gradient negated first if maximize}) \\
    s_t &\leftarrow \alpha s_{t-1} + (1 - \alpha) g_t^2 \\
    \bar g_t &\leftarrow \alpha \bar g_{t-1} + (1 - \alpha) g_t
        \qquad d_t \leftarrow \sqrt{s_t - \bar g_t^2} + \epsilon \quad (\text{centered}) \\
    d_t &\leftarrow \sqrt{s_t} + \epsilon \quad (\text{otherwise}) \\
    b_t &\leftarrow \mu b_{t-1} + g_t / d_t, \quad \theta_t \leftarrow \theta_{t-1} - \gamma b_t
        \quad (\mu > 0) \\
    \theta_t &\leftarrow \theta_{t-1} - \gamma\, g_t / d_t \quad (\mu = 0)

Plain text: s <- alpha*s + (1-alpha)*g*g; w <- w - lr*g/(sqrt(s) + eps). State: ``"step"``,
``"square_avg"`` (s), ``"grad_avg"`` when centered, ``"momentum_buffer"`` when momentum > 0.

Honest notes. Hinton's lecture (Coursera 6e) has no eps; PyTorch (and this) adds it outside
the square root, TensorFlow 1's ``RMSPropOptimizer`` inside, which differs while s is small.
Centered RMSprop (Graves 2013) divides by an estimate of the standard deviation instead of
the RMS. With momentum the buffer accumulates the normalised gradient as in Graves, but the
learning rate is applied outside it, so the two differ when the learning rate changes.

>>> opt = RMSprop(params, lr=1e-2, alpha=0.99)
>>> loss.backward(); opt.step(); opt.zero_grad()
"""

from __future__ import annotations

from tapegrad.autograd.grad_mode import no_grad
from tapegrad.optim.optimizer import (Optimizer, backend_of, bump_step, bump_version,
                                      check_nonneg, step_counter, zeros_state)

__all__ = ["RMSprop", "rmsprop"]


def rmsprop(params, grads, states, *, lr: float, alpha: float, eps: float,
            weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
            maximize: bool = False) -> None:
    """Functional RMSprop: one in-place kernel call per parameter; ``states[i]`` is the
    parameter's state dict.

    >>> rmsprop([w], [w.grad], [opt.state[w]], lr=1e-2, alpha=0.99, eps=1e-8)
    """
    for p, g, st in zip(params, grads, states):
        bump_step(st["step"])
        gavg = st["grad_avg"]._data if centered else None
        buf = st["momentum_buffer"]._data if momentum > 0 else None
        backend_of(p).k["rmsprop_step"](p._data, g._data, st["square_avg"]._data, gavg, buf,
                                        float(lr), alpha, eps, weight_decay, momentum,
                                        centered, maximize)
        bump_version(p, "RMSprop")


class RMSprop(Optimizer):
    """RMSprop (Hinton), optionally centered (Graves) and with momentum.

    >>> opt = RMSprop(model.parameters(), lr=1e-2, momentum=0.9, centered=True)
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 maximize: bool = False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        check_nonneg("lr", group["lr"], "learning rate")
        check_nonneg("eps", group["eps"], "epsilon value")
        check_nonneg("momentum", group["momentum"])
        check_nonneg("weight_decay", group["weight_decay"])
        check_nonneg("alpha", group["alpha"])

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
                    state["square_avg"] = zeros_state(p)
                if group["momentum"] > 0 and "momentum_buffer" not in state:
                    state["momentum_buffer"] = zeros_state(p)
                if group["centered"] and "grad_avg" not in state:
                    state["grad_avg"] = zeros_state(p)
                params.append(p)
                grads.append(p.grad)
                states.append(state)
            rmsprop(params, grads, states, lr=group["lr"], alpha=group["alpha"],
                    eps=group["eps"], weight_decay=group["weight_decay"],
                    momentum=group["momentum"], centered=group["centered"],
                    maximize=group["maximize"])
        return loss
