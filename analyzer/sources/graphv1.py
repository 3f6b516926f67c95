"""The graph of Docker before 1.10 (``graph/<id>``, ``repositories-<driver>``,
containers' ``config.json``), read as Docker 1.10's migration would have migrated it.

Before 1.10 an image was its v1 JSON and one layer, named by a random ID, and chained
to its parent by that ID. Docker 1.10 rebuilt each layer's tar stream from its
``tar-data.json.gz`` (tar-split) and the driver's files to get its diff ID, then made
each image a config from its v1 JSON (``id``, ``parent``, ``Size`` and such dropped;
``rootfs`` the diff IDs of its chain, ``history`` one entry per image of the chain):
the image ID is that config's sha256. Every v1 image becomes an image, its parent's
the image's parent; a container's RW layer keeps the container's ID as its mount ID.
Only ``checksum`` (a compressed blob's digest) cannot be re-derived.

References: moby v1.10 migrate/v1/migratev1.go (migrateImage, migrateContainers,
migrateRefs, calculateLayerChecksum), layer/migration.go (ChecksumForGraphID),
layer/layer_store.go (assembleTarTo, unpackSizeCounter), image/v1/imagev1.go
(MakeConfigFromV1Config, HistoryFromConfig: noFallbackMinVersion 1.8.3),
api/types/versions (compare), graph/graph.go and graph/tags.go (the layout).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import orjson

from ..digest import Sha256
from ..errors import EvidenceError
from ..goapi.json import compact, marshal
from ..goapi import unmarshal
from ..goapi.unmarshal import field
from ..ids import (ChainID, ContainerID, DiffID, ImageID, MountID, chain_id_from_parent,
                   digest_of, hex_part, is_digest, is_hex64)
from ..model import Image, Layer, Mount, Store
from . import Detected, Roots, aufslayers, layout, mobytypes
from .drivers import DIRECTORY_DRIVERS
from .evidence import JSON_LIMIT, EvidenceRoot
from .graphdriver import _Loader, created_unix_ns
from .layerfiles import LayerFiles, StoreFiles, chunks
from .tarsplit import clean_name, iter_runs

KIND = "graphv1"
TAR_DATA = "tar-data.json.gz"            # graph.go: the layer's tar-split
# Before this version the v1 JSON is re-marshalled through Go's V1Image struct first.
NO_FALLBACK_MIN_VERSION = (1, 8, 3)
# MakeConfigFromV1Config: what a v1 JSON has that a config does not.
V1_ONLY_FIELDS = ("id", "parent", "Size", "parent_id", "layer_id", "throwaway")
# Go's zero values by kind, as a struct field marshals when the JSON lacks it.
_STR, _BOOL, _MAP, _LIST = "", False, "map", "list"
# engine-api container.Config as Docker 1.10 vendored it: (field, kind, omitempty), in order.
CONTAINER_CONFIG = (
    ("Hostname", _STR, False), ("Domainname", _STR, False), ("User", _STR, False),
    ("AttachStdin", _BOOL, False), ("AttachStdout", _BOOL, False),
    ("AttachStderr", _BOOL, False), ("ExposedPorts", _MAP, True),
    ("PublishService", _STR, True), ("Tty", _BOOL, False), ("OpenStdin", _BOOL, False),
    ("StdinOnce", _BOOL, False), ("Env", _LIST, False), ("Cmd", _LIST, False),
    ("ArgsEscaped", _BOOL, True), ("Image", _STR, False), ("Volumes", _MAP, False),
    ("WorkingDir", _STR, False), ("Entrypoint", _LIST, False),
    ("NetworkDisabled", _BOOL, True), ("MacAddress", _STR, True), ("OnBuild", _LIST, False),
    ("Labels", _MAP, False), ("StopSignal", _STR, True))
# image.V1Image's fields in order ("created" and "container_config" are never omitted).
V1_IMAGE = (("id", _STR), ("parent", _STR), ("comment", _STR), ("created", None),
            ("container", _STR), ("container_config", None), ("docker_version", _STR),
            ("author", _STR), ("config", None), ("architecture", _STR), ("os", _STR),
            ("Size", 0))


def detect(roots: Roots) -> Detected | None:
    """A ``graph/`` beside the tag store of a driver whose layers are directories."""
    root = roots[layout.DATA_ROOT]
    st = root.lstat(layout.GRAPH)
    if st is None or not st.is_dir:
        return None
    for driver in DIRECTORY_DRIVERS:
        if root.lstat(layout.repositories_v1(driver)) is not None:
            return Detected(KIND, driver)
    return None


def read(roots: Roots, found: Detected) -> Store:
    return _Migration(roots[layout.DATA_ROOT], found.format).store()


class _Migration(_Loader):
    """migrateImages, migrateContainers and migrateRefs, in memory."""

    def __init__(self, root: EvidenceRoot, driver: str):
        super().__init__(root, driver)
        self.v1: dict[str, dict[str, Any]] = {}      # v1 ID -> its JSON
        self.parents: dict[str, str | None] = {}     # v1 ID -> its parent's
        self.ids: dict[str, ImageID | None] = {}     # v1 ID -> image ID; None: not migrated
        self.images: dict[ImageID, Image] = {}
        self.layers: dict[ChainID, Layer] = {}

    def store(self) -> Store:
        # The diff IDs hash every layer's files: an archive streams once more for them.
        self.root.spool((self.driver,))
        for v1_id in sorted(self.root.listdir(layout.GRAPH) or ()):
            if is_hex64(v1_id):                      # _tmp and the like are not images
                self.read_v1(v1_id)
        for v1_id in self.v1:
            self.migrate(v1_id)
        references = self.references(self.images, layout.repositories_v1(self.driver),
                                     self.ids)
        containers, mounts = self.migrate_containers()
        if self.driver == "aufs":
            self.diagnostics += aufslayers.check(self.root, self.layers, mounts)
        return Store(driver=self.driver, images=self.images, layers=self.layers,
                     references=references, containers=containers, mounts=mounts,
                     volumes=self.volumes(), diagnostics=tuple(self.diagnostics))

    def read_v1(self, v1_id: str) -> None:
        rel = layout.graph_dir(v1_id, "json")
        try:
            data = self.root.read(rel, JSON_LIMIT)
            doc = orjson.loads(data) if data is not None else None
        except EvidenceError as exc:
            self.warn(exc.path, exc.reason, "image", v1_id)
            return
        except orjson.JSONDecodeError as exc:
            self.warn(rel, f"not valid JSON: {exc}; image not migrated", "image", v1_id)
            return
        if not isinstance(doc, dict):
            if data is not None:
                self.warn(rel, "not a JSON object; image not migrated", "image", v1_id)
            return
        try:
            unmarshal.check(doc, mobytypes.IMAGE)      # what json.Unmarshal into V1Image takes
        except unmarshal.Mismatch as exc:
            self.warn(rel, f"{exc}; image not migrated", "image", v1_id)
            return
        # getParent: "parent", else v1.9's "parent_id" (a digest of the parent's v1 ID).
        parent = field(doc, "parent") or ""
        parent_id = doc.get("parent_id")
        if not parent and isinstance(parent_id, str) and is_digest(parent_id):
            parent = hex_part(parent_id)
        if parent and not is_hex64(parent):
            self.warn(rel, f"parent is not a v1 image ID: {parent!r}; image not migrated",
                      "image", v1_id)
            return
        self.v1[v1_id] = doc
        self.parents[v1_id] = parent or None

    def migrate(self, v1_id: str) -> ImageID | None:
        """migrateImage: parents first (a loop or a missing parent fails the chain)."""
        chain: list[str] = []
        seen: set[str] = set()
        at: str | None = v1_id
        while at and at not in self.ids:
            if at in seen or at not in self.v1:
                why = "it loops back" if at in seen else f"{at} is not in the graph"
                for v1 in chain:
                    self.warn(layout.graph_dir(v1, "json"), f"parent chain broken ({why}); "
                              "image not migrated", "image", v1)
                    self.ids[v1] = None
                return None
            chain.append(at)
            seen.add(at)
            at = self.parents[at]
        for v1 in reversed(chain):
            self.ids[v1] = self.migrate_one(v1)
        return self.ids[v1_id]

    def migrate_one(self, v1_id: str) -> ImageID | None:
        doc = self.v1[v1_id]
        parent_v1 = self.parents[v1_id]
        parent_id = self.ids.get(parent_v1) if parent_v1 else None
        if parent_v1 and parent_id is None:
            self.warn(layout.graph_dir(v1_id, "json"), "parent not migrated; image not "
                      "migrated", "image", v1_id)
            return None
        parent = self.images[parent_id] if parent_id else None
        try:
            diff_id, size = self.checksum(v1_id)
        except EvidenceError as exc:
            self.warn(exc.path, f"{exc.reason}; image not migrated", "image", v1_id)
            return None
        diff_ids = (parent.diff_ids if parent else ()) + (diff_id,)
        history = list((parent.config.get("history") or []) if parent else []) + [
            _history(doc)]
        top = chain_id_from_parent(parent.top_layer if parent else None, diff_id)
        self.layers.setdefault(top, Layer(
            chain_id=top, diff_id=diff_id, parent=parent.top_layer if parent else None,
            cache_id=v1_id, diff_size=size, source=layout.graph_dir(v1_id)))
        data = make_config(doc, diff_ids, history)
        image_id = ImageID(digest_of(data))
        config = orjson.loads(data)
        created = config.get("created")
        self.images[image_id] = Image(
            id=image_id, config=config, diff_ids=diff_ids, top_layer=top, parent=parent_id,
            created=created if isinstance(created, str) else None,
            created_ns=created_unix_ns(created), last_updated=None,
            source=layout.graph_dir(v1_id, "json"))
        return image_id

    def checksum(self, v1_id: str) -> tuple[DiffID, int]:
        """ChecksumForGraphID: the layer's tar stream rebuilt from its tar-split and the
        driver's files, hashed; and the bytes of its files (unpackSizeCounter)."""
        tar_data = layout.graph_dir(v1_id, TAR_DATA)
        diff = layout.diff_dir(self.driver, v1_id)
        files = self.root.subroot(diff)
        if files is None:
            raise EvidenceError(diff, "the layer's directory is missing")
        sha, size = Sha256(), 0
        try:
            if self.root.lstat(tar_data) is None:
                raise EvidenceError(tar_data, "missing: the layer's tar stream cannot be "
                                    "rebuilt")
            fd, offset, length = self.root.content(tar_data)
            try:
                for run, entry in iter_runs(chunks(fd, offset, length), tar_data):
                    sha.update(run)
                    if entry is None or not entry.size:
                        continue
                    size += entry.size
                    name = clean_name(entry.name).lstrip("/")
                    try:
                        _, nread, _ = files.hash_file(name, sha)
                    except EvidenceError as exc:     # named from the data root
                        raise EvidenceError(f"{diff}/{name}", exc.reason) from None
                    if nread != entry.size:
                        raise EvidenceError(f"{diff}/{name}", f"size want={entry.size} "
                                            f"got={nread}")
            finally:
                os.close(fd)
        finally:
            files.close()
        return DiffID("sha256:" + sha.digest().hex()), size

    def migrate_containers(self) -> tuple[dict, dict[str, Mount]]:
        """migrateContainers: config.json's Image is a v1 ID; the RW layer is named by
        the container's ID, its init layer ``<id>-init``."""
        containers: dict[ContainerID, Any] = {}
        mounts: dict[str, Mount] = {}
        for cid, ctr in self.containers(layout.CONTAINER_CONFIG_V1).items():
            image_id = self.ids.get(ctr.image_id)
            if image_id is None:
                self.warn(ctr.source, f"its image {ctr.image_id} was not migrated; container "
                          "skipped", "container", cid)
                continue
            containers[cid] = dataclasses.replace(ctr, image_id=image_id)
            mounts[cid] = Mount(name=cid, mount_id=MountID(cid), init_id=MountID(f"{cid}-init"),
                                parent=self.images[image_id].top_layer, source=ctr.source)
        return containers, mounts


