"""`python benchmarks/run.py --quick` runs every workload and prints a table of numbers."""

from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(__file__)


def test_benchmark_table_quick(capsys):
    pytest.importorskip("torch")
    sys.path.insert(0, os.path.join(HERE, "..", "benchmarks"))
    import run

    results = run.main(["--quick"])
    out = capsys.readouterr().out
    for name in ("per-op chain", "chain compile", "MLP step", "RNN BPTT", "RNN BPTT compile",
                 "optimizer step", "nn.RNN 3L bi", "hvp_mlp"):
        assert name in out
    assert set(run.ORDER) <= set(results) == set(run.workloads())
    for r in results.values():
        ours = r.get("tapegrad", r.get("tapegrad_ms"))
        assert ours is not None and ours > 0
        assert (r.get("torch") or r.get("torch_ms")) > 0
    # One line per target, its verdict agreeing with the ratio printed beside it.
    lines = run.target_lines(results)
    assert len(lines) == len(run.TARGETS)
    for line, (_, _, bound) in zip(lines, run.TARGETS):
        assert line in out
        ratio = float(line.split()[-2].rstrip("x"))
        assert line.endswith("met" if ratio <= bound else "MISSED")


def test_medium_op_cases_run_and_give_finite_gradients():
    import numpy as np

    import tapegrad

    sys.path.insert(0, os.path.join(HERE, "..", "benchmarks"))
    import ops_medium

    for name, (shapes, loss, extras) in ops_medium.CASES.items():
        step = ops_medium._step(tapegrad, shapes, loss, extras)
        step()
        for t in step.tensors:
            assert t.grad is not None and t.grad.shape == t.shape, name
            assert np.isfinite(t.grad.numpy()).all(), name


def test_model_blocks_run_and_every_parameter_gets_a_finite_gradient():
    import numpy as np

    import tapegrad

    sys.path.insert(0, os.path.join(HERE, "..", "benchmarks"))
    import model_blocks

    for name, make in model_blocks.BLOCKS.items():
        step, params = make(tapegrad)
        step()
        for p in params:
            assert p.grad is not None and np.isfinite(p.grad.numpy()).all(), name


def test_the_toy_tape_bound_computes_the_rnn_gradient():
    import numpy as np

    sys.path.insert(0, os.path.join(HERE, "..", "benchmarks"))
    import rnn_tape_bound
    import wl_rnn

    np.testing.assert_allclose(rnn_tape_bound.toy_step(), wl_rnn._numpy()(), rtol=1e-3,
                               atol=1e-3)


def test_startup_measures_a_cold_and_a_warm_cache(capsys):
    # Fresh processes: importing tapegrad imports no numba; the first step with an empty
    # cache compiles (slower than the warm one, which loads the cached kernels).
    sys.path.insert(0, os.path.join(HERE, "..", "benchmarks"))
    import startup

    m = startup.main(["--repeats", "1"])
    assert m["numba_at_import"] is False
    assert 0 < m["warm_import_s"] < 10
    assert m["cold_first_step_s"] > m["warm_first_step_s"] > m["warm_second_step_s"] > 0
    assert "empty cache" in capsys.readouterr().out


def test_gc_pauses_compares_a_frozen_heap_with_the_plain_one():
    # Two fresh processes (no PyTorch in them): after gc.freeze() the collector walks almost
    # nothing, so a full collection is much shorter than in the plain process.
    sys.path.insert(0, os.path.join(HERE, "..", "benchmarks"))
    import gc_pauses

    res = gc_pauses.measure(steps=10, rounds=1)
    plain, frozen = res["as is"], res["gc.freeze()"]
    for r in (plain, frozen):
        assert 0 < r["median"] <= r["p99"] <= r["max"]
    assert plain["tracked"] > 10 * frozen["tracked"]
    assert frozen["collect_ms"] < plain["collect_ms"]
