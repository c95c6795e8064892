"""Creation functions: ``tensor``, ``zeros``, ``arange``, ``randn``... and the global RNG."""

from __future__ import annotations

import numpy as np

from tapegrad import _dtype as D
from tapegrad._device import CPU, device as _device_cls
from tapegrad.backends.aligned import aligned as _aligned
from tapegrad.backends.aligned import empty as _aligned_empty
from tapegrad.tensor import Tensor

__all__ = ["tensor", "as_tensor", "from_numpy", "zeros", "ones", "full", "empty", "eye",
           "arange", "linspace", "logspace", "rand", "randn", "randint", "randperm",
           "zeros_like", "ones_like", "full_like", "empty_like", "rand_like", "randn_like",
           "randint_like", "manual_seed", "seed", "initial_seed", "Generator",
           "default_generator", "scalar_tensor", "normal", "bernoulli", "multinomial",
           "get_rng_state", "set_rng_state", "from_dlpack"]


class Generator:
    """A random-number generator (NumPy's PCG64 underneath).

    >>> g = Generator().manual_seed(0)
    """

    def __init__(self, device="cpu"):
        self.device = _device_cls(device)
        self._seed = 0
        self.rng = np.random.default_rng(0)

    def manual_seed(self, seed: int) -> Generator:
        self._seed = int(seed)
        self.rng = np.random.default_rng(self._seed)
        return self

    def seed(self) -> int:
        s = int(np.random.SeedSequence().entropy % (2 ** 63))
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self):
        return self.rng.bit_generator.state

    def set_state(self, state) -> None:
        self.rng.bit_generator.state = state


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the global generator (and CUDA's, when present)."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(state) -> None:
    default_generator.set_state(state)


def _resolve_device(device):
    if device is None:
        return CPU
    return _device_cls(device)


def _place(arr, dev):
    if dev is CPU:
        return _aligned(arr)  # a fresh array that may live long: see backends/aligned.py
    from tapegrad import backends

    return backends.move_array(arr, CPU, dev)


def _flatten_data(data):
    """Nested lists/tuples that may hold tensors, to plain Python numbers."""
    if isinstance(data, Tensor):
        return data._host()
    if isinstance(data, (list, tuple)):
        return [_flatten_data(d) for d in data]
    return data


def _to_array(data, dtype, device):
    """Build a host array from user ``data``; returns (array, device)."""
    dev = _resolve_device(device)
    if isinstance(data, Tensor):
        arr = data._host().copy()
        if device is None:
            dev = data.device
    elif isinstance(data, np.ndarray) and dtype is None and data.dtype.kind in "biufc":
        arr = _aligned_empty(data.shape, data.dtype)  # the one copy, already aligned
        arr[...] = data
    elif isinstance(data, (np.ndarray, np.generic)):
        arr = np.array(data, copy=True)  # NumPy scalars keep their dtype, as in PyTorch
    elif isinstance(data, (bool, np.bool_)):
        arr = np.array(data, dtype=np.bool_)
    elif isinstance(data, (int, np.integer)) and not isinstance(data, bool):
        arr = np.array(data, dtype=np.int64)
    elif isinstance(data, (float, np.floating)):
        # With an explicit dtype, Python floats go straight to float64 and are cast once at
        # the end (a detour through float32 would lose digits of float64 data).
        arr = np.array(data, dtype=(data.dtype if not isinstance(data, float) else np.float64
                                    if dtype is not None else D.get_default_dtype().np))
    else:
        try:
            arr = np.array(_flatten_data(data))
        except ValueError:
            raise ValueError(f"tensor: expected a rectangular nested sequence, got ragged "
                             f"data {str(data)[:60]}") from None
        if arr.dtype == object:
            raise TypeError(f"tensor: could not infer dtype of {type(data).__name__}")
        if arr.dtype.kind == "f" and not _has_np_float(data) and dtype is None:
            arr = arr.astype(D.get_default_dtype().np)
        elif arr.dtype.kind in "iu" and arr.dtype != np.int64 and not _has_np_float(data):
            arr = arr.astype(np.int64)
        elif arr.dtype.kind == "U":
            raise TypeError("tensor: new(): invalid data type 'str'")
    if dtype is not None:
        arr = arr.astype(D.to_dtype(dtype).np, copy=False)
    elif arr.dtype not in D._FROM_NP:
        arr = arr.astype(D.get_default_dtype().np if arr.dtype.kind == "f" else np.int64)
    return arr, dev


def _has_np_float(data):
    """True when nested data carries NumPy arrays/scalars whose dtype should be kept."""
    if isinstance(data, (np.ndarray, np.generic)):
        return True
    if isinstance(data, Tensor):
        return True
    if isinstance(data, (list, tuple)) and data:
        return _has_np_float(data[0])
    return False


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new leaf tensor holding a copy of ``data``.

    >>> tensor([[1., 2.], [3., 4.]], requires_grad=True)
    tensor([[1., 2.],
            [3., 4.]], requires_grad=True)
    """
    arr, dev = _to_array(data, dtype, device)
    t = Tensor._make(_place(arr, dev), False, None, 0, dev)
    if requires_grad:
        t.requires_grad = True
    return t


def scalar_tensor(s, dtype=None, device=None, requires_grad=False) -> Tensor:
    return tensor(float(s) if dtype is None else s, dtype=dtype, device=device,
                  requires_grad=requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like ``tensor`` but shares memory with a NumPy array or tensor when it can."""
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype) if (device or dtype) else data
    if isinstance(data, np.ndarray) and (device is None or _device_cls(device) is CPU):
        if dtype is None or D.to_dtype(dtype).np == data.dtype:
            return Tensor._make(data, False, None, 0, CPU)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A CPU tensor sharing memory with ``ndarray``."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(ndarray).__name__})")
    D.from_numpy_dtype(ndarray.dtype)
    return Tensor._make(ndarray, False, None, 0, CPU)


