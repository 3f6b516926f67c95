"""Slack and per-device accounting of devicemapper pools, block-exact.

Each pool is built as moby's devmapper driver leaves one: a base device, layers that are
snapshots of each other sharing blocks, a container's init and read-write devices, a
device marked deleted (deferred deletion), an orphan no metadata file names. Per-device
counts must equal thin_ls 0.9 on the same metadata; the slack must equal what the test
wrote into the sparse data file and punched out of it, to the byte.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.engines import slack
from analyzer.errors import MalformedError, UnsupportedLayoutError
from analyzer.sources import devicemapper, layout, thinmeta
from analyzer.sources.evidence import DirectoryRoot
from tests import dmfixtures as dm
from tests.dmfixtures import DataFile, Dev, DockerDev, PoolSpec, SharedPoolWriter

B = 65536                     # data block: 128 sectors, Docker's default
NR = 64                       # data blocks in the pool
REPO = Path(__file__).resolve().parents[1]

BASE, L1, L2, INIT, CTR, GONE, ORPHAN, MISSING = 1, 2, 3, 4, 5, 6, 7, 8
HASH = {BASE: "", L1: "c" * 64, L2: "d" * 64, INIT: "e" * 64 + "-init", CTR: "e" * 64,
        GONE: "f" * 64}


def pool_spec() -> PoolSpec:
    """The mappings of a small Docker pool (as thin_restore will write them).

    base: 0-3; L1 = snap of base + 4-5; L2 = snap of L1, overwrote vblock 1 with 6, + 7;
    init = snap of L2 + 8; container = snap of init + 9-10; deleted: 12-14 and base's 0;
    orphan: 15, 16 and L2's 7.
    """
    base = Dev(BASE).map_range(0, 0, 4)
    l1 = Dev(L1, transaction=1, creation_time=1).map_range(0, 0, 6)
    l2 = Dev(L2, transaction=2, creation_time=2).map_range(0, 0, 6).map_range(6, 7, 1)
    l2.mappings[1] = (6, 2)
    init = Dev(INIT, transaction=3, creation_time=3, mappings=dict(l2.mappings))
    init.mappings[7] = (8, 3)
    ctr = Dev(CTR, transaction=4, creation_time=4, mappings=dict(init.mappings))
    ctr.map_range(8, 9, 2, time=4)
    gone = Dev(GONE, transaction=5).map_range(0, 12, 3)
    gone.mappings[3] = (0, 0)
    orphan = Dev(ORPHAN, transaction=6).map_range(0, 15, 2)
    orphan.mappings[2] = (7, 0)
    return PoolSpec([base, l1, l2, init, ctr, gone, orphan], nr_data_blocks=NR, time=4,
                    transaction=7)


def docker_devices() -> list[DockerDev]:
    devs = [DockerDev(HASH[i], i, transaction_id=i) for i in (BASE, L1, L2, INIT, CTR)]
    devs.append(DockerDev(HASH[GONE], GONE, transaction_id=GONE, deleted=True))
    devs.append(DockerDev("a" * 64, MISSING, transaction_id=MISSING))   # not in the pool
    return devs


# What the data file holds, block by block: (offset in block, length) written, then punched.
WRITES = {b: [(0, B)] for b in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16)}
WRITES.update({
    11: [(0, B)],             # freed, never discarded: slack 64 KiB
    20: [(8192, 4096)],       # one host block of a never-mapped data block: slack 4 KiB
    21: [(0, B)],             # discarded: no slack
    22: [(0, B)],             # half discarded: slack 32 KiB
})
PUNCH = {21: [(0, B)], 22: [(0, B // 2)], 9: [(0, 4096)]}
SLACK = B + 4096 + B // 2
EXTRA = 3 * B                 # the file is longer than the pool; 1 block written past it


def build_data_file(path: Path) -> DataFile:
    f = DataFile(path, NR * B + EXTRA)
    for b, parts in WRITES.items():
        for off, n in parts:
            f.write(b * B + off, n)
    f.write(NR * B + B, B)
    for b, parts in PUNCH.items():
        for off, n in parts:
            f.punch(b * B + off, n)
    return f


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    top = tmp_path_factory.mktemp("dmroot")
    meta = dm.restore(pool_spec(), top / "metadata.tmp")
    dm.docker_tree(top, docker_devices(), metadata=meta, next_device_id=MISSING,
                   open_transaction_id=7, transaction_hash=HASH[GONE],
                   transaction_device_id=GONE)
    build_data_file(top / layout.DM_DATA_FILE)
    dm.layer_store(top, [("base", HASH[L1]), ("top", HASH[L2])],
                   {"9" * 64: ("e" * 64, 1)})
    return top


def report_of(top: Path, **kw) -> slack.SlackReport:
    root = DirectoryRoot(str(top))
    store = devicemapper.read_graphdriver_store(root, "devicemapper")
    pool, meta = devicemapper.read_pool(root, kw.get("metadata_file"))
    return slack.slack_report(pool, devicemapper.read_device_set(root),
                              devicemapper.host_file(root, layout.DM_DATA_FILE), meta, store)


def thin_ls_bytes(path: Path) -> dict[int, tuple[int, int, int]]:
    return {d: tuple(x * B for x in row) for d, row in dm.thin_ls(path).items()}


def mapped_sets(spec: PoolSpec) -> dict[int, set[int]]:
    return {d.dev_id: {blk for blk, _ in d.mappings.values()} for d in spec.devices}


def test_devices_equal_thin_ls(root, loops):
    report = report_of(root)
    want = thin_ls_bytes(root / layout.DM_METADATA_FILE)
    got = {d.device_id: (d.mapped_bytes, d.exclusive_bytes, d.shared_bytes)
           for d in report.devices}
    assert got == want
    # spot checks of what thin_ls says here: the container's own blocks are exclusive
    assert want[CTR][1] == 2 * B and want[BASE][1] == 0


def test_pool_totals_to_the_block(root, loops):
    report = report_of(root)
    sets = mapped_sets(pool_spec())
    live = set().union(*(sets[d] for d in (BASE, L1, L2, INIT, CTR)))
    dead = set().union(sets[GONE], sets[ORPHAN]) - live
    assert report.mapped_bytes == len(live) * B
    assert report.deleted_device_bytes == len(dead) * B == 5 * B     # 12-14, 15-16
    # past the pool's end counts too: one block written there
    assert report.slack_bytes == SLACK + B
    assert report.data_block_bytes == B and report.nr_data_blocks == NR


def test_files_and_device_rows(root):
    report = report_of(root)
    data = report.data_file
    assert data.apparent_bytes == NR * B + EXTRA
    st = (root / layout.DM_DATA_FILE).stat()
    assert data.allocated_bytes == st.st_blocks * 512
    assert report.metadata_file.apparent_bytes == 8 << 20
    rows = {d.device_id: d for d in report.devices}
    assert rows[ORPHAN].orphan and rows[ORPHAN].hash is None
    assert rows[GONE].deleted and not rows[GONE].orphan
    assert rows[BASE].used_for == ("base", "")
    assert rows[L1].used_for[0] == "layer" and rows[L2].used_for[0] == "layer"
    assert rows[CTR].used_for == ("container", "9" * 64)
    assert rows[INIT].used_for == ("init", "9" * 64)
    text = " | ".join(str(w) for w in report.warnings)
    assert f"device {MISSING} is not in the pool" in text
    assert "open transaction 7" not in text          # the pool is at transaction 7


def test_reclaim_layers_with_and_without_blkdiscard(root):
    report = report_of(root)
    sets = mapped_sets(pool_spec())
    going = (CTR, INIT)
    kept = set().union(*(s for d, s in sets.items() if d not in going))
    freed = set().union(*(sets[d] for d in going)) - kept
    assert freed == {8, 9, 10}
    host = 3 * B - 4096                              # block 9 had a hole punched
    hashes = [HASH[d] for d in going] + ["not-a-device"]
    assert slack.dm_reclaim(report, hashes, blkdiscard=True) == {
        "pool_bytes_freed": 3 * B, "host_bytes_freed": host,
        "slack_bytes_after": report.slack_bytes}
    assert slack.dm_reclaim(report, hashes, blkdiscard=False) == {
        "pool_bytes_freed": 3 * B, "host_bytes_freed": 0,
        "slack_bytes_after": report.slack_bytes + host}
    # deleting a layer its snapshots still map frees nothing
    assert slack.dm_reclaim(report, [HASH[L1]], True)["pool_bytes_freed"] == 0


def test_shared_subtrees_count_per_device(tmp_path, loops):
    """Kernel-like sharing: thin_ls walks each device; so must we."""
    w = SharedPoolWriter(nr_data_blocks=40000, transaction=3)
    w.create_thin(BASE, {v: (v, 0) for v in range(20000)})
    w.create_snap(L1, BASE)
    w.write(L1, 20000, 30000)
    w.write(L1, 3, 30001)
    w.create_snap(L2, L1)
    w.create_snap(INIT, L2)
    w.write(INIT, 20001, 30002)
    w.create_snap(CTR, INIT)
    w.create_thin(ORPHAN, {0: (35000, 0), 1: (35000, 0)})
    top = tmp_path / "root"
    metadata = w.render(2048)
    dm.docker_tree(top, docker_devices()[:5], metadata=metadata)
    pool_file = top / layout.DM_METADATA_FILE
    assert dm.thin_check(pool_file).returncode == 0
    data = DataFile(top / layout.DM_DATA_FILE, 40000 * B)
    data.write(36000 * B, 3 * 4096)                  # never mapped
    data.write(30000 * B, B)                         # mapped
    report = report_of(top)
    got = {d.device_id: (d.mapped_bytes, d.exclusive_bytes, d.shared_bytes)
           for d in report.devices}
    assert got == thin_ls_bytes(pool_file)
    assert got[ORPHAN] == (2 * B, 0, 2 * B)          # one block at two addresses is shared
    pool = report.pool
    assert pool.devices[L2].leaves == pool.devices[L1].leaves
    assert report.slack_bytes == 3 * 4096
    assert report.deleted_device_bytes == B
    assert report.mapped_bytes == (20000 + 3) * B


def test_cli_json(root):
    out = subprocess.run([sys.executable, "-m", "analyzer", "--data-root", str(root), "slack",
                          "--json"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    report = report_of(root)
    assert doc["slack_bytes"] == report.slack_bytes == SLACK + B
    assert doc["mapped_bytes"] == report.mapped_bytes
    assert doc["deleted_device_bytes"] == 5 * B
    assert doc["data_block_bytes"] == B
    assert doc["data_file"]["apparent_bytes"] == NR * B + EXTRA
    assert set(doc["metadata_file"]) >= {"apparent_bytes", "allocated_bytes"}
    rows = {d["device_id"]: d for d in doc["devices"]}
    assert rows[ORPHAN]["hash"] is None and rows[ORPHAN]["orphan"]
    assert rows[BASE]["hash"] == "" and rows[BASE]["used_for"] == {"kind": "base", "id": None}
    assert set(rows[CTR]) >= {"device_id", "hash", "mapped_bytes", "exclusive_bytes",
                              "shared_bytes", "deleted", "orphan"}
    assert any("is not in the pool" in w for w in doc["warnings"])
    assert "analyze: warning: " in out.stderr


def test_cli_table_and_metadata_file(root, tmp_path):
    copy = tmp_path / "meta-copy"
    copy.write_bytes((root / layout.DM_METADATA_FILE).read_bytes())
    out = subprocess.run([sys.executable, "-m", "analyzer", "--data-root", str(root), "slack",
                          "--metadata-file", str(copy)], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert f"slack (held by the data file, mapped by no device): {SLACK + B} " in out.stdout
    assert "DEVICE" in out.stdout and "orphan" in out.stdout and "base device" in out.stdout


def test_cli_refuses_other_drivers(tmp_path):
    (tmp_path / "image" / "overlay2" / "layerdb").mkdir(parents=True)
    out = subprocess.run([sys.executable, "-m", "analyzer", "--data-root", str(tmp_path),
                          "slack"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2
    assert out.stdout == ""
    assert len(out.stderr.splitlines()) == 1 and "not a devicemapper data root" in out.stderr


def test_device_set_files(root, tmp_path):
    ds = devicemapper.read_device_set(DirectoryRoot(str(root)))
    assert ds.devices[""].device_id == BASE and ds.devices[""].source.endswith("/base")
    assert ds.devices[HASH[GONE]].deleted
    assert (ds.next_device_id, ds.open_transaction_id, ds.transaction_device_id) == (
        MISSING, 7, GONE)
    assert ds.base_device_filesystem == "xfs" and ds.diagnostics == ()
    bad = tmp_path / "devicemapper" / "metadata"
    bad.mkdir(parents=True)
    (bad / "base").write_text('{"device_id": 1}')
    (bad / "x").write_text('{"device_id": "one"}')
    (bad / ".tmp123").write_text("garbage")
    (bad / "old.migrated").write_text("garbage")
    (bad / "transaction-metadata").write_text('{"open_transaction_id": 9}')
    ds = devicemapper.read_device_set(DirectoryRoot(str(tmp_path)))
    assert set(ds.devices) == {""} and ds.open_transaction_id == 9
    assert [d.source for d in ds.diagnostics] == ["devicemapper/metadata/x"]
    with pytest.raises(UnsupportedLayoutError):
        devicemapper.read_device_set(DirectoryRoot(str(tmp_path / "devicemapper")))


def test_pending_transaction_is_reported(root, tmp_path):
    report = report_of(root)
    ds = devicemapper.read_device_set(DirectoryRoot(str(root)))
    pending = type(ds)(devices=ds.devices, open_transaction_id=8, transaction_device_hash="z",
                       transaction_device_id=9)
    again = slack.slack_report(report.pool, pending, report.data_file, report.metadata_file)
    assert any("open transaction 8" in str(w) for w in again.warnings)


def test_damaged_pool_still_reports(root, tmp_path):
    data = bytearray((root / layout.DM_METADATA_FILE).read_bytes())
    pool = thinmeta.read_pool(bytes(data), source="m")
    victim = pool.devices[CTR].leaves[0]
    data[victim * 4096 + 100] ^= 1
    damaged = thinmeta.read_pool(bytes(data), source="m")
    report = slack.slack_report(damaged, devicemapper.read_device_set(DirectoryRoot(str(root))),
                                None, None)
    rows = {d.device_id: d for d in report.devices}
    assert not rows[CTR].complete and rows[BASE].complete
    assert any(f"block {victim}" in str(w) for w in report.warnings)


@pytest.mark.parametrize("opts, want", [
    ([], True),
    (["dm.blkdiscard=false"], False),
    (["DM.BlkDiscard=0"], False),
    (["dm.thinpooldev=/dev/mapper/docker-thinpool"], False),
    (["dm.datadev=/dev/sdb", "dm.blkdiscard=true"], True),
    (["dm.basesize=20G"], True),
])
def test_blkdiscard_from_storage_opts(opts, want):
    assert devicemapper.blkdiscard_from_options(opts) is want


def test_blkdiscard_from_daemon_config():
    cfg = b'{"storage-driver": "devicemapper", "storage-opts": ["dm.blkdiscard=false"]}'
    assert devicemapper.blkdiscard_from_daemon_config(cfg, "daemon.json") is False
    with pytest.raises(MalformedError):
        devicemapper.blkdiscard_from_options(["dm.blkdiscard=maybe"])


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats()
                    | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["device_id", "size", "transaction_id",
                                                       "initialized", "deleted",
                                                       "storage-opts", "x"]), inner,
                                      max_size=4), max_leaves=10)


@settings(max_examples=200, deadline=None)
@given(JSON, st.binary(max_size=40), st.integers(0, 60))
def test_device_files_fuzzed(doc, garbage, cut):
    """A device's metadata file and a daemon.json: a value or MalformedError naming the file."""
    text = json.dumps(doc).encode()
    for data in (text, text[:cut] + garbage):
        for parse in (lambda d: devicemapper.parse_dev_info(d, "h", "metadata/h"),
                      lambda d: devicemapper.blkdiscard_from_daemon_config(d, "metadata/h")):
            try:
                parse(data)
            except MalformedError as exc:
                assert exc.path == "metadata/h"


