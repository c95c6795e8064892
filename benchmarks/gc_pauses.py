"""Garbage-collector pauses in a training loop: the RNN BPTT step (``wl_rnn.py``) run many
times in fresh processes that import no PyTorch, as is and with ``gc.freeze()`` called after
the warm-up steps (the two kinds of process take turns). ``run.py`` reports medians; this is
about the slow steps.

    python benchmarks/gc_pauses.py [--steps N] [--rounds R]

Why it matters: a tape makes Python objects per op (tensors, nodes, edge tuples) that live
until backward. The collector's young passes promote them, and every so often that starts a
full collection, which walks every object in the process. Loading the Numba kernels adds
about 95,000 objects (so a full pass here takes tens of ms). ``gc.freeze()`` moves everything
alive at that moment out of the collector's reach; later full passes walk only what came
after. Its cost: cyclic garbage among the frozen objects is never freed (until
``gc.unfreeze()``), so call it once, after building the model and the first step.

It prints, per mode, the median / 99th percentile / largest step time, how many full
collections ran and their mean duration, and one explicit ``gc.collect()`` after the loop.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

_CHILD = """
import gc, json, sys, time
sys.path.insert(0, {here!r})
import tapegrad
import wl_rnn
try:
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
except ImportError:
    pass
tapegrad.set_num_threads(1)
step = wl_rnn._framework(tapegrad)
for _ in range(5):
    step()
if {freeze!r}:
    gc.freeze()
full = []
start = [0.0]

def on_gc(phase, info):
    if info["generation"] != 2:
        return
    if phase == "start":
        start[0] = time.perf_counter()
    else:
        full.append(time.perf_counter() - start[0])

gc.callbacks.append(on_gc)
times = []
for _ in range({steps}):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
gc.callbacks.remove(on_gc)
t0 = time.perf_counter()
gc.collect()
collect = time.perf_counter() - t0
print(json.dumps(dict(times=times, full=full, collect=collect, tracked=len(gc.get_objects()),
                      torch="torch" in sys.modules)))
"""


def _child(steps: int, freeze: bool) -> dict:
    code = _CHILD.format(here=HERE, steps=steps, freeze=freeze)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(steps: int, rounds: int) -> dict:
    """Per mode: step-time percentiles and full collections (ms) over ``rounds`` fresh
    processes of ``steps`` steps each, the two modes taking turns (so both see the same
    machine, as far as a noisy one allows)."""
    runs = {"as is": [], "gc.freeze()": []}
    for k in range(rounds):
        for mode in list(runs)[::1 if k % 2 == 0 else -1]:
            r = _child(steps, mode == "gc.freeze()")
            assert not r["torch"]
            runs[mode].append(r)
    res = {}
    for mode, rs in runs.items():
        ms = np.array([t for r in rs for t in r["times"]]) * 1e3
        full = [f * 1e3 for r in rs for f in r["full"]]
        res[mode] = dict(median=float(np.median(ms)), p99=float(np.percentile(ms, 99)),
                         max=float(ms.max()), full=len(full),
                         full_ms=float(np.mean(full)) if full else 0.0,
                         collect_ms=float(np.median([r["collect"] for r in rs])) * 1e3,
                         tracked=rs[-1]["tracked"])
    return res


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=300, help="steps per process")
    p.add_argument("--rounds", type=int, default=3, help="processes per mode")
    args = p.parse_args(argv)
    res = measure(args.steps, args.rounds)
    print(f"RNN BPTT step: {args.rounds} fresh processes per mode x {args.steps} steps, "
          "taking turns; one thread; no PyTorch in the process")
    print(f"{'mode':<12} {'median':>8} {'p99':>8} {'max':>8} {'full GCs':>9} {'ms each':>8} "
          f"{'collect':>8} {'tracked':>8}")
    for name, r in res.items():
        print(f"{name:<12} {r['median']:8.2f} {r['p99']:8.2f} {r['max']:8.1f} {r['full']:9d} "
              f"{r['full_ms']:8.1f} {r['collect_ms']:8.1f} {r['tracked']:8d}")
    print("times in ms; 'collect': one gc.collect() after the loop; 'tracked': the "
          "objects the collector walks")
    return res


if __name__ == "__main__":
    main()
