"""numba.cuda versions of the optimizer update rules (``ref_optim`` defines the math).

One thread per element, one pass over memory per parameter, the same operation order as
the reference so float64 results agree to rounding. Unused state buffers (``None`` in the
reference signature) are replaced by a one-element dummy and a flag.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda  # module global on purpose: the simulator swaps it in kernels

from tapegrad.backends.cuda_kernels import TPB, _blocks


@cuda.jit
def k_sgd(p, g, buf, lr, momentum, dampening, wd, nesterov, maximize, first):
    i = cuda.grid(1)
    if i < p.size:
        d = -g[i] if maximize else g[i]
        if wd != 0:
            d = d + wd * p[i]
        if momentum != 0:
            if first:
                b = d
            else:
                b = buf[i] * momentum + (1 - dampening) * d
            buf[i] = b
            d = d + momentum * b if nesterov else b
        p[i] = p[i] - lr * d


@cuda.jit
def k_momentum(p, g, buf, lr, momentum, dampening, wd, maximize):
    i = cuda.grid(1)
    if i < p.size:
        d = -g[i] if maximize else g[i]
        if wd != 0:
            d = d + wd * p[i]
        if dampening == 0:
            b = buf[i] * momentum - lr * d
            buf[i] = b
            p[i] = p[i] + b
        else:
            p[i] = p[i] - lr * buf[i]
            buf[i] = buf[i] * momentum + (1 - dampening) * d


@cuda.jit
def k_nesterov(p, g, v, lr, momentum, wd, maximize):
    i = cuda.grid(1)
    if i < p.size:
        d = -g[i] if maximize else g[i]
        if wd != 0:
            d = d + wd * p[i]
        vo = v[i]
        delta = momentum * momentum * vo - (1 + momentum) * lr * d
        v[i] = vo * momentum - lr * d
        p[i] = p[i] + delta


@cuda.jit
def k_adam(p, g, m, v, vmax, lr, beta1, beta2, eps, wd, decoupled, amsgrad, maximize,
           step_size, bc2_sqrt):
    i = cuda.grid(1)
    if i < p.size:
        d = -g[i] if maximize else g[i]
        if wd != 0:
            if decoupled:
                p[i] = p[i] * (1 - lr * wd)
            else:
                d = d + wd * p[i]
        w = 1 - beta1
        if w < 0.5:
            mi = m[i] + w * (d - m[i])
        else:
            mi = d - (d - m[i]) * (1 - w)
        m[i] = mi
        vi = v[i] * beta2 + (1 - beta2) * (d * d)
        v[i] = vi
        if amsgrad:
            vm = max(vmax[i], vi)
            vmax[i] = vm
            denom = math.sqrt(vm) / bc2_sqrt + eps
        else:
            denom = math.sqrt(vi) / bc2_sqrt + eps
        p[i] = p[i] + -step_size * (mi / denom)


@cuda.jit
def k_rmsprop(p, g, sq, gavg, buf, lr, alpha, eps, wd, momentum, centered, maximize):
    i = cuda.grid(1)
    if i < p.size:
        d = -g[i] if maximize else g[i]
        if wd != 0:
            d = d + wd * p[i]
        s = sq[i] * alpha + (1 - alpha) * (d * d)
        sq[i] = s
        if centered:
            w = 1 - alpha
            if w < 0.5:
                ga = gavg[i] + w * (d - gavg[i])
            else:
                ga = d - (d - gavg[i]) * (1 - w)
            gavg[i] = ga
            avg = math.sqrt(s - ga * ga)
        else:
            avg = math.sqrt(s)
        avg = avg + eps
        if momentum > 0:
            b = buf[i] * momentum + d / avg
            buf[i] = b
            p[i] = p[i] + -lr * b
        else:
            p[i] = p[i] + -lr * (d / avg)


@cuda.jit
def k_adagrad(p, g, acc, clr, eps, wd, maximize):
    i = cuda.grid(1)
    if i < p.size:
        d = -g[i] if maximize else g[i]
        if wd != 0:
            d = d + wd * p[i]
        a = acc[i] + d * d
        acc[i] = a
        p[i] = p[i] + -clr * (d / (math.sqrt(a) + eps))


def _flat(a, like):
    if a is None:
        return _dummy(like)
    return a.reshape(-1)


def _dummy(like):
    from tapegrad import cuda as tcuda

    return tcuda.xp().zeros(1, dtype=like.dtype)


def _plain(*arrays):
    p = arrays[0]
    return all(a is None or (a.flags.c_contiguous and a.dtype == p.dtype and a.size == p.size)
               for a in arrays) and p.dtype in (np.float32, np.float64) and p.size > 0


def kernels(ref: dict) -> dict:
    """Host wrappers with ``ref_optim``'s signatures (reference path for odd inputs)."""

    def sgd_step(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
        if not _plain(p, g, buf):
            return ref["sgd_step"](p, g, buf, lr, momentum, dampening, weight_decay, nesterov,
                                   maximize, first)
        k_sgd[_blocks(p.size), TPB](p.reshape(-1), g.reshape(-1), _flat(buf, p), lr,
                                    momentum, dampening, weight_decay, nesterov, maximize,
                                    first)

    def momentum_step(p, g, buf, lr, momentum, dampening, weight_decay, maximize):
        if not _plain(p, g, buf):
            return ref["momentum_step"](p, g, buf, lr, momentum, dampening, weight_decay,
                                        maximize)
        k_momentum[_blocks(p.size), TPB](p.reshape(-1), g.reshape(-1), buf.reshape(-1), lr,
                                         momentum, dampening, weight_decay, maximize)

    def nesterov_step(p, g, v, lr, momentum, weight_decay, maximize):
        if not _plain(p, g, v):
            return ref["nesterov_step"](p, g, v, lr, momentum, weight_decay, maximize)
        k_nesterov[_blocks(p.size), TPB](p.reshape(-1), g.reshape(-1), v.reshape(-1), lr,
                                         momentum, weight_decay, maximize)

    def adam_step(p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                  maximize, step):
        if not _plain(p, g, m, v, vmax):
            return ref["adam_step"](p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay,
                                    decoupled, amsgrad, maximize, step)
        step_size = lr / (1 - beta1 ** step)
        bc2_sqrt = (1 - beta2 ** step) ** 0.5
        k_adam[_blocks(p.size), TPB](p.reshape(-1), g.reshape(-1), m.reshape(-1),
                                     v.reshape(-1), _flat(vmax, p), lr, beta1, beta2, eps,
                                     weight_decay, decoupled, amsgrad, maximize, step_size,
                                     bc2_sqrt)

    def rmsprop_step(p, g, sq, gavg, buf, lr, alpha, eps, weight_decay, momentum, centered,
                     maximize):
        if not _plain(p, g, sq, gavg, buf):
            return ref["rmsprop_step"](p, g, sq, gavg, buf, lr, alpha, eps, weight_decay,
                                       momentum, centered, maximize)
        k_rmsprop[_blocks(p.size), TPB](p.reshape(-1), g.reshape(-1), sq.reshape(-1),
                                        _flat(gavg, p), _flat(buf, p), lr, alpha, eps,
                                        weight_decay, momentum, centered, maximize)

    def adagrad_step(p, g, acc, lr, lr_decay, eps, weight_decay, maximize, step):
        if not _plain(p, g, acc):
            return ref["adagrad_step"](p, g, acc, lr, lr_decay, eps, weight_decay, maximize,
                                       step)
        clr = lr / (1 + (step - 1) * lr_decay)
        k_adagrad[_blocks(p.size), TPB](p.reshape(-1), g.reshape(-1), acc.reshape(-1), clr,
                                        eps, weight_decay, maximize)

    table = {"sgd_step": sgd_step, "momentum_step": momentum_step,
             "nesterov_step": nesterov_step, "adam_step": adam_step,
             "rmsprop_step": rmsprop_step, "adagrad_step": adagrad_step}
    for name, fn in table.items():
        fn.cuda_kernel = True
        fn.__qualname__ = name
    return table
