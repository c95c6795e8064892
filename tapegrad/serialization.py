"""``save`` / ``load``: tensors, state dicts and nested containers, without pickle.

A saved file is a zip archive (uncompressed) holding

* ``tapegrad/manifest.json``: the object tree as tagged JSON, plus one record per tensor
  (dtype, shape, device, requires_grad, whether it was an ``nn.Parameter``);
* ``tapegrad/data/<k>.npy``: the values of tensor ``k``, written and read by NumPy with
  ``allow_pickle=False``.

Loading never unpickles anything of ours, so a file cannot run code. PyTorch's own zip
checkpoints (``torch.save`` since 1.6) are read too, by an allowlist-only unpickler that maps
the few globals a state dict needs to tapegrad code and refuses every other one (see
:mod:`tapegrad._torch_archive`). A bare pickle (a legacy ``torch.save`` file, or a file with a
malicious ``__reduce__``), a PyTorch archive asking for any other global, or any other format
is refused with ``pickle.UnpicklingError``, as PyTorch's ``weights_only=True`` loader does
for what it cannot vouch for.

What can be saved: tensors (``Parameter`` s load back as ``Parameter`` s), NumPy arrays of
numeric or bool dtype, ``None``, bools, ints, floats (nan and inf included), strings,
bytes, lists, tuples, dicts and ``OrderedDict`` s (any of these as keys or values, so
optimizer state dicts with integer keys round-trip), ``Size``, dtypes and devices. The same
tensor object reachable twice (tied weights) is stored once and loads as one object.
"""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np

from tapegrad import _dtype as D
from tapegrad._device import device as _device_cls
from tapegrad._size import Size
from tapegrad._torch_archive import is_torch_archive, load_torch_archive
from tapegrad.tensor import Tensor

__all__ = ["save", "load"]

_FORMAT = "tapegrad.save"
_VERSION = 1
_MANIFEST = "tapegrad/manifest.json"
_DATA = "tapegrad/data/{}.npy"
_ZIP_MAGIC = b"PK\x03\x04"


# ---- saving ------------------------------------------------------------------------------
class _Encoder:
    """Walks an object tree once, turning it into JSON and a list of arrays to write."""

    def __init__(self):
        self.records: list[dict] = []
        self.arrays: list[np.ndarray] = []
        self._memo: dict[int, int] = {}
        self._keep: list = []  # keeps memoised objects alive so their ids stay unique
        self._active: set[int] = set()

    def _store(self, obj, record: dict, arr: np.ndarray) -> dict:
        key = id(obj)
        if key not in self._memo:
            self._memo[key] = len(self.records)
            self._keep.append(obj)
            self.records.append(record)
            self.arrays.append(arr)
        return {"$type": record["kind"], "id": self._memo[key]}

    def encode(self, obj, path: str = "obj"):
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return float(obj)
        if isinstance(obj, Tensor):
            return self._tensor(obj)
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind not in "biuf":
                raise TypeError(f"save: cannot save the NumPy array at {path}: dtype "
                                f"{obj.dtype} is not numeric")
            return self._store(obj, {"kind": "ndarray", "dtype": obj.dtype.str,
                                     "shape": list(obj.shape)}, obj)
        if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
            return self.encode(obj.item(), path)
        if isinstance(obj, bytes):
            return {"$type": "bytes", "b64": base64.b64encode(obj).decode("ascii")}
        if isinstance(obj, D.dtype):
            return {"$type": "dtype", "name": obj.name}
        if isinstance(obj, _device_cls):
            return {"$type": "device", "name": str(obj)}
        if isinstance(obj, (list, tuple, dict)):
            return self._container(obj, path)
        raise TypeError(f"save: cannot save object of type {type(obj).__module__}."
                        f"{type(obj).__qualname__} at {path}; tapegrad.save stores tensors, "
                        f"numbers, strings, None and lists/tuples/dicts of them (save a "
                        f"module's or optimizer's state_dict() instead)")

    def _container(self, obj, path: str):
        if id(obj) in self._active:
            raise ValueError(f"save: {path} contains itself; cyclic containers cannot be saved")
        self._active.add(id(obj))
        try:
            if isinstance(obj, dict):
                items = [[self.encode(k, f"{path} key {k!r}"), self.encode(v, f"{path}[{k!r}]")]
                         for k, v in obj.items()]
                node = {"$type": "OrderedDict" if isinstance(obj, OrderedDict) else "dict",
                        "items": items}
                meta = getattr(obj, "_metadata", None)
                if isinstance(obj, OrderedDict) and meta is not None:
                    node["metadata"] = self.encode(meta, f"{path}._metadata")
                return node
            # Named tuples and list subclasses are stored as their plain base type.
            kind = "list" if isinstance(obj, list) else "Size" if isinstance(obj, Size) else "tuple"
            return {"$type": kind,
                    "items": [self.encode(v, f"{path}[{i}]") for i, v in enumerate(obj)]}
        finally:
            self._active.discard(id(obj))

    def _tensor(self, t: Tensor) -> dict:
        param = _parameter_class()
        record = {"kind": "tensor", "dtype": t.dtype.name, "shape": list(t.shape),
                  "device": str(t.device), "requires_grad": bool(t.requires_grad),
                  "parameter": param is not None and isinstance(t, param)}
        return self._store(t, record, np.asarray(t._host()))


