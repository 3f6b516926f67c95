"""Go's ``runtime``: NumCPU, the CPUs this process may run on.

Go (and so dockerd, whose default parallelism is ``runtime.NumCPU()``) counts the CPUs
of the process's affinity mask, not the machine's: ``taskset``, a cpuset cgroup or a
container's ``--cpuset-cpus`` narrow it. ``os.cpu_count()`` counts the machine's, and
work split over it would put two threads on each CPU the process has.

References: Go runtime/os_linux.go (getproccount: sched_getaffinity), runtime/debug.go
(NumCPU).
"""
from __future__ import annotations

import os


def num_cpu() -> int:
    """The CPUs this process may run on (at least 1)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):    # no affinity masks here (not Linux)
        return os.cpu_count() or 1
