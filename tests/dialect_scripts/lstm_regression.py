"""A 2-layer LSTM regressor: clip_grad_norm_, Adam, StepLR."""

import numpy as np


def run(torch):
    nn = torch.nn

    # Defined inside run() so that it subclasses the Module of the library under test.
    class LSTMRegressor(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(input_size=3, hidden_size=5, num_layers=2, batch_first=True)
            self.head = nn.Linear(5, 1)

        def forward(self, x):
            out, (h, c) = self.lstm(x)
            return self.head(out[:, -1, :]).squeeze(-1), h, c

    rng = np.random.default_rng(3)
    model = LSTMRegressor()
    model.load_state_dict({k: torch.tensor(rng.uniform(-0.4, 0.4, size=tuple(v.shape)))
                           for k, v in model.state_dict().items()})
    x = torch.tensor(rng.normal(size=(6, 7, 3)))
    target = x.sum(dim=(1, 2)) * 0.1

    opt = torch.optim.Adam(model.parameters(), lr=0.02, betas=(0.9, 0.99), weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    loss_fn = nn.MSELoss()
    losses, norms, lrs = [], [], []
    for _ in range(5):
        opt.zero_grad()
        pred, h, c = model(x)
        loss = loss_fn(pred, target)
        loss.backward()
        norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)))
        opt.step()
        sched.step()
        losses.append(loss.item())
        lrs.append(sched.get_last_lr()[0])

    h0 = torch.zeros(2, 6, 5)
    out, (hn, cn) = model.lstm(x, (h0, h0.clone()))
    return {"losses": losses, "norms": norms, "lrs": lrs, "h_shape": list(h.shape),
            "c_shape": list(c.shape), "out": out, "hn": hn, "cn": cn,
            "state": dict(model.state_dict()), "lr_final": opt.param_groups[0]["lr"]}
