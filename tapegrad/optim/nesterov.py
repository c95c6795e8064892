r"""Nesterov's accelerated gradient in the reparameterized (lookahead) form.

Classical Nesterov momentum evaluates the gradient at the lookahead point:

.. math::
    v_t = \mu v_{t-1} - \eta\, g(w_{t-1} + \mu v_{t-1}), \qquad w_t = w_{t-1} + v_t

The lookahead must move ALL parameters at once (the gradient of every tensor is taken at the
whole shifted model), so substituting ``w + mu*v`` inside each parameter's own gradient is
wrong. Storing the lookahead point itself, :math:`w' = w + \mu v`, removes the substitution
(Sutskever 2013; Lasagne's ``nesterov_momentum``; SEEDS.md 000):

.. math::
    v_t = \mu v_{t-1} - \eta\, g(w'_{t-1}), \qquad
    w'_t = w'_{t-1} + \mu^2 v_{t-1} - (1 + \mu)\, \eta\, g(w'_{t-1})

Plain text: v_new = mu*v - lr*g(w'); w'_new = w' + mu*mu*v_old - (1+mu)*lr*g(w'). The source
article prints ``( + mu)``; it is ``(1 + mu)``. The second line equals
``w' + mu*v_new - lr*g(w')``, with the OLD velocity in the mu*mu term. State: ``"velocity"``
(v, zero at the start, so the stored parameters start as w' = w).

Honest notes. The parameters this optimizer holds are the lookahead point w', not the
classical iterate w; w = w' - mu*v if you need it (the two coincide when v = 0, and w' is the
point the model is evaluated at, which is what you want at test time too). Chainer's
``NesterovAG`` multiplies the NEW velocity by mu*mu, a different rule (chainer issue #4274);
this is not that. ``weight_decay`` adds ``lambda*w'`` to the gradient, which is classical
Nesterov on the loss plus ``lambda/2*|w|^2`` (the decay is also evaluated at the lookahead).
It is also not PyTorch's ``SGD(nesterov=True)``, whose buffer holds gradients and starts at the
first one (see :mod:`tapegrad.optim.sgd`).

>>> opt = Nesterov(params, lr=0.01, momentum=0.9)
>>> loss.backward(); opt.step(); opt.zero_grad()
"""

from __future__ import annotations

from tapegrad.autograd.grad_mode import no_grad
from tapegrad.optim.optimizer import Optimizer, backend_of, bump_version, check_nonneg, zeros_state

__all__ = ["Nesterov", "nesterov"]


def nesterov(params, grads, velocities, *, lr: float, momentum: float,
             weight_decay: float = 0.0, maximize: bool = False) -> None:
    """Functional reparameterized Nesterov: one in-place kernel call per parameter; ``params``
    are lookahead points and ``velocities`` their velocities.

    >>> v = [torch.zeros_like(w)]; nesterov([w], [w.grad], v, lr=0.01, momentum=0.9)
    """
    for p, g, v in zip(params, grads, velocities):
        backend_of(p).k["nesterov_step"](p._data, g._data, v._data, float(lr), momentum,
                                         weight_decay, maximize)
        bump_version(p, "Nesterov")


class Nesterov(Optimizer):
    """Nesterov momentum on the stored lookahead point (see the module docstring):
    ``v <- mu*v - lr*g(w'); w' <- w' + mu*mu*v_old - (1+mu)*lr*g(w')``.

    >>> opt = Nesterov(model.parameters(), lr=0.01, momentum=0.9)
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 0.0, *, maximize: bool = False):
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, maximize=maximize)
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        check_nonneg("lr", group["lr"], "learning rate")
        check_nonneg("momentum", group["momentum"])
        check_nonneg("weight_decay", group["weight_decay"])

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            params, grads, vels = [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = zeros_state(p)
                params.append(p)
                grads.append(p.grad)
                vels.append(state["velocity"])
            nesterov(params, grads, vels, lr=group["lr"], momentum=group["momentum"],
                     weight_decay=group["weight_decay"], maximize=group["maximize"])
        return loss