def from_dlpack(ext) -> Tensor:
    """A tensor sharing memory with any object that speaks DLPack (NumPy, PyTorch, ...).

    >>> from_dlpack(np.arange(3)).tolist()
    [0, 1, 2]
    """
    dev_type, dev_id = (ext.__dlpack_device__() if hasattr(ext, "__dlpack_device__")
                        else (1, 0))
    if dev_type != 1:  # not kDLCPU: device memory goes to the backend that owns the device
        from tapegrad import backends

        dev = _device_cls("cuda", int(dev_id))
        arr = backends.backend_for_device(dev).xp.from_dlpack(ext)
        return Tensor._make(arr, False, None, 0, dev)
    arr = np.from_dlpack(ext)
    D.from_numpy_dtype(arr.dtype)
    return Tensor._make(arr, False, None, 0, CPU)


def _size(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    size = tuple(int(s) for s in size)
    for s in size:
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: "
                               f"{list(size)}")
    return size


def _finish(arr, dev, requires_grad):
    t = Tensor._make(_place(arr, dev), False, None, 0, dev)
    if requires_grad:
        t.requires_grad = True
    return t


def _dt(dtype):
    return D.get_default_dtype() if dtype is None else D.to_dtype(dtype)


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of zeros of the given size."""
    return _finish(np.zeros(_size(size), _dt(dtype).np), _resolve_device(device), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ones of the given size."""
    return _finish(np.ones(_size(size), _dt(dtype).np), _resolve_device(device), requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _finish(np.empty(_size(size), _dt(dtype).np), _resolve_device(device), requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (dtype inferred from the value)."""
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    if not isinstance(fill_value, (int, float, bool, np.number, np.bool_)):
        raise TypeError(f"full(): argument 'fill_value' must be Number, not "
                        f"{type(fill_value).__name__}")
    if dtype is None:
        dtype = D.scalar_dtype(fill_value)
    return _finish(np.full(_size((size,)), fill_value, _dt(dtype).np), _resolve_device(device),
                   requires_grad)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _finish(np.eye(n, m, dtype=_dt(dtype).np), _resolve_device(device), requires_grad)


def arange(start=0, end=None, step=1, *, dtype=None, device=None,
           requires_grad=False) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive) by ``step``; int64 for integer args.

    One positional argument is the end, as in PyTorch's ``arange(end)`` overload; ``start``
    defaults to 0 so that ``arange(end=5)`` works too.

    >>> arange(3), arange(end=3), arange(1, 2, 0.5)
    (tensor([0, 1, 2]), tensor([0, 1, 2]), tensor([1.0000, 1.5000]))
    """
    start, end, step = (v.item() if isinstance(v, Tensor) else v for v in (start, end, step))
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = D.int64 if is_int else D.get_default_dtype()
    dt = D.to_dtype(dtype)
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: upper bound and lower bound inconsistent with step sign "
                           f"(start={start}, end={end}, step={step})")
    n = int(np.ceil((float(end) - float(start)) / float(step)))
    arr = (start + np.arange(max(n, 0), dtype=np.float64 if dt.is_floating_point else np.int64)
           * step).astype(dt.np)
    return _finish(arr, _resolve_device(device), requires_grad)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``steps`` values evenly spaced from ``start`` to ``end`` inclusive.

    >>> linspace(0, 1, 5).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    dt = _dt(dtype)
    steps = int(steps)
    if steps < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative, got {steps}")
    start, end = (v.item() if isinstance(v, Tensor) else v for v in (start, end))
    # PyTorch's CPU kernel, so that the values agree to the last bit: the first half counts
    # up from start, the second half down from end, in the output dtype (double step for
    # integer outputs, truncated back).
    if dt.is_floating_point:
        s, e = dt.np.type(start), dt.np.type(end)
        idx = np.arange(steps).astype(dt.np)
    else:
        s, e = float(int(start)), float(int(end))
        idx = np.arange(steps, dtype=np.float64)
    if steps == 1:
        arr = np.full(1, s)
    else:
        with np.errstate(all="ignore"):
            step = (e - s) / idx.dtype.type(max(steps - 1, 1))
            half = steps // 2
            arr = np.where(np.arange(steps) < half, s + step * idx,
                           e - step * (idx.dtype.type(steps - 1) - idx))
    return _finish(arr.astype(dt.np), _resolve_device(device), requires_grad)


def logspace(start, end, steps, base=10.0, *, dtype=None, device=None,
             requires_grad=False) -> Tensor:
    return _finish(np.logspace(start, end, steps, base=base).astype(_dt(dtype).np),
                   _resolve_device(device), requires_grad)


def _rng(generator):
    return (generator or default_generator).rng


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1)."""
    arr = _rng(generator).random(_size(size)).astype(_dt(dtype).np)
    return _finish(arr, _resolve_device(device), requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples."""
    arr = _rng(generator).standard_normal(_size(size)).astype(_dt(dtype).np)
    return _finish(arr, _resolve_device(device), requires_grad)


