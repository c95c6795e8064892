"""Reading PyTorch's zip checkpoints (``torch.save`` since 1.6) without running their pickle.

A PyTorch archive is ``<name>/data.pkl`` (a pickle of the object tree) plus one raw file per
storage (``<name>/data/<key>``). The pickle is read by an unpickler whose ``find_class``
answers only from a fixed table of harmless names (``collections.OrderedDict``, PyTorch's
tensor and parameter rebuild functions, storage types, ``torch.Size``, dtypes) and maps each
one to tapegrad's own code: no module is imported and no other callable can be reached, so a
file with a malicious ``__reduce__`` fails with ``pickle.UnpicklingError`` naming the global
it asked for. This is the "restricting globals" recipe of Python's pickle documentation, the
same idea as PyTorch's own ``weights_only=True`` loader.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict

import numpy as np

from tapegrad import _dtype as D
from tapegrad._size import Size
from tapegrad.tensor import Tensor

__all__ = ["is_torch_archive", "load_torch_archive"]

_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_DTYPE_NAMES = ("float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8",
                "bool", "double", "float", "half", "long", "int", "short")


def _refuse(why: str) -> pickle.UnpicklingError:
    return pickle.UnpicklingError(f"load: refusing to load this PyTorch archive: {why}. Only "
                                  f"tensors, parameters, numbers, strings and containers of "
                                  f"them are read; nothing else is ever unpickled.")


class _StorageType:
    """What ``torch.FloatStorage`` and friends stand for here: just a dtype."""

    __slots__ = ("name", "np")

    def __init__(self, name: str):
        self.name = name
        self.np = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A storage read from the archive: a flat array, immune to pickle's BUILD."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array

    def __setstate__(self, state):
        raise _refuse("the pickle tried to set the state of a storage")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None) -> Tensor:
    if not isinstance(storage, _Storage):
        raise _refuse("a tensor was rebuilt from something that is not a storage")
    flat = storage.array
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    offset = int(storage_offset)
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size + stride):
        raise _refuse(f"bad tensor geometry (offset {offset}, size {size}, stride {stride})")
    # Check the view stays inside its storage before building it: as_strided trusts us.
    if 0 not in size:
        last = offset + sum((n - 1) * st for n, st in zip(size, stride))
        if last >= flat.size:
            raise _refuse(f"a tensor of size {size} and stride {stride} at offset {offset} "
                          f"runs past its storage of {flat.size} elements")
        view = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=size, strides=tuple(st * flat.itemsize for st in stride),
            writeable=False)
        arr = np.array(view, order="C")
    else:
        arr = np.zeros(size, dtype=flat.dtype)
    t = Tensor._make(arr.astype(arr.dtype.newbyteorder("="), copy=False))
    if requires_grad:
        t.requires_grad_(True)
    return t


def _rebuild_parameter(data, requires_grad, backward_hooks=None, state=None):
    if not isinstance(data, Tensor):
        raise _refuse("a parameter was rebuilt from something that is not a tensor")
    try:
        from tapegrad.nn import Parameter
    except ImportError:
        return data.detach().requires_grad_(bool(requires_grad))
    return Parameter(data.detach(), requires_grad=bool(requires_grad))


def _size(*args):
    return Size(*args)


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, zf: zipfile.ZipFile, prefix: str, byteorder: str):
        super().__init__(io.BytesIO(data))
        self.zf = zf
        self.prefix = prefix
        self.byteorder = ">" if byteorder == "big" else "<"
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name in ("_rebuild_parameter",
                                                 "_rebuild_parameter_with_state"):
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "torch" and name == "Size":
            return _size
        if module == "torch" and name in _DTYPE_NAMES:
            return D.to_dtype(getattr(D, name))
        raise _refuse(f"it asks for the global {module}.{name}, which is not on the list of "
                      f"data types this loader accepts")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)):
            raise _refuse(f"unexpected persistent id {str(pid)[:80]}")
        _, stype, key, _location, numel = pid
        if key not in self.storages:
            try:
                raw = self.zf.read(f"{self.prefix}/data/{key}")
            except KeyError:
                raise _refuse(f"storage {key!r} is missing") from None
            dt = stype.np.newbyteorder(self.byteorder)
            if len(raw) < int(numel) * dt.itemsize:
                raise _refuse(f"storage {key!r} holds {len(raw)} bytes, fewer than "
                              f"{numel} elements of {stype.name}")
            self.storages[key] = _Storage(np.frombuffer(raw, dtype=dt, count=int(numel)))
        return self.storages[key]


def is_torch_archive(names) -> str | None:
    """The record prefix of a PyTorch zip archive (``"archive"``), or None."""
    for n in names:
        if n.endswith("/data.pkl") and n.count("/") == 1:
            return n[: -len("/data.pkl")]
    return None


def load_torch_archive(zf: zipfile.ZipFile, prefix: str):
    """The object tree of a PyTorch archive, with tapegrad tensors, all on the CPU."""
    names = set(zf.namelist())
    byteorder = "little"
    if f"{prefix}/byteorder" in names:
        byteorder = zf.read(f"{prefix}/byteorder").decode("ascii", "replace").strip()
    unpickler = _Unpickler(zf.read(f"{prefix}/data.pkl"), zf, prefix, byteorder)
    try:
        return unpickler.load()
    except pickle.UnpicklingError:
        raise
    except (AttributeError, TypeError, ValueError, EOFError, IndexError, KeyError) as e:
        raise _refuse(f"its pickle is malformed ({type(e).__name__}: {e})") from None
