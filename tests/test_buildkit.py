"""BuildKit's build cache read offline, against what dockerd 20.10 itself reports and does.

The test that counts (``live``) builds images with BuildKit on a private daemon and
checks, on copies of its data root: the records equal ``GET /system/df``'s
``BuildCache`` field by field (sizes not yet recorded included); the layers the
cache holds explain ``docker image rm`` after a daemon restart (no layer lines for
what the cache holds, layer lines for the rest); after ``docker builder prune -af``
nothing is held and exactly the layers only the cache held are gone.
"""
from __future__ import annotations

import http.client
import json
import re
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from random import Random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.ids import ChainID, chain_ids
from analyzer.model import Image, Layer, Store
from analyzer.service import ImageService
from analyzer.sources.bbolt import BoltDB
from analyzer.sources.buildkit import (CONTAINERD_DB, LEGACY_METADATA_DB, METADATA_DB,
                                       SNAPSHOTS_DB, ZERO_TIME, BuildCache, load_build_cache,
                                       read_build_cache)
from tests.oracle.build import (ImageSpec, busybox_layer, dockerfile_context, random_text,
                                save_archive, synthetic_layer)
from tests.oracle.daemon import Daemon
from tests.test_bbolt import fixture, make_bolt

FIXTURES = Path(__file__).parent / "fixtures" / "buildkit"
DB_NAMES = ("metadata_v2.db", "snapshots.db", "containerdmeta.db", "cache.db")


def as_api(cache: BuildCache) -> list[dict]:
    """Records in the form of /system/df's BuildCache, sorted by ID."""
    return [{"ID": r.id, "Type": r.cache_type, "Description": r.description,
             "InUse": r.in_use, "Shared": r.shared, "Size": r.size,
             "CreatedAt": r.created_at, "LastUsedAt": r.last_used_at,
             "UsageCount": r.usage_count} for r in cache.records]


def api_records(records: list[dict] | None) -> list[dict]:
    keys = ("ID", "Type", "Description", "InUse", "Shared", "Size", "CreatedAt",
            "LastUsedAt", "UsageCount")
    return sorted(({k: r[k] for k in keys} for r in records or ()), key=lambda r: r["ID"])


# -- the recorded fixture ----------------------------------------------------------------

def fixture_store() -> tuple[dict, dict[ChainID, Layer], list[Image]]:
    doc = json.loads((FIXTURES / "store.json").read_text())
    layers = {ChainID(c): Layer(ChainID(c), v["diff_id"], v["parent"], v["cache_id"],
                                v["diff_size"], f"image/overlay2/layerdb/sha256/{c[7:]}")
              for c, v in doc["layers"].items()}
    return doc, layers, [image(i, d) for i, d in doc["images"].items()]


def image(image_id: str, diff_ids: list[str]) -> Image:
    return Image(image_id, {}, tuple(diff_ids), chain_ids(diff_ids)[-1] if diff_ids else None,
                 None, None, 0, None, f"image/overlay2/imagedb/content/sha256/{image_id[7:]}")


def fixture_files() -> dict[str, bytes]:
    return {f"buildkit/{name}": fixture(name) for name in DB_NAMES}


def test_fixture_records_equal_the_daemons_df() -> None:
    doc, layers, images = fixture_store()
    cache = read_build_cache(fixture_files(), layers, images)
    assert cache.diagnostics == ()
    assert as_api(cache) == api_records(doc["build_cache"])


