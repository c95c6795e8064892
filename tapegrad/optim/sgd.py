r"""Stochastic gradient descent, with PyTorch's exact update.

.. math::
    g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1}) \quad (\text{negated if maximize}) \\
    g_t &\leftarrow g_t + \lambda \theta_{t-1} \quad (\text{weight decay } \lambda) \\
    b_t &\leftarrow \begin{cases} g_t & t = 1 \\
                                 \mu b_{t-1} + (1 - \tau) g_t & t > 1 \end{cases}
          \quad (\text{momentum } \mu, \text{ dampening } \tau) \\
    g_t &\leftarrow g_t + \mu b_t \ \text{if nesterov, else } b_t \\
    \theta_t &\leftarrow \theta_{t-1} - \gamma g_t

Plain text: b <- g on the first step, then b <- mu*b + (1-dampening)*g; w <- w - lr*b
(or w <- w - lr*(g + mu*b) with ``nesterov``).

How this differs from the papers (the same note PyTorch makes): Sutskever et al. and the
Theano/Lasagne tradition keep a velocity that includes the learning rate, v <- mu*v - lr*g,
w <- w + v, with v starting at zero. Here the buffer holds gradients and the learning rate is
applied outside it. With a constant learning rate and zero dampening the two are the same
rule (v = -lr*b, and b starting at the first gradient is v starting at zero). They differ when
the learning rate changes during training (the classical velocity keeps the old learning
rates in it) and, with dampening, on the first step, which is left undamped. The classical
forms are :class:`tapegrad.optim.Momentum` and :class:`tapegrad.optim.Nesterov`.

>>> opt = SGD([w], lr=0.1, momentum=0.9)
>>> loss.backward(); opt.step(); opt.zero_grad()
"""

from __future__ import annotations

from tapegrad.autograd.grad_mode import no_grad
from tapegrad.optim.optimizer import Optimizer, backend_of, bump_version, check_nonneg, zeros_state

__all__ = ["SGD", "sgd"]


def sgd(params, grads, momentum_buffers, *, lr: float, momentum: float = 0.0,
        dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
        maximize: bool = False) -> None:
    """Functional SGD: one in-place kernel call per parameter. ``momentum_buffers[i]`` is a
    state tensor, or ``None`` for a fresh one (created here and stored back in the list).

    >>> bufs = [None]; sgd([w], [w.grad], bufs, lr=0.1, momentum=0.9)
    """
    for i, (p, g) in enumerate(zip(params, grads)):
        be = backend_of(p)
        buf = momentum_buffers[i]
        first = momentum != 0 and buf is None
        if first:
            buf = momentum_buffers[i] = zeros_state(p)
        be.k["sgd_step"](p._data, g._data, None if buf is None else buf._data, float(lr),
                         momentum, dampening, weight_decay, nesterov, maximize, first)
        bump_version(p, "SGD")


class SGD(Optimizer):
    """SGD with optional momentum, dampening, Nesterov momentum and weight decay (see the
    module docstring for the formula).

    >>> opt = SGD(params, lr=0.01, momentum=0.9, nesterov=True)
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        check_nonneg("lr", group["lr"], "learning rate")
        check_nonneg("momentum", group["momentum"])
        check_nonneg("weight_decay", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            params, grads, bufs = [], [], []
            for p in group["params"]:
                if p.grad is not None:
                    params.append(p)
                    grads.append(p.grad)
                    bufs.append(self.state[p].get("momentum_buffer"))
            sgd(params, grads, bufs, lr=group["lr"], momentum=group["momentum"],
                dampening=group["dampening"], weight_decay=group["weight_decay"],
                nesterov=group["nesterov"], maximize=group["maximize"])
            if group["momentum"] != 0:
                for p, buf in zip(params, bufs):
                    self.state[p]["momentum_buffer"] = buf
        return loss
