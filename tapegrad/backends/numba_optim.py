"""Numba optimizer kernels: the update rules of ``ref_optim`` in one fused pass per parameter.

Same names, signatures and math as :mod:`tapegrad.backends.ref_optim` (the reference they are
tested against); the numba backend merges ``KERNELS`` into its table. Each entry is a small
Python wrapper that flattens the arrays and calls an ``@njit(cache=True)`` loop, so a step
reads and writes every element once instead of once per NumPy operation. Arrays the loop must
write that are not C-contiguous (a transposed parameter, say) go to the reference kernel:
flattening them would copy, and the update would be lost.

Importing this module imports numba; ``tapegrad.optim`` never does, and nothing compiles until
the first call. Scalar temporaries are float64, so float32 parameters may differ from the
NumPy reference (which rounds every operation to float32) in the last bits.

>>> p, g = np.ones(3), np.full(3, 0.5)
>>> KERNELS["sgd_step"](p, g, None, 0.1, 0.0, 0.0, 0.0, False, False, False)
>>> p
array([0.95, 0.95, 0.95])
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from tapegrad.backends import ref_optim


def _writable(*arrays) -> bool:
    """True when every array that will be written can be flattened without a copy."""
    for a in arrays:
        if a is not None and not a.flags.c_contiguous:
            return False
    return True


def _flat(a, like):
    """1-D view of ``a``; an empty array of ``like``'s dtype stands in for an unused buffer."""
    if a is None:
        return np.empty(0, dtype=like.dtype)
    return a.reshape(-1)


def _flat_read(g):
    """1-D gradient; a copy is harmless here because the gradient is only read."""
    return np.ascontiguousarray(g).reshape(-1)


