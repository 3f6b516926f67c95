"""The builder prune planner (moby Builder.Prune over BuildKit's cacheManager.prune)
and the Docker 23+ volume prune; the oracle's "prunes" scenarios judge them against
dockerd 20.10 and 28.5."""
from __future__ import annotations

import dataclasses
import re

import pytest

from analyzer.engines.builderprune import SpaceCaps, plan_builder_prune
from analyzer.engines.daemonapi import API_20_10, API_28_5
from analyzer.engines.systemprune import plan_system_prune
from analyzer.engines.volumeprune import ANONYMOUS_LABEL, plan_volume_prune
from analyzer.errors import DaemonError
from analyzer.goapi.units import ram_in_bytes
from analyzer.model import BuildCacheRecord, Volume
from analyzer.sources.daemoninfo import written_by_docker_23
from analyzer.sources.evidence import open_root
from tests.test_rmi import C1, C2, D1, D2, StoreBuilder

NOW = 1_700_000_000.0
HOUR_NS = 3600 * 10**9


def record(rid: str, parent: str = "", cache_type: str = "regular", size: int = 10,
           chain=None, chains=(), dirs=(), last_used_ns: int | None = None,
           description: str = "") -> BuildCacheRecord:
    return BuildCacheRecord(
        id=rid, cache_type=cache_type, size=size, created_at="2023-11-14T00:00:00Z",
        last_used_at=None, usage_count=1, in_use=False, shared=False,
        description=description, layer_chain_ids=tuple(chains), source="buildkit",
        parent=parent, chain_id=chain, snapshot_dirs=tuple(dirs), last_used_ns=last_used_ns)


def cache_store(*records: BuildCacheRecord, image: bool = True):
    """busybox:1 on layers C1 (D1) and C2 (D1, D2) when ``image``; the records' layers
    are held by the cache."""
    b = StoreBuilder()
    b.image("b100", [D1, D2], ["busybox:1"])
    store = b.build()
    if not image:
        store = dataclasses.replace(store, images={}, references=())
    holds = frozenset(c for r in records for c in r.layer_chain_ids)
    return dataclasses.replace(store, build_cache=records, build_cache_holds=holds)


def pruned(store, all=False, filters=(), api=API_20_10) -> list[str]:
    return [r.id for r in plan_builder_prune(store, all, filters, NOW, api, 0).deleted]


def test_children_go_first_pass_by_pass() -> None:
    store = cache_store(record("base"), record("mid", parent="base"),
                        record("top", parent="mid"), record("lone"))
    assert pruned(store) == ["lone", "top", "mid", "base"]


def test_a_record_whose_own_layer_an_image_uses_stays_and_so_do_its_parents() -> None:
    store = cache_store(record("base", chain=C1, chains=[C1]),
                        record("img", parent="base", chain=C2, chains=[C2]),
                        record("private", parent="img"))
    assert pruned(store) == ["private"]
    assert pruned(store, all=True) == ["private", "img", "base"]


def test_internal_and_frontend_records_stay_without_all() -> None:
    store = cache_store(record("i", cache_type="internal"), record("f", cache_type="frontend"),
                        record("s", cache_type="source.local"))
    assert pruned(store) == ["s"]
    assert pruned(store, all=True) == ["f", "i", "s"]


def test_filters_id_is_a_regular_expression_type_is_equality() -> None:
    store = cache_store(record("abc1", cache_type="source.local"), record("abd2"),
                        record("xyz3", cache_type="source.local"))
    assert pruned(store, filters=[("id", "ab")]) == ["abc1", "abd2"]
    assert pruned(store, filters=[("type", "source.local")]) == ["abc1", "xyz3"]
    assert pruned(store, filters=[("type", "source.local"), ("id", "^x")]) == ["xyz3"]
    # pruneOnce fills in no parent, in-use or shared value the filter could equal.
    assert pruned(store, filters=[("shared", "false")]) == []
    assert pruned(store, filters=[("label", "a=b")]) == ["abc1", "abd2", "xyz3"]


