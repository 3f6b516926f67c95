"""Reading and accounting a big thin pool, next to thin_ls on the same metadata.

    python benchmarks/bench_thinmeta.py [--devices N] [--mappings M] [--repeat R] [--ci]
                                        [--keep DIR] [--python] [--check]

The pool is laid out as Docker's: chains of ten devices, each a snapshot of the chain's
head that maps 90% of the head's blocks and writes 10% of its own; 2,000 devices and ten
million mappings by default. It is made by thin_restore from XML streamed to it (about
25 s for the default size; --keep DIR keeps it for the next run). The rows, best of R:

* ``thin_ls -o DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS`` (the same per-device
  counts; thin-provisioning-tools 0.9);
* ``read_pool`` (every block checksummed, every tree walked) and ``slack_report`` (per
  device as thin_ls counts, pool totals, slack against a sparse data file).

Target: read + account no slower than thin_ls. The per-device results are checked equal
to thin_ls's. --python adds the pure-Python twin (slow: use a small pool). --check exits 1
when the target is missed; --ci is a small run.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analyzer import _fastdigest, _thin_py  # noqa: E402
from analyzer.engines import slack  # noqa: E402
from analyzer.model import DeviceSet, DevInfo, HostFile  # noqa: E402
from analyzer.sources import devicemapper, thinmeta  # noqa: E402

CHAIN = 10
BLOCK_SECTORS = 128
BLOCK_BYTES = BLOCK_SECTORS * 512


def write_xml(path: Path, devices: int, mappings: int) -> int:
    """Docker-like pool XML; returns the number of data blocks used."""
    per = max(10, mappings // devices)
    own = per // 10
    used = 0
    with open(path, "w") as out:
        out.write(f'<superblock uuid="" time="1" transaction="{devices}" flags="0" version="2" '
                  f'data_block_size="{BLOCK_SECTORS}" nr_data_blocks="@NR@">\n')
        for d in range(1, devices + 1):
            out.write(f'<device dev_id="{d}" mapped_blocks="{per}" transaction="{d - 1}" '
                      f'creation_time="0" snap_time="0">\n')
            if d % CHAIN == 1:
                head, used = used, used + per
                out.write(f'<range_mapping origin_begin="0" data_begin="{head}" '
                          f'length="{per}" time="0"/>\n')
            else:
                out.write(f'<range_mapping origin_begin="0" data_begin="{head}" '
                          f'length="{per - own}" time="0"/>\n'
                          f'<range_mapping origin_begin="{per - own}" data_begin="{used}" '
                          f'length="{own}" time="0"/>\n')
                used += own
            out.write('</device>\n')
        out.write('</superblock>\n')
    return used


def make_pool(workdir: Path, devices: int, mappings: int) -> Path:
    meta = workdir / f"metadata-{devices}-{mappings}"
    if meta.exists():
        return meta
    xml = workdir / "pool.xml"
    used = write_xml(xml, devices, mappings)
    nr = used + used // 4                           # a quarter of the pool free
    xml.write_text(xml.read_text().replace("@NR@", str(nr), 1))
    tmp = meta.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.truncate(mappings * 64 + (32 << 20))
    start = time.perf_counter()
    subprocess.run(["thin_restore", "-q", "-i", str(xml), "-o", str(tmp)], check=True)
    print(f"thin_restore: {time.perf_counter() - start:.1f} s", flush=True)
    xml.unlink()
    tmp.rename(meta)
    return meta


def thin_ls(meta: Path) -> dict[int, tuple[int, int, int]]:
    out = subprocess.run(["thin_ls", "--no-headers", "-o",
                          "DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS", str(meta)],
                         check=True, capture_output=True, text=True).stdout
    return {int(r[0]): (int(r[1]), int(r[2]), int(r[3]))
            for r in (line.split() for line in out.splitlines())}


def data_file(workdir: Path, nr_blocks: int) -> HostFile:
    """A sparse data file: every tenth block of the first thousand written, then measured."""
    path = workdir / "data"
    with open(path, "wb") as f:
        f.truncate(nr_blocks * BLOCK_BYTES)
        for b in range(0, min(nr_blocks, 1000), 10):
            f.seek(b * BLOCK_BYTES)
            f.write(b"\1" * 4096)
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        return HostFile(str(path), st.st_size, st.st_blocks * 512,
                        devicemapper.data_extents(fd, st.st_size))
    finally:
        os.close(fd)


def ours(meta: Path, data: HostFile) -> tuple[float, float, slack.SlackReport]:
    start = time.perf_counter()
    fd = os.open(meta, os.O_RDONLY)
    try:
        pool = thinmeta.read_pool(thinmeta.FdBlocks(fd), source=str(meta),
                                  size=os.fstat(fd).st_size)
    finally:
        os.close(fd)
    read = time.perf_counter() - start
    # Docker knows the even devices; the odd ones are orphans to it.
    devset = DeviceSet({f"h{d}": DevInfo(f"h{d}", d, 0, 0, True, False, f"metadata/h{d}")
                        for d in pool.devices if d % 2 == 0})
    report = slack.slack_report(pool, devset, data, None)
    return read, time.perf_counter() - start - read, report


def use_backend(module) -> None:
    for target in (thinmeta, slack):
        for name in ("crc32c", "thin_keys_ok", "thin_tally", "thin_count_eq", "thin_mark"):
            if hasattr(target, name):
                setattr(target, name, getattr(module, name))


def best(run, repeat: int):
    results = [run() for _ in range(repeat)]
    return min(results, key=lambda r: r[0] + r[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--mappings", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ci", action="store_true", help="a small run: 200 devices, 200k mappings")
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the pool in this directory")
    parser.add_argument("--python", action="store_true", help="also time the pure-Python twin")
    parser.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    args = parser.parse_args(argv)
    if args.ci:
        args.devices, args.mappings = 200, 200_000

    with tempfile.TemporaryDirectory(prefix="bench-thin-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        meta = make_pool(workdir, args.devices, args.mappings)
        sb = thinmeta.parse_superblock(meta.read_bytes()[:thinmeta.METADATA_BLOCK_SIZE], "m")
        data = data_file(Path(tmp), thinmeta.DISK_SM_ROOT.unpack_from(sb.data_space_map_root)[0])
        meta_mib = meta.stat().st_size >> 20
        meta.read_bytes()                               # page cache, for both sides
        thin_ls_s = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            want = thin_ls(meta)
            thin_ls_s = min(thin_ls_s, time.perf_counter() - start)
        use_backend(_fastdigest)
        read_s, account_s, report = best(lambda: ours(meta, data), args.repeat)
        got = {d.device_id: (d.mapped_bytes // BLOCK_BYTES, d.exclusive_bytes // BLOCK_BYTES,
                             d.shared_bytes // BLOCK_BYTES) for d in report.devices}
        rows = [("thin_ls (MAPPED/EXCLUSIVE/SHARED_BLOCKS)", thin_ls_s, None),
                ("read_pool, native", read_s, None), ("slack_report, native", account_s, None),
                ("read + account, native", read_s + account_s, thin_ls_s / (read_s + account_s))]
        if args.python:
            use_backend(_thin_py)
            p_read, p_account, _ = ours(meta, data)
            rows.append(("read + account, Python twin", p_read + p_account,
                         thin_ls_s / (p_read + p_account)))
            use_backend(_fastdigest)

    pool = report.pool
    print(f"{len(pool.devices)} devices, {sum(d.mapped_blocks for d in pool.devices.values())} "
          f"mappings, {len(pool.leaves)} leaves, {pool.nr_data_blocks} data blocks, "
          f"metadata {meta_mib} MiB; best of {args.repeat}; "
          f"CRC-32C: {_fastdigest.features()}")
    print(f"{'':42} {'seconds':>8} {'thin_ls/ours':>12}")
    for name, seconds, ratio in rows:
        print(f"{name:42} {seconds:8.3f} {'' if ratio is None else f'{ratio:12.2f}'}")
    same = got == want
    print(f"per-device counts equal thin_ls: {same}")
    missed = not same or read_s + account_s > thin_ls_s
    if missed:
        print("missed: " + ("results differ from thin_ls" if not same else "slower than thin_ls"))
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
