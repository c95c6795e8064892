"""Linear regression trained by hand: autograd for the gradient, updates under no_grad."""

import numpy as np


def run(torch):
    rng = np.random.default_rng(0)
    X = torch.tensor(rng.normal(size=(40, 3)))
    true_w = torch.tensor([[1.5], [-2.0], [0.5]])
    y = X @ true_w + 0.3 + 0.05 * torch.from_numpy(rng.normal(size=(40, 1)))

    w = torch.zeros(3, 1, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    lr = 0.1
    losses = []
    for _ in range(30):
        pred = X.mm(w) + b
        loss = ((pred - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            b.sub_(lr * b.grad)
            w.grad.zero_()
            b.grad = None
        losses.append(loss.item())

    @torch.no_grad()
    def predict(inputs):
        return inputs @ w + b

    test = predict(X[:5])
    return {"w": w, "b": b, "losses": losses, "test": test,
            "test_requires_grad": float(test.requires_grad), "is_leaf": float(w.is_leaf)}
