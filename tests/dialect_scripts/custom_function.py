"""Custom autograd.Function subclasses: saved tensors, needs_input_grad, non-differentiable
outputs, and a straight-through estimator."""

import numpy as np


def run(torch):
    class ScaledExp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale):
            out = torch.exp(x) * scale
            ctx.save_for_backward(out, scale)
            return out

        @staticmethod
        def backward(ctx, grad_out):
            out, scale = ctx.saved_tensors
            grad_x = grad_scale = None
            if ctx.needs_input_grad[0]:
                grad_x = grad_out * out
            if ctx.needs_input_grad[1]:
                grad_scale = (grad_out * out / scale).sum().reshape(scale.shape)
            return grad_x, grad_scale

    class SortWithIndex(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            values, order = x.max(dim=0, keepdim=True)
            ctx.mark_non_differentiable(order)
            ctx.save_for_backward(order)
            ctx.n = x.shape[0]
            return values, order

        @staticmethod
        def backward(ctx, grad_values, grad_order):
            (order,) = ctx.saved_tensors
            grad = torch.zeros(ctx.n, grad_values.shape[1], dtype=grad_values.dtype)
            return grad.scatter(0, order, grad_values)

    class RoundSTE(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return torch.round(x)

        @staticmethod
        def backward(ctx, grad):
            return grad

    rng = np.random.default_rng(2)
    x = torch.tensor(rng.normal(size=(4, 3)), requires_grad=True)
    scale = torch.tensor([1.5], requires_grad=True)
    y = ScaledExp.apply(x, scale)
    values, order = SortWithIndex.apply(y)
    q = RoundSTE.apply(x * 3) / 3
    loss = values.pow(2).sum() + (q * y).sum()
    loss.backward()

    frozen = torch.tensor([2.0])  # needs_input_grad False for scale
    z = ScaledExp.apply(x.detach().requires_grad_(), frozen)
    z.sum().backward()

    ok = torch.autograd.gradcheck(ScaledExp.apply, (x.detach().clone().requires_grad_(),
                                                    scale.detach().clone().requires_grad_()),
                                  eps=1e-6, atol=1e-5)
    return {"loss": loss, "x_grad": x.grad, "scale_grad": scale.grad, "values": values,
            "order": order, "order_requires_grad": float(order.requires_grad),
            "frozen_grad_is_none": float(frozen.grad is None), "gradcheck": float(ok)}