def test_fixture_holds() -> None:
    doc, layers, images = fixture_store()
    cache = read_build_cache(fixture_files(), layers, images)
    by_record = {c for r in cache.records for c in r.layer_chain_ids}
    assert cache.held_chain_ids == by_record
    in_images = {c for i in images for c in chain_ids(i.diff_ids)}
    # fixture/again:1 was removed; its RUN layer is held by the cache alone.
    again = [r for r in cache.records if "echo again" in r.description]
    assert len(again) == 1 and not again[0].shared
    assert again[0].layer_chain_ids and not set(again[0].layer_chain_ids) & in_images
    # The snapshot keys BuildKit registered layers under are the layers' cache IDs.
    snapshots = BoltDB(fixture("snapshots.db"), SNAPSHOTS_DB)
    for key, bucket in snapshots.root.buckets():
        committed, chain = bucket.get("committed"), bucket.get("chainid")
        if committed and chain:
            assert layers[chain.decode()].cache_id == committed.decode()
            assert re.fullmatch(r"[0-9a-z]{25}", committed.decode())


def test_files_as_a_function_and_absent_files() -> None:
    doc, layers, images = fixture_store()
    files = fixture_files()
    assert read_build_cache(files.get, layers, images) == read_build_cache(files, layers, images)
    assert read_build_cache({}, layers, images) == BuildCache((), frozenset(), ())
    legacy = read_build_cache({LEGACY_METADATA_DB: make_bolt({b"_main": {}})}, layers, images)
    assert legacy.records == () and "v1 format" in legacy.diagnostics[0].message


def test_damaged_metadata_is_a_diagnostic() -> None:
    doc, layers, images = fixture_store()
    files = fixture_files()
    files[METADATA_DB] = files[METADATA_DB][:5000]
    cache = read_build_cache(files, layers, images)
    assert cache.records == () and cache.diagnostics[0].source == METADATA_DB
    files = fixture_files()
    files[CONTAINERD_DB] = b"\0" * 8192
    cache = read_build_cache(files, layers, images)
    assert len(cache.records) == len(doc["build_cache"]) and cache.held_chain_ids == frozenset()
    assert [d.source for d in cache.diagnostics] == [CONTAINERD_DB]


REAL = fixture_files()
REAL_STORE = fixture_store()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(DB_NAMES[:3]),
       st.lists(st.tuples(st.integers(2 * 4096, 26 * 4096), st.integers(0, 255)),
                min_size=1, max_size=6))
def test_mutated_databases_give_diagnostics_not_exceptions(
        name: str, edits: list[tuple[int, int]]) -> None:
    files = dict(REAL)
    data = bytearray(files[f"buildkit/{name}"])
    for offset, byte in edits:
        data[offset % len(data)] = byte
    files[f"buildkit/{name}"] = bytes(data)
    _, layers, images = REAL_STORE
    cache = read_build_cache(files, layers, images)
    assert all(isinstance(r.size, int) for r in cache.records)


# -- records written here: the daemon's rules one by one ---------------------------------

C1 = ChainID("sha256:" + "1" * 64)
C2 = ChainID("sha256:" + "2" * 64)
C9 = ChainID("sha256:" + "9" * 64)
T0 = 1_700_000_000_123_456_789


def value(v: object) -> bytes:
    return json.dumps({"value": v}).encode()


def record(**values: object) -> dict[bytes, bytes]:
    """A record's metadata; keyword ``cache_parent`` stands for ``cache.parent``, None
    leaves a key out."""
    base: dict[str, object] = {"cache.createdAt": T0, "cache.usageCount": 1,
                               "cache.lastUsedAt": T0 + 1000, "snapshot.committed": True}
    base.update({k.replace("_", "."): v for k, v in values.items()})
    return {k.encode(): value(v) for k, v in base.items() if v is not None}


def files_of(records: dict[str, dict], snapshots: dict | None = None,
             leases: dict | None = None) -> dict[str, bytes]:
    lease_tree = {}
    for lease, (snaps, temporary) in (leases or {}).items():
        tree: dict = {b"snapshots": {b"default": {s.encode(): b"" for s in snaps}}}
        if temporary:
            tree[b"labels"] = {b"buildkit/lease.temporary": b"2024-01-01T00:00:00Z"}
        lease_tree[lease.encode()] = tree
    return {
        METADATA_DB: make_bolt({b"_main": {k.encode(): v for k, v in records.items()}}),
        SNAPSHOTS_DB: make_bolt({k.encode(): {kk.encode(): vv.encode() for kk, vv in v.items()}
                                 for k, v in (snapshots or {}).items()}),
        CONTAINERD_DB: make_bolt({b"v1": {b"buildkit": {b"leases": lease_tree}}}),
    }


