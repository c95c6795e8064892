"""Run every benchmark workload and print one table of medians and ratios.

    python benchmarks/run.py            # full sizes (a few minutes)
    python benchmarks/run.py --quick    # small sizes, < 1 minute (a smoke test)

Each workload runs tapegrad, PyTorch CPU and (where it exists) a hand-written NumPy/numba
floor in one process, interleaved, and reports medians. BLAS and PyTorch are pinned to one
thread so that all contenders do the same work on this shared 2-core machine
(``--threads N`` changes that). Workloads are the ``wl_*.py`` modules beside this file.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

from harness import pin_threads

HERE = os.path.dirname(os.path.abspath(__file__))
ORDER = ["wl_chain", "wl_chain_compile", "wl_mlp", "wl_rnn", "wl_rnn_compile", "wl_optim",
         "wl_nnrnn", "wl_hvp"]
# The speed targets of the numba-backend issue: (workload, compared with, bound on the ratio).
# The RNN target is printed twice: eager, and with the step under tapegrad.compile.
TARGETS = [("wl_chain", "torch", 1.0), ("wl_mlp", "floor", 1.15), ("wl_rnn", "floor", 1.5),
           ("wl_rnn_compile", "floor", 1.5), ("wl_optim", "floor", 1.5)]


def workloads() -> list:
    """The workload modules: those of ORDER first, then any other ``wl_*.py`` beside this
    file (a new workload only needs a module that defines ``WORKLOAD`` and ``run``)."""
    found = sorted(f[:-3] for f in os.listdir(HERE) if f.startswith("wl_") and f.endswith(".py"))
    return ORDER + [m for m in found if m not in ORDER]


def _times(r) -> tuple:
    """(tapegrad, PyTorch, floor) of one workload's results; None where it has none."""
    return (r.get("tapegrad", r.get("tapegrad_ms")), r.get("torch", r.get("torch_ms")),
            r.get("numpy", r.get("numba loop")))


def target_lines(results: dict) -> list:
    """One line per speed target whose workload ran: the bound, this run's ratio, and
    whether it was met (a target compared with PyTorch needs PyTorch)."""
    lines = []
    for mod_name, against, bound in TARGETS:
        if mod_name not in results:
            continue
        ours, torch_t, floor = _times(results[mod_name])
        ref = torch_t if against == "torch" else floor
        name = importlib.import_module(mod_name).WORKLOAD["name"]
        label = f"{name:<16} <= {bound:.2f}x {'PyTorch' if against == 'torch' else 'floor':<8}"
        if not ref:
            lines.append(f"{label} {'-':>7}  not measured (no {against})")
            continue
        ratio = round(ours / ref, 2)  # (judged as printed)
        lines.append(f"{label} {ratio:6.2f}x  {'met' if ratio <= bound else 'MISSED'}")
    return lines


def _row(name, unit, r):
    ours, torch_t, floor = _times(r)
    cells = [f"{name:<16}", f"{unit:>6}", f"{ours:10.3f}",
             f"{torch_t:10.3f}" if torch_t else f"{'-':>10}",
             f"{floor:10.3f}" if floor else f"{'-':>10}",
             f"{ours / torch_t:9.2f}x" if torch_t else f"{'-':>10}",
             f"{ours / floor:9.2f}x" if floor else f"{'-':>10}"]
    return " ".join(cells)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", nargs="*", help="workload modules to run (default: all)")
    args = p.parse_args(argv)
    pin_threads(args.threads)
    sys.path.insert(0, HERE)
    import tapegrad

    print(f"tapegrad {tapegrad.__version__}, backend {tapegrad.backends.current().name}, "
          f"{args.threads} thread(s){', quick sizes' if args.quick else ''}")
    header = (f"{'workload':<16} {'unit':>6} {'tapegrad':>10} {'torch':>10} {'floor':>10} "
              f"{'vs torch':>10} {'vs floor':>10}")
    print(header)
    print("-" * len(header))
    results = {}
    for mod_name in args.only or workloads():
        try:
            mod = importlib.import_module(mod_name)
        except ImportError as e:
            print(f"{mod_name:<16} skipped: {e}")
            continue
        if not hasattr(mod, "WORKLOAD") or not hasattr(mod, "run"):
            print(f"{mod_name:<16} skipped: no WORKLOAD / run() in the module")
            continue
        t0 = time.perf_counter()
        r = mod.run(quick=args.quick)
        results[mod_name] = r
        unit = mod.WORKLOAD.get("unit", "ms")
        print(_row(mod.WORKLOAD["name"], unit, r), f"  ({time.perf_counter() - t0:.0f} s)",
              flush=True)
    print("floor: hand-written NumPy (the numba loop for the optimizer step); ratios < 1 mean "
          "tapegrad is faster")
    lines = target_lines(results)
    if lines:
        print("\ntargets (ratio in this run" +
              ("; they are set for the full sizes)" if args.quick else ")") + ":")
        for line in lines:
            print("  " + line)
    return results


if __name__ == "__main__":
    main()
