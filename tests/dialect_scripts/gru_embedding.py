"""A sequence classifier: Embedding, bidirectional GRU, RMSprop, cosine and exponential LR
schedules, a forward-mode directional derivative, and a parameter vector round trip."""

import numpy as np


def run(torch):
    nn = torch.nn
    F = nn.functional

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 4, padding_idx=0)
            self.rnn = nn.GRU(4, 3, num_layers=1, bidirectional=True)
            self.out = nn.Linear(6, 2)

        def forward(self, tokens):
            seq, h = self.rnn(self.emb(tokens))            # (T, B, 6), (2, B, 3)
            return self.out(seq.mean(dim=0)), h

    rng = np.random.default_rng(9)
    model = Tagger()
    state = {k: torch.tensor(rng.normal(scale=0.5, size=tuple(v.shape)))
             for k, v in model.state_dict().items()}
    state["emb.weight"][0] = 0.0
    model.load_state_dict(state)
    tokens = torch.tensor(rng.integers(0, 10, size=(6, 4)))
    labels = torch.tensor([0, 1, 1, 0])

    opt = torch.optim.RMSprop(model.parameters(), lr=0.01, alpha=0.9, momentum=0.5,
                              centered=True)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=1e-3)
    losses, lrs = [], []
    for _ in range(4):
        opt.zero_grad()
        logits, h = model(tokens)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        nn.utils.clip_grad_value_(model.parameters(), clip_value=0.2)
        opt.step()
        cosine.step()
        losses.append(loss.item())
        lrs.append(opt.param_groups[0]["lr"])

    vec = nn.utils.parameters_to_vector(model.parameters())
    nn.utils.vector_to_parameters(vec * 0.5, model.parameters())

    w = torch.zeros(3, requires_grad=True)
    adag = torch.optim.Adagrad([w], lr=0.3)
    expo = torch.optim.lr_scheduler.ExponentialLR(adag, gamma=0.8)
    for _ in range(3):
        adag.zero_grad()
        F.huber_loss(w, torch.tensor([1.0, -2.0, 3.0]), delta=1.5).backward()
        adag.step()
        expo.step()

    fwAD = torch.autograd.forward_ad
    with fwAD.dual_level():
        primal = torch.tensor([0.5, -1.0, 2.0])
        dual = fwAD.make_dual(primal, torch.tensor([1.0, 0.0, 2.0]))
        res = (dual.sin() * dual.exp()).sum() / (1 + dual.pow(2).sum())
        tangent = fwAD.unpack_dual(res).tangent
    return {"losses": losses, "lrs": lrs, "h": h, "vec": vec, "w": w, "tangent": tangent,
            "emb_pad": model.emb.weight[0], "state": dict(model.state_dict()),
            "adagrad_lr": adag.param_groups[0]["lr"]}
