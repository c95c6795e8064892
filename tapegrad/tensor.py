"""The Tensor: a backend array plus what the tape needs to know about it.

Arithmetic, math and shape methods live in :mod:`tapegrad._tensor_methods` (a mixin that
forwards to the op registry); this file holds state, conversion and ``backward``.
"""

from __future__ import annotations

import numpy as np

from tapegrad import _dtype as D
from tapegrad._device import CPU, device
from tapegrad._size import Size
from tapegrad._tensor_methods import TensorMethods
from tapegrad.autograd import hooks_state as _hs
from tapegrad.autograd import node as _node_mod
from tapegrad.autograd.grad_mode import STATE as _GRAD

__all__ = ["Tensor"]

_new = object.__new__
_generic = np.generic
_ndarray = np.ndarray
_FROM_NP = D._FROM_NP


class Tensor(TensorMethods):
    """An n-dimensional array that records the operations applied to it.

    >>> x = tapegrad.tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward(); x.grad
    tensor([2., 4.])
    """

    __slots__ = ("_data", "_dtype", "_device", "_requires_grad", "grad", "grad_fn", "_out_nr",
                 "_vc", "_base", "_post_acc_hooks", "_view_chain", "__dict__", "__weakref__")

    # Rarely set state lives in class-level defaults (a write goes to the instance dict):
    # every op builds a tensor, and each slot it must fill costs time (wl_per_op.py).
    _hooks = None          # {id: hook} of register_hook
    _retains_grad = False  # retain_grad() was called
    _accum = None          # weakref to the leaf's AccumulateGrad sink
    _fw = None             # forward-AD tangents {level: tangent}
    _name = None           # a label for graph pictures

    __array_priority__ = 1000  # so that ndarray + Tensor defers to Tensor.__radd__

    def __init__(self, data=None, *, requires_grad: bool = False):
        from tapegrad.creation import _to_array

        arr, dev = _to_array(data if data is not None else [], None, None)
        Tensor._init(self, arr, requires_grad, None, 0, dev)

    @staticmethod
    def _init(self, arr, requires_grad, grad_fn, out_nr, dev):
        self._data = arr
        self._dtype = D._FROM_NP[arr.dtype]
        self._device = dev
        self._requires_grad = requires_grad
        self.grad = None
        self.grad_fn = grad_fn
        self._out_nr = out_nr
        # [version, where the last in-place change happened(, registry of the views: only
        # once a view is made, see autograd/view_meta.py)]. _view_chain is set on views only.
        self._vc = [0, None]
        self._base = None

    @classmethod
    def _make(cls, arr, requires_grad=False, grad_fn=None, out_nr=0, dev=None):
        """Fast internal constructor around an existing backend array."""
        t = _new(cls)
        if dev is None:
            dev = CPU
        if type(arr) is not _ndarray and (dev is CPU or isinstance(arr, _generic)):
            # NumPy hands back scalars, not 0-d arrays, from reductions and 0-d arithmetic
            # (also on the CUDA simulator's NumPy arrays); a scalar cannot be written in place.
            arr = np.asarray(arr)
        t._data = arr
        t._dtype = _FROM_NP[arr.dtype]
        t._device = dev
        t._requires_grad = requires_grad
        t.grad = None
        t.grad_fn = grad_fn
        t._out_nr = out_nr
        t._vc = [0, None]
        t._base = None
        return t

    # ---- basic attributes --------------------------------------------------------------
    @property
    def shape(self):
        return Size(self._data.shape)

    @property
    def dtype(self) -> D.dtype:
        return self._dtype

    @property
    def device(self) -> device:
        return self._device

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def is_cuda(self) -> bool:
        return self._device.type == "cuda"

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        flag = bool(flag)
        if self.grad_fn is not None and not flag:
            raise RuntimeError("requires_grad: you can only change requires_grad flags of leaf "
                               "variables. If you want to use a computed variable in a "
                               "subgraph that doesn't require differentiation use "
                               "var_no_grad = var.detach().")
        if flag and not self._dtype.is_floating_point:
            raise RuntimeError(f"requires_grad: only Tensors of floating point dtype can "
                               f"require gradients, got {self._dtype} of shape "
                               f"{tuple(self._data.shape)}")
        self._requires_grad = flag

    @property
    def _version(self) -> int:
        return self._vc[0]

    @property
    def data(self) -> Tensor:
        """The same memory, detached from the tape."""
        return self.detach()

    @data.setter
    def data(self, value: Tensor) -> None:
        self._data = value._data
        self._dtype = value._dtype
        self._device = value._device

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    @property
    def output_nr(self) -> int:
        return self._out_nr

    def size(self, dim: int | None = None):
        """The shape, or its length along ``dim``."""
        if dim is None:
            return self.shape
        from tapegrad.ops._util import norm_dim

        return self._data.shape[norm_dim(dim, self.ndim, "size")]

    def dim(self) -> int:
        return self._data.ndim

    def ndimension(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def nelement(self) -> int:
        return int(self._data.size)

    def element_size(self) -> int:
        return self._dtype.itemsize

    def is_floating_point(self) -> bool:
        return self._dtype.is_floating_point

    def is_contiguous(self) -> bool:
        return bool(self._data.flags.c_contiguous)

    def stride(self, dim: int | None = None):
        st = tuple(s // self._dtype.itemsize for s in self._data.strides)
        return st if dim is None else st[dim]

    def data_ptr(self) -> int:
        return self._data.__array_interface__["data"][0] if self._device is CPU else \
            self._data.data.ptr

    # ---- conversion --------------------------------------------------------------------
    def item(self):
        """The single value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise RuntimeError(f"item: a Tensor with {self._data.size} elements cannot be "
                               f"converted to Scalar (shape {tuple(self._data.shape)})")
        return self._host().reshape(()).item()

    def tolist(self):
        return self._host().tolist()

    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The NumPy array behind a CPU tensor (shared memory)."""
        if _hs.TRACER is not None:
            _hs.data_read("numpy()")
        if self._requires_grad and not force:
            raise RuntimeError("numpy: can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        if self._device is not CPU:
            if force:
                return self._host()
            raise TypeError(f"numpy: can't convert {self._device} device type tensor to "
                            "numpy. Use Tensor.cpu() to copy the tensor to host memory first.")
        return self._data

    def _host(self) -> np.ndarray:
        # (item(), tolist(), bool(), float(), int(), __array__ all read through here.)
        if _hs.TRACER is not None:
            _hs.data_read("item(), tolist(), bool(), float(), or an op reading an index "
                          "tensor on the host")
        if self._device is CPU:
            return self._data
        from tapegrad import backends

        return backends.to_host(self._data)

    def __array__(self, dtype=None, copy=None):
        a = self._host()
        return a if dtype is None else a.astype(dtype)

    def __dlpack__(self, *args, **kwargs):
        return self._data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self._data.size} elements "
                               f"(shape {tuple(self._data.shape)}) is ambiguous")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._dtype.is_floating_point or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an "
                            "index")
        return int(self.item())

    def __complex__(self) -> complex:
        return complex(self.item())

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        from tapegrad._format import tensor_repr

        return tensor_repr(self)

    def __format__(self, spec: str) -> str:
        if self._data.ndim == 0 and spec:
            return format(self.item(), spec)
        return repr(self)

    def __reduce_ex__(self, protocol):
        # Pickle (multiprocessing, deepcopy) keeps values and requires_grad, never the tape.
        return (_rebuild, (self._host().copy(), self._requires_grad, str(self._device)))

    def __deepcopy__(self, memo):
        if self.grad_fn is not None:
            raise RuntimeError("deepcopy: only tensors created explicitly by the user (graph "
                               "leaves) support the deepcopy protocol at the moment")
        t = Tensor._make(self._data.copy(), self._requires_grad, None, 0, self._device)
        if self.grad is not None:
            t.grad = self.grad.__deepcopy__(memo)
        memo[id(self)] = t
        return t

    # ---- autograd ----------------------------------------------------------------------
    def detach(self) -> Tensor:
        """A tensor sharing memory and version counter, cut from the tape."""
        t = Tensor._make(self._data, False, None, 0, self._device)
        t._vc = self._vc
        return t

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self._requires_grad = False
        return self

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        if not self._requires_grad:
            raise RuntimeError("retain_grad: can't retain_grad on Tensor that has "
                               "requires_grad=False")
        if self.grad_fn is None or self._retains_grad:
            return
        import weakref

        node = self.grad_fn
        if node._pre_hooks is None:
            node._pre_hooks = {}
        node._pre_hooks[("retain", self._out_nr)] = weakref.ref(self)
        self._retains_grad = True

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor
        replaces the gradient. Returns a handle with ``.remove()``.

        >>> h = x.register_hook(lambda g: g * 2)
        """
        if not self._requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that doesn't "
                               "require gradient")
        from tapegrad.autograd.hooks_state import RemovableHandle

        if self.grad_fn is not None:
            node = self.grad_fn
            if node._pre_hooks is None:
                node._pre_hooks = {}
            return RemovableHandle(node._pre_hooks.setdefault(self._out_nr, {}), hook)
        if self._hooks is None:
            self._hooks = {}
        return RemovableHandle(self._hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` after a backward pass has accumulated into this leaf's
        ``.grad`` (data-parallel training starts its all-reduce from here)."""
        if self.grad_fn is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: post accumulate grad hooks "
                               "cannot be registered on non-leaf tensors")
        if not self._requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook: cannot register a hook on "
                               "a tensor that doesn't require gradient")
        from tapegrad.autograd.hooks_state import RemovableHandle

        table = getattr(self, "_post_acc_hooks", None)
        if table is None:
            table = self._post_acc_hooks = {}
        return RemovableHandle(table, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``gradient`` is required unless ``self`` has one element.
        """
        from tapegrad.autograd.engine import backward

        backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    # ---- device and dtype moves --------------------------------------------------------
    def to(self, *args, **kwargs) -> Tensor:
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)`` or ``to(other_tensor)``."""
        from tapegrad.ops.convert import to

        return to(self, *args, **kwargs)

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, device=None) -> Tensor:
        return self.to("cuda" if device is None else device)

    def type(self, dtype=None):
        if dtype is None:
            return "tapegrad." + {"float32": "FloatTensor", "float64": "DoubleTensor",
                                  "int64": "LongTensor", "int32": "IntTensor",
                                  "bool": "BoolTensor"}.get(self._dtype.name, "Tensor")
        return self.to(dtype)

    def float(self) -> Tensor:
        return self.to(D.float32)

    def double(self) -> Tensor:
        return self.to(D.float64)

    def half(self) -> Tensor:
        return self.to(D.float16)

    def long(self) -> Tensor:
        return self.to(D.int64)

    def int(self) -> Tensor:
        return self.to(D.int32)

    def bool(self) -> Tensor:
        return self.to(D.bool)

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    def contiguous(self) -> Tensor:
        if self._data.flags.c_contiguous:
            return self
        from tapegrad.ops.convert import contiguous

        return contiguous(self)


_node_mod._T[0] = Tensor
_node_mod.Tensor = Tensor  # a module global: Node.apply reads it on every op


def _rebuild(arr, requires_grad, dev):
    from tapegrad.creation import tensor

    return tensor(arr, device=dev, requires_grad=requires_grad)


def _grad_enabled() -> bool:
    return _GRAD.grad_enabled
