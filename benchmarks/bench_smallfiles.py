"""`verify -j 1` of one layer of many small files, against a bare Python loop over the
same files, and verify's peak RSS per file.

    python benchmarks/bench_smallfiles.py [--files N] [--size BYTES] [--repeat N] [--keep DIR] [--ci]

The layer is made as dockerd stores one (tests/layerdir.py: the files in overlay2's
``diff``, the tar-split Go would write for their tar), N files of --size bytes in 100
directories, page-cached. Rows, each the median of --repeat interleaved runs, wall and
CPU (user + system: the machine may be shared): the bare loop (``open``, ``read``,
``hashlib.sha256``, ``close`` per file: it reads what verify reads, and judges nothing),
and verify_layer with the native tar-split scan (what ``analyze verify -j 1`` spends on
the layer past start-up: the walk, tar-split, every file's content, metadata and xattrs,
the diff ID; where a second CPU is free, a helper thread lists directories beside the
walk's and the scan's reader thread reads the files ahead), the same without those
threads, and the native floor (benchmarks/smallfloor.c: the walk's lstat and each file's
open, fstat, read, listxattr and close, which no safe reader can skip; no parsing or
hashing, one thread), whose ratio to the bare loop bounds what one
thread of verify can reach. Then the peak RSS of a process that verifies the layer, over
that of one that only starts (both import the analyzer), per file. Targets: verify >=
1.0x the bare loop; < 200 MB at 1,000,000 files (judged with --files 1000000; --size 0 keeps the disk use to inodes). --ci: 5,000 files.
The full-size run:

    python benchmarks/bench_smallfiles.py --files 20000 --repeat 5
    python benchmarks/bench_smallfiles.py --files 1000000 --size 0 --repeat 1
"""
from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analyzer.sources.layout import diff_dir  # noqa: E402
from tests.layerdir import CACHE_ID, store_layer  # noqa: E402

TARGET_RATIO = 1.0
TARGET_MILLION_FILES_MB = 200
MB = 1_000_000


def build(root: Path, nfiles: int, size: int) -> None:
    diff = root / diff_dir("overlay2", CACHE_ID)
    block = os.urandom(size + 4096)
    for d in range(100):
        (diff / f"d{d:02d}").mkdir(parents=True)
    for i in range(nfiles):
        start = i * 7919 % 4096
        (diff / f"d{i % 100:02d}" / f"f{i:07d}").write_bytes(block[start:start + size])
    store_layer(root)


def _files(root: Path) -> list[str]:
    diff = root / diff_dir("overlay2", CACHE_ID)
    return sorted(str(p) for p in diff.rglob("*") if p.is_file())


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), _cpu()
    fn()
    return time.perf_counter() - wall, _cpu() - cpu


def bare_loop(files: list[str]) -> None:
    for path in files:
        h = hashlib.sha256()
        fd = os.open(path, os.O_RDONLY)
        try:
            while chunk := os.read(fd, 1 << 20):
                h.update(chunk)
        finally:
            os.close(fd)


def build_floor(work: Path) -> Path:
    exe = work / "smallfloor"
    subprocess.run(["cc", "-O2", "-o", str(exe), str(REPO / "benchmarks" / "smallfloor.c")],
                   check=True)
    return exe


