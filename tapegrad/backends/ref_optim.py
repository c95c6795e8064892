"""Reference (plain NumPy) optimizer update kernels.

One function per update rule. Each takes the raw arrays of ONE parameter (the parameter, its
gradient and its state buffers) plus plain Python scalars, and updates the parameter and the
buffers in place. The gradient is only read, never written: the engine may hand several leaves
the same gradient array. A buffer a rule does not use in its current mode is passed as ``None``.

These define the answer: ``numba_optim`` must reproduce them in one fused pass, and the
optimizer classes in ``tapegrad.optim`` call them through ``backend.k[name]``. The arithmetic
follows PyTorch's single-tensor implementations operation by operation, so float64 results
agree with PyTorch to rounding.

>>> p, g = np.ones(3), np.full(3, 0.5)
>>> sgd_step(p, g, None, 0.1, 0.0, 0.0, 0.0, False, False, False)
>>> p
array([0.95, 0.95, 0.95])
"""

from __future__ import annotations

import numpy as np


def _direction(p, g, weight_decay, maximize):
    """The gradient the rule descends: sign-flipped for ``maximize``, plus L2 decay."""
    d = -g if maximize else g
    if weight_decay != 0:
        d = d + weight_decay * p
    return d


def lerp_(a, b, w):
    """``a <- a + w * (b - a)`` in place, with PyTorch's two-sided formula (exact at w=1)."""
    if w < 0.5:
        a += w * (b - a)
    else:
        a[...] = b - (b - a) * (1 - w)


def sgd_step(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    """PyTorch SGD. ``first``: ``buf`` is fresh and starts at this step's gradient."""
    d = _direction(p, g, weight_decay, maximize)
    if momentum != 0:
        if first:
            buf[...] = d
        else:
            buf *= momentum
            buf += (1 - dampening) * d
        d = d + momentum * buf if nesterov else buf
    p -= lr * d


def momentum_step(p, g, buf, lr, momentum, dampening, weight_decay, maximize):
    """Heavy ball (``dampening == 0``, ``buf`` = velocity v) or the Theano tutorial's leaky
    integrator (``dampening > 0``, ``buf`` = gradient average u, applied before it is
    updated)."""
    d = _direction(p, g, weight_decay, maximize)
    if dampening == 0:
        buf *= momentum
        buf -= lr * d
        p += buf
    else:
        p -= lr * buf
        buf *= momentum
        buf += (1 - dampening) * d


def nesterov_step(p, g, v, lr, momentum, weight_decay, maximize):
    """Reparameterized Nesterov on the stored lookahead point ``p`` = w + mu*v."""
    d = _direction(p, g, weight_decay, maximize)
    delta = momentum * momentum * v - (1 + momentum) * lr * d  # v is still the OLD velocity
    v *= momentum
    v -= lr * d
    p += delta


def adam_step(p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
              maximize, step):
    """PyTorch Adam (``decoupled=False``) / AdamW (``decoupled=True``); ``step`` counts from 1."""
    d = -g if maximize else g
    if weight_decay != 0:
        if decoupled:
            p *= 1 - lr * weight_decay
        else:
            d = d + weight_decay * p
    lerp_(m, d, 1 - beta1)
    v *= beta2
    v += (1 - beta2) * (d * d)
    step_size = lr / (1 - beta1 ** step)
    bc2_sqrt = (1 - beta2 ** step) ** 0.5
    if amsgrad:
        np.maximum(vmax, v, out=vmax)
        denom = np.sqrt(vmax) / bc2_sqrt + eps
    else:
        denom = np.sqrt(v) / bc2_sqrt + eps
    p += -step_size * (m / denom)


def rmsprop_step(p, g, sq, gavg, buf, lr, alpha, eps, weight_decay, momentum, centered,
                 maximize):
    """PyTorch RMSprop. ``gavg`` is used when ``centered``, ``buf`` when ``momentum > 0``."""
    d = _direction(p, g, weight_decay, maximize)
    sq *= alpha
    sq += (1 - alpha) * (d * d)
    if centered:
        lerp_(gavg, d, 1 - alpha)
        avg = np.sqrt(sq - gavg * gavg)
    else:
        avg = np.sqrt(sq)
    avg += eps
    if momentum > 0:
        buf *= momentum
        buf += d / avg
        p += -lr * buf
    else:
        p += -lr * (d / avg)


def adagrad_step(p, g, acc, lr, lr_decay, eps, weight_decay, maximize, step):
    """PyTorch Adagrad; ``acc`` is the running sum of squared gradients, ``step`` counts from 1."""
    d = _direction(p, g, weight_decay, maximize)
    clr = lr / (1 + (step - 1) * lr_decay)
    acc += d * d
    p += -clr * (d / (np.sqrt(acc) + eps))


KERNELS = {
    "sgd_step": sgd_step,
    "momentum_step": momentum_step,
    "nesterov_step": nesterov_step,
    "adam_step": adam_step,
    "rmsprop_step": rmsprop_step,
    "adagrad_step": adagrad_step,
}
