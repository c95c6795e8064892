"""In-place operations, and state_dict save/load round trips through torch.save/torch.load."""

import os
import tempfile

import numpy as np


def run(torch):
    nn = torch.nn
    rng = np.random.default_rng(8)

    # In-place arithmetic on non-leaf tensors inside a differentiable computation.
    a = torch.tensor(rng.normal(size=(3, 4)), requires_grad=True)
    h = a * 2
    h.add_(1.0).mul_(torch.tensor(rng.normal(size=(4,))))
    h.clamp_(min=-1.5, max=1.5)
    h += a.exp()
    h -= 0.5
    h *= a
    h /= 2.0
    h[:, 0] = a[:, 1] ** 2
    h.sub_(a, alpha=0.5).div_(1.5)
    loss = h.pow(2).sum()
    loss.backward()
    version_ok = 0.0
    try:
        s = a.sigmoid()
        s.mul_(2)  # sigmoid saves its output: backward must refuse
        s.sum().backward()
    except RuntimeError:
        version_ok = 1.0

    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.BatchNorm1d(6), nn.Linear(6, 2))
    model.load_state_dict({k: (torch.tensor(rng.normal(size=tuple(v.shape)))
                               if k.endswith(("weight", "bias")) else v)
                           for k, v in model.state_dict().items()})
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1, amsgrad=True)
    x = torch.tensor(rng.normal(size=(8, 4)))
    target = torch.tensor(rng.normal(size=(8, 2)))

    def train_step():
        opt.zero_grad()
        out = nn.functional.smooth_l1_loss(model(x), target, beta=0.5)
        out.backward()
        opt.step()
        return out.item()

    first = [train_step() for _ in range(2)]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ckpt.pt")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": 2,
                    "history": first}, path)
        after_save = [train_step() for _ in range(2)]
        ckpt = torch.load(path)

    model2 = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.BatchNorm1d(6), nn.Linear(6, 2))
    model2.load_state_dict(ckpt["model"])
    model.load_state_dict(model2.state_dict())
    opt.load_state_dict(ckpt["opt"])
    resumed = [train_step() for _ in range(2)]

    with torch.no_grad():
        w = model[0].weight
        w.mul_(0.5).add_(1.0)
        w.copy_(w.clamp(max=1.1))
        model[3].weight[0].fill_(0.25)
        model[3].bias.zero_()
    return {"a_grad": a.grad, "h": h, "version_check_raised": version_ok, "first": first,
            "after_save": after_save, "resumed": resumed, "epoch": ckpt["epoch"],
            "history": ckpt["history"], "state": dict(model.state_dict()),
            "opt_state": [opt.state[p]["max_exp_avg_sq"] for p in model.parameters()],
            "model2_out": model2.eval()(x)}
