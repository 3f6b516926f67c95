"""How fast verify can hash layer content, next to OpenSSL, hashlib and sha256sum.

    python benchmarks/bench_digest.py [--size-mb N] [--repeat R] [--ci] [--check]

All rows hash the same page-cached bytes (two temporary files of N MB). The targets:
hash_fd (SHA-256 and CRC-64 in one pass, one thread) at >= 0.9x `openssl speed -evp sha256`
on one core, and two threads on two files at >= 1.8x one thread. --check exits 1 when a
target is missed; --ci is a small run.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analyzer import _fastdigest  # noqa: E402

MB = 1_000_000          # openssl's and sha256sum's unit, not MiB
PORTABLE_MAX = 64 * 1024 * 1024
MAP_MIN = 1024 * 1024   # _csrc/hashfd.c
TARGET_VS_OPENSSL = 0.9
TARGET_TWO_THREADS = 1.8


def best_seconds(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def openssl_sha256_mb_s(seconds: int = 3) -> float | None:
    """`openssl speed -evp sha256 -bytes 16384 -seconds 3`: one core, 16 KiB buffers; the
    rate is by CPU time (openssl speed times user time unless told -elapsed)."""
    try:
        out = subprocess.run(["openssl", "speed", "-evp", "sha256", "-bytes", "16384",
                              "-seconds", str(seconds)],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    # last line: "sha256   1710726.81k" -- thousands of bytes per second
    match = re.search(r"^sha256\s+([\d.]+)k\s*$", out, re.MULTILINE)
    return float(match.group(1)) * 1000 / MB if match else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hash_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        _fastdigest.hash_fd(fd, 0, -1, _fastdigest.Sha256())
    finally:
        os.close(fd)


def hash_file_by_reading(path: Path) -> None:
    """The same through pread only: hash_fd maps regions of MAP_MIN bytes or more."""
    fd = os.open(path, os.O_RDONLY)
    try:
        sha = _fastdigest.Sha256()
        for offset in range(0, os.fstat(fd).st_size, MAP_MIN - 1):
            _fastdigest.hash_fd(fd, offset, MAP_MIN - 1, sha)
    finally:
        os.close(fd)


def cpu_rates(size: int, repeat: int, path: Path, data: bytes) -> dict[str, float]:
    """The read paths by CPU time (MB/s), which a loaded machine does not blur: the hash
    alone on bytes in memory; hash_fd the way it chose (a mapping here, learnt in the rows
    above), the hashing thread alone and the whole process (the helper that populates a
    mapping counts there); pread only."""
    def best(clock: Callable[[], float], run: Callable[[], object]) -> float:
        seconds = float("inf")
        for _ in range(repeat):
            start = clock()
            run()
            seconds = min(seconds, clock() - start)
        return size / max(seconds, 1e-9) / MB

    return {
        "Sha256.update, in memory": best(time.thread_time, lambda: _fastdigest.Sha256().update(data)),
        "hash_fd, hashing thread": best(time.thread_time, lambda: hash_file(path)),
        "hash_fd, whole process": best(time.process_time, lambda: hash_file(path)),
        "hash_fd pread only": best(time.process_time, lambda: hash_file_by_reading(path)),
    }


def hash_files_in_threads(paths: list[Path]) -> None:
    threads = [threading.Thread(target=hash_file, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def measure(size: int, repeat: int, paths: list[Path], data: bytes) -> dict[str, float | None]:
    """MB/s of each row (None when the tool is missing)."""
    def rate(run: Callable[[], object], nbytes: int = size) -> float:
        return nbytes / best_seconds(run, repeat) / MB

    def sha256_native(buf: bytes) -> None:
        _fastdigest.Sha256().update(buf)

    rows: dict[str, float | None] = {"openssl speed -evp sha256 (1 core)": openssl_sha256_mb_s()}
    rows["hashlib sha256"] = rate(lambda: hashlib.sha256(data))
    try:
        rows["sha256sum FILE"] = rate(lambda: subprocess.run(["sha256sum", str(paths[0])],
                                                             check=True, capture_output=True))
    except (OSError, subprocess.CalledProcessError):
        rows["sha256sum FILE"] = None
    _fastdigest.set_portable(False)
    rows["Sha256.update"] = rate(lambda: sha256_native(data))
    rows["crc64_iso"] = rate(lambda: _fastdigest.crc64_iso(data))
    rows["hash_fd SHA+CRC, 1 thread"] = rate(lambda: hash_file(paths[0]))
    rows["hash_fd SHA+CRC, 2 threads"] = rate(lambda: hash_files_in_threads(paths), 2 * size)
    rows["hash_fd SHA+CRC, pread only"] = rate(lambda: hash_file_by_reading(paths[0]))

    small = memoryview(data)[:PORTABLE_MAX]
    _fastdigest.set_portable(True)
    try:
        rows["Sha256.update (portable C)"] = rate(lambda: sha256_native(small), len(small))
        rows["crc64_iso (portable C)"] = rate(lambda: _fastdigest.crc64_iso(small), len(small))
    finally:
        _fastdigest.set_portable(False)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=256, help="bytes per file, in MB (default 256)")
    parser.add_argument("--repeat", type=int, help="best of this many runs (default 3, --ci 7)")
    parser.add_argument("--ci", action="store_true", help="a small run: 32 MB")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    size = (32 if args.ci else args.size_mb) * MB
    repeat = args.repeat or (7 if args.ci else 3)

    with tempfile.TemporaryDirectory(prefix="bench-digest-") as tmp:
        paths = [Path(tmp, "a"), Path(tmp, "b")]
        for path in paths:
            path.write_bytes(os.urandom(size))
        data = paths[0].read_bytes()
        paths[1].read_bytes()                      # both files in the page cache
        rows = measure(size, repeat, paths, data)
        cpu = cpu_rates(size, repeat, paths[0], data)

    openssl = rows["openssl speed -evp sha256 (1 core)"]
    one = rows["hash_fd SHA+CRC, 1 thread"]
    two = rows["hash_fd SHA+CRC, 2 threads"]
    print(f"{size // MB} MB page-cached, best of {repeat}; {cpu_model()}; "
          f"{os.cpu_count()} CPUs; accelerated: {_fastdigest.features()}")
    print(f"{'':36} {'MB/s':>8} {'vs openssl':>10}")
    for name, mb_s in rows.items():
        ratio = f"{mb_s / openssl:10.2f}" if mb_s and openssl else f"{'':10}"
        print(f"{name:36} {mb_s:8.0f} {ratio}" if mb_s else f"{name:36} {'n/a':>8}")

    print("read paths by CPU time (openssl speed is by CPU time too):")
    for name, mb_s in cpu.items():
        ratio = f"{mb_s / openssl:10.2f}" if openssl else f"{'':10}"
        print(f"{name:36} {mb_s:8.0f} {ratio}")

    missed = []
    if openssl:
        vs_openssl = one / openssl
        print(f"hash_fd_1thread / openssl = {vs_openssl:.2f} (target >= {TARGET_VS_OPENSSL})")
        if vs_openssl < TARGET_VS_OPENSSL:
            missed.append("hash_fd_1thread / openssl")
    threads = two / one
    print(f"2threads / 1thread = {threads:.2f} (target >= {TARGET_TWO_THREADS})")
    if threads < TARGET_TWO_THREADS:
        missed.append("2threads / 1thread")
    if missed:
        print(f"missed: {', '.join(missed)}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