def test_description_is_seen_from_buildkit_0_25() -> None:
    store = cache_store(record("a", description="[2/3] RUN x"), record("b"))
    assert pruned(store, filters=[("description", "[2/3] RUN x")]) == []
    assert pruned(store, filters=[("description", "[2/3] RUN x")], api=API_28_5) == ["a"]


def test_until_keeps_what_was_used_since() -> None:
    now_ns = int(NOW * 10**9)
    store = cache_store(record("old", last_used_ns=now_ns - 3 * HOUR_NS),
                        record("new", last_used_ns=now_ns - HOUR_NS), record("never"))
    assert pruned(store, filters=[("until", "2h")]) == ["never", "old"]
    assert pruned(store, filters=[("unused-for", "2h")]) == ["never", "old"]
    stamp = str(int(NOW) - 7200)
    assert pruned(store, filters=[("until", stamp)], api=API_28_5) == ["never", "old"]


@pytest.mark.parametrize("api,filters,message", [
    (API_20_10, [("bogus", "1")], "Invalid filter 'bogus'"),
    (API_28_5, [("mutable", "true")], "invalid filter 'mutable'"),
    (API_20_10, [("until", "1h"), ("unused-for", "1h")],
     'conflicting filters: "until" and "unused-for"'),
    (API_20_10, [("until", "1h"), ("until", "2h")], "filters expect only one value"),
    (API_20_10, [("type", "a"), ("type", "b")], "filters expect only one value"),
    (API_20_10, [("until", "2021-01-01")],
     '"until" filter expects a duration (e.g., \'24h\'): time: invalid duration "2021-01-01"'),
    (API_28_5, [("unused-for", "abc")],
     '"unused-for" filter expects a duration (e.g., \'24h\') or a timestamp: failed to '
     'parse value as time or duration: "abc"'),
])
def test_refusals(api, filters, message) -> None:
    with pytest.raises(DaemonError) as info:
        pruned(cache_store(record("a")), filters=filters, api=api)
    assert str(info.value) == "failed to prune build cache: " + message


def test_layers_and_directories_only_the_removed_records_held() -> None:
    # No image: C2 (and C1 under it) are the cache's alone, held by "img" and "base";
    # "keep" is used recently and holds C1 too.
    now_ns = int(NOW * 10**9)
    store = cache_store(record("base", chains=[C1], dirs=["d-base"]),
                        record("img", parent="base", chains=[C2], dirs=["d-img", "d-shared"]),
                        record("keep", chains=[C1], dirs=["d-shared"], last_used_ns=now_ns),
                        image=False)
    result = plan_builder_prune(store, False, [("until", "1h")], NOW, API_20_10, 0)
    assert [r.id for r in result.deleted] == ["img", "base"]
    assert result.released_layers == (C2,)          # C1: "keep" holds it still
    assert result.removed_dirs == ("d-base", "d-img")
    assert result.space_reclaimed == 20


def test_system_prune_prunes_the_cache_last_with_the_images_gone() -> None:
    # busybox:1 is dangling-free; with -a it goes, and then its records are not shared.
    store = cache_store(record("img", chain=C2, chains=[C2]))
    kept = plan_system_prune(store, [], False, False, [], NOW, {}, {},
                             store.build_cache_holds, 0)
    assert kept.build_cache.deleted == ()
    gone = plan_system_prune(store, [], True, False, [], NOW, {}, {},
                             store.build_cache_holds, 0)
    assert [r.id for r in gone.build_cache.deleted] == ["img"]
    assert gone.space_reclaimed == gone.images[2] + 10


def volume(name: str, anonymous: bool) -> Volume:
    return Volume(name=name, driver="local", options={}, size=-1, source=f"volumes/{name}",
                  labels={ANONYMOUS_LABEL: ""} if anonymous else {})


@pytest.mark.parametrize("filters,api,want", [
    ([], API_20_10, ["anon", "named"]),
    ([], API_28_5, ["anon"]),
    ([("all", "true")], API_28_5, ["anon", "named"]),
    ([("all", "0")], API_28_5, ["anon"]),
])
def test_volume_prune_by_api(filters, api, want) -> None:
    store = dataclasses.replace(StoreBuilder().build(),
                                volumes=(volume("anon", True), volume("named", False)))
    assert [v.name for v in plan_volume_prune(store, filters, {}, api).deleted] == want


