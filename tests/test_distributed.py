"""Data-parallel training over MPI: each scenario runs under ``mpiexec -n 2`` in a
subprocess with a timeout, and the scripts in tests/mpi/ assert their own results."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("mpi4py")
HERE = os.path.dirname(__file__)


def _mpiexec():
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return local if os.path.exists(local) else shutil.which("mpiexec")


pytestmark = pytest.mark.skipif(_mpiexec() is None, reason="no mpiexec (pip install mpich)")


def _run(script, n=2, timeout=120):
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    return subprocess.run([_mpiexec(), "-n", str(n), sys.executable,
                           os.path.join(HERE, "mpi", script)], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.parametrize("script", ["collectives.py", "sampler.py", "ddp.py"])
def test_two_ranks(script):
    p = _run(script)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count(" ok") == 2


def test_a_failing_rank_ends_the_job_fast():
    p = _run("fail_fast.py", timeout=60)  # a hang would raise TimeoutExpired here
    assert p.returncode != 0
    assert "rank 1 failed on purpose" in p.stderr
    assert "unreachable" not in p.stdout


def test_sampler_without_mpi():
    from tapegrad.utils.data.distributed import DistributedSampler

    parts = [list(DistributedSampler(range(10), num_replicas=3, rank=k, shuffle=False))
             for k in range(3)]
    assert parts == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]
    with pytest.raises(ValueError, match="Invalid rank 3"):
        DistributedSampler(range(10), num_replicas=3, rank=3)


def test_collective_before_init_raises():
    import tapegrad
    import tapegrad.distributed as dist

    if dist.is_initialized():
        pytest.skip("a process group is already initialised in this process")
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.all_reduce(tapegrad.ones(2))


def test_ddp_digits_example_and_scaling_benchmark():
    sys.path.insert(0, os.path.join(HERE, "..", "benchmarks"))
    import ddp_scaling

    one, two, eff = ddp_scaling.main(["--epochs", "2"])
    assert one["ranks"] == 1 and two["ranks"] == 2
    assert one["accuracy"] > 0.85 and two["accuracy"] > 0.85
    assert one["samples_per_s"] > 0 and two["samples_per_s"] > 0 and eff > 0