def test_store_carries_mapped_bytes(root):
    store = devicemapper.read(DirectoryRoot(str(root)))
    assert store.driver == "devicemapper"
    assert store.driver_usage[HASH[CTR]] == len(pool_spec().devices[4].mappings) * B
    assert HASH[L1] in {layer.cache_id for layer in store.layers.values()}


def test_cli_reclaim_on_devicemapper(root):
    """reclaim on a devicemapper root adds the pool's side; a mounted layer frees nothing."""
    def reclaim(*extra):
        out = subprocess.run([sys.executable, "-m", "analyzer", "--data-root", str(root),
                              "reclaim", "--json", "app", *extra],
                             capture_output=True, text=True, cwd=REPO)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    doc = reclaim()
    assert doc["untagged"] == ["app:latest"] and len(doc["deleted_images"]) == 1
    # The container's RW mount holds the top layer, and so the chain below it.
    assert doc["deleted_layers"] == []
    assert {h["chain_id"] for h in doc["held_layers"]} and all(
        h["held_by"] for h in doc["held_layers"])
    assert doc["pool_bytes_freed"] == 0 and doc["host_bytes_freed"] == 0
    assert doc["slack_bytes_after"] == report_of(root).slack_bytes
    assert reclaim("--blkdiscard", "off")["pool_bytes_freed"] == 0