@njit(cache=True)
def _sgd(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    for i in range(p.size):
        d = -g[i] if maximize else g[i]
        if weight_decay != 0.0:
            d = d + weight_decay * p[i]
        if momentum != 0.0:
            if first:
                b = d
            else:
                b = buf[i] * momentum + (1.0 - dampening) * d
            buf[i] = b
            if nesterov:
                d = d + momentum * buf[i]
            else:
                d = buf[i]
        p[i] -= lr * d


def sgd_step(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    if not _writable(p, buf):
        return ref_optim.sgd_step(p, g, buf, lr, momentum, dampening, weight_decay, nesterov,
                                  maximize, first)
    _sgd(_flat(p, p), _flat_read(g), _flat(buf, p), float(lr), float(momentum),
         float(dampening), float(weight_decay), bool(nesterov), bool(maximize), bool(first))


@njit(cache=True)
def _momentum(p, g, buf, lr, momentum, dampening, weight_decay, maximize):
    for i in range(p.size):
        d = -g[i] if maximize else g[i]
        if weight_decay != 0.0:
            d = d + weight_decay * p[i]
        if dampening == 0.0:
            buf[i] = buf[i] * momentum - lr * d
            p[i] += buf[i]
        else:
            p[i] -= lr * buf[i]
            buf[i] = buf[i] * momentum + (1.0 - dampening) * d


def momentum_step(p, g, buf, lr, momentum, dampening, weight_decay, maximize):
    if not _writable(p, buf):
        return ref_optim.momentum_step(p, g, buf, lr, momentum, dampening, weight_decay,
                                       maximize)
    _momentum(_flat(p, p), _flat_read(g), _flat(buf, p), float(lr), float(momentum),
              float(dampening), float(weight_decay), bool(maximize))


@njit(cache=True)
def _nesterov(p, g, v, lr, momentum, weight_decay, maximize):
    for i in range(p.size):
        d = -g[i] if maximize else g[i]
        if weight_decay != 0.0:
            d = d + weight_decay * p[i]
        delta = momentum * momentum * v[i] - (1.0 + momentum) * lr * d
        v[i] = v[i] * momentum - lr * d
        p[i] += delta


def nesterov_step(p, g, v, lr, momentum, weight_decay, maximize):
    if not _writable(p, v):
        return ref_optim.nesterov_step(p, g, v, lr, momentum, weight_decay, maximize)
    _nesterov(_flat(p, p), _flat_read(g), _flat(v, p), float(lr), float(momentum),
              float(weight_decay), bool(maximize))


@njit(cache=True)
def _lerp(a, b, w):
    if w < 0.5:
        return a + w * (b - a)
    return b - (b - a) * (1.0 - w)


@njit(cache=True)
def _adam(p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, maximize,
          step):
    step_size = lr / (1.0 - beta1 ** step)
    bc2_sqrt = (1.0 - beta2 ** step) ** 0.5
    for i in range(p.size):
        d = -g[i] if maximize else g[i]
        if weight_decay != 0.0:
            if decoupled:
                p[i] *= 1.0 - lr * weight_decay
            else:
                d = d + weight_decay * p[i]
        m[i] = _lerp(m[i], d, 1.0 - beta1)
        v[i] = v[i] * beta2 + (1.0 - beta2) * (d * d)
        if amsgrad:
            if v[i] > vmax[i]:
                vmax[i] = v[i]
            denom = math.sqrt(vmax[i]) / bc2_sqrt + eps
        else:
            denom = math.sqrt(v[i]) / bc2_sqrt + eps
        p[i] += -step_size * (m[i] / denom)


def adam_step(p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
              maximize, step):
    if not _writable(p, m, v, vmax):
        return ref_optim.adam_step(p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay,
                                   decoupled, amsgrad, maximize, step)
    _adam(_flat(p, p), _flat_read(g), _flat(m, p), _flat(v, p), _flat(vmax, p), float(lr),
          float(beta1), float(beta2), float(eps), float(weight_decay), bool(decoupled),
          bool(amsgrad), bool(maximize), float(step))


@njit(cache=True)
def _rmsprop(p, g, sq, gavg, buf, lr, alpha, eps, weight_decay, momentum, centered, maximize):
    for i in range(p.size):
        d = -g[i] if maximize else g[i]
        if weight_decay != 0.0:
            d = d + weight_decay * p[i]
        sq[i] = sq[i] * alpha + (1.0 - alpha) * (d * d)
        if centered:
            gavg[i] = _lerp(gavg[i], d, 1.0 - alpha)
            avg = math.sqrt(sq[i] - gavg[i] * gavg[i]) + eps
        else:
            avg = math.sqrt(sq[i]) + eps
        if momentum > 0.0:
            buf[i] = buf[i] * momentum + d / avg
            p[i] += -lr * buf[i]
        else:
            p[i] += -lr * (d / avg)


def rmsprop_step(p, g, sq, gavg, buf, lr, alpha, eps, weight_decay, momentum, centered,
                 maximize):
    if not _writable(p, sq, gavg, buf):
        return ref_optim.rmsprop_step(p, g, sq, gavg, buf, lr, alpha, eps, weight_decay,
                                      momentum, centered, maximize)
    _rmsprop(_flat(p, p), _flat_read(g), _flat(sq, p), _flat(gavg, p), _flat(buf, p),
             float(lr), float(alpha), float(eps), float(weight_decay), float(momentum),
             bool(centered), bool(maximize))


@njit(cache=True)
def _adagrad(p, g, acc, lr, lr_decay, eps, weight_decay, maximize, step):
    clr = lr / (1.0 + (step - 1.0) * lr_decay)
    for i in range(p.size):
        d = -g[i] if maximize else g[i]
        if weight_decay != 0.0:
            d = d + weight_decay * p[i]
        acc[i] += d * d
        p[i] += -clr * (d / (math.sqrt(acc[i]) + eps))


def adagrad_step(p, g, acc, lr, lr_decay, eps, weight_decay, maximize, step):
    if not _writable(p, acc):
        return ref_optim.adagrad_step(p, g, acc, lr, lr_decay, eps, weight_decay, maximize,
                                      step)
    _adagrad(_flat(p, p), _flat_read(g), _flat(acc, p), float(lr), float(lr_decay),
             float(eps), float(weight_decay), bool(maximize), float(step))


KERNELS = {
    "sgd_step": sgd_step,
    "momentum_step": momentum_step,
    "nesterov_step": nesterov_step,
    "adam_step": adam_step,
    "rmsprop_step": rmsprop_step,
    "adagrad_step": adagrad_step,
}