LAYERS = {C1: Layer(C1, C1, None, "c" * 64, 1000, "l1"),
          C2: Layer(C2, C9, C1, "keyb" + "0" * 21, 555, "l2")}


def by_id(cache: BuildCache) -> dict:
    return {r.id: r for r in cache.records}


def test_twin_of_a_mutable_record_is_hidden_and_lends_its_size() -> None:
    files = files_of({"mutable": record(snapshot_committed=None, cache_recordType="source.local",
                                        cache_description="local source for context"),
                      "immutable": record(cache_equalMutable="mutable", snapshot_size=94),
                      "bare": record(snapshot_committed=None)},
                     snapshots={"bare": {"size": "77"}})
    cache = read_build_cache(files, LAYERS, [])
    records = by_id(cache)
    assert set(records) == {"mutable", "bare"}
    assert records["mutable"].size == 94 and records["mutable"].cache_type == "source.local"
    assert records["bare"].size == 77 and records["bare"].cache_type == "regular"
    assert records["mutable"].created_at == "2023-11-14T22:13:20.123456789Z"
    assert records["mutable"].last_used_at == "2023-11-14T22:13:20.123457789Z"


def test_sizes_from_layers_recorded_sizes_and_the_graph_driver() -> None:
    files = files_of({"base": record(cache_snapshot=C1, cache_blobonly=True),
                      "run": record(cache_parent="base"),
                      "stage": record(cache_parent="base"),
                      "lost": record(cache_parent="base")},
                     snapshots={"run": {"chainid": C2, "committed": "keyb" + "0" * 21},
                                "stage": {"committed": "graphstage"},
                                "lost": {"chainid": C9}})
    sizes = {"graphstage": 321}
    cache = read_build_cache(files, LAYERS, [], sizes.get)
    records = by_id(cache)
    assert records["base"].size == 0                       # blob-only: no snapshot usage
    assert records["run"].size == 555                      # the layer's diff size
    assert records["stage"].size == 321                    # DiffSize of overlay2/graphstage
    assert records["lost"].size == 0
    assert [d.message for d in cache.diagnostics] == [
        f"record lost: snapshot lost is layer {C9}, which the layer store does not have; "
        f"size counted as 0"]
    unknown = read_build_cache(files, LAYERS, [])
    assert by_id(unknown)["stage"].size == 0
    assert any("graphstage unknown" in d.message for d in unknown.diagnostics)


def test_shared_records_and_their_parents() -> None:
    files = files_of({"base": record(cache_snapshot=C1, cache_blobonly=True),
                      "run": record(cache_parent="base"),
                      "other": record()},
                     snapshots={"base": {"chainid": C1}, "run": {"chainid": C2}})
    def shared(diff_ids: list[str]) -> tuple[bool, ...]:
        records = by_id(read_build_cache(files, LAYERS, [image("sha256:" + "a" * 64, diff_ids)]))
        return records["base"].shared, records["run"].shared, records["other"].shared

    # An image whose diff IDs start with the layer's: the record and its parents.
    assert shared([C2]) == (True, True, False)
    assert shared([C1, C9]) == (True, False, False)
    assert shared([C9]) == (False, False, False)


