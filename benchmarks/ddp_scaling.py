"""Throughput of examples/ddp_digits.py with 1 and 2 MPI ranks (one thread each).

    python benchmarks/ddp_scaling.py [--epochs 5]

Scaling efficiency = throughput(2 ranks) / (2 x throughput(1 rank)). On this project's
2-core machines both ranks share the cores with everything else, so expect less than 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "examples", "ddp_digits.py")


def _mpiexec():
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return local if os.path.exists(local) else shutil.which("mpiexec")


def throughput(ranks: int, epochs: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run([_mpiexec(), "-n", str(ranks), sys.executable, EXAMPLE, "--epochs",
                          str(epochs), "--json"], capture_output=True, text=True, env=env,
                         timeout=600, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=5)
    args = p.parse_args(argv)
    one = throughput(1, args.epochs)
    two = throughput(2, args.epochs)
    eff = two["samples_per_s"] / (2 * one["samples_per_s"])
    print(f"{'ranks':>5} {'samples/s':>10} {'accuracy':>9}")
    for r in (one, two):
        print(f"{r['ranks']:>5} {r['samples_per_s']:10.0f} {r['accuracy']:9.4f}")
    print(f"scaling efficiency (2 ranks): {eff:.2f}")
    return one, two, eff


if __name__ == "__main__":
    main()
