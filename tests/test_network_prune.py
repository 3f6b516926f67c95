"""The network prune planner (moby v20.10 localNetworksPrune) and local-kv.db."""
from __future__ import annotations

import struct

import orjson
import pytest

from analyzer.engines.networkprune import plan_network_prune
from analyzer.errors import DaemonError
from analyzer.model import Network
from analyzer.sources.evidence import open_root
from analyzer.sources.networkstore import LOCAL_KV_DB, read_networks
from tests.test_bbolt import make_bolt

NOW = 1_700_000_000.0          # 2023-11-14T22:13:20Z


def network(name: str, **fields) -> Network:
    return Network(id=f"{name}-id", name=name, driver=fields.pop("driver", "bridge"),
                   labels=fields.pop("labels", {}),
                   created=fields.pop("created", "2023-11-14T00:00:00Z"),
                   config_only=fields.pop("config_only", False),
                   endpoints=fields.pop("endpoints", 0), source=LOCAL_KV_DB)


def pruned(networks, filters=()) -> list[str]:
    return [n.name for n in plan_network_prune(networks, filters, NOW, utc_offset=0)]


def test_unused_custom_networks() -> None:
    nets = [network("bridge"), network("host", driver="host"), network("none", driver="null"),
            network("zz"), network("aa"), network("busy", endpoints=1),
            network("cfg", config_only=True), network("old", created=None)]
    assert pruned(nets) == ["aa", "old", "zz"]


def test_filters() -> None:
    nets = [network("edge", created="2023-11-14T21:13:20Z"),
            network("new", created="2023-11-14T21:13:20.5Z"),
            network("web", labels={"tier": "web"}, created="2023-01-01T00:00:00Z")]
    assert pruned(nets, [("until", "1h")]) == ["edge", "web"]
    assert pruned(nets, [("label", "tier=web")]) == ["web"]
    assert pruned(nets, [("label!", "tier")]) == ["edge", "new"]


@pytest.mark.parametrize("filters,message", [
    ([("dangling", "true")], "Invalid filter 'dangling'"),
    ([("until", "abc")], 'failed to parse value as time or duration: "abc"'),
])
def test_refused_filters(filters, message) -> None:
    with pytest.raises(DaemonError) as info:
        pruned([network("a")], filters)
    assert str(info.value) == message


def kv(index: int, doc: dict) -> bytes:
    return struct.pack("<Q", index) + orjson.dumps(doc)


def test_local_kv_db(tmp_path) -> None:
    prefix = b"docker/network/v1.0/"
    data = make_bolt({b"libnetwork": {
        prefix + b"network/n1/": kv(5, {"id": "n1", "name": "idle", "networkType": "bridge",
                                        "labels": {"a": "b"}, "configOnly": False,
                                        "created": "2023-11-14T00:00:00.5Z"}),
        prefix + b"network/n2/": kv(6, {"id": "n2", "name": "used", "networkType": "bridge"}),
        prefix + b"network/n3/": kv(7, {"id": "n3", "name": 3}),
        prefix + b"endpoint/n2/e1/": kv(8, {"id": "e1"}),
        prefix + b"endpoint/n2/e2/": kv(9, {"id": "e2"}),
        prefix + b"endpoint_count/n2/": kv(3, {"Count": 2}),
    }})
    (tmp_path / "network" / "files").mkdir(parents=True)
    (tmp_path / LOCAL_KV_DB).write_bytes(data)
    warnings: list = []
    with open_root(str(tmp_path)) as root:
        nets = read_networks(root, lambda f, r: warnings.append((f, r)))
    assert [(n.name, n.labels, n.created, n.endpoints) for n in nets] == [
        ("idle", {"a": "b"}, "2023-11-14T00:00:00.5Z", 0), ("used", {}, None, 2)]
    assert warnings == [(LOCAL_KV_DB, "docker/network/v1.0/network/n3/: not a valid network "
                                      "(name: cannot unmarshal number 3 into Go value of "
                                      "type string); network skipped")]


def test_damaged_local_kv_db_is_a_warning(tmp_path) -> None:
    (tmp_path / "network" / "files").mkdir(parents=True)
    (tmp_path / LOCAL_KV_DB).write_bytes(b"\1" * 5000)
    warnings: list = []
    with open_root(str(tmp_path)) as root:
        assert read_networks(root, lambda f, r: warnings.append((f, r))) == ()
    assert len(warnings) == 1 and warnings[0][1].endswith("; networks not read")
