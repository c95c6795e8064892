"""tapegrad.compile on models and layers: modules (train / eval guards), recurrent layers
(their fused scans in the program), layer norm, dropout (the same masks as eager mode),
cross-entropy and embedding (their indices checked at every replay)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tapegrad
import tapegrad.nn.functional as F


def test_a_compiled_module_trains_like_the_eager_one_and_guards_train_eval():
    def make():
        tapegrad.manual_seed(0)
        return tapegrad.nn.Sequential(tapegrad.nn.Linear(6, 16), tapegrad.nn.Tanh(),
                                      tapegrad.nn.Linear(16, 3))

    eager, comp = make(), tapegrad.compile(make())
    assert isinstance(comp, tapegrad.nn.Module)
    assert set(comp.state_dict()) == {"_orig_mod." + k for k in eager.state_dict()}
    x = tapegrad.randn(8, 6)
    y = tapegrad.randn(8, 3)
    out = []
    for m in (eager, comp):
        opt = tapegrad.optim.Adam(m.parameters(), lr=1e-2)
        losses = []
        for _ in range(4):
            opt.zero_grad()
            loss = F.mse_loss(m(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        out.append(losses)
    np.testing.assert_allclose(out[1], out[0], rtol=1e-6)
    comp.eval()
    comp(x)
    assert len(comp._compiled._cache) == 2  # train and eval are two guards


def test_cross_entropy_replays_with_new_targets_and_ignored_rows():
    """The mean's divisor is counted from each call's targets (not frozen at the trace)."""
    w = tapegrad.randn(5, 4, dtype=tapegrad.float64, requires_grad=True)

    def loss(x, y):
        return F.cross_entropy(x @ w, y, ignore_index=-1)

    comp = tapegrad.compile(loss)
    rng = np.random.default_rng(0)
    x = tapegrad.tensor(rng.standard_normal((6, 5)))
    for k, n_ignored in enumerate([0, 1, 3, 5]):
        y = rng.integers(0, 4, 6)
        y[:n_ignored] = -1
        y = tapegrad.tensor(y)
        w.grad = None
        lc = comp(x, y)
        lc.backward()
        gc = w.grad.numpy().copy()
        w.grad = None
        le = loss(x, y)
        le.backward()
        np.testing.assert_allclose(lc.item(), le.item(), rtol=1e-12)
        np.testing.assert_allclose(gc, w.grad.numpy(), rtol=1e-12, atol=1e-15)
        if k:
            assert type(lc.grad_fn).__name__ == "CompiledFunctionBackward"
    with pytest.raises(IndexError, match="out of bounds"):
        comp(x, tapegrad.tensor([0, 1, 2, 3, 4, 0]))  # checked at every replay


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_recurrent_layers_compile_to_their_fused_scans(kind):
    """2-layer bidirectional layers: the replay runs the fused scans both ways (no step-by-step
    graph) and matches eager mode."""
    def make():
        tapegrad.manual_seed(0)
        return getattr(tapegrad.nn, kind)(3, 4, num_layers=2, bidirectional=True,
                                          dtype=tapegrad.float64)

    eager, comp = make(), tapegrad.compile(make())
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = tapegrad.tensor(rng.standard_normal((5, 2, 3)))
        outs = []
        for m in (eager, comp):
            m.zero_grad()
            y = m(x)[0]
            (y * y).sum().backward()
            outs.append((y.detach().numpy(), [p.grad.numpy().copy() for p in m.parameters()]))
        np.testing.assert_allclose(outs[1][0], outs[0][0], rtol=1e-12)
        for a, b in zip(outs[1][1], outs[0][1]):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    prog = next(iter(comp._compiled._cache.values())).prog
    scan = kind.capitalize() + "Scan"
    fwd = {v.__name__ for v in prog.forward.__globals__.values() if isinstance(v, type)}
    bwd = {v.__name__ for v in prog.backward.__globals__.values() if isinstance(v, type)}
    assert scan in fwd and scan + "Grad" in bwd
    assert not {"Tanh", "Sigmoid"} & (fwd | bwd)  # no step-by-step graph


def test_layer_norm_and_gelu_block_compiles():
    tapegrad.manual_seed(0)
    block = tapegrad.nn.Sequential(tapegrad.nn.Linear(8, 16), tapegrad.nn.GELU(),
                                   tapegrad.nn.LayerNorm(16), tapegrad.nn.Linear(16, 8))
    comp = tapegrad.compile(block)
    x = tapegrad.randn(4, 6, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            block.zero_grad()
            comp(x).pow(2).mean().backward()
    got = [p.grad.numpy().copy() for p in block.parameters()]
    block.zero_grad()
    block(x).pow(2).mean().backward()
    for a, p in zip(got, block.parameters()):
        np.testing.assert_allclose(a, p.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_dropout_draws_a_fresh_mask_per_replay_the_same_numbers_as_eager_mode():
    def make():
        tapegrad.manual_seed(0)
        return tapegrad.nn.Sequential(tapegrad.nn.Linear(8, 32), tapegrad.nn.ReLU(),
                                      tapegrad.nn.Dropout(0.5), tapegrad.nn.Linear(32, 2))

    x = tapegrad.randn(16, 8)
    runs = []
    for compiled in (False, True):
        model = make()
        m = tapegrad.compile(model) if compiled else model
        tapegrad.manual_seed(1)
        outs, grads = [], []
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for _ in range(4):
                model.zero_grad()
                y = m(x)
                y.pow(2).sum().backward()
                outs.append(y.detach().numpy().copy())
                grads.append(model[0].weight.grad.numpy().copy())
        runs.append((outs, grads, tapegrad.rand(1).item()))
    (oe, ge, re_), (oc, gc, rc) = runs
    for a, b in zip(oc, oe):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    for a, b in zip(gc, ge):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(oc[1], oc[2])  # a new mask per call
    assert rc == re_  # the generator moved exactly as in eager mode


def test_an_embedding_language_model_compiles_and_checks_its_indices_at_every_replay():
    class LM(tapegrad.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = tapegrad.nn.Embedding(11, 6, padding_idx=0)
            self.rnn = tapegrad.nn.LSTM(6, 8, batch_first=True)
            self.out = tapegrad.nn.Linear(8, 11)

        def forward(self, x, y):
            h = self.rnn(self.emb(x))[0]
            return F.cross_entropy(self.out(h).reshape(-1, 11), y.reshape(-1))

    def make():
        tapegrad.manual_seed(0)
        return LM()

    rng = np.random.default_rng(0)
    batches = [(tapegrad.tensor(rng.integers(0, 11, (3, 5))),
                tapegrad.tensor(rng.integers(0, 11, (3, 5)))) for _ in range(4)]
    losses = []
    for compiled in (False, True):
        model = make()
        m = tapegrad.compile(model) if compiled else model
        opt = tapegrad.optim.SGD(model.parameters(), lr=0.5)
        run = []
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for x, y in batches:
                opt.zero_grad()
                loss = m(x, y)
                loss.backward()
                opt.step()
                run.append(loss.item())
        losses.append(run)
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    with pytest.raises(IndexError, match="out of range for an embedding with 11 rows"):
        m(tapegrad.tensor(np.full((3, 5), 11)), batches[0][1])
