"""Blobs of containerd's content store read as OCI/Docker manifests, indexes and configs.

A target is walked as moby walks "present children" (daemon/containerd
image_manifest.go PresentContentSize, handlers.go presentChildrenHandler): a blob
that is absent is skipped with its children; an index's manifests are followed;
attestation manifests (platform unknown/unknown) count for size but are never the
host's image. The host platform is linux/amd64 (platforms.Default on this machine).

References: moby v28.5.2 daemon/containerd/image_manifest.go, image_list.go
(multiPlatformSummary), containerd core/images/image.go (Children, IsManifestType,
IsIndexType), OCI image-spec descriptor.md.
"""
from __future__ import annotations

from typing import Callable, Mapping

import orjson

from ..containerdmodel import ImageContent
from ..errors import MalformedError
from ..model import Diagnostic
from .ocispec import INDEX_TYPES, MANIFEST_TYPES, parse_descriptor

HOST_PLATFORM = ("linux", "amd64")

ReadBlob = Callable[[str], "bytes | None"]


def _json(data: bytes | None) -> Mapping | None:
    if data is None:
        return None
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _descriptors(value: object) -> list[Mapping]:
    """The entries of a descriptor list that are descriptors (ocispec's rules); moby's
    walk cannot follow the others either."""
    return [d for d in value if _is_descriptor(d)] if isinstance(value, list) else []


def _is_descriptor(value: object) -> bool:
    try:
        parse_descriptor(value, "")
    except MalformedError:
        return False
    return True


def _size(desc: Mapping) -> int:
    return desc["size"] if _is_descriptor(desc) else 0


def _valid_config(config: Mapping) -> bool:
    """The fields this tool reads have the types of the OCI/Docker image config."""
    def is_(value: object, kind: type | tuple) -> bool:
        return value is None or isinstance(value, kind)
    rootfs, inner, history = config.get("rootfs"), config.get("config"), config.get("history")
    if not is_(rootfs, dict) or not is_(inner, dict) or not is_(history, list):
        return False
    diff_ids = (rootfs or {}).get("diff_ids")
    if not is_(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids or ()):
        return False
    if not all(isinstance(h, dict) and all(is_(h.get(k), str) for k in
                                           ("created", "created_by", "comment", "author"))
               and is_(h.get("empty_layer"), bool) for h in history or ()):
        return False
    if not is_((rootfs or {}).get("type"), str):
        return False
    labels = (inner or {}).get("Labels")
    if not is_(labels, dict) or not all(isinstance(v, str) for v in (labels or {}).values()):
        return False
    return all(is_(config.get(k), str) for k in ("created", "os", "architecture", "author",
                                                 "variant", "os.version"))


def read_image_content(target: Mapping, present: frozenset[str] | set[str],
                       read_blob: ReadBlob, diags: list[Diagnostic], source: str) -> ImageContent:
    """Walk one image target (``mediaType``, ``digest``, ``size``)."""
    total = 0
    host: tuple[str, Mapping] | None = None
    manifests: list[tuple[str, tuple[str, ...]]] = []
    layer_lists: list[tuple[str, ...]] = []
    walked: list[tuple[str, str, int]] = []
    todo = [(dict(target), None)]
    seen: set[str] = set()
    while todo:
        desc, platform = todo.pop(0)
        digest = desc["digest"]
        if digest not in present or digest in seen:
            continue
        seen.add(digest)
        media_type = desc.get("mediaType") or ""
        walked.append((digest, media_type, _size(desc)))
        if media_type not in MANIFEST_TYPES | INDEX_TYPES:
            continue
        body = _json(read_blob(digest))
        if body is None:
            diags.append(Diagnostic(source, f"{digest}: not a readable {media_type}"))
            continue
        if media_type in INDEX_TYPES:
            todo.extend((d, d.get("platform")) for d in _descriptors(body.get("manifests")))
            continue
        # One platform's manifest: it and its present children count for the image's
        # size (an index itself does not: moby sums per reachable manifest).
        config = body.get("config") if _is_descriptor(body.get("config")) else None
        children = [config] if config else []
        layers = _descriptors(body.get("layers"))
        layer_lists.append(tuple(d["digest"] for d in layers))
        children += layers
        total += _size(desc) + sum(_size(c) for c in children if c["digest"] in present)
        walked.extend((c["digest"], c.get("mediaType") or "", _size(c)) for c in children
                      if c["digest"] in present)
        parsed = _json(read_blob(config["digest"])) \
            if config and config.get("digest") in present else None
        if parsed is not None and not _valid_config(parsed):
            # What moby's JSON decoding into the image spec would refuse.
            diags.append(Diagnostic(source, f"{config['digest']}: not a valid image config"))
            parsed = None
        rootfs = (parsed or {}).get("rootfs") or {}
        diff_ids = tuple(rootfs.get("diff_ids") or ())
        manifests.append((digest, diff_ids))
        plat = platform if isinstance(platform, dict) else {}
        os_arch = (plat.get("os") or (parsed or {}).get("os"),
                   plat.get("architecture") or (parsed or {}).get("architecture"))
        if parsed is not None and host is None and os_arch == HOST_PLATFORM:
            host = (digest, {"digest": config["digest"], "config": parsed,
                             "size": _size(desc) + sum(_size(c) for c in children)})
    if host is None:
        return ImageContent(target["digest"], None, None, None, total, tuple(manifests),
                            present=tuple(walked), layer_lists=tuple(layer_lists))
    # An index counts once, with its host manifest (LimitManifests(…, 1)).
    index = _size(target) if host[0] != target["digest"] else 0
    return ImageContent(target["digest"], host[0], host[1]["digest"], host[1]["config"], total,
                        tuple(manifests), index + host[1]["size"], tuple(walked),
                        tuple(layer_lists))
