"""The CPUs the analyzer spreads work over are the process's own (goapi/runtime.num_cpu),
as Go's runtime.NumCPU counts them: a taskset or cpuset narrows them."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

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


@pytest.mark.parametrize("cpus, layers, judged, beside", [
    (1, 1, False, False), (1, 1, True, False),      # one CPU: no thread beside
    (2, 1, False, True), (2, 2, False, False),      # archives: two CPUs a layer
    (2, 2, True, True), (2, 8, True, True),         # snapshots judged: wherever two CPUs
    (8, 4, False, True), (8, 5, False, False), (8, 8, True, True)])
def test_reader_beside(monkeypatch, cpus, layers, judged, beside):
    monkeypatch.setattr(blobverify, "num_cpu", lambda: cpus)
    assert blobverify.reader_beside(layers, judged) is beside
