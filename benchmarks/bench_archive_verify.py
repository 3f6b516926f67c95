"""How fast verify checks an archive's layer blobs, next to the shell pipelines that do the same.

    python benchmarks/bench_archive_verify.py [--size-mb N] [--repeat R] [--ci] [--check]

A layer is N MB of real files (a tar of /usr, whole), compressed by the real tools
(``pigz -6``, ``zstd -3``); every row decompresses it and hashes what comes out, from the
page cache, and is given in MB/s of uncompressed output, wall clock, median of R runs
taken in turn (interleaved, so load on the machine falls on every row alike), and in
MB per CPU second (all threads and children: what a busy machine does not distort).
Rows:

- pipelines on two cores: ``gzip -dc | openssl dgst -sha256``, pigz, igzip, zstd;
- verify's pass (engines/blobverify.digest_stream: the blob read, hashed and inflated in
  one thread, the output hashed in the caller's, as the two halves of a pipeline) with
  each inflater: the stdlib's zlib, ISA-L (``isal``), ``zlib-ng``; and zstd
  (``zstandard``); and the same pass with ``rapidgzip`` (one thread, and its own two;
  it seeks, so the blob's digest is a read of its own);
- two layers verified at once (``-j 2``), gzip and zstd, each with a reader beside it
  only when the cores allow two threads a layer (blobverify.reader_beside);
- peak RSS of a child verifying a gzip and a zstd layer of N MB and of 2N MB (the
  child's own high-water mark, VmHWM: its ru_maxrss would be the benchmark's own peak,
  which Linux carries into a child across fork and exec).

Targets: ``-j 1`` >= 0.9x the best pipeline of its compression; ``-j 2`` >= 1.8x what
one core verifies (MB per CPU second of ``-j 1``): ``-j 1`` already works on two cores,
so on a two-core machine ``-j 2 / -j 1`` is bounded by 2 / the cores ``-j 1`` keeps busy,
and is printed beside; peak memory independent of layer size. --check exits 1 when one
is missed; --ci is a small run.

    python benchmarks/bench_archive_verify.py --size-mb 300 --repeat 5   # full size
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import hashlib
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analyzer import compression  # noqa: E402
from analyzer.engines import blobverify  # noqa: E402

MB = 1_000_000
CHUNK = 1 << 20
TARGET_VS_PIPELINE = 0.9
TARGET_TWO_THREADS = 1.8
TARGET_MEMORY_GROWTH = 1.2      # peak RSS at 2N MB / at N MB


def make_layer(dest: Path, size: int) -> None:
    """A tar of real files (from /usr) of about ``size`` bytes, whole: an image layer."""
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for top, dirs, files in os.walk("/usr"):
            dirs.sort()
            for name in sorted(files):
                if tar.fileobj.tell() >= size:
                    return
                path = os.path.join(top, name)
                try:
                    if os.path.islink(path) or os.path.getsize(path) > size // 8:
                        continue
                    tar.add(path, arcname=path.lstrip("/"))
                except OSError:
                    continue


def compress(src: Path, argv: list[str], dest: Path) -> None:
    with open(dest, "wb") as out:
        subprocess.run([*argv, str(src)], stdout=out, check=True)


def chunks(path: Path):
    fd = os.open(path, os.O_RDONLY)
    try:
        offset = 0
        while chunk := os.pread(fd, CHUNK, offset):
            offset += len(chunk)
            yield chunk
    finally:
        os.close(fd)


def verify_one(path: Path, beside: bool = True) -> None:
    digests = blobverify.digest_stream(chunks(path), beside=beside)
    assert digests.error is None, digests.error


def verify_rapidgzip(path: Path, threads: int) -> None:
    """verify's pass with rapidgzip's inflater. It reads the blob itself, by offsets
    (its parallel design seeks), so the blob's own digest takes a second read here."""
    import rapidgzip
    from analyzer.digest import Sha256
    blob, plain = Sha256(), Sha256()
    for chunk in chunks(path):
        blob.update(chunk)
    with rapidgzip.open(str(path), parallelization=threads) as stream:
        while data := stream.read(CHUNK):
            plain.update(data)


