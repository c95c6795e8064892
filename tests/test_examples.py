"""Small runs of every script in examples/ (seconds each): they train, improve, and write plots."""

import importlib.util
import os
import warnings

import numpy as np
import pytest

import tapegrad

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}",
                                                  os.path.join(EXAMPLES, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # On a busy machine, multi-threaded BLAS on tiny matrices spends its time spinning.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1):
        yield


def _is_png(path):
    with open(path, "rb") as fh:
        return fh.read(8) == b"\x89PNG\r\n\x1a\n"


def _tutorial_costs(iterations, lr=0.01, mu=0.9):
    """The Theano tutorial's training loop by hand in NumPy (float64): forward, backprop
    written out, and its simultaneous updates w <- w - lr*u; u <- mu*u + (1-mu)*g."""
    ex = _load("gaussians_mlp")
    x, y, init, _ = ex.make_data()
    params = [a.copy() for pair in init for a in pair]  # W1, b1, W2, b2
    buffers = [np.zeros_like(p) for p in params]
    costs = []
    for _ in range(iterations):
        w1, b1, w2, b2 = params
        h = 1 / (1 + np.exp(-(x @ w1.T + b1)))
        out = 1 / (1 + np.exp(-(h @ w2.T + b2)))[:, 0]
        costs.append(((out - y) ** 2).sum())
        dz2 = (2 * (out - y) * out * (1 - out))[:, None]
        dz1 = (dz2 @ w2) * h * (1 - h)
        grads = [dz1.T @ x, dz1.sum(0), dz2.T @ h, dz2.sum(0)]
        for p, u, g in zip(params, buffers, grads):
            p -= lr * u
            u *= mu
            u += (1 - mu) * g
    return costs


def test_gaussians_matches_the_tutorial_update_exactly():
    ex = _load("gaussians_mlp")
    res = ex.main(["--iterations", "12", "--dtype", "float64", "--no-plot", "--quiet"])
    np.testing.assert_allclose(res["costs"], _tutorial_costs(12), rtol=1e-10)


def test_gaussians_trains_and_plots(tmp_path, capsys):
    ex = _load("gaussians_mlp")
    png = tmp_path / "gauss.png"
    res = ex.main(["--iterations", "40", "--out", str(png)])
    out = capsys.readouterr().out
    assert "iteration   40  cost" in out and "accuracy" in out
    assert res["costs"][-1] < 0.75 * res["costs"][0]
    assert res["accuracies"][-1] > 0.78  # the Bayes-optimal accuracy here is 0.836
    assert res["accuracies"][-1] <= res["bayes_accuracy"] + 0.02
    assert png.exists() and _is_png(png)


def test_digits_mlp_short_run(tmp_path):
    ex = _load("digits_mlp")
    png = tmp_path / "digits.png"
    res = ex.main(["--epochs", "3", "--out", str(png), "--quiet"])
    assert res["loss"][-1] < res["loss"][0] < 2.5
    assert res["test_acc"][-1] > 0.9  # the full 40-epoch run reaches about 0.98
    assert png.exists() and _is_png(png)


@pytest.mark.slow
def test_digits_mlp_full_run_reaches_97_percent():
    ex = _load("digits_mlp")
    res = ex.main(["--no-plot", "--quiet"])  # the default 40 epochs: about 15 s
    assert res["test_acc"][-1] >= 0.97


def test_birnn_sequence_learns(capsys):
    ex = _load("birnn_sequence")
    res = ex.main(["--steps", "60", "--length", "12", "--hidden", "16", "--no-compare",
                   "--quiet"])
    assert np.mean(res["losses"][-10:]) < 0.8 * np.mean(res["losses"][:5])
    assert res["accuracy"] > res["initial_accuracy"] + 0.1
    assert "3-layer bidirectional RNN" in capsys.readouterr().out


def test_birnn_sequence_compiled_trains_like_eager(capsys):
    ex = _load("birnn_sequence")
    argv = ["--steps", "8", "--length", "8", "--hidden", "8", "--no-compare", "--quiet"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # it compiles: no fallback warning
        eager, comp = ex.main(argv), ex.main(argv + ["--compile"])
    np.testing.assert_allclose(comp["losses"], eager["losses"], rtol=1e-4)
    assert comp["accuracy"] == pytest.approx(eager["accuracy"], abs=0.01)
    assert "bidirectional, compiled RNN" in capsys.readouterr().out


def test_birnn_windows_and_timing():
    ex = _load("birnn_sequence")
    x, y = ex.make_batch(np.random.RandomState(0), 4, 9)
    bits = (x[..., 0] > 0).astype(int)
    assert y[2, 4] == bits[2, 2:7].sum() and y[1, 0] == bits[1, :3].sum()
    pytest.importorskip("torch")
    res = ex.main(["--steps", "1", "--length", "6", "--hidden", "8", "--timing-steps", "2",
                   "--quiet", "--threads", "1"])
    assert res["timing"]["tapegrad_ms"] > 0 and res["timing"]["torch_ms"] > 0
    assert res["timing"]["torch_threads"] == 1


def test_char_rnn_tbptt_learns_and_samples(capsys):
    ex = _load("char_rnn_tbptt")
    res = ex.main(["--epochs", "12", "--hidden", "48", "--layers", "1", "--bptt", "16",
                   "--lr", "0.01", "--sample-chars", "40", "--quiet"])
    bits = res["bits_per_char"]
    assert bits[-1] < 0.8 * bits[0]
    # 856 chars in 8 streams of 106, cut every 16: 7 chunks per epoch, one clip each
    assert len(res["grad_norms"]) == 12 * 7
    assert res["sample"].startswith("The ") and len(res["sample"]) == 4 + 40
    zen = ex.zen_of_python()
    assert set(res["sample"]) <= set(zen)
    assert "sample:" in capsys.readouterr().out


def test_char_rnn_corpora_ship_with_python():
    ex = _load("char_rnn_tbptt")
    zen = ex.zen_of_python()
    assert zen.startswith("The Zen of Python") and "Beautiful is better than ugly." in zen
    docs = ex.stdlib_docstrings(("textwrap", "json"))
    assert docs.startswith(zen) and len(docs) > 3000


def test_char_rnn_state_is_detached_between_chunks():
    ex = _load("char_rnn_tbptt")
    tapegrad.manual_seed(0)
    model = ex.CharLSTM(5, embed=4, hidden=6, layers=1)
    x = tapegrad.randint(0, 5, (2, 7))
    _, state = model(x[:, :4])
    state = tuple(s.detach() for s in state)
    logits, _ = model(x[:, 4:], state)
    logits.sum().backward()
    assert all(s.grad is None and not s.requires_grad for s in state)
    assert model.lstm.weight_hh_l0.grad is not None
