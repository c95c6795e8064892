"""glibc's malloc thresholds (tapegrad/backends/heap.py): freed memory is kept for reuse, so
a step that allocates the same large temporaries again takes no page faults."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tapegrad.backends import heap

LINUX = sys.platform.startswith("linux")

# Four 9.6 MB arrays alive at once, then freed, ten times: what a convolution's training
# step does with its columns and gradients. Prints the minor page faults per round.
_ROUNDS = textwrap.dedent("""
    import resource
    import numpy as np
    import tapegrad
    from tapegrad.backends import heap

    def step():
        keep = [np.ones(2_400_000, np.float32) for _ in range(4)]
        del keep

    for _ in range(3):
        step()
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        step()
    print(heap.TUNED, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / 10)
""")


def _faults(**env):
    e = {k: v for k, v in os.environ.items()
         if k not in ("TAPEGRAD_MALLOC", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_",
                      "GLIBC_TUNABLES")}
    e.update(env)
    out = subprocess.run([sys.executable, "-c", _ROUNDS], env=e, capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0] == "True", float(out[1])


def test_opt_outs_leave_malloc_alone():
    assert heap.tune({"TAPEGRAD_MALLOC": "system"}) is False
    assert heap.tune({"TAPEGRAD_MALLOC": " System "}) is False
    for key in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"):
        assert heap.tune({key: "1"}) is False, key


@pytest.mark.skipif(not LINUX, reason="glibc's mallopt: Linux only")
def test_tuned_heap_takes_no_page_faults_for_repeated_large_temporaries():
    tuned, faults = _faults()
    untuned, faults_system = _faults(TAPEGRAD_MALLOC="system")
    assert tuned is True and untuned is False
    # glibc's own dynamic thresholds give the memory back and fault it in again each round
    # (~2,000 faults here); kept on the heap, it is reused as it is.
    assert faults_system > 200
    assert faults < faults_system / 10
    user_tuned, _ = _faults(MALLOC_TRIM_THRESHOLD_="131072")
    assert user_tuned is False