def verify_threads(paths: list[Path]) -> None:
    """As verify -j N does N layers: each with a reader beside it if the cores allow."""
    beside = blobverify.reader_beside(len(paths))
    threads = [threading.Thread(target=verify_one, args=(p, beside)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def with_inflater(make: Callable[[], object], run: Callable[[], None]) -> Callable[[], None]:
    def go() -> None:
        saved = compression.gzip_member
        compression.gzip_member = make
        try:
            run()
        finally:
            compression.gzip_member = saved
    return go


def cpu_seconds() -> float:
    """CPU time of this process's threads and of its waited-for children (pipelines)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def pipeline(decompress: str, path: Path) -> Callable[[], None] | None:
    tool = decompress.split()[0]
    if shutil.which(tool) is None or shutil.which("openssl") is None:
        return None
    cmd = f"{decompress} {path} | openssl dgst -sha256 >/dev/null"
    return lambda: subprocess.run(["sh", "-c", cmd], check=True)


def peak_rss_kb(path: Path) -> int:
    code = ("import sys; sys.path.insert(0, sys.argv[2]);"
            "from benchmarks.bench_archive_verify import verify_one; from pathlib import Path;"
            "verify_one(Path(sys.argv[1]));"
            "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])")
    out = subprocess.run([sys.executable, "-c", code, str(path),
                          str(Path(__file__).resolve().parents[1])],
                         check=True, capture_output=True, text=True).stdout
    return int(out.split()[-1])


def oci_layout(dest: Path, tar: Path, blob: Path) -> None:
    """An OCI image layout with ``blob`` (``tar`` compressed) as its one layer."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes, media_type: str) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def sha256(path: Path) -> str:      # in chunks: the benchmark's own memory stays small
        sha = hashlib.sha256()
        for chunk in chunks(path):
            sha.update(chunk)
        return sha.hexdigest()

    digest = sha256(blob)
    shutil.copyfile(blob, blobs / digest)
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
             "digest": f"sha256:{digest}", "size": blob.stat().st_size}
    diff_id = "sha256:" + sha256(tar)
    config = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": [diff_id]}}).encode(),
        "application/vnd.oci.image.config.v1+json")
    manifest = put(json.dumps({"schemaVersion": 2, "config": config, "layers": [layer]}).encode(),
                   "application/vnd.oci.image.manifest.v1+json")
    manifest["annotations"] = {"org.opencontainers.image.ref.name": "bench"}
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [manifest]}))
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


def analyze_run(source: Path, *args: str) -> Callable[[], None]:
    argv = [sys.executable, "-m", "analyzer", "--source", str(source), *args]
    repo = str(Path(__file__).resolve().parents[1])
    return lambda: subprocess.run(argv, check=True, capture_output=True, cwd=repo)


