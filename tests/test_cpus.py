"""The CPUs the analyzer spreads work over are the process's own (goapi/runtime.num_cpu),
as Go's runtime.NumCPU counts them: a taskset or cpuset narrows them."""
from __future__ import annotations

import os
import subprocess
import sys

from analyzer.engines import blobverify
from analyzer.goapi.runtime import num_cpu

# Run in a child: the affinity mask is the whole process's, and the test's own threads
# must keep theirs.
_ONE_CPU = """
import os, sys
from analyzer.engines import blobverify
from analyzer.goapi.runtime import num_cpu
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
print(num_cpu(), blobverify.reader_beside(1))
"""


def test_num_cpu_is_the_affinity_mask():
    assert num_cpu() == len(os.sched_getaffinity(0))


def test_one_cpu_allowed_is_one_cpu_counted():
    out = subprocess.run([sys.executable, "-c", _ONE_CPU], check=True, capture_output=True,
                         text=True, cwd=os.getcwd()).stdout.split()
    # One CPU: no reading thread beside the hashing, whatever the machine has.
    assert out == ["1", "False"]


def test_reader_beside_when_every_layer_has_two_cpus():
    cpus = num_cpu()
    assert blobverify.reader_beside(max(1, cpus // 2)) is (cpus >= 2)
    assert blobverify.reader_beside(cpus // 2 + 1) is False
