"""Comparison, logical and bitwise Tensor methods and operators (``==``, ``<``, ``&``, ``~``,
``eq``, ``isnan``...): all of them without a gradient. ``TensorMethods`` inherits this
mixin; ``Tensor`` keeps identity hashing (``__hash__`` in tensor.py), as PyTorch does.
"""

from __future__ import annotations

from tapegrad.ops import compare as K


class CompareMethods:
    __slots__ = ()

    # ---- operators ---------------------------------------------------------------------
    def __invert__(self):
        return K.logical_not(self) if self.dtype.name == "bool" else K.bitwise_not(self)

    def __and__(self, other):
        return K.bitwise_and(self, other)

    def __rand__(self, other):
        return K.bitwise_and(other, self)

    def __or__(self, other):
        return K.bitwise_or(self, other)

    def __ror__(self, other):
        return K.bitwise_or(other, self)

    def __xor__(self, other):
        return K.bitwise_xor(self, other)

    def __rxor__(self, other):
        return K.bitwise_xor(other, self)

    def __eq__(self, other):
        if other is None:
            return False
        return K.eq(self, other)

    def __ne__(self, other):
        if other is None:
            return True
        return K.ne(self, other)

    def __lt__(self, other):
        return K.lt(self, other)

    def __le__(self, other):
        return K.le(self, other)

    def __gt__(self, other):
        return K.gt(self, other)

    def __ge__(self, other):
        return K.ge(self, other)

    # ---- as methods --------------------------------------------------------------------
    def eq(self, other):
        return K.eq(self, other)

    def ne(self, other):
        return K.ne(self, other)

    def lt(self, other):
        return K.lt(self, other)

    def le(self, other):
        return K.le(self, other)

    def gt(self, other):
        return K.gt(self, other)

    def ge(self, other):
        return K.ge(self, other)

    greater, less, greater_equal, less_equal, not_equal = gt, lt, ge, le, ne

    def equal(self, other) -> bool:
        return tuple(self.shape) == tuple(other.shape) and bool(K.eq(self, other).all())

    def allclose(self, other, rtol=1e-5, atol=1e-8, equal_nan=False) -> bool:
        import numpy as np

        return bool(np.allclose(self._host(), other._host(), rtol, atol, equal_nan))

    def isclose(self, other, rtol=1e-5, atol=1e-8, equal_nan=False):
        import numpy as np

        from tapegrad.creation import tensor

        return tensor(np.isclose(self._host(), other._host(), rtol, atol, equal_nan))

    def logical_and(self, other):
        return K.logical_and(self, other)

    def logical_or(self, other):
        return K.logical_or(self, other)

    def logical_xor(self, other):
        return K.logical_xor(self, other)

    def logical_not(self):
        return K.logical_not(self)

    def isnan(self):
        return K.isnan(self)

    def isinf(self):
        return K.isinf(self)

    def isfinite(self):
        return K.isfinite(self)