def in_place_rows(tmp: Path, tar: Path, gz: Path) -> dict[str, Callable[[], None]]:
    """analyze ls and verify on one layout as a directory, a .tar and a .tar.gz: the
    compressed archive's extra pass (ArchiveRoot.spool: the layer blobs copied to a
    temporary file, as a compressed stream cannot seek) is its difference; a plain
    .tar is read in place."""
    layout = tmp / "layout"
    oci_layout(layout, tar, gz)
    plain, packed = tmp / "layout.tar", tmp / "layout.tar.gz"
    subprocess.run(["tar", "-cf", str(plain), "-C", str(layout), "."], check=True)
    compress(plain, ["gzip", "-1", "-n", "-c"], packed)
    return {f"{command} {where}": analyze_run(source, *argv)
            for command, argv in (("ls", ("ls", "-q")), ("verify", ("verify", "-j", "1")))
            for where, source in (("dir", layout), ("tar", plain), ("tar.gz", packed))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=300, help="layer size, MB (default 300)")
    parser.add_argument("--repeat", type=int, help="median of this many runs (default 5)")
    parser.add_argument("--ci", action="store_true", help="a small run: 32 MB")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    from compiled import compile_analyzer    # the script's own: children import this module
    compile_analyzer()
    size = (32 if args.ci else args.size_mb) * MB
    repeat = args.repeat or 5

    try:            # measured when installed: not dependencies of analyzer
        from zlib_ng import zlib_ng
    except ImportError:
        zlib_ng = None
    try:
        import rapidgzip
    except ImportError:
        rapidgzip = None

    with tempfile.TemporaryDirectory(prefix="bench-archive-") as tmp:
        tar, big = Path(tmp, "layer.tar"), Path(tmp, "big.tar")
        make_layer(tar, size)
        size = tar.stat().st_size
        gz, gz2, zst = Path(tmp, "a.tar.gz"), Path(tmp, "b.tar.gz"), Path(tmp, "a.tar.zst")
        zst2 = Path(tmp, "b.tar.zst")
        gzip_cmd = [shutil.which("pigz") and "pigz" or "gzip", "-6", "-n", "-c"]
        compress(tar, gzip_cmd, gz)
        shutil.copyfile(gz, gz2)
        compress(tar, ["zstd", "-q", "-3", "-c"], zst)
        shutil.copyfile(zst, zst2)

        rows: dict[str, tuple[Callable[[], None] | None, int]] = {
            "gzip -dc | openssl dgst": (pipeline("gzip -dc", gz), size),
            "pigz -dc | openssl dgst": (pipeline("pigz -dc", gz), size),
            "igzip -dc | openssl dgst": (pipeline("igzip -dc", gz), size),
            "zstd -dc | openssl dgst": (pipeline("zstd -q -dc", zst), size),
            "verify -j 1, gzip, stdlib zlib": (with_inflater(
                lambda: zlib.decompressobj(wbits=31), lambda: verify_one(gz)), size),
            "verify -j 1, gzip, zlib-ng": (zlib_ng and with_inflater(
                lambda: zlib_ng.decompressobj(wbits=31), lambda: verify_one(gz)), size),
            "verify -j 1, gzip, isal": (lambda: verify_one(gz), size),
            "verify -j 1, gzip, rapidgzip P=1": (rapidgzip and (
                lambda: verify_rapidgzip(gz, 1)), size),
            "verify -j 1, gzip, rapidgzip P=2": (rapidgzip and (
                lambda: verify_rapidgzip(gz, 2)), size),
            "verify -j 1, zstd": (lambda: verify_one(zst), size),
            "verify -j 2, two gzip layers, isal": (lambda: verify_threads([gz, gz2]), 2 * size),
            "verify -j 2, two zstd layers": (lambda: verify_threads([zst, zst2]), 2 * size),
        }
        times: dict[str, list[float]] = {name: [] for name, (run, _) in rows.items() if run}
        cpu: dict[str, list[float]] = {name: [] for name in times}
        for _ in range(repeat):
            for name in times:
                start, cpu_start = time.perf_counter(), cpu_seconds()
                rows[name][0]()
                times[name].append(time.perf_counter() - start)
                cpu[name].append(cpu_seconds() - cpu_start)
        rates = {name: rows[name][1] / statistics.median(t) / MB for name, t in times.items()}
        cpu_rates = {name: rows[name][1] / statistics.median(t) / MB for name, t in cpu.items()}

        in_place = in_place_rows(Path(tmp), tar, gz)
        seconds: dict[str, list[float]] = {name: [] for name in in_place}
        for _ in range(repeat):
            for name, run in in_place.items():
                start = time.perf_counter()
                run()
                seconds[name].append(time.perf_counter() - start)
        wall = {name: statistics.median(t) for name, t in seconds.items()}
        blob_mb = gz.stat().st_size / MB

        compress(tar, ["cat"], big)
        with open(big, "ab") as f, open(tar, "rb") as again:
            shutil.copyfileobj(again, f)
        big_gz, big_zst = Path(tmp, "big.tar.gz"), Path(tmp, "big.tar.zst")
        compress(big, gzip_cmd, big_gz)
        compress(big, ["zstd", "-q", "-3", "-c"], big_zst)
        rss = {kind: (peak_rss_kb(small), peak_rss_kb(large))
               for kind, small, large in (("gzip", gz, big_gz), ("zstd", zst, big_zst))}

    print(f"layer {size // MB} MB uncompressed ({gz.name} by {gzip_cmd[0]}), median of "
          f"{repeat} interleaved runs, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"{'':40} {'MB/s':>8} {'MB/cpu-s':>9}")
    for name, rate in rates.items():
        print(f"{name:40} {rate:8.0f} {cpu_rates[name]:9.0f}")
    print(f"analyze on an OCI layout of that layer ({blob_mb:.0f} MB blob), "
          "seconds, process start included:")
    for name, took in wall.items():
        print(f"{name:40} {took:8.2f}")
    for command in ("ls", "verify"):
        print(f"{command}: over the directory, the .tar (in place) costs "
              f"{wall[f'{command} tar'] - wall[f'{command} dir']:+.2f} s, the .tar.gz "
              f"(its spool pass) {wall[f'{command} tar.gz'] - wall[f'{command} dir']:+.2f} s")
    pipelines = [rates[n] for n in rates if "| openssl" in n and not n.startswith("zstd")]
    missed = []
    vs = rates["verify -j 1, gzip, isal"] / max(pipelines)
    print(f"verify -j 1 / best gzip pipeline = {vs:.2f} (target >= {TARGET_VS_PIPELINE})")
    if vs < TARGET_VS_PIPELINE:
        missed.append("-j 1 vs pipeline")
    if "zstd -dc | openssl dgst" in rates:
        zvs = rates["verify -j 1, zstd"] / rates["zstd -dc | openssl dgst"]
        print(f"verify -j 1 zstd / zstd pipeline = {zvs:.2f} (target >= {TARGET_VS_PIPELINE})")
        if zvs < TARGET_VS_PIPELINE:
            missed.append("-j 1 zstd vs pipeline")
    for kind, one, two in (("gzip", "verify -j 1, gzip, isal", "verify -j 2, two gzip layers, isal"),
                           ("zstd", "verify -j 1, zstd", "verify -j 2, two zstd layers")):
        scaling = rates[two] / cpu_rates[one]
        print(f"verify -j 2 {kind} / one core's -j 1 = {scaling:.2f} (target >= "
              f"{TARGET_TWO_THREADS}); -j 2 / -j 1 = {rates[two] / rates[one]:.2f}, -j 1 keeps "
              f"{cpu_rates[one] and rates[one] / cpu_rates[one]:.2f} cores busy")
        if scaling < TARGET_TWO_THREADS:
            missed.append(f"-j 2 {kind}")
    for kind, (small, large) in rss.items():
        growth = large / small
        print(f"peak RSS {kind}: {small // 1024} MiB at {size // MB} MB, {large // 1024} MiB at "
              f"{2 * size // MB} MB: x{growth:.2f} (target <= {TARGET_MEMORY_GROWTH})")
        if growth > TARGET_MEMORY_GROWTH:
            missed.append(f"memory {kind}")
    if missed:
        print(f"missed: {', '.join(missed)}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