def floor(exe: Path, root: Path) -> tuple[float, float]:
    """(wall, CPU: user + system) of the native floor over the layer's directory."""
    wall = time.perf_counter()
    proc = subprocess.Popen([str(exe), str(root / diff_dir("overlay2", CACHE_ID))],
                            stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - wall
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("smallfloor failed")
    return wall, usage.ru_utime + usage.ru_stime


def verify(root: Path, readahead: int = -1) -> int:
    """verify_layer on the layer (the walk's helper and the scan's reader thread as
    readahead says: -1 as verify has it, 0 never); returns the members checked."""
    from analyzer.engines.verify import verify_layer
    from analyzer.sources.evidence import open_root
    from analyzer.sources.layerfiles import LayerFiles
    from tests.layerdir import layer_of
    layer = layer_of(root)
    with open_root(str(root)) as evidence:
        files = LayerFiles(evidence, layer, threading.Lock(), "overlay2")
        files.readahead = readahead
        try:
            result = verify_layer(layer, files)
        finally:
            files.close()
    if result.status != "ok":
        raise RuntimeError(f"verify failed: {result.reason}")
    return result.files_checked


# A process of its own reports its peak RSS (start-up included): its VmHWM, the high-water
# mark of its own memory since exec. Not ru_maxrss, which Linux carries across fork and
# exec: a child started by this process (a million paths listed, verify run in it) had
# this one's peak, hundreds of megabytes, whatever it used itself.
_PEAK = ("import sys; sys.path.insert(0, {repo!r}); sys.path.insert(0, {bench!r}); "
         "import bench_smallfiles as b; {call}; "
         "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')))")


def peak_rss_mb(root: Path, run: bool) -> float:
    code = _PEAK.format(repo=str(REPO), bench=str(REPO / "benchmarks"),
                        call=f"b.verify(__import__('pathlib').Path({str(root)!r}))" if run
                        else "import analyzer.engines.verify, analyzer.sources.layerfiles")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, cwd=REPO).stdout
    return int(out.split()[-1]) * 1024 / MB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=1024, help="bytes a file")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="layer root to reuse (built there if absent)")
    parser.add_argument("--ci", action="store_true", help="a small run: 5,000 files")
    args = parser.parse_args(argv)
    nfiles = 5_000 if args.ci else args.files
    tmp = Path(tempfile.mkdtemp(prefix="bench-smallfiles-", dir=os.environ.get("TMPDIR")))
    try:
        root = args.keep or tmp / "root"
        if not root.exists():
            start = time.perf_counter()
            build(root, nfiles, args.size)
            print(f"built the layer in {time.perf_counter() - start:.0f}s")
        files = _files(root)
        exe = build_floor(tmp)
        bare_loop(files)                                 # page-cache it
        bare, checked, alone, native = [], [], [], []
        for _ in range(args.repeat):                     # interleaved
            bare.append(_timed(lambda: bare_loop(files)))
            checked.append(_timed(lambda: verify(root)))
            alone.append(_timed(lambda: verify(root, 0)))
            native.append(floor(exe, root))
        rss_idle, rss_verify = peak_rss_mb(root, False), peak_rss_mb(root, True)
    finally:
        shutil.rmtree(tmp)
    wall_b, cpu_b = (statistics.median(x) for x in zip(*bare))
    wall_v, cpu_v = (statistics.median(x) for x in zip(*checked))
    wall_a, cpu_a = (statistics.median(x) for x in zip(*alone))
    wall_f, cpu_f = (statistics.median(x) for x in zip(*native))
    per_file = max(0.0, rss_verify - rss_idle) * MB / len(files)
    print(f"{len(files)} files of {args.size} B, page-cached, median of {args.repeat}")
    print(f"  bare Python loop      {wall_b:8.3f} s wall {cpu_b:8.3f} s CPU")
    print(f"  verify -j 1 (layer)   {wall_v:8.3f} s wall {cpu_v:8.3f} s CPU")
    print(f"  the same, no helpers  {wall_a:8.3f} s wall {cpu_a:8.3f} s CPU")
    print(f"  native floor          {wall_f:8.3f} s wall {cpu_f:8.3f} s CPU")
    print(f"verify / bare loop = {wall_b / wall_v:.2f} wall, {cpu_b / cpu_v:.2f} CPU "
          f"(target >= {TARGET_RATIO}); without helper threads {wall_b / wall_a:.2f} wall")
    print(f"floor / bare loop = {wall_b / wall_f:.2f} wall, {cpu_b / cpu_f:.2f} CPU "
          "(the most verify could reach)")
    print(f"peak RSS: {rss_verify:.0f} MB verifying, {rss_idle:.0f} MB started: "
          f"{per_file:.0f} B a file"
          + (f" (target < {TARGET_MILLION_FILES_MB} MB at 1,000,000 files)"
             if len(files) >= 1_000_000 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
