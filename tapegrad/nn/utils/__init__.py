"""``tapegrad.nn.utils``: gradient clipping and parameter/vector conversion."""

from tapegrad.nn.utils.clip_grad import (clip_grad_norm, clip_grad_norm_,  # noqa: F401
                                         clip_grad_value_, clip_grads_with_norm_,
                                         get_total_norm)
from tapegrad.nn.utils.convert_parameters import (parameters_to_vector,  # noqa: F401
                                                  vector_to_parameters)

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm",
           "clip_grads_with_norm_", "parameters_to_vector", "vector_to_parameters"]