class GraphFiles(StoreFiles):
    """What verify reads of a pre-1.10 root: configs as the migration made them (their
    IDs derived here: no stored bytes to check), each layer's tar-split in the graph,
    and its ``checksum`` (the blob it was pulled as) as the compressed digest."""

    def __init__(self, root: EvidenceRoot, store: Store):
        super().__init__(root, store.driver, store.layers)
        self._store = store

    def image_ids(self) -> list[ImageID]:
        return sorted(self._store.images)

    def image_config(self, image_id: ImageID) -> bytes | None:
        image = self._store.images.get(image_id)
        return None if image is None else compact(image.config).encode()

    def compressed_digests(self, diff_id: DiffID) -> tuple[str, ...]:
        found = set()
        for layer in self._store.layers.values():
            if layer.diff_id != diff_id:
                continue
            try:
                data = self._root.read(layout.graph_dir(layer.cache_id, "checksum"))
            except EvidenceError:
                continue             # a hint only: damage here changes no verdict
            text = (data or b"").decode("ascii", "replace").strip()
            if is_digest(text):
                found.add(text)
        return tuple(sorted(found))

    def layer(self, layer: Layer) -> LayerFiles:
        files = super().layer(layer)
        files.tar_split_path = layout.graph_dir(layer.cache_id, TAR_DATA)
        return files


