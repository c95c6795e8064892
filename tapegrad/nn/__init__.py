"""``tapegrad.nn``: modules, layers, losses, and the ``functional``, ``init`` and ``utils``
submodules, with PyTorch's names, arguments, parameter names and initialisation.

>>> import tapegrad.nn as nn
>>> model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
>>> list(model.state_dict())
['0.weight', '0.bias', '2.weight', '2.bias']
"""

from tapegrad.nn import functional, init, utils  # noqa: F401
from tapegrad.nn.activation import (CELU, ELU, GELU, GLU, SELU, Hardsigmoid,  # noqa: F401
                                    Hardswish, Hardtanh, LeakyReLU, LogSigmoid, LogSoftmax,
                                    Mish, PReLU, ReLU, ReLU6, Sigmoid, SiLU, Softmax, Softmin,
                                    Softplus, Softsign, Tanh, Tanhshrink, Threshold)
from tapegrad.nn.container import (ModuleDict, ModuleList, ParameterDict,  # noqa: F401
                                   ParameterList, Sequential)
from tapegrad.nn.conv import Conv1d, Conv2d  # noqa: F401
from tapegrad.nn.dropout import Dropout, Dropout1d, Dropout2d  # noqa: F401
from tapegrad.nn.linear import Bilinear, Flatten, Identity, Linear, Unflatten  # noqa: F401
from tapegrad.nn.loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss,  # noqa: F401
                              HuberLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss)
from tapegrad.nn.module import Module  # noqa: F401
from tapegrad.nn.normalization import (BatchNorm1d, BatchNorm2d, GroupNorm,  # noqa: F401
                                       LayerNorm)
from tapegrad.nn.parameter import Buffer, Parameter  # noqa: F401
from tapegrad.nn.pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d,  # noqa: F401
                                 AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d)
from tapegrad.nn.rnn import GRU, LSTM, RNN, RNNBase  # noqa: F401
from tapegrad.nn.rnn_cells import GRUCell, LSTMCell, RNNCell, RNNCellBase  # noqa: F401
from tapegrad.nn.sparse import Embedding  # noqa: F401