def test_leases_hold_layers() -> None:
    files = files_of({"base": record(cache_snapshot=C1, cache_blobonly=True),
                      "run": record(cache_parent="base"),
                      "gone": record(cache_parent="missing")},
                     snapshots={"run": {"chainid": C2}, "gone": {"chainid": C2},
                                "view": {"chainid": C2}},
                     leases={"base": ([C1], False), "run": (["run"], False),
                             "gone": (["gone"], False), "view": (["view"], True),
                             "anonymous": ([C1, "nothing"], False)})
    cache = read_build_cache(files, LAYERS, [])
    records = by_id(cache)
    assert records["base"].layer_chain_ids == (C1,)
    assert records["run"].layer_chain_ids == (C2,)
    assert "gone" not in records
    assert cache.held_chain_ids == {C1, C2}
    files = files_of({"gone": record(cache_parent="missing")}, snapshots={"gone": {"chainid": C2}},
                     leases={"gone": (["gone"], False), "view": ([C2], True)})
    assert read_build_cache(files, LAYERS, []).held_chain_ids == frozenset()


def test_records_the_daemon_drops_on_start() -> None:
    files = files_of({"orphan": record(cache_parent="missing"),
                      "deleted": record(cache_deleted=True),
                      "child": record(cache_parent="deleted"),
                      "loop1": record(cache_parent="loop2"),
                      "loop2": record(cache_parent="loop1"),
                      "twin": record(cache_equalMutable="missing"),
                      "lazy": record(cache_blobonly=True, cache_blob="sha256:" + "f" * 64),
                      "kept": record()})
    cache = read_build_cache(files, LAYERS, [])
    assert set(by_id(cache)) == {"kept"}
    dropped = {d.message.split(":")[0] for d in cache.diagnostics if "dropped" in d.message}
    assert dropped == {f"record {r}" for r in
                       ("orphan", "deleted", "child", "loop1", "loop2", "twin", "lazy")}


def test_values_as_go_unmarshals_them() -> None:
    files = files_of({"nousage": record(cache_usageCount=None),
                      "zero": record(cache_lastUsedAt=0, cache_createdAt=None),
                      "epoch": record(cache_createdAt=0, cache_usageCount=2.5),
                      "odd": {b"cache.description": b"not json", b"cache.usageCount": b"",
                              b"cache.recordType": value(7), b"snapshot.size": value(None),
                              b"cache.createdAt": b'{"value":5,"index":3}'}})
    cache = read_build_cache(files, LAYERS, [])
    records = by_id(cache)
    assert (records["nousage"].usage_count, records["nousage"].last_used_at) == (0, None)
    assert (records["zero"].usage_count, records["zero"].last_used_at) == (1, None)
    assert records["zero"].created_at == ZERO_TIME
    assert records["epoch"].created_at == "1970-01-01T00:00:00Z"
    assert (records["epoch"].usage_count, records["epoch"].last_used_at) == (0, None)
    odd = records["odd"]
    assert (odd.description, odd.cache_type, odd.size, odd.created_at, odd.shared) == \
        ("", "regular", 0, ZERO_TIME, False)
    messages = [d.message for d in cache.diagnostics]
    assert "record odd: cache.description: value is not a metadata JSON object; ignored" in messages
    assert "record odd: cache.createdAt: value is not a metadata JSON object; ignored" in messages
    assert any("zero: no creation time" in m for m in messages)


# -- the real daemon ---------------------------------------------------------------------

def system_df(d: Daemon) -> list[dict]:
    """``GET /system/df``'s BuildCache, straight from the daemon's API."""
    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(d.host[len("unix://"):])

    conn = UnixConnection("docker")
    try:
        conn.request("GET", "/v1.41/system/df")
        return json.loads(conn.getresponse().read())["BuildCache"]
    finally:
        conn.close()


BUILD_A = ("FROM base:1\nRUN echo a > /a && head -c 3000 /bin/busybox > /ablob\n"
           "RUN echo a2 > /a2\nLABEL x=1\n")
BUILD_C = "FROM bk/a:1\nRUN echo c > /c\n"                  # FROM an image BuildKit built
BUILD_E = "FROM extra:1\nRUN echo e > /e\n"                 # FROM a loaded image
BUILD_M = ("FROM base:1 AS stage\nRUN echo stage > /stage && echo more > /more\n"
           "FROM base:1\nCOPY payload.txt /payload.txt\nCOPY --from=stage /stage /stage\n")


