"""A small CNN: Conv2d, MaxPool2d, Flatten, Linear, BatchNorm1d, LayerNorm, Dropout; running
statistics from train mode, then gradients in eval mode."""

import numpy as np


def run(torch):
    nn = torch.nn
    F = nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 4, kernel_size=3, padding=1), nn.ReLU(),
                nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, stride=1), nn.LeakyReLU(0.1),
                nn.Flatten(), nn.Linear(6 * 2 * 2, 8), nn.BatchNorm1d(8))
            self.head = nn.Sequential(nn.LayerNorm(8), nn.GELU(), nn.Dropout(p=0.5),
                                      nn.Linear(8, 3))

        def forward(self, x):
            return self.head(self.features(x))

    rng = np.random.default_rng(4)
    net = Net()
    state = {}
    for k, v in net.state_dict().items():
        if k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            state[k] = v
        else:
            state[k] = torch.tensor(rng.normal(scale=0.4, size=tuple(v.shape)))
    net.load_state_dict(state)
    x = torch.tensor(rng.normal(size=(5, 1, 8, 8)))
    y = torch.tensor([0, 2, 1, 1, 0])

    net.train()
    train_feats = []
    for i in range(2):  # batch statistics; running statistics updated
        feats = net.features(x * (i + 1))
        train_feats.append(feats)
    # (Not the mean of squares: batch normalisation makes that constant in its input.)
    ((train_feats[0] ** 3).sum() + train_feats[1][:, :3].exp().sum()).backward()
    train_grad = net.features[0].weight.grad.clone()
    net.zero_grad()

    net.eval()
    out = net(x)
    loss = F.cross_entropy(out, y) + F.nll_loss(F.log_softmax(out, dim=1), y, reduction="sum")
    loss.backward()
    bn = net.features[7]
    return {"train_feats": train_feats, "train_grad": train_grad, "out": out, "loss": loss,
            "grads": [p.grad for p in net.parameters()], "running_mean": bn.running_mean,
            "running_var": bn.running_var, "tracked": bn.num_batches_tracked,
            "training": float(net.head[2].training)}
