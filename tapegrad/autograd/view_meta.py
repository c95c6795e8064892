"""What a view remembers about its base, so that writing through it can be differentiated.

Every output of a view op (``is_view``: basic indexing, narrow, reshape/view, permute,
expand...) shares its base's memory and version counter. It also keeps, in
``Tensor._view_chain``, the recipe that rebuilds it from its base: a tuple of
``(op class, attrs)`` steps, from the base (the tensor that is no view) to the view. An
in-place op on the view replays that recipe to rewrite the base's history (PyTorch's
CopySlices, see :mod:`tapegrad.autograd.copy_slices`).

Markers (strings) in the chain play the part of PyTorch's ``CreationMeta``: a view made under
``no_grad``, or a piece of a function that returns several views (split, chunk, unbind), may
not be modified in place while grad mode records it.

The views made in grad mode are also registered, by weak reference, with their family: the
group of tensors sharing one version counter (``_vc``, whose optional third item holds the
registry). After the base's history changes, every live view of it is given a new grad_fn,
"view of the new base" (PyTorch does the same, lazily, when such a view is used next). A
registry costs nothing to the ops that make no view.
"""

from __future__ import annotations

import weakref

from tapegrad.autograd.grad_mode import STATE as _GRAD

__all__ = ["record_view", "mark_multi_output", "NO_GRAD", "views_of", "markers"]

NO_GRAD = "no_grad"              # made while grad mode was off
MULTI_OUTPUT = "multi_output:"   # + "name:k": output k of the function `name` (split...)

_ref = weakref.ref


class Family:
    """The weakly held views of the tensors sharing one version counter."""

    __slots__ = ("refs", "cap")

    def __init__(self):
        self.refs = []
        self.cap = 16

    def prune(self) -> list:
        """Drop the dead references; returns the live views."""
        live = []
        refs = []
        for r in self.refs:
            v = r()
            if v is not None:
                live.append(v)
                refs.append(r)
        self.refs = refs
        self.cap = max(16, 2 * len(refs))  # amortised: prune again once the list doubles
        return live


def record_view(out, x0, cls, attrs) -> None:
    """Make ``out`` (made from ``x0`` by view op ``cls`` with ``attrs``) a view of x0's base.

    ``cls=None`` records an alias: the same values, the same recipe as ``x0``.
    """
    vc = out._vc = x0._vc
    base = x0._base
    if base is None:
        out._base = x0
        chain = ()
    else:
        out._base = base
        chain = x0._view_chain
    if not _GRAD.grad_enabled:
        out._view_chain = chain + ((cls, attrs), NO_GRAD) if cls is not None else \
            chain + (NO_GRAD,)
        return
    if cls is not None:
        chain = chain + ((cls, attrs),)
    out._view_chain = chain
    if len(vc) > 2:
        fam = vc[2]
    else:
        fam = Family()
        vc.append(fam)
    refs = fam.refs
    refs.append(_ref(out))
    if len(refs) > fam.cap:
        fam.prune()


def mark_multi_output(pieces, name: str) -> None:
    """Mark the views returned together by ``name`` (split, chunk, unbind): PyTorch forbids
    modifying them in place while their history is recorded."""
    for k, p in enumerate(pieces):
        if p._base is not None:
            p._view_chain = p._view_chain + (f"{MULTI_OUTPUT}{name}:{k}",)


def markers(chain) -> list:
    """The markers in ``chain`` (empty for a view that may be written through)."""
    return [s for s in chain if type(s) is str]


def views_of(base) -> list:
    """The live registered views whose base is ``base``."""
    vc = base._vc
    if len(vc) < 3:
        return []
    return [v for v in vc[2].prune() if v._base is base]