@dataclass
class Snapshot:
    store: Store
    cache: BuildCache
    unmeasured: BuildCache                 # without the graph driver's DiffSize
    dbs: dict[str, bytes] = field(default_factory=dict)


@dataclass
class RmCase:
    argv: list[str]
    stdout: str
    before: Snapshot
    removed: list[str]                     # image IDs, in order


@dataclass
class LiveRun:
    before_df: Snapshot
    after_df: Snapshot
    df: list[dict]
    df_after_restart: list[dict]
    rm: list[RmCase]
    before_prune: Snapshot
    after_prune: Snapshot
    df_after_prune: list[dict]


def wait_buildkit_idle(d: Daemon, quiet: float = 2.0, limit: float = 120.0) -> None:
    """Wait until BuildKit's databases have not changed for ``quiet`` seconds.

    BuildKit releases a build's cache records after the client has its answer, and the
    release writes their usage count and last-used time a moment later (seconds later on
    a busy machine): a snapshot taken at once may miss it while the daemon's df does not.
    """
    def state() -> list:
        return [(p.name, p.stat().st_size, p.stat().st_mtime_ns)
                for p in sorted((d.data_root / "buildkit").glob("*.db"))]
    last, since, deadline = state(), time.monotonic(), time.monotonic() + limit
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        time.sleep(0.2)
        now = state()
        if now != last:
            last, since = now, time.monotonic()


def snapshot(d: Daemon, dest: Path) -> Snapshot:
    d.snapshot(dest)
    with ImageService(str(dest), warn=lambda message: None) as service:
        root, store = service.root, service.store
        cache = load_build_cache(root, store.driver, store.layers, store.images.values())
        dbs = {name: root.read(f"buildkit/{name}", 1 << 24) for name in DB_NAMES}
    unmeasured = read_build_cache({f"buildkit/{n}": b for n, b in dbs.items() if b},
                                  store.layers, store.images.values())
    return Snapshot(store, cache, unmeasured, dbs)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> LiveRun:
    tmp = tmp_path_factory.mktemp("buildkit")
    rng = Random(4242)
    bb = busybox_layer()
    with Daemon() as d:
        d.run("load", input=save_archive([
            ImageSpec([bb], datetime(2024, 1, 1, tzinfo=timezone.utc), ["base:1"]),
            ImageSpec([bb, synthetic_layer(rng, "opt/extra", 4, (500, 3000))],
                      datetime(2024, 2, 1, tzinfo=timezone.utc), ["extra:1"]),
            ImageSpec([bb, synthetic_layer(rng, "opt/plain", 3, (500, 3000))],
                      datetime(2024, 3, 1, tzinfo=timezone.utc), ["plain:1"])]))
        for name, text, files in (("a", BUILD_A, None), ("c", BUILD_C, None),
                                  ("e", BUILD_E, None),
                                  ("m", BUILD_M, {"payload.txt": random_text(rng, 1500)})):
            d.build(dockerfile_context(tmp / f"ctx-{name}", text, files), "-t", f"bk/{name}:1",
                    buildkit=True)
        wait_buildkit_idle(d)
        before_df = snapshot(d, tmp / "s-before-df")
        df = system_df(d)
        after_df = snapshot(d, tmp / "s-after-df")
        d.restart()
        df_after_restart = system_df(d)
        cases = []
        for i, refs in enumerate((["bk/c:1"], ["bk/e:1", "extra:1"], ["plain:1"])):
            ids = [d.inspect("image", ref)[0]["Id"] for ref in refs]
            before = snapshot(d, tmp / f"s-rm{i}")
            cases.append(RmCase(["image", "rm", *refs], d.run("image", "rm", *refs), before, ids))
        before_prune = snapshot(d, tmp / "s-before-prune")
        d.run("builder", "prune", "-af")
        after_prune = snapshot(d, tmp / "s-after-prune")
        df_after_prune = system_df(d)
        ids = [d.inspect("image", "bk/a:1")[0]["Id"]]
        cases.append(RmCase(["image", "rm", "bk/a:1"], d.run("image", "rm", "bk/a:1"),
                            after_prune, ids))
    return LiveRun(before_df, after_df, df, df_after_restart, cases, before_prune,
                   after_prune, df_after_prune)


