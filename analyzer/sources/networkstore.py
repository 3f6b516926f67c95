"""``network/files/local-kv.db``: the local networks libnetwork keeps, and how many
endpoints each has (a running container's attachment), read as the daemon's store.

libnetwork's boltdb store keeps every object in the bucket ``libnetwork`` under
``docker/network/v1.0/<kind>/<id>/`` (an endpoint under its network's ID), each value
an 8-byte index followed by the object's JSON.

References: moby v20.10.24 vendor/github.com/docker/libnetwork/network.go
(MarshalJSON, UnmarshalJSON), store.go (getEndpointsFromStore), libkv/store/boltdb
(dbIndex prefix), datastore/datastore.go (rootChain, Key).
"""
from __future__ import annotations

from typing import Callable

import orjson

from ..errors import EvidenceError, MalformedError
from ..goapi import unmarshal
from ..goapi.unmarshal import BOOL, STRING, TIME, MapOf, Struct
from ..model import Network
from .bbolt import BoltDB, read_db_file
from .evidence import EvidenceRoot

LOCAL_KV_DB = "network/files/local-kv.db"
BUCKET = "libnetwork"
_NETWORK = b"docker/network/v1.0/network/"
_ENDPOINT = b"docker/network/v1.0/endpoint/"
_INDEX = 8                                # libkv's dbIndex before each value

# network.go MarshalJSON, as far as prune reads it ("created" is absent before 17.06).
NETWORK = Struct({"id": STRING, "name": STRING, "networkType": STRING,
                  "labels": MapOf(STRING), "created": TIME, "configOnly": BOOL},
                 "libnetwork.network")


def read_networks(root: EvidenceRoot, warn: Callable[[str, str], None]) -> tuple[Network, ...]:
    """The local networks, each with its endpoint count; what cannot be read is warned
    of (``warn(file, reason)``) and left out."""
    try:
        data = read_db_file(root, LOCAL_KV_DB)
        if data is None:
            return ()
        bucket = BoltDB(data, LOCAL_KV_DB).bucket(BUCKET)
        entries = list(bucket.items()) if bucket is not None else []
    except (EvidenceError, MalformedError) as exc:
        warn(LOCAL_KV_DB, f"{exc.reason}; networks not read")
        return ()
    endpoints: dict[bytes, int] = {}
    docs = []
    for key, value in entries:
        if key.startswith(_ENDPOINT):
            nid = key[len(_ENDPOINT):].split(b"/", 1)[0]
            endpoints[nid] = endpoints.get(nid, 0) + 1
        elif key.startswith(_NETWORK) and value is not None:
            docs.append((key, value))
    out = []
    for key, value in docs:
        try:
            doc = orjson.loads(value[_INDEX:])
            unmarshal.check(doc, NETWORK)
        except (orjson.JSONDecodeError, unmarshal.Mismatch) as exc:
            warn(LOCAL_KV_DB, f"{key.decode('ascii', 'replace')}: not a valid network "
                              f"({exc}); network skipped")
            continue
        nid = doc.get("id") or ""
        out.append(Network(id=nid, name=doc.get("name") or "",
                           driver=doc.get("networkType") or "", labels=doc.get("labels") or {},
                           created=doc.get("created"), config_only=bool(doc.get("configOnly")),
                           endpoints=endpoints.get(nid.encode("utf-8", "replace"), 0),
                           source=LOCAL_KV_DB))
    return tuple(out)