def test_cli_df_on_devicemapper(root, tmp_path):
    """ls and df -v read a devicemapper root; a container's size is unknown, not made up."""
    import shutil
    top = tmp_path / "root"
    shutil.copytree(root, top)
    ctr = "9" * 64
    (top / "containers" / ctr).mkdir(parents=True)
    (top / "containers" / ctr / "config.v2.json").write_text(json.dumps({
        "ID": ctr, "Name": "/web", "Image": "sha256:" + "0" * 64, "Created": "2024-01-01T00:00:00Z",
        "Path": "sh", "Args": [], "Config": {"Image": "app"},
        "State": {"StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"}}))

    def run(*args):
        out = subprocess.run([sys.executable, "-m", "analyzer", "--data-root", str(top),
                              "--as-of", "1735689600", *args], capture_output=True, text=True,
                             cwd=REPO)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert run("ls").splitlines()[1].startswith("app ")
    rows = run("df", "-v").split("Containers space usage:")[1].splitlines()
    assert any(line.startswith("999999999999") and " unknown " in line for line in rows)


def test_owner_by_device_id(root, tmp_path):
    """`owner N` names what thin device N is Docker's for: its hash in Docker's device
    metadata is a layer's cache ID or a container's mount or init ID; the pool alone
    knows an orphan; a device ID neither knows is nothing's."""
    def owner(device_id: int, status: int = 0) -> dict:
        out = subprocess.run([sys.executable, "-m", "analyzer", "--data-root", str(root),
                              "owner", "--json", str(device_id)],
                             capture_output=True, text=True, cwd=REPO)
        assert out.returncode == status and "Traceback" not in out.stderr, out.stderr
        return json.loads(out.stdout)

    chains = dm.layer_store(tmp_path, [("base", HASH[L1]), ("top", HASH[L2])],
                            {"9" * 64: ("e" * 64, 1)})
    for dev in (L1, L2):
        doc = owner(dev)
        assert doc["matched"][:3] == [{"kind": "device_id", "id": str(dev)},
                                      {"kind": "device_hash", "id": HASH[dev]},
                                      {"kind": "cache_id", "id": HASH[dev]}]
        assert [la["chain_id"] for la in doc["layers"]] == [chains[HASH[dev]]]
        assert [i["tags"] for i in doc["images"]] == [["app:latest"]]
    for dev, kind in ((INIT, "init_id"), (CTR, "mount_id")):
        assert {"kind": kind, "id": HASH[dev]} in owner(dev)["matched"]
    assert owner(GONE)["matched"][0] == {"kind": "deleted_device_id", "id": str(GONE)}
    base = owner(BASE)
    assert base["matched"] == [{"kind": "device_id", "id": str(BASE)},
                               {"kind": "device_hash", "id": "base"}] and not base["layers"]
    assert owner(ORPHAN)["matched"] == [{"kind": "orphan_device_id", "id": str(ORPHAN)}]
    assert owner(99, status=1)["matched"] == []
