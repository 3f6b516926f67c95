"""The volume prune planner (moby v20.10 VolumesService.Prune) and volumes/metadata.db."""
from __future__ import annotations

import dataclasses

import orjson
import pytest

from analyzer.engines.volumeprune import plan_volume_prune
from analyzer.errors import DaemonError
from analyzer.model import Volume
from analyzer.sources.evidence import open_root
from analyzer.sources.volumestore import VolumeMetadata, read_volume_metadata
from tests.test_bbolt import make_bolt
from tests.test_rmi import D1, StoreBuilder


def volume(name: str, **fields) -> Volume:
    return Volume(name=name, driver=fields.pop("driver", "local"),
                  options=fields.pop("options", {}), size=-1, source=f"volumes/{name}",
                  **fields)


def store_with(*volumes: Volume, used: dict[str, bool] | None = None):
    """``used``: volume name -> whether the container mounting it runs."""
    b = StoreBuilder()
    image = b.image("1bb0", [D1], ["busybox:latest"])
    for n, (name, running) in enumerate((used or {}).items()):
        cid = b.container(f"{n}c{n}", image, running=running)
        b.containers[cid] = dataclasses.replace(
            b.containers[cid], mounts=({"Name": name, "Destination": "/d", "Type": "volume"},))
    return dataclasses.replace(b.build(), volumes=volumes)


def pruned(store, filters=(), sizes=None) -> list[str]:
    return [v.name for v in plan_volume_prune(store, filters, sizes or {}).deleted]


def test_unused_local_volumes_anonymous_or_named() -> None:
    anon = "a" * 64
    store = store_with(volume("zeta"), volume(anon), volume("by-stopped"),
                       volume("by-running"), volume("tmpfs", options={"type": "tmpfs"}),
                       volume("nfs", driver="nfsplugin"),
                       used={"by-stopped": False, "by-running": True})
    assert pruned(store) == [anon, "zeta"]


def test_space_is_the_sum_of_known_sizes() -> None:
    store = store_with(volume("a"), volume("b"), volume("c"))
    result = plan_volume_prune(store, (), {"a": 2, "b": -1, "c": 40})
    assert result.space_reclaimed == 42


@pytest.mark.parametrize("filters,kept", [
    ([("label", "team")], {"plain"}),
    ([("label", "team=db")], {"plain", "web"}),
    ([("label!", "team")], {"db", "web"}),
    ([("label!", "team=db"), ("label!", "keep")], {"db"}),
])
def test_labels(filters, kept) -> None:
    store = store_with(volume("plain"), volume("db", labels={"team": "db", "keep": ""}),
                       volume("web", labels={"team": "web"}))
    assert {"plain", "db", "web"} - set(pruned(store, filters)) == kept


@pytest.mark.parametrize("key", ["until", "dangling", "all", "name", "driver"])
def test_refused_filters(key) -> None:
    with pytest.raises(DaemonError) as info:
        pruned(store_with(volume("a")), [(key, "1")])
    assert str(info.value) == f"Invalid filter '{key}'"


def meta(name: str, **doc) -> bytes:
    return orjson.dumps({"Name": name, "Driver": "local", "Labels": None, "Options": None,
                         **doc})


def read(tmp_path, data: bytes) -> tuple[dict, list]:
    (tmp_path / "volumes").mkdir()
    (tmp_path / "volumes" / "metadata.db").write_bytes(data)
    warnings: list = []
    with open_root(str(tmp_path)) as root:
        found = read_volume_metadata(root, lambda f, r: warnings.append((f, r)))
    return found, warnings


def test_metadata_db(tmp_path) -> None:
    found, warnings = read(tmp_path, make_bolt({b"volumes": {
        b"data": meta("data", Labels={"team": "db"}),
        b"tmp": meta("tmp", Options={"type": "tmpfs", "device": "tmpfs"}),
        b"empty": b"",
        b"bad": b'{"Name": "bad", "Labels": {"a": 1}}',
    }}))
    assert found == {"data": VolumeMetadata("local", {"team": "db"}, {}),
                     "tmp": VolumeMetadata("local", {}, {"type": "tmpfs", "device": "tmpfs"})}
    assert warnings == [("volumes/metadata.db", "volume 'bad': not valid volume metadata "
                         "(Labels.a: cannot unmarshal number 1 into Go value of type string); "
                         "its labels and options not read")]


def test_damaged_metadata_db_is_a_warning(tmp_path) -> None:
    found, warnings = read(tmp_path, b"\0" * 8192)
    assert found == {} and len(warnings) == 1
    assert warnings[0][0] == "volumes/metadata.db"
    assert warnings[0][1].endswith("; volumes' labels and options not read")
