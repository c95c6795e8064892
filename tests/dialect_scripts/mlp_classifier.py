"""An MLP classifier: Sequential, CrossEntropyLoss, SGD with Nesterov momentum, DataLoader."""

import numpy as np


def run(torch):
    nn = torch.nn
    # Attribute access, not `from torch.utils.data import ...`: an import statement looks up
    # the module called "torch" in sys.modules, not the library this function was handed.
    DataLoader, TensorDataset = torch.utils.data.DataLoader, torch.utils.data.TensorDataset

    rng = np.random.default_rng(1)
    X = rng.normal(size=(48, 4))
    labels = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(np.int64) + (X[:, 3] > 1)
    dataset = TensorDataset(torch.tensor(X), torch.tensor(labels))
    loader = DataLoader(dataset, batch_size=16, shuffle=False, drop_last=False)

    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(),
                          nn.Linear(16, 3))
    # RNGs differ between libraries: initialise from numpy.
    init = {name: torch.tensor(rng.normal(scale=0.5, size=tuple(p.shape)))
            for name, p in model.state_dict().items()}
    model.load_state_dict(init)

    criterion = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                          weight_decay=1e-3)
    losses = []
    for _epoch in range(3):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.item())

    model.eval()
    with torch.no_grad():
        logits = model(dataset.tensors[0])
        probs = logits.softmax(dim=1)
        pred = logits.argmax(dim=1)
        accuracy = (pred == dataset.tensors[1]).float().mean()
    smooth = nn.CrossEntropyLoss(label_smoothing=0.1, reduction="sum")(logits, dataset.tensors[1])
    params = {name: p for name, p in model.named_parameters()}
    momentum = [opt.state[p]["momentum_buffer"] for p in model.parameters()]
    return {"losses": losses, "accuracy": accuracy.item(), "probs": probs, "pred": pred,
            "smooth": smooth, "params": params, "momentum": momentum,
            "n_batches": len(loader), "n_params": sum(p.numel() for p in model.parameters())}
