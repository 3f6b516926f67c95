"""What pricing bytes costs: `analyze prune -a --json` and `reclaim` against `du` and `ls`.

    python benchmarks/bench_reclaim.py [--images N] [--keep DIR] [--ci] [--check]

On one synthetic root with real files in every layer (benchmarks/synthroot.py; 10,000
images by default, --ci 600), page-cached, the median of 5 interleaved runs of each:
- `du -s -B1` of the whole root, and the model load (`analyze ls -q`);
- `analyze prune -a --json`, which walks every layer's tree to price it;
- `analyze reclaim IMAGE --json` of one image (a base image, whose layers many hold),
  and `analyze ls`.
Targets: prune -a --json <= 1.5x (du + ls -q); reclaim <= 1.2x ls; the peak RSS of
prune -a --json under 300 MB. The answers of the native walker and its pure-Python twin
(ANALYZER_DIGEST=python) must be the same JSON, the time it was made aside (--ci only:
the twin is slow on the full root). --check exits 1 when a target is missed; --keep reuses or keeps
the built root.
"""
from __future__ import annotations

import argparse
import json
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
TARGET_PRUNE = 1.5
TARGET_RECLAIM = 1.2
TARGET_RSS_MB = 300


def run(argv: list[str], env: dict | None = None) -> tuple[float, int, bytes]:
    """(wall seconds, peak RSS in bytes, stdout) of one command."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, cwd=REPO,
                            env={**os.environ, **(env or {})})
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{argv} exited {proc.returncode}")
    return took, usage.ru_maxrss * 1024, out


def interleaved(commands: dict[str, list[str]], runs: int = RUNS
                ) -> tuple[dict[str, float], dict[str, int]]:
    """Median seconds and peak RSS of each command over ``runs`` rounds, printed. One
    round runs every command once, so that load drifting on a shared machine hits all
    alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, int] = {name: 0 for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            took, peak, _ = run(argv)
            times[name].append(took)
            rss[name] = max(rss[name], peak)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    width = max(map(len, commands))
    for name in commands:
        print(f"{name:{width}} {med[name]:7.3f} s  (runs {min(times[name]):.3f}-"
              f"{max(times[name]):.3f})  peak RSS {rss[name] / 1e6:6.1f} MB")
    return med, rss


def analyze(root: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "analyzer", "--data-root", root, *args]


def answer(out: bytes) -> dict:
    """A JSON answer without its provenance (the times it was made at and as of)."""
    doc = json.loads(out)
    del doc["analysis"]                     # as of and at when it ran
    return doc


def a_base_image(root: str) -> str:
    repos = json.load(open(os.path.join(root, "image/overlay2/repositories.json")))
    return sorted(t for name, tags in repos["Repositories"].items()
                  if name.startswith("base") for t in tags if "@" not in t)[0]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--ci", action="store_true", help="small size, for CI")
    ap.add_argument("--keep", metavar="DIR", help="build the root here, or reuse it")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()
    compile_analyzer()
    images = 600 if args.ci else args.images
    work = args.keep or tempfile.mkdtemp(prefix="bench-reclaim-")
    root = os.path.join(work, "root")
    try:
        if not os.path.isdir(root):
            shape = synthroot.build(root, images)
            print(f"root: {shape['images']} images, {shape['layers']} layers")
        image = a_base_image(root)
        commands = {
            "du": ["du", "-s", "-B1", root],
            "ls -q": analyze(root, "ls", "-q"),
            "prune -a --json": analyze(root, "prune", "-a", "--json"),
            "reclaim": analyze(root, "reclaim", image, "--json"),
            "ls": analyze(root, "ls"),
        }
        outs = {name: run(argv)[2] for name, argv in commands.items()}   # page cache warm
        print(f"du -s -B1: {outs['du'].split()[0].decode()} bytes; "
              f"{len(json.loads(outs['prune -a --json'])['deleted_layers'])} layers priced")
        med, rss = interleaved(commands)
        prune_ratio = med["prune -a --json"] / (med["du"] + med["ls -q"])
        reclaim_ratio = med["reclaim"] / med["ls"]
        prune_rss = rss["prune -a --json"] / 1e6
        print(f"prune -a --json / (du + ls -q) = {prune_ratio:.2f}  (target <= {TARGET_PRUNE})")
        print(f"reclaim / ls                   = {reclaim_ratio:.2f}  (target <= {TARGET_RECLAIM})")
        print(f"prune -a --json peak RSS       = {prune_rss:.0f} MB (target < {TARGET_RSS_MB})")
        ok = (prune_ratio <= TARGET_PRUNE and reclaim_ratio <= TARGET_RECLAIM
              and prune_rss < TARGET_RSS_MB)
        if args.ci:
            for name in ("prune -a --json", "reclaim"):
                twin = run(commands[name], {"ANALYZER_DIGEST": "python"})[2]
                same = answer(twin) == answer(outs[name])
                print(f"{name}: native and twin answers {'the same' if same else 'DIFFER'}")
                ok = ok and same
        return 1 if args.check and not ok else 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