@pytest.mark.parametrize("filters,message", [
    ([("all", "maybe")], 'invalid filter \'all\': strconv.ParseBool: parsing "maybe": '
                         "invalid syntax"),
    ([("all", "1"), ("all", "0")], "invalid filter 'all=[0 1]': only one value is expected"),
    ([("dangling", "1")], "invalid filter 'dangling'"),
])
def test_volume_prune_refusals_by_api_1_42(filters, message) -> None:
    with pytest.raises(DaemonError) as info:
        plan_volume_prune(StoreBuilder().build(), filters, {}, API_28_5)
    assert str(info.value) == message


def test_engine_id_tells_docker_23(tmp_path) -> None:
    with open_root(str(tmp_path)) as root:
        assert not written_by_docker_23(root)
    (tmp_path / "engine-id").write_text("0f3c\n")
    with open_root(str(tmp_path)) as root:
        assert written_by_docker_23(root)


def capped(store, caps, api=API_20_10, all=False) -> list[str]:
    return [r.id for r in plan_builder_prune(store, all, (), NOW, api, 0, caps=caps).deleted]


def test_a_cap_removes_the_least_used_record_a_pass_until_the_cache_fits() -> None:
    # Ranks: last use (never used first) plus use count; old's 1 use beats busy's 3.
    records = [dataclasses.replace(record("busy", size=30, last_used_ns=1), usage_count=3),
               record("old", size=30, last_used_ns=2), record("new", size=30, last_used_ns=3)]
    store = cache_store(*records)
    assert capped(store, SpaceCaps(keep_storage=90)) == ["old"]       # 90 >= 90: one pass
    assert capped(store, SpaceCaps(keep_storage=91)) == []            # under the cap
    # Then busy and new tie (each ranks first once): the fewer uses go first, as the
    # use-count sort left them.
    assert capped(store, SpaceCaps(keep_storage=31)) == ["old", "new"]
    assert capped(store, SpaceCaps(keep_storage=1)) == ["old", "new", "busy"]


def test_records_an_image_shares_do_not_count_against_the_cap() -> None:
    store = cache_store(dataclasses.replace(record("shared", size=50, chain=C2), shared=True),
                        record("mine", size=20, last_used_ns=1))
    assert capped(store, SpaceCaps(keep_storage=30)) == []
    assert capped(store, SpaceCaps(keep_storage=20)) == ["mine"]


def test_docker_28_keeps_the_larger_of_reserved_and_max_used_space() -> None:
    store = cache_store(record("a", size=40, last_used_ns=1), record("b", size=40,
                                                                      last_used_ns=2))
    assert capped(store, SpaceCaps(max_used_space=50), API_28_5) == ["a"]
    assert capped(store, SpaceCaps(reserved_space=81, max_used_space=50), API_28_5) == []
    # keep-storage is reserved-space's old name there; 20.10 knows only keep-storage.
    assert capped(store, SpaceCaps(keep_storage=81, max_used_space=50), API_28_5) == []
    assert capped(store, SpaceCaps(reserved_space=81, max_used_space=50)) == ["a", "b"]


@pytest.mark.parametrize("text,want", [
    ("300", 300), ("20k", 20480), ("20kB", 20480), ("1.5 MiB", 1572864), ("2KIB", 2048),
    ("5b", 5), ("1GB", 1 << 30),
    ("abc", "invalid size: 'abc'"), ("-1", "invalid size: '-1'"), ("", "invalid size: ''"),
    ("1x", "invalid suffix: 'x'"), ("1kbb", "invalid suffix: 'kbb'"),
    ("1.2.3", 'strconv.ParseFloat: parsing "1.2.3": invalid syntax')])
def test_sizes_parse_as_go_units_ram_in_bytes(text, want) -> None:
    if isinstance(want, int):
        assert ram_in_bytes(text) == want
    else:
        with pytest.raises(ValueError, match=f"^{re.escape(want)}$"):
            ram_in_bytes(text)
