"""Optimizers: one update rule per module, the formula in each module's docstring.

``SGD``, ``Adam``, ``AdamW``, ``RMSprop`` and ``Adagrad`` reproduce PyTorch's updates;
``Momentum`` (classical heavy ball, or the Theano tutorial's dampened form) and ``Nesterov``
(the reparameterized lookahead form) are the classical rules. Each update runs as one kernel
call per parameter (``backend.k["<rule>_step"]``), fused into one pass on the numba backend.

>>> import tapegrad
>>> w = tapegrad.zeros(2, requires_grad=True)
>>> opt = tapegrad.optim.Nesterov([w], lr=0.1, momentum=0.9)
>>> (w - 1).pow(2).sum().backward(); opt.step(); opt.zero_grad()
"""

from tapegrad.optim import lr_scheduler
from tapegrad.optim.adagrad import Adagrad
from tapegrad.optim.adam import Adam, AdamW
from tapegrad.optim.momentum import Momentum
from tapegrad.optim.nesterov import Nesterov
from tapegrad.optim.optimizer import Optimizer
from tapegrad.optim.rmsprop import RMSprop
from tapegrad.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Momentum", "Nesterov", "Adam", "AdamW", "RMSprop", "Adagrad",
           "lr_scheduler"]
