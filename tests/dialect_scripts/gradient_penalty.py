"""A WGAN-GP style critic: autograd.grad with create_graph for a gradient penalty."""

import numpy as np


def run(torch):
    nn = torch.nn
    rng = np.random.default_rng(5)
    critic = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 8), nn.Softplus(),
                           nn.Linear(8, 1))
    critic.load_state_dict({k: torch.tensor(rng.normal(scale=0.6, size=tuple(v.shape)))
                            for k, v in critic.state_dict().items()})
    opt = torch.optim.Adam(critic.parameters(), lr=1e-2, betas=(0.5, 0.9))
    real = torch.tensor(rng.normal(loc=1.0, size=(16, 2)))
    fake = torch.tensor(rng.normal(loc=-1.0, size=(16, 2)))
    alpha = torch.tensor(rng.uniform(size=(16, 1)))

    penalties, losses = [], []
    for _ in range(3):
        interp = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        score = critic(interp)
        (grad,) = torch.autograd.grad(outputs=score, inputs=interp,
                                      grad_outputs=torch.ones_like(score),
                                      create_graph=True, retain_graph=True)
        penalty = ((grad.norm(2, dim=1) - 1) ** 2).mean()
        loss = critic(fake).mean() - critic(real).mean() + 10.0 * penalty
        opt.zero_grad()
        loss.backward()
        opt.step()
        penalties.append(penalty.item())
        losses.append(loss.item())

    # Second derivative of a scalar function, twice differentiated by hand.
    t = torch.tensor([0.3, -0.7, 1.1], requires_grad=True)
    f = (t.sin() * t.exp()).sum()
    (g,) = torch.autograd.grad(f, t, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), t, create_graph=True)
    (ggg,) = torch.autograd.grad(gg.sum(), t)
    return {"penalties": penalties, "losses": losses, "grad": grad,
            "params": list(critic.parameters()), "g": g, "gg": gg, "ggg": ggg,
            "adam_step": opt.state[critic[0].weight]["step"],
            "exp_avg_sq": opt.state[critic[0].weight]["exp_avg_sq"]}