def _parameter_class():
    """``nn.Parameter`` when the nn package is importable, else None."""
    try:
        from tapegrad.nn import Parameter
    except ImportError:
        return None
    return Parameter


def save(obj, f, pickle_module=None, pickle_protocol=None, **kwargs) -> None:
    """Write ``obj`` (tensors, state dicts, nested containers of them) to a path or file.

    ``pickle_module`` / ``pickle_protocol`` are accepted for PyTorch compatibility and
    ignored: nothing is pickled. The whole object is checked before the file is touched, so
    an unsupported object raises ``TypeError`` and leaves no partial file behind.

    >>> buf = io.BytesIO(); save({"w": tapegrad.ones(2)}, buf); _ = buf.seek(0)
    >>> load(buf)
    {'w': tensor([1., 1.])}
    """
    enc = _Encoder()
    manifest = {"format": _FORMAT, "version": _VERSION, "obj": enc.encode(obj),
                "tensors": enc.records}
    text = json.dumps(manifest, allow_nan=True)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:
            _write_zip(fh, text, enc.arrays)
    else:
        if not hasattr(f, "write"):
            raise TypeError(f"save: expected a path or a writable file object, got "
                            f"{type(f).__name__}")
        _write_zip(f, text, enc.arrays)


def _write_zip(fh, manifest_text: str, arrays: list[np.ndarray]) -> None:
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(_MANIFEST, manifest_text)
        for k, arr in enumerate(arrays):
            with zf.open(_DATA.format(k), "w", force_zip64=True) as out:
                np.lib.format.write_array(out, arr, allow_pickle=False)


# ---- loading -----------------------------------------------------------------------------
def _refuse(what: str) -> pickle.UnpicklingError:
    return pickle.UnpicklingError(
        f"load: refusing to load {what}. tapegrad.load reads only tapegrad.save archives "
        f"and PyTorch zip checkpoints of plain data, and never runs a pickle, because "
        f"unpickling can run arbitrary code. "
        f"Re-save the data with tapegrad.save (e.g. from its tensors' .numpy() values).")


def _open_archive(f) -> zipfile.ZipFile:
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as fh:
            data = fh.read()
    elif hasattr(f, "read"):
        data = f.read()
    else:
        raise TypeError(f"load: expected a path or a readable file object, got "
                        f"{type(f).__name__}")
    if isinstance(data, str):
        raise TypeError("load: the file object must be opened in binary mode")
    if data[:4] != _ZIP_MAGIC:
        if data[:1] == b"\x80" or data[:1] in (b"(", b"]", b"}", b"c"):
            raise _refuse("a pickle file (a legacy torch.save file or a raw pickle)")
        raise _refuse(f"a file of unknown format (starts with {bytes(data[:8])!r})")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise _refuse(f"a damaged zip archive ({e})") from None
    names = set(zf.namelist())
    if _MANIFEST not in names and is_torch_archive(names) is None:
        raise _refuse("a zip archive that is neither a tapegrad.save archive (no "
                      "tapegrad/manifest.json) nor a PyTorch one (no <name>/data.pkl)")
    return zf


def _resolve_location(map_location, location: str):
    """Where a tensor saved on ``location`` should go, or a callable to apply to it."""
    if map_location is None:
        return location
    if isinstance(map_location, dict):
        return map_location.get(location, location)
    if isinstance(map_location, (str, _device_cls)):
        return map_location
    if callable(map_location):
        return map_location
    raise TypeError(f"load: map_location should be a str, device, dict or callable, got "
                    f"{type(map_location).__name__}")


