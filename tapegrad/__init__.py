"""tapegrad: an eager, tape-based automatic-differentiation framework that speaks PyTorch.

>>> import tapegrad as torch
>>> x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (x ** 2).sum().backward()
>>> x.grad
tensor([2., 4., 6.])
"""

import warnings as _warnings

# PyTorch computes inf / nan silently (1 / 0 is inf, log(-1) is nan): so do we. NumPy would
# warn from inside tapegrad's own code on every such op. A filter scoped to warnings raised
# in tapegrad's modules costs nothing per op (an np.errstate block costs ~2.4 us) and leaves
# NumPy's warnings in the user's own code untouched.
_warnings.filterwarnings(
    "ignore", r"(divide by zero|overflow|underflow|invalid value) encountered",
    RuntimeWarning, r"tapegrad(\.|$)")

from tapegrad import backends  # noqa: E402,F401
from tapegrad.backends import get_num_threads, set_num_threads
from tapegrad._device import device
from tapegrad._dtype import (bool, double, dtype, float, float16, float32, float64,  # noqa: A004
                             get_default_dtype, half, int, int8, int16, int32, int64, long,
                             promote_types, set_default_dtype, short, uint8)
from tapegrad._size import Size
from tapegrad.tensor import Tensor
from tapegrad.creation import *  # noqa: F401,F403
from tapegrad.ops import *  # noqa: F401,F403
from tapegrad.ops.reduce import all, any, max, min, sum  # noqa: F401,A004
from tapegrad.ops.unary import abs, round  # noqa: F811,A004
from tapegrad.ops.elementwise import pow  # noqa: F811,A004
from tapegrad.autograd.grad_mode import (enable_grad, inference_mode, is_grad_enabled,
                                         is_inference_mode_enabled, no_grad, set_grad_enabled)
from tapegrad import autograd  # noqa: F401
from tapegrad import optim  # noqa: F401
from tapegrad import cuda  # noqa: F401

__version__ = "0.1.0"


def is_tensor(obj) -> bool:
    """True for tapegrad tensors."""
    return isinstance(obj, Tensor)


def numel(input) -> int:
    return input.numel()


def is_floating_point(input) -> bool:
    return input.dtype.is_floating_point


def result_type(tensor1, tensor2) -> dtype:
    from tapegrad._dtype import result_type as _rt

    return _rt(tensor1, tensor2)


from tapegrad.serialization import load, save  # noqa: E402
from tapegrad import utils  # noqa: E402,F401
from tapegrad import nn  # noqa: E402,F401
from tapegrad import viz  # noqa: E402,F401
from tapegrad.compiler import compile  # noqa: E402,A001
