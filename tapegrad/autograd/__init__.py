"""Automatic differentiation: grad modes, the engine, custom Functions and checks."""

from tapegrad.autograd.anomaly import (detect_anomaly, is_anomaly_check_nan_enabled,
                                      is_anomaly_enabled, set_detect_anomaly)
from tapegrad.autograd.engine import backward, grad
from tapegrad.autograd.function import Function, FunctionCtx, once_differentiable
from tapegrad.autograd.grad_mode import (enable_grad, inference_mode, is_grad_enabled,
                                         no_grad, set_grad_enabled)
from tapegrad.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck
from tapegrad.autograd import forward_ad, functional  # noqa: E402,I001

__all__ = ["backward", "grad", "Function", "FunctionCtx", "once_differentiable", "no_grad",
           "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode",
           "gradcheck", "gradgradcheck", "GradcheckError", "forward_ad", "functional",
           "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
           "is_anomaly_check_nan_enabled"]
