"""autograd.functional: hessian, jacobian, vjp, jvp, hvp, vhp."""

import numpy as np


def run(torch):
    AF = torch.autograd.functional
    rng = np.random.default_rng(6)
    A = torch.tensor(rng.normal(size=(3, 3)))

    def energy(x):
        return 0.5 * x @ A @ x + torch.log1p(x ** 2).sum() + x.prod().sin()

    def field(x, y):
        return torch.stack([x.exp().sum() * y[0], (x * y).sum(), torch.tanh(x[0] * y[1])])

    x = torch.tensor([0.2, -0.5, 0.9])
    y = torch.tensor([1.1, 0.4, -0.3])
    v = torch.tensor([1.0, -1.0, 0.5])

    H = AF.hessian(energy, x)
    H_graph = AF.hessian(energy, x, create_graph=True)
    Jx, Jy = AF.jacobian(field, (x, y))
    out_vjp, vjp = AF.vjp(field, (x, y), v)
    out_jvp, jvp = AF.jvp(field, (x, y), (v, v * 2))
    val_hvp, hvp = AF.hvp(energy, x, v)
    val_vhp, vhp = AF.vhp(energy, x, v)
    vec_jac = AF.jacobian(lambda z: z.softmax(dim=0) * z.sum(), x)
    hess_pair = AF.hessian(lambda a, b: (a * b.exp()).sum() * a.sum(), (x, y))
    return {"H": H, "H_graph_requires_grad": float(H_graph.requires_grad),
            "Jx": Jx, "Jy": Jy, "out_vjp": out_vjp, "vjp": list(vjp), "out_jvp": out_jvp,
            "jvp": jvp, "val_hvp": val_hvp, "hvp": hvp, "vhp": vhp, "val_vhp": val_vhp,
            "vec_jac": vec_jac, "hess_pair": [list(row) for row in hess_pair]}
