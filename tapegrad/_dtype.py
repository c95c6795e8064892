"""Dtypes and PyTorch's type-promotion rules.

A ``dtype`` wraps a NumPy dtype so that every backend (NumPy, Numba, CuPy) agrees on it.
Promotion follows PyTorch, not NumPy: a Python float next to an integer tensor gives the
*default* dtype (float32 unless changed), and a 0-d tensor only wins over a dimensioned
tensor when it is of a higher category (bool < integer < floating).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "dtype", "float16", "float32", "float64", "half", "float", "double", "int8", "uint8",
    "int16", "int32", "int64", "short", "int", "long", "bool", "set_default_dtype",
    "get_default_dtype", "promote_types", "result_type",
]

_builtin_bool = bool
_builtin_float = float
_builtin_int = int


class dtype:
    """A tensor element type, e.g. ``tapegrad.float32``."""

    __slots__ = ("name", "np", "is_floating_point", "is_signed", "itemsize", "_cat")

    def __init__(self, name: str, np_dtype, cat: _builtin_int):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = cat == 2
        self.is_signed = self.np.kind in "if"
        self.itemsize = self.np.itemsize
        self._cat = cat  # 0 bool, 1 integer, 2 floating

    def __repr__(self) -> str:
        return "tapegrad." + self.name

    def __reduce__(self):
        return (_by_name, (self.name,))

    @property
    def is_complex(self) -> _builtin_bool:
        return False


float16 = dtype("float16", np.float16, 2)
float32 = dtype("float32", np.float32, 2)
float64 = dtype("float64", np.float64, 2)
int8 = dtype("int8", np.int8, 1)
uint8 = dtype("uint8", np.uint8, 1)
int16 = dtype("int16", np.int16, 1)
int32 = dtype("int32", np.int32, 1)
int64 = dtype("int64", np.int64, 1)
bool = dtype("bool", np.bool_, 0)  # noqa: A001 - PyTorch's public name
half, float, double = float16, float32, float64  # noqa: A001
short, int, long = int16, int32, int64  # noqa: A001

_ALL = (float16, float32, float64, int8, uint8, int16, int32, int64, bool)
_FROM_NP = {d.np: d for d in _ALL}


def _by_name(name: str) -> dtype:
    return globals()[name]


def from_numpy_dtype(npd) -> dtype:
    """Map a NumPy dtype to ours; unsupported ones raise ``TypeError``."""
    try:
        return _FROM_NP[np.dtype(npd)]
    except KeyError:
        raise TypeError(f"tapegrad: unsupported NumPy dtype {np.dtype(npd)}") from None


def to_dtype(d) -> dtype:
    """Accept a tapegrad dtype, a NumPy dtype, a Python type or a string."""
    if isinstance(d, dtype):
        return d
    if d is _builtin_float:
        return get_default_dtype()
    if d is _builtin_int:
        return int64
    if d is _builtin_bool:
        return bool
    return from_numpy_dtype(d)


_DEFAULT = [float32]  # process-wide, as in PyTorch (grad mode is per thread, this is not)


def get_default_dtype() -> dtype:
    """The dtype of floating tensors made from Python floats (float32 unless changed)."""
    return _DEFAULT[0]


def set_default_dtype(d: dtype) -> None:
    """Set the default floating dtype, like Theano's ``floatX``.

    >>> set_default_dtype(float64); get_default_dtype()
    tapegrad.float64
    """
    d = to_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"set_default_dtype: only floating-point types are supported, got {d}")
    _DEFAULT[0] = d


def promote_types(a: dtype, b: dtype) -> dtype:
    """PyTorch's pairwise promotion: floats win over ints whatever their size."""
    if a is b:
        return a
    if a._cat != b._cat:
        return a if a._cat > b._cat else b
    return _FROM_NP[np.promote_types(a.np, b.np)]


def _combine(higher, lower):
    # PyTorch's combine_categories: a lower-priority group only matters if it is of a
    # higher category than what the higher-priority group already has.
    if higher is None:
        return lower
    if lower is None:
        return higher
    if higher.is_floating_point:
        return higher
    if higher is bool or lower.is_floating_point:
        return promote_types(higher, lower)
    return higher


def scalar_dtype(x) -> dtype:
    """The dtype a Python scalar takes when it stands alone."""
    if isinstance(x, _builtin_bool):
        return bool
    if isinstance(x, _builtin_int):
        return int64
    return get_default_dtype()


def result_type(*args) -> dtype:
    """Promote tensors and Python scalars the way PyTorch's binary ops do."""
    dim_r = zero_r = wrap_r = None
    for a in args:
        d = getattr(a, "dtype", None)
        if d is None:
            if isinstance(a, (np.ndarray, np.generic)):
                d = from_numpy_dtype(a.dtype)
                zero_r = d if zero_r is None else promote_types(zero_r, d)
                continue
            d = scalar_dtype(a)
            wrap_r = d if wrap_r is None else promote_types(wrap_r, d)
        elif a.ndim:
            dim_r = d if dim_r is None else promote_types(dim_r, d)
        else:
            zero_r = d if zero_r is None else promote_types(zero_r, d)
    return _combine(dim_r, _combine(zero_r, wrap_r))