def make_config(v1: dict[str, Any], diff_ids: tuple[DiffID, ...],
                history: list[dict[str, Any]]) -> bytes:
    """MakeConfigFromV1Config: json.Marshal of the v1 JSON as a map of raw messages
    (keys sorted, each value as it was, compacted), v1-only fields dropped; a v1 JSON
    of Docker before 1.8.3 (or of none) first goes through Go's V1Image struct."""
    if _version(v1.get("docker_version")) < NO_FALLBACK_MIN_VERSION:
        v1 = _through_v1_image(v1)
    fields = {k: v for k, v in v1.items() if k not in V1_ONLY_FIELDS}
    fields["rootfs"] = {"type": "layers", "diff_ids": list(diff_ids)}
    fields["history"] = history
    # Only the top level is a Go map: the values keep their own key order.
    return ("{" + ",".join(marshal(k) + ":" + compact(v) for k, v in sorted(fields.items()))
            + "}").encode()


def _through_v1_image(v1: dict[str, Any]) -> dict[str, Any]:
    """json.Marshal(json.Unmarshal(v1, &V1Image)): unknown fields dropped, empty ones
    omitted or zero, the time re-formatted, container configs as their struct."""
    out: dict[str, Any] = {}
    for key, kind in V1_IMAGE:
        value = field(v1, key)
        if key == "created":
            out[key] = _rfc3339_nano(value)
        elif key == "container_config":
            out[key] = _container_config(value if isinstance(value, dict) else {})
        elif key == "config":
            if isinstance(value, dict):
                out[key] = _container_config(value)
        elif value not in (None, kind):
            out[key] = value
    return out


