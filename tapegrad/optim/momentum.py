r"""Classical momentum (Polyak's heavy ball), and the Theano tutorial's dampened variant.

Heavy ball, ``dampening=0`` (the default). The velocity includes the learning rate and starts
at zero:

.. math::
    v_t = \mu v_{t-1} - \eta\, g(w_{t-1}), \qquad w_t = w_{t-1} + v_t, \qquad v_0 = 0

Plain text: v <- mu*v - lr*g(w); w <- w + v. State: ``"velocity"`` (v).

Dampened, ``0 < dampening <= 1``: the leaky integrator of the Theano MLP tutorial (SEEDS.md,
004). Its update list is ``[(w, w - lr*u), (u, mu*u + (1 - mu)*grad(cost, w))]``, and Theano
applies all updates of a function call simultaneously, so the weight moves by the average
``u`` from BEFORE this step's gradient is mixed in:

.. math::
    w_t = w_{t-1} - \eta\, u_{t-1}, \qquad
    u_t = \mu u_{t-1} + (1 - \tau)\, g(w_{t-1}), \qquad u_0 = 0

Plain text: w <- w - lr*u_old; u <- mu*u + (1-dampening)*g(w). State: ``"momentum_buffer"``
(u, an average of gradients without the learning rate). The tutorial's exact rule is
``dampening=momentum``, e.g. ``Momentum(params, lr=0.01, momentum=0.9, dampening=0.9)``.

Honest notes. The dampened form is not heavy ball with a scaled gradient: each gradient
reaches the weights one step late (the first step does not move them at all, since u starts at
zero), so ``dampening`` switches the timing as well as scaling the gradient, and small
dampening does not approach heavy ball; ``dampening=0`` is the switch back. ``weight_decay``
adds ``lambda*w`` to the gradient in both forms (L2 regularisation, not decoupled decay).
Neither form is PyTorch's SGD, which keeps the learning rate outside its buffer (see
:mod:`tapegrad.optim.sgd`).

>>> opt = Momentum(params, lr=0.01, momentum=0.9)
>>> loss.backward(); opt.step(); opt.zero_grad()
"""

from __future__ import annotations

from tapegrad.autograd.grad_mode import no_grad
from tapegrad.optim.optimizer import Optimizer, backend_of, bump_version, check_nonneg, zeros_state

__all__ = ["Momentum", "momentum"]


def momentum(params, grads, buffers, *, lr: float, momentum: float, dampening: float = 0.0,
             weight_decay: float = 0.0, maximize: bool = False) -> None:
    """Functional heavy-ball / dampened momentum: one in-place kernel call per parameter.
    ``buffers[i]`` is the velocity (``dampening == 0``) or the gradient average u.

    >>> v = [torch.zeros_like(w)]; momentum([w], [w.grad], v, lr=0.01, momentum=0.9)
    """
    for p, g, buf in zip(params, grads, buffers):
        backend_of(p).k["momentum_step"](p._data, g._data, buf._data, float(lr), momentum,
                                         dampening, weight_decay, maximize)
        bump_version(p, "Momentum")


class Momentum(Optimizer):
    """Heavy-ball momentum (``v <- mu*v - lr*g; w <- w + v``), or with ``dampening`` the Theano
    tutorial's ``w <- w - lr*u_old; u <- mu*u + (1-dampening)*g`` (see the module docstring).

    >>> opt = Momentum(model.parameters(), lr=0.01, momentum=0.9, dampening=0.9)  # Theano's
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.9, dampening: float = 0.0,
                 weight_decay: float = 0.0, *, maximize: bool = False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, maximize=maximize)
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        check_nonneg("lr", group["lr"], "learning rate")
        check_nonneg("momentum", group["momentum"])
        check_nonneg("weight_decay", group["weight_decay"])
        if not 0.0 <= group["dampening"] <= 1.0:
            raise ValueError(f"Invalid dampening value: {group['dampening']} (must be in "
                             "[0, 1]; 0 is heavy ball)")

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            key = "velocity" if group["dampening"] == 0 else "momentum_buffer"
            params, grads, bufs = [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if key not in state:
                    state[key] = zeros_state(p)
                params.append(p)
                grads.append(p.grad)
                bufs.append(state[key])
            momentum(params, grads, bufs, lr=group["lr"], momentum=group["momentum"],
                     dampening=group["dampening"], weight_decay=group["weight_decay"],
                     maximize=group["maximize"])
        return loss
