"""`analyze ls` on a big data root, against the floor and against the real daemon.

    python benchmarks/bench_ls.py [--images N] [--keep DIR] [--ci] [--no-daemon]

In one run, on one synthetic root (benchmarks/synthroot.py; 10,000 images by default,
--ci 1,000), page-cached, the median of 5 interleaved runs of each command:
- the floor: benchmarks/lsfloor.c, which opens, type-checks and reads natively the same
  metadata files the reader reads (the same system calls), plus the interpreter's start
  (`python -c pass`);
- `python -c 'import analyzer.cli'`, the other floor one could argue for (it counts our
  own imports as unavoidable: they are not, so the target is stated against the first);
- `analyze ls` (the whole command, interpreter start included);
- dockerd 20.10 cold: start on the root until `docker image ls` has answered;
- dockerd warm: `docker image ls` again, beside.
Wall time and CPU time (user + system, of the process and its threads) of each: on a
shared machine wall time lies, CPU time less. Target: ls within 1.2x of the floor.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, HERE)

import synthroot  # noqa: E402
from compiled import compile_analyzer  # noqa: E402

RUNS = 5
TARGET = 1.2


def build_floor(work: str) -> str:
    exe = os.path.join(work, "lsfloor")
    subprocess.run(["cc", "-O2", "-o", exe, os.path.join(HERE, "lsfloor.c")], check=True)
    return exe


def run(argv: list[str], env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one command."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, cwd=REPO, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv} failed")
    return took, usage.ru_utime + usage.ru_stime


def interleaved(commands: dict[str, list[str]]) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) of each command over RUNS rounds of every command once each, so
    that load drifting on a shared machine hits all alike."""
    got: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(RUNS):
        for name, argv in commands.items():
            got[name].append(run(argv))
    return {name: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
            for name, runs in got.items()}


def daemon_times(root: str) -> tuple[float, float]:
    """(cold start + first `docker image ls`, warm `docker image ls`: the median of
    RUNS) of dockerd 20.10, in wall seconds (the daemon's CPU is not the client's)."""
    exec_root = tempfile.mkdtemp(prefix="bl", dir="/tmp")
    sock = os.path.join(exec_root, "d.sock")
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock}"}
    log = open(os.path.join(exec_root, "log"), "w")
    t = time.perf_counter()
    proc = subprocess.Popen(
        ["dockerd", "--data-root", root, "--exec-root", exec_root, "-H", f"unix://{sock}",
         "--storage-driver", "overlay2", "--bridge=none", "--iptables=false",
         "--ip6tables=false", "--pidfile", os.path.join(exec_root, "pid")],
        stdout=log, stderr=log)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dockerd exited; see {exec_root}/log")
            if os.path.exists(sock):
                r = subprocess.run(["docker", "image", "ls"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                if r.returncode == 0:
                    break
            time.sleep(0.02)
        cold = time.perf_counter() - t
        warm = statistics.median(run(["docker", "image", "ls"], env)[0] for _ in range(RUNS))
        return cold, warm
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(exec_root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--ci", action="store_true", help="small size, for CI")
    ap.add_argument("--keep", metavar="DIR", help="build the root here, or reuse it")
    ap.add_argument("--no-daemon", action="store_true")
    args = ap.parse_args()
    compile_analyzer()
    images = 1_000 if args.ci else args.images
    work = args.keep or tempfile.mkdtemp(prefix="bench-ls-")
    root = os.path.join(work, "root")
    try:
        if not os.path.isdir(root):
            shape = synthroot.build(root, images)
            print(f"root: {shape['images']} images, {shape['layers']} layers")
        floor = build_floor(work)
        commands = {
            "native reads": [floor, root],
            "python -c pass": [sys.executable, "-c", "pass"],
            "import analyzer.cli": [sys.executable, "-c", "import analyzer.cli"],
            "analyze ls": [sys.executable, "-m", "analyzer", "--data-root", root, "ls"],
        }
        for argv in commands.values():          # page cache warm for everyone
            run(argv)
        med = interleaved(commands)
        for name, (wall, cpu) in med.items():
            print(f"{name:28} {wall:7.3f} s wall {cpu:7.3f} s CPU")
        for i, what in enumerate(("wall", "CPU")):
            floor_s = med["native reads"][i] + med["python -c pass"][i]
            ours = med["analyze ls"][i]
            print(f"{what:4}: floor {floor_s:.3f} s; analyze ls / floor = {ours / floor_s:.2f} "
                  f"(target <= {TARGET}); / (native reads + import analyzer.cli) = "
                  f"{ours / (med['native reads'][i] + med['import analyzer.cli'][i]):.2f}")
        if not args.no_daemon:
            cold, warm = daemon_times(root)
            ours = med["analyze ls"][0]
            print(f"dockerd cold start + ls      {cold:7.3f} s wall; analyze is "
                  f"{cold / ours:5.2f}x faster")
            print(f"docker image ls (warm)       {warm:7.3f} s wall; analyze ls / warm = "
                  f"{ours / warm:5.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
