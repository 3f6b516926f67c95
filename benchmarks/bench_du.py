"""What explaining a whole root costs: `analyze du --json` against `du` plus the model load.

    python benchmarks/bench_du.py [--images N] [--files-per-layer N] [--keep DIR] [--ci] [--check]

On one synthetic root with real files in every layer (benchmarks/synthroot.py; 10,000
images by default, --ci 600), page-cached, the median of 5 interleaved runs of each:
`du -s -x -B1` of the root, the model load (`analyze ls -q`) and `analyze du --json`.
Target (issue 18): du --json <= 1.5x (du + ls -q). Its answer must agree with `du`
(total bytes and inodes) and explain every byte; with --ci, the pure-Python twin
(ANALYZER_DIGEST=python) must give the same JSON, the time it was made aside. --check
exits 1 when a target is missed; --keep reuses or keeps the built root.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import synthroot  # noqa: E402
from bench_reclaim import analyze, answer, interleaved, run  # noqa: E402

TARGET = 1.5


def du(root: str, *flags: str) -> int:
    out = subprocess.run(["du", "-s", "-x", *flags, root], check=True,
                         capture_output=True, text=True).stdout
    return int(out.split()[0])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--files-per-layer", type=int, default=8)
    ap.add_argument("--ci", action="store_true", help="small size, for CI")
    ap.add_argument("--keep", metavar="DIR", help="build the root here, or reuse it")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()
    images = 600 if args.ci else args.images
    work = args.keep or tempfile.mkdtemp(prefix="bench-du-")
    root = os.path.join(work, "root")
    try:
        if not os.path.isdir(root):
            shape = synthroot.build(root, images, files=args.files_per_layer)
            print(f"root: {shape['images']} images, {shape['layers']} layers")
        commands = {
            "du -s -x -B1": ["du", "-s", "-x", "-B1", root],
            "ls -q": analyze(root, "ls", "-q"),
            "du --json": analyze(root, "du", "--json"),
        }
        outs = {name: run(argv)[2] for name, argv in commands.items()}   # page cache warm
        doc = answer(outs["du --json"])
        agrees = (doc["total_bytes"] == du(root, "-B1")
                  and doc["total_inodes"] == du(root, "--inodes")
                  and doc["unexplained_bytes"] == 0 and not doc["orphans"])
        print(f"du -s -x: {doc['total_bytes']} bytes, {doc['total_inodes']} inodes; "
              f"analyze du {'agrees, all explained' if agrees else 'DISAGREES'}")
        med, _ = interleaved(commands)
        ratio = med["du --json"] / (med["du -s -x -B1"] + med["ls -q"])
        print(f"du --json / (du -s -x -B1 + ls -q) = {ratio:.2f}  (target <= {TARGET})")
        ok = agrees and ratio <= TARGET
        if args.ci:
            twin = run(commands["du --json"], {"ANALYZER_DIGEST": "python"})[2]
            same = answer(twin) == doc
            print(f"du --json: native and twin answers {'the same' if same else 'DIFFER'}")
            ok = ok and same
        return 1 if args.check and not ok else 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
