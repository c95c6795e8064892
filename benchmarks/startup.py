"""What compiling costs: import time, and the first MLP training step (``wl_mlp.py``) with
an empty and with a warm Numba cache, each in a fresh process.

    python benchmarks/startup.py [--repeats N]

The empty cache is a new temporary ``NUMBA_CACHE_DIR``, so the kernels of the first step
compile there; the warm run reuses that directory and loads them instead. Every number is
the median over ``--repeats`` fresh processes (cache emptied for each cold one).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# Runs in the child: the times it prints are measured inside it, so that interpreter start
# and NumPy's own import are left out of tapegrad's numbers.
_CHILD = """
import json, sys, time
import numpy
sys.path.insert(0, {here!r})
t0 = time.perf_counter()
import tapegrad
t1 = time.perf_counter()
numba_at_import = "numba" in sys.modules
import wl_mlp
step = wl_mlp._framework(tapegrad)
t2 = time.perf_counter()
step()
t3 = time.perf_counter()
step()
t4 = time.perf_counter()
print(json.dumps(dict(import_s=t1 - t0, first_step_s=t3 - t2, second_step_s=t4 - t3,
                      numba_at_import=numba_at_import)))
"""


def _child(cache_dir: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    env.pop("TAPEGRAD_BACKEND", None)  # the numba backend: the one that compiles
    out = subprocess.run([sys.executable, "-c", _CHILD.format(here=HERE)], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(repeats: int = 3) -> dict:
    """Medians over ``repeats`` cold and warm processes (seconds)."""
    cold, warm = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            cold.append(_child(d))
            warm.append(_child(d))
    med = {}
    for name, runs in (("cold", cold), ("warm", warm)):
        for k in ("import_s", "first_step_s", "second_step_s"):
            med[f"{name}_{k}"] = float(np.median([r[k] for r in runs]))
    med["numba_at_import"] = any(r["numba_at_import"] for r in cold + warm)
    return med


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    m = measure(ap.parse_args(argv).repeats)
    print(f"import tapegrad            {m['warm_import_s']:.2f} s  (numba imported: "
          f"{'yes' if m['numba_at_import'] else 'no'})")
    print(f"first MLP step, empty cache {m['cold_first_step_s']:.2f} s")
    print(f"first MLP step, warm cache  {m['warm_first_step_s']:.2f} s")
    print(f"second MLP step             {m['warm_second_step_s'] * 1e3:.1f} ms")
    return m


if __name__ == "__main__":
    main()
