"""containerd's metadata database (``io.containerd.metadata.v1.bolt/meta.db``) and a
snapshotter's own ``metadata.db``, read from bytes into :mod:`analyzer.containerdmodel`.

meta.db is bbolt: ``v1/<namespace>/{images,containers,leases,sandboxes,
content/{blob,ingests},snapshots/<snapshotter>}``, each object a bucket of fields
(``labels`` and ``annotations`` nested buckets, times as Go's time.MarshalBinary,
sizes as Go varints). A file copied from a live host may be mid-write: BoltDB opens
the newest meta page that is valid. A record that cannot be read is skipped with a
Diagnostic naming it, as containerd's own List would fail on it; the rest still answers.

References: containerd core/metadata/buckets.go (schema), images.go readImage,
content.go readInfo, leases.go parseLeaseResources, snapshot.go, containers.go
readContainer, gc.go (what each field means to the collector), pkg/boltutil/helpers.go
(ReadLabels, ReadTimestamps); core/snapshots/storage/bolt.go (the snapshotter's
``v1/snapshots/<key>/{id,kind,parent,labels,size,inodes}``); Go encoding/binary
(Varint, Uvarint) and time.Time.MarshalBinary.
"""
from __future__ import annotations

from typing import Callable, Iterator, TypeVar

from ..containerdmodel import (BackendSnapshot, Blob, Container, Descriptor, Image, Ingest,
                               Kind, Labels, Lease, MetaStore, Namespace, Sandbox, Snapshot)
from ..errors import MalformedError
from ..model import Diagnostic
from .bbolt import BoltDB, Bucket

SCHEMA = b"v1"
# time.Time.MarshalBinary: version, seconds since year 1 (int64 BE), nanoseconds (int32
# BE), zone offset in minutes (int16 BE); version 2 adds the offset's seconds.
_GO_EPOCH_TO_UNIX = 62135596800
T = TypeVar("T")
_KINDS = frozenset(k.value for k in Kind)


def varint(data: bytes) -> int | None:
    """Go binary.Varint (zig-zag), as containerd writes sizes; None when malformed."""
    value = shift = 0
    for byte in data[:10]:
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (value >> 1) ^ -(value & 1)
        shift += 7
    return None


def uvarint(data: bytes) -> int | None:
    """Go binary.Uvarint, as the snapshotter writes snapshot IDs; None when malformed."""
    value = shift = 0
    for byte in data[:10]:
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value
        shift += 7
    return None


def go_time(data: bytes | None) -> int | None:
    """Unix nanoseconds of a Go time.MarshalBinary value; None when absent or malformed."""
    if not data or data[0] not in (1, 2) or len(data) < 15:
        return None
    seconds = int.from_bytes(data[1:9], "big", signed=True) - _GO_EPOCH_TO_UNIX
    nanos = int.from_bytes(data[9:13], "big", signed=True)
    if not 0 <= nanos < 1_000_000_000:
        return None
    return seconds * 1_000_000_000 + nanos


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "surrogateescape") if value else ""


def _labels(bucket: Bucket, name: bytes = b"labels") -> Labels:
    nested = bucket.bucket(name)
    if nested is None:
        return {}
    return {_text(k): _text(v) for k, v in nested.items() if v is not None}


def _keys(bucket: Bucket | None) -> tuple[str, ...]:
    return tuple(_text(k) for k in bucket) if bucket is not None else ()