def test_live_records_equal_system_df(live: LiveRun) -> None:
    want = api_records(live.df)
    assert len(want) >= 15
    assert live.before_df.cache.diagnostics == ()
    # Before any df the sizes are not recorded: they are computed as the daemon does.
    assert as_api(live.before_df.cache) == want
    assert any("unknown" in d.message for d in live.before_df.unmeasured.diagnostics)
    # df recorded them, and a restarted daemon reports the same.
    assert as_api(live.after_df.cache) == want
    assert live.after_df.unmeasured.diagnostics == ()
    assert as_api(live.after_df.unmeasured) == want
    assert api_records(live.df_after_restart) == want
    assert {r["Type"] for r in want} == {"regular", "source.local"}
    assert {r["Shared"] for r in want} == {True, False}


def test_live_databases_pass_the_page_check(live: LiveRun) -> None:
    for snap in (live.before_df, live.after_df, live.before_prune, live.after_prune):
        for name, data in snap.dbs.items():
            assert BoltDB(data, f"buildkit/{name}").check() == []


def closure(store: Store, tops) -> set[ChainID]:
    return {layer.chain_id for top in tops for layer in store.chain(top)}


def predicted_layer_lines(store: Store, held: frozenset[ChainID], removed: list[str]) -> set[str]:
    """Layers that go when ``removed`` go: those no remaining image, container or held
    layer needs (moby layer_store.go releaseLayer, one reference each)."""
    remaining = [i.top_layer for i in store.images.values() if i.id not in removed]
    mounts = [m.parent for m in store.mounts.values()]
    keep = closure(store, [*remaining, *mounts, *held])
    return closure(store, [store.images[i].top_layer for i in removed]) - keep


def test_live_held_layers_explain_image_rm(live: LiveRun) -> None:
    deleted_layers = []
    for case in live.rm:
        lines = case.stdout.splitlines()
        deleted = {line.split(" ", 1)[1] for line in lines if line.startswith("Deleted: ")}
        layers = deleted - set(case.removed)
        assert deleted & set(case.removed) == set(case.removed), case.stdout
        assert layers == predicted_layer_lines(case.before.store, case.before.cache.held_chain_ids,
                                               case.removed), case.argv
        deleted_layers.append(layers)
    # bk/c:1 and bk/e:1 + extra:1: the cache holds all their layers.
    assert deleted_layers[0] == deleted_layers[1] == set()
    # plain:1 was never built on: its own layer goes.
    assert len(deleted_layers[2]) == 1
    # After the prune, bk/a:1's own layers go with it.
    assert len(deleted_layers[3]) == 2
    # Held layers include layers of loaded images (extra:1), not only BuildKit's.
    before = live.rm[1].before
    extra_top = before.store.images[live.rm[1].removed[1]].top_layer
    assert extra_top in before.cache.held_chain_ids
    assert re.fullmatch(r"[0-9a-f]{64}", before.store.layers[extra_top].cache_id)


def test_live_builder_prune_frees_what_only_the_cache_held(live: LiveRun) -> None:
    assert live.after_prune.cache == BuildCache((), frozenset(), ())
    assert api_records(live.df_after_prune) == []
    before, after = live.before_prune.store, live.after_prune.store
    images = closure(before, [i.top_layer for i in before.images.values()])
    only_cache = closure(before, live.before_prune.cache.held_chain_ids) - images
    assert only_cache
    assert set(before.layers) - set(after.layers) == only_cache
    # BuildKit's own layers carry its snapshot keys as cache IDs.
    assert any(re.fullmatch(r"[0-9a-z]{25}", before.layers[c].cache_id) for c in only_cache)
