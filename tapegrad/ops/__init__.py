"""The op registry: one module per family, each op's forward, vjp and jvp side by side.

    elementwise  binary arithmetic, comparisons, where, clamp
    unary        unary math
    activation   tanh, sigmoid, relu and their fused derivative primitives
    reduce       sum, mean, max, var, norm, logsumexp, cumsum...
    shape        reshape, permute, expand, cat, stack, split...
    index        x[...], gather, scatter, index_select, masked_fill
    linalg       matmul, mm, bmm, einsum
    convert      dtype casts, clone, device moves
    inplace      add_, setitem and the version-counter bookkeeping
"""

from tapegrad.ops.convert import clone, contiguous  # noqa: F401
from tapegrad.ops.elementwise import *  # noqa: F401,F403
from tapegrad.ops.compare import *  # noqa: F401,F403
from tapegrad.ops.select import *  # noqa: F401,F403
from tapegrad.ops.index import *  # noqa: F401,F403
from tapegrad.ops.linalg import *  # noqa: F401,F403
from tapegrad.ops.reduce import *  # noqa: F401,F403
from tapegrad.ops.shape import *  # noqa: F401,F403
from tapegrad.ops.unary import *  # noqa: F401,F403
from tapegrad.ops.activation import *  # noqa: F401,F403