def _container_config(cfg: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, kind, omitempty in CONTAINER_CONFIG:
        value = field(cfg, key)
        if kind == _MAP:
            value = {k: ({} if key != "Labels" else v) for k, v in sorted(value.items())} \
                if isinstance(value, dict) else None
        elif kind == _LIST:
            # strslice.StrSlice takes a string as a one-part list.
            value = [value] if isinstance(value, str) and key != "Env" and key != "OnBuild" \
                else value
        elif value is None:
            value = kind
        if omitempty and not value:
            continue
        out[key] = value
    return out


def _history(v1: dict[str, Any]) -> dict[str, Any]:
    """HistoryFromConfig: created, author, created_by (the build step), comment."""
    entry: dict[str, Any] = {"created": _rfc3339_nano(field(v1, "created"))}
    cmd = field(field(v1, "container_config") or {}, "Cmd")
    created_by = " ".join(cmd) if isinstance(cmd, list) else (cmd or "")
    for key, value in (("author", field(v1, "author")), ("created_by", created_by),
                       ("comment", field(v1, "comment"))):
        if value:
            entry[key] = value
    return entry


def _rfc3339_nano(created: Any) -> str:
    """A time as Go re-marshals it: RFC 3339 with the fraction's trailing zeros cut."""
    if not isinstance(created, str):
        return "0001-01-01T00:00:00Z"
    head, dot, rest = created.partition(".")
    if not dot:
        return created
    cut = len(rest) - len(rest.lstrip("0123456789"))
    fraction, zone = rest[:cut].rstrip("0"), rest[cut:]
    return f"{head}.{fraction}{zone}" if fraction else f"{head}{zone}"


def _version(value: Any) -> tuple[int, ...]:
    """api/types/versions: dot-separated numbers, what is not a number counting as 0."""
    parts = str(value or "").split(".")
    return tuple(int(p) if p.isascii() and p.isdigit() else 0 for p in parts) + (0,) * max(
        0, 3 - len(parts))


__all__ = ["KIND", "GraphFiles", "detect", "make_config", "read"]
