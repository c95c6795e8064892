"""Indexing, scatter_add, gather, einsum, cumsum, where, masked_fill, cat/stack/split, with
gradients flowing through all of it."""

import numpy as np


def run(torch):
    rng = np.random.default_rng(7)
    x = torch.tensor(rng.normal(size=(4, 5)), requires_grad=True)
    w = torch.tensor(rng.normal(size=(5, 3)), requires_grad=True)
    idx = torch.tensor([[0, 2, 4], [1, 1, 3], [4, 0, 0], [2, 3, 1]])
    seg = torch.tensor([0, 1, 0, 2])

    picked = x.gather(1, idx)                                  # (4, 3)
    pooled = torch.zeros(3, 3).scatter_add(0, seg.unsqueeze(1).expand(-1, 3), picked)
    bil = torch.einsum("ij,jk,ik->i", x, w, picked)
    mixed = torch.einsum("bi,ij->bj", x, w)
    csum = torch.cumsum(x, dim=1)
    clipped = torch.where(x > 0, x, 0.1 * x)
    masked = x.masked_fill(x.abs() < 0.5, 0.0)
    parts = torch.split(x, [2, 3], dim=1)
    chunks = x.chunk(2, dim=0)
    glued = torch.cat([parts[1], parts[0]], dim=1)
    stacked = torch.stack([chunks[0], chunks[1].flip(0)], dim=0)  # (2, 2, 5)
    rows = x[[0, 3, 3]]                                        # integer-array indexing
    sub = x[1:, ::2][..., None]                                 # slices, step, None
    positive = x[x > 0]                                         # boolean mask
    cols = x[:, torch.tensor([4, 0])]
    sel = torch.index_select(x, 0, torch.tensor([2, 0]))
    along = torch.take_along_dim(x, x.argmax(dim=1, keepdim=True), dim=1)
    unb = torch.unbind(x, dim=1)
    nar = x.narrow(1, 1, 3).permute(1, 0).reshape(-1)
    y = x.clone()
    y[0, :] = 0.0                                               # __setitem__ on a copy
    y[:, 1] += 1.0
    y[y < -1] = -1.0

    total = (pooled.sum() + bil.pow(2).sum() + mixed.tanh().sum() + csum.mean()
             + clipped.sum() + masked.pow(2).sum() + glued[:, 0].sum() + stacked.std()
             + rows.sum() * 0.5 + sub.exp().sum() * 0.1 + positive.sum() + cols.prod()
             + sel.amax() + along.sum() + unb[2].sum() * 3 + nar.logsumexp(dim=0)
             + y.sum() + x.var(dim=0, unbiased=False).sum() + (x.t().mm(x) * torch.eye(5)).sum())
    total.backward()
    return {"total": total, "x_grad": x.grad, "w_grad": w.grad, "pooled": pooled, "bil": bil,
            "csum": csum, "masked": masked, "glued": glued, "stacked": stacked, "rows": rows,
            "sub": sub, "positive": positive, "cols": cols, "along": along, "nar": nar, "y": y,
            "shapes": [list(t.shape) for t in (picked, pooled, stacked, sub, cols, along)],
            "argmin": x.argmin(), "max": x.max(dim=1).values, "maxi": x.max(dim=1).indices,
            "any": float(torch.any(x > 2)), "all": float((x > -5).all()),
            "isfinite": float(torch.isfinite(x / 0.0).sum()),
            "clamped": x.clamp(min=-0.5, max=0.5), "norm": x.norm(), "fro": x.norm(dim=1),
            "sorted_sign": torch.sign(x).sum(dim=0), "floordiv": (x * 3) // 1,
            "mod": (x * 3) % 1.5}