def randint(low=0, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad=False) -> Tensor:
    """Integers uniform in [low, high); ``randint(high, size)`` as in PyTorch's overload.

    >>> randint(5, (2,)).shape, randint(high=5, size=(2,)).shape, randint(1, 5, (2,)).shape
    (tapegrad.Size([2]), tapegrad.Size([2]), tapegrad.Size([2]))
    """
    if size is None:
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if low >= high:
        raise RuntimeError(f"randint: expects 'low' to be less than 'high', but got "
                           f"low={low} >= high={high}")
    arr = _rng(generator).integers(low, high, size=_size((size,)))
    return _finish(arr.astype((D.int64 if dtype is None else D.to_dtype(dtype)).np),
                   _resolve_device(device), requires_grad)


def randperm(n, *, generator=None, dtype=None, device=None) -> Tensor:
    arr = _rng(generator).permutation(n)
    return _finish(arr.astype((D.int64 if dtype is None else D.to_dtype(dtype)).np),
                   _resolve_device(device), False)


def normal(mean, std, size=None, *, generator=None) -> Tensor:
    if size is not None:
        return randn(*size, generator=generator) * std + mean
    m = mean if isinstance(mean, Tensor) else None
    s = std if isinstance(std, Tensor) else None
    shape = tuple((m if m is not None else s).shape)
    return randn(*shape, generator=generator,
                 dtype=(m if m is not None else s).dtype) * std + mean


def bernoulli(input, p=None, *, generator=None) -> Tensor:
    probs = input._host() if p is None else np.full(input._data.shape, p)
    arr = (_rng(generator).random(input._data.shape) < probs).astype(input.dtype.np)
    return _finish(arr, input.device, False)


def multinomial(input, num_samples, replacement=False, *, generator=None) -> Tensor:
    p = input._host().astype(np.float64)
    rng = _rng(generator)
    rows = p.reshape(-1, p.shape[-1])
    out = np.stack([rng.choice(r.size, num_samples, replace=replacement, p=r / r.sum())
                    for r in rows])
    return _finish(out.reshape(p.shape[:-1] + (num_samples,)).astype(np.int64), input.device,
                   False)


def _like(x, dtype, device):
    return (x.dtype if dtype is None else D.to_dtype(dtype)), (x.device if device is None
                                                                else device)


def zeros_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    dt, dev = _like(input, dtype, device)
    return zeros(tuple(input.shape), dtype=dt, device=dev, requires_grad=requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    dt, dev = _like(input, dtype, device)
    return ones(tuple(input.shape), dtype=dt, device=dev, requires_grad=requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    dt, dev = _like(input, dtype, device)
    return empty(tuple(input.shape), dtype=dt, device=dev, requires_grad=requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    dt, dev = _like(input, dtype, device)
    return full(tuple(input.shape), fill_value, dtype=dt, device=dev,
                requires_grad=requires_grad)


def rand_like(input, *, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    dt, dev = _like(input, dtype, device)
    return rand(tuple(input.shape), generator=generator, dtype=dt, device=dev,
                requires_grad=requires_grad)


def randn_like(input, *, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    dt, dev = _like(input, dtype, device)
    return randn(tuple(input.shape), generator=generator, dtype=dt, device=dev,
                 requires_grad=requires_grad)


def randint_like(input, low=0, high=None, *, generator=None, dtype=None, device=None,
                 requires_grad=False) -> Tensor:
    dt, dev = _like(input, dtype, device)
    return randint(low, high, tuple(input.shape), generator=generator, dtype=dt, device=dev,
                   requires_grad=requires_grad)
