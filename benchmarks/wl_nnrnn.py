"""Workload 5: nn.RNN, 3 layers, bidirectional, input 32, hidden 64, batch 16, 50 steps,
float32, forward + backward (no hand-written floor: PyTorch is the reference)."""

from __future__ import annotations

import numpy as np

from harness import interleaved, torch_or_none

import tapegrad

WORKLOAD = {"name": "nn.RNN 3L bi", "unit": "ms",
            "description": "nn.RNN 3 layers bidirectional, in 32, hidden 64, batch 16, 50 steps"}


def _framework(lib, state=None):
    rnn = lib.nn.RNN(32, 64, num_layers=3, bidirectional=True)
    if state is not None:
        rnn.load_state_dict({k: lib.tensor(v) for k, v in state.items()})
    x = lib.tensor(np.random.default_rng(0).standard_normal((50, 16, 32)).astype(np.float32))

    def step():
        rnn.zero_grad()
        out, h = rnn(x)
        out.sum().backward()
        return out

    return step, rnn


def run(quick: bool = False) -> dict:
    step, rnn = _framework(tapegrad)
    state = {k: v.detach().numpy() for k, v in rnn.state_dict().items()}
    c = {"tapegrad": step}
    torch = torch_or_none()
    if torch is not None:
        c["torch"] = _framework(torch, state)[0]
    med = interleaved(c, repeats=5 if quick else 30)
    return {k: v * 1e3 for k, v in med.items()}