class _Decoder:
    def __init__(self, zf: zipfile.ZipFile, records: list, map_location):
        self.zf = zf
        self.records = records
        self.map_location = map_location
        self._made: dict[int, object] = {}

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list) or not isinstance(node, dict) or "$type" not in node:
            raise _corrupt(f"unexpected node {str(node)[:60]}")
        kind = node["$type"]
        if kind in ("tensor", "ndarray"):
            return self._array_obj(node["id"], kind)
        if kind == "list":
            return [self.decode(v) for v in node["items"]]
        if kind == "tuple":
            return tuple(self.decode(v) for v in node["items"])
        if kind == "Size":
            return Size(tuple(self.decode(v) for v in node["items"]))
        if kind in ("dict", "OrderedDict"):
            out = {} if kind == "dict" else OrderedDict()
            for k, v in node["items"]:
                out[_hashable(self.decode(k))] = self.decode(v)
            if "metadata" in node:
                out._metadata = self.decode(node["metadata"])
            return out
        if kind == "bytes":
            return base64.b64decode(node["b64"])
        if kind == "dtype":
            dt = getattr(D, node["name"], None)
            if not isinstance(dt, D.dtype):
                raise _corrupt(f"unknown dtype {node['name']!r}")
            return dt
        if kind == "device":
            return _device_cls(node["name"])
        raise _corrupt(f"unknown node type {kind!r}")

    def _array_obj(self, k, kind: str):
        if not isinstance(k, int) or not 0 <= k < len(self.records):
            raise _corrupt(f"tensor index {k!r} out of range")
        if k in self._made:
            return self._made[k]
        rec = self.records[k]
        try:
            with self.zf.open(_DATA.format(k)) as fh:
                arr = np.lib.format.read_array(fh, allow_pickle=False)
        except KeyError:
            raise _corrupt(f"missing {_DATA.format(k)}") from None
        except ValueError as e:
            raise _corrupt(f"{_DATA.format(k)}: {e}") from None
        if list(arr.shape) != list(rec["shape"]):
            raise _corrupt(f"{_DATA.format(k)} has shape {tuple(arr.shape)}, manifest says "
                           f"{tuple(rec['shape'])}")
        obj = arr if kind == "ndarray" else self._tensor(arr, rec)
        self._made[k] = obj
        return obj

    def _tensor(self, arr: np.ndarray, rec: dict) -> Tensor:
        dt = getattr(D, rec["dtype"], None)
        if not isinstance(dt, D.dtype) or dt.np != arr.dtype:
            raise _corrupt(f"tensor data of dtype {arr.dtype} does not match the manifest's "
                           f"{rec['dtype']!r}")
        t = Tensor._make(arr)
        where = _resolve_location(self.map_location, rec["device"])
        if callable(where) and not isinstance(where, (str, _device_cls)):
            moved = where(t, rec["device"])
            t = t if moved is None else moved
        elif _device_cls(where) != t.device:
            t = t.to(_device_cls(where))
        param = _parameter_class() if rec.get("parameter") else None
        if param is not None:
            return param(t, requires_grad=bool(rec["requires_grad"]))
        if rec["requires_grad"]:
            t.requires_grad_(True)
        return t


def _place_all(obj, map_location, memo=None):
    """Apply ``map_location`` to every tensor of a tree read from a PyTorch archive (its
    tensors start on the CPU, the device they were saved from is not kept)."""
    if map_location is None:
        return obj
    memo = {} if memo is None else memo
    if isinstance(obj, Tensor):
        if id(obj) not in memo:
            where = _resolve_location(map_location, "cpu")
            if callable(where) and not isinstance(where, (str, _device_cls)):
                moved = where(obj, "cpu")
                memo[id(obj)] = obj if moved is None else moved
            else:
                memo[id(obj)] = obj if _device_cls(where) == obj.device else obj.to(where)
        return memo[id(obj)]
    if isinstance(obj, dict):
        out = type(obj)((k, _place_all(v, map_location, memo)) for k, v in obj.items())
        if hasattr(obj, "_metadata"):
            out._metadata = obj._metadata
        return out
    if isinstance(obj, list):
        return [_place_all(v, map_location, memo) for v in obj]
    if isinstance(obj, tuple) and not isinstance(obj, Size):
        return tuple(_place_all(v, map_location, memo) for v in obj)
    return obj


def _hashable(key):
    if isinstance(key, list):  # JSON has no tuples; a tuple key came back tagged already
        raise _corrupt("a list cannot be a dict key")
    return key


def _corrupt(why: str) -> RuntimeError:
    return RuntimeError(f"load: corrupt tapegrad archive: {why}")


def load(f, map_location=None, pickle_module=None, *, weights_only: bool | None = None,
         mmap=None, **kwargs):
    """Read an object written by :func:`save` from a path or binary file object.

    ``map_location`` moves tensors: a device or string (``"cpu"``), a dict from saved
    location to new one (``{"cuda:0": "cpu"}``), or a callable ``fn(tensor, location)``
    returning the tensor to use (``None`` keeps it on the CPU). ``weights_only`` is accepted
    for PyTorch compatibility: the format only holds data, so loading is always weights-only.
    PyTorch zip checkpoints load too (tensors, parameters, state dicts, optimizer state);
    pickles and unknown formats raise ``pickle.UnpicklingError``.

    >>> save([tapegrad.arange(3)], "/tmp/x.pt"); load("/tmp/x.pt")
    [tensor([0, 1, 2])]
    """
    with _open_archive(f) as zf:
        prefix = is_torch_archive(zf.namelist())
        if _MANIFEST not in zf.namelist() and prefix is not None:
            return _place_all(load_torch_archive(zf, prefix), map_location)
        try:
            manifest = json.loads(zf.read(_MANIFEST).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise _corrupt(f"unreadable manifest ({e})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
            raise _corrupt("the manifest does not describe a tapegrad.save archive")
        if manifest.get("version") != _VERSION:
            raise RuntimeError(f"load: archive format version {manifest.get('version')!r} is "
                               f"not supported by this tapegrad (reads version {_VERSION})")
        return _Decoder(zf, manifest["tensors"], map_location).decode(manifest["obj"])
