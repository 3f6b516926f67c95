"""`analyze ls` on a big data root, against the floor and against the real daemon.

In one run, on one synthetic root (benchmarks/synthroot.py):
- floor: a bare loop that only opens and reads the metadata files ls reads;
- `analyze ls` (the whole command, interpreter start included);
- dockerd 20.10 cold: start on the root until `docker image ls` has answered;
- dockerd warm: `docker image ls` again.
Prints the times and the ratios the targets are stated in.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import synthroot  # noqa: E402
from bench_digest import best_seconds  # noqa: E402


def floor(root: str) -> int:
    """Open and read every metadata file the graph-driver reader reads; nothing else."""
    base = os.path.join(root, "image", "overlay2")
    n = 0

    def slurp(path: str) -> None:
        nonlocal n
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return
        os.read(fd, 1 << 20)
        os.close(fd)
        n += 1

    slurp(os.path.join(base, "repositories.json"))
    content = os.path.join(base, "imagedb/content/sha256")
    meta = os.path.join(base, "imagedb/metadata/sha256")
    for name in os.listdir(content):
        slurp(os.path.join(content, name))
        for f in ("parent", "lastUpdated"):
            slurp(os.path.join(meta, name, f))
    layers = os.path.join(base, "layerdb/sha256")
    for name in os.listdir(layers):
        for f in ("diff", "size", "cache-id", "parent"):
            slurp(os.path.join(layers, name, f))
    for name in os.listdir(os.path.join(base, "layerdb/mounts")) \
            if os.path.isdir(os.path.join(base, "layerdb/mounts")) else ():
        for f in ("mount-id", "init-id", "parent"):
            slurp(os.path.join(base, "layerdb/mounts", name, f))
    return n


def timed(fn, repeat: int = 3) -> float:
    return best_seconds(fn, repeat)


def analyze_ls(root: str) -> None:
    subprocess.run([sys.executable, "-m", "analyzer", "--data-root", root, "ls"],
                   check=True, stdout=subprocess.DEVNULL, cwd=os.path.dirname(HERE))


def daemon_times(root: str) -> tuple[float, float]:
    """(cold start + first `docker image ls`, warm `docker image ls`) of dockerd 20.10."""
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
        warm = timed(lambda: subprocess.run(["docker", "image", "ls"], env=env, check=True,
                                            stdout=subprocess.DEVNULL))
        return cold, warm
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(exec_root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--ci", action="store_true", help="small size, for CI")
    ap.add_argument("--no-daemon", action="store_true")
    args = ap.parse_args()
    images = 1_000 if args.ci else args.images
    work = tempfile.mkdtemp(prefix="bench-ls-")
    try:
        root = os.path.join(work, "root")
        shape = synthroot.build(root, images)
        print(f"root: {shape['images']} images, {shape['layers']} layers")
        analyze_ls(root)                 # page cache warm for everyone
        t_floor = timed(lambda: floor(root))
        t_ours = timed(lambda: analyze_ls(root))
        print(f"floor (bare reads)        {t_floor:8.3f} s")
        print(f"analyze ls                {t_ours:8.3f} s   {t_ours / t_floor:5.2f}x floor "
              "(target <= 2)")
        if not args.no_daemon:
            cold, warm = daemon_times(root)
            print(f"dockerd cold start + ls   {cold:8.3f} s   analyze is {cold / t_ours:5.2f}x "
                  "faster (target >= 2)")
            print(f"docker image ls (warm)    {warm:8.3f} s   analyze / warm = {t_ours / warm:5.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
