"""`analyze ls` and `analyze reclaim` on a containerd image store of 1,000+ images,
against dockerd 28.5's cold start plus `docker image ls` on the same root.

The store is made by the real daemon (dockerd 28.5 with the containerd-snapshotter
feature, tests/oracle/docker28.sh): N images loaded from one archive, each a shared
busybox layer and a small layer of its own, then copied out. Medians of 5 runs; the
target is analyze >= 2x faster than the daemon's cold start.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from tests.oracle.build import ImageSpec, busybox_layer, save_archive, synthetic_layer  # noqa: E402
from tests.oracle.daemon import DOCKER, JUDGES, Daemon  # noqa: E402
from compiled import compile_analyzer  # noqa: E402

JUDGE = JUDGES["dockerd28-containerd"]


def build_store(dest: str, images: int) -> None:
    rng = random.Random(7)
    bb = busybox_layer()
    specs = [ImageSpec([bb, synthetic_layer(rng, f"srv/app{i}", 2, (100, 400))],
                       datetime(2024, 1, 1, tzinfo=timezone.utc), [f"bench/app{i}:latest"])
             for i in range(images)]
    with Daemon(judge=JUDGE, start_timeout=120) as d:
        for start in range(0, images, 250):
            d.run("load", input=save_archive(specs[start:start + 250]), timeout=1800)
        d.snapshot(dest)


def median_seconds(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def analyze(root: str, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "analyzer", "--data-root", root, *args],
                          check=True, capture_output=True, text=True, cwd=REPO).stdout


def daemon_cold(root: str) -> float:
    """dockerd 28.5 started on a copy of ``root`` until `docker image ls` has answered."""
    work = tempfile.mkdtemp(prefix="bc", dir="/tmp")
    copy = os.path.join(work, "root")
    subprocess.run(["cp", "-a", root, copy], check=True)
    sock = os.path.join(work, "d.sock")
    with open(os.path.join(work, "daemon.json"), "w") as f:
        json.dump(JUDGE.config, f)
    env = {**os.environ, "PATH": os.pathsep.join([*JUDGE.bin_dirs, os.environ["PATH"]])}
    client = {**os.environ, "DOCKER_HOST": f"unix://{sock}", "DOCKER_CONFIG": work}
    log = open(os.path.join(work, "log"), "w")
    t = time.perf_counter()
    proc = subprocess.Popen([JUDGE.dockerd, "--data-root", copy, "--exec-root", work, "-H",
                             f"unix://{sock}", "--bridge=none", "--iptables=false",
                             "--ip6tables=false", "--pidfile", os.path.join(work, "pid"),
                             "--config-file", os.path.join(work, "daemon.json")],
                            stdout=log, stderr=log, env=env, start_new_session=True)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dockerd exited; see {work}/log")
            if os.path.exists(sock) and subprocess.run(
                    [DOCKER, "image", "ls"], env=client, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL).returncode == 0:
                return time.perf_counter() - t
            time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        subprocess.run(["umount", "-R", work], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--ci", action="store_true", help="small size (100 images), for CI")
    args = ap.parse_args()
    compile_analyzer()
    if args.ci:
        args.images = 100
    work = tempfile.mkdtemp(prefix="bench-c8d-")
    try:
        root = os.path.join(work, "root")
        t = time.perf_counter()
        build_store(root, args.images)
        print(f"store: {args.images} images loaded by dockerd 28.5 in "
              f"{time.perf_counter() - t:.1f} s")
        rows = analyze(root, "ls", "-q").split()
        assert len(rows) == args.images, len(rows)
        t_ls = median_seconds(lambda: analyze(root, "ls"))
        t_reclaim = median_seconds(lambda: analyze(root, "reclaim", "bench/app0:latest",
                                                   "--json"))
        cold = median_seconds(lambda: daemon_cold(root))
        print(f"analyze ls                {t_ls:8.3f} s   {cold / t_ls:5.2f}x faster "
              "than the daemon (target >= 2)")
        print(f"analyze reclaim           {t_reclaim:8.3f} s   {cold / t_reclaim:5.2f}x faster")
        print(f"dockerd cold start + ls   {cold:8.3f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