class _Reader:
    """Walks one meta.db; every record goes through :meth:`_each`, which turns damage
    into a Diagnostic and skips the record."""

    def __init__(self, db: BoltDB):
        self.db = db
        self.diagnostics: list[Diagnostic] = []

    def _each(self, where: str, bucket: Bucket | None,
              parse: Callable[[str, Bucket], T | None]) -> Iterator[T]:
        if bucket is None:
            return
        try:
            children = list(bucket.buckets())
        except MalformedError as exc:
            self.diagnostics.append(Diagnostic(exc.path, f"{where}: {exc.reason}"))
            return
        for key, child in children:
            name = _text(key)
            try:
                value = parse(name, child)
            except MalformedError as exc:
                self.diagnostics.append(Diagnostic(exc.path, f"{where}/{name}: {exc.reason}"))
                continue
            if value is not None:
                yield value

    def _skip(self, where: str, why: str) -> None:
        self.diagnostics.append(Diagnostic(self.db.source, f"{where}: {why}"))

    def read(self) -> MetaStore:
        namespaces, images, blobs, snapshots = [], [], [], []
        leases, containers, ingests, sandboxes = [], [], [], []
        version = None
        v1 = self.db.bucket(SCHEMA)
        if v1 is not None:
            raw = v1.get(b"version")
            version = varint(raw) if raw else None
        for ns_key, ns in (v1.buckets() if v1 is not None else ()):
            n = _text(ns_key)
            namespaces.append(Namespace(n, _labels(ns)))
            images += self._each(f"{n}/images", ns.bucket(b"images"),
                                 lambda k, b, n=n: self._image(n, k, b))
            content = ns.bucket(b"content")
            if content is not None:
                blobs += self._each(f"{n}/content/blob", content.bucket(b"blob"),
                                    lambda k, b, n=n: self._blob(n, k, b))
                ingests += self._each(f"{n}/content/ingests", content.bucket(b"ingests"),
                                      lambda k, b, n=n: Ingest(
                                          n, k, _text(b.get(b"expected")),
                                          go_time(b.get(b"expireat"))))
            by_snapshotter = ns.bucket(b"snapshots")
            for sn_key, sn in (by_snapshotter.buckets() if by_snapshotter is not None else ()):
                s = _text(sn_key)
                snapshots += self._each(f"{n}/snapshots/{s}", sn,
                                        lambda k, b, n=n, s=s: Snapshot(
                                            n, s, k, _text(b.get(b"name")),
                                            _text(b.get(b"parent")) or None, _labels(b),
                                            go_time(b.get(b"createdat"))))
            leases += self._each(f"{n}/leases", ns.bucket(b"leases"),
                                 lambda k, b, n=n: self._lease(n, k, b))
            containers += self._each(f"{n}/containers", ns.bucket(b"containers"),
                                     lambda k, b, n=n: Container(
                                         n, k, _text(b.get(b"image")),
                                         _text(b.get(b"snapshotter")),
                                         _text(b.get(b"snapshotKey")), _labels(b),
                                         go_time(b.get(b"createdat"))))
            sandboxes += self._each(f"{n}/sandboxes", ns.bucket(b"sandboxes"),
                                    lambda k, b, n=n: Sandbox(n, k, _labels(b)))
        return MetaStore(tuple(namespaces), tuple(images), tuple(blobs), tuple(snapshots),
                         tuple(leases), tuple(containers), tuple(ingests), tuple(sandboxes),
                         version, tuple(self.diagnostics))

    def _image(self, namespace: str, name: str, bucket: Bucket) -> Image | None:
        target = bucket.bucket(b"target")
        digest = _text(target.get(b"digest")) if target is not None else ""
        if not digest:
            # images.go readImage: "unable to read target bucket"; List fails on it.
            self._skip(f"{namespace}/images/{name}", "no target digest")
            return None
        size = varint(target.get(b"size") or b"\0")
        return Image(namespace, name,
                     Descriptor(_text(target.get(b"mediatype")), digest, size or 0),
                     _labels(bucket), _labels(bucket, b"annotations"),
                     go_time(bucket.get(b"createdat")), go_time(bucket.get(b"updatedat")))

    def _blob(self, namespace: str, digest: str, bucket: Bucket) -> Blob | None:
        size = varint(bucket.get(b"size") or b"")
        if size is None or size < 0:
            self._skip(f"{namespace}/content/blob/{digest}", "no valid size")
            return None
        return Blob(namespace, digest, size, _labels(bucket), go_time(bucket.get(b"createdat")))

    def _lease(self, namespace: str, lease_id: str, bucket: Bucket) -> Lease:
        by_snapshotter = bucket.bucket(b"snapshots")
        snapshots = tuple((_text(s), key) for s, sn in (by_snapshotter.buckets()
                                                         if by_snapshotter is not None else ())
                          for key in _keys(sn))
        return Lease(namespace, lease_id, _labels(bucket), go_time(bucket.get(b"createdat")),
                     _keys(bucket.bucket(b"content")), snapshots,
                     _keys(bucket.bucket(b"ingests")), _keys(bucket.bucket(b"images")))


def parse_meta_db(data: bytes | memoryview, source: str) -> MetaStore:
    """Every namespace of a containerd meta.db.

    Raises:
        MalformedError: the file is not a bbolt database with a valid meta page, or its
            ``v1`` bucket cannot be walked. Damaged records inside are diagnostics.
    """
    return _Reader(BoltDB(data, source)).read()


def parse_snapshotter_db(data: bytes | memoryview,
                         source: str) -> tuple[dict[str, BackendSnapshot], list[Diagnostic]]:
    """A snapshotter's metadata.db (overlayfs, native, ...): each snapshot by its key.

    Raises:
        MalformedError: the file is not a bbolt database with a valid meta page.
    """
    db = BoltDB(data, source)
    out: dict[str, BackendSnapshot] = {}
    diags: list[Diagnostic] = []
    bucket = db.bucket(b"v1", b"snapshots")
    reader = _Reader(db)

    def one(key: str, b: Bucket) -> BackendSnapshot | None:
        ident = uvarint(b.get(b"id") or b"")
        kind = b.get(b"kind") or b""
        if ident is None or len(kind) != 1 or kind[0] not in _KINDS:
            reader._skip(f"v1/snapshots/{key}", "no valid id or kind")
            return None
        size, inodes = b.get(b"size"), b.get(b"inodes")
        return BackendSnapshot(key, ident, Kind(kind[0]), _text(b.get(b"parent")) or None,
                               _labels(b), varint(size) if size else None,
                               varint(inodes) if inodes else None,
                               go_time(b.get(b"createdat")))

    for snap in reader._each("v1/snapshots", bucket, one):
        out[snap.key] = snap
    diags.extend(reader.diagnostics)
    return out, diags
