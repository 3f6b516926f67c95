"""OCI and Docker schema 2 documents: index, manifest, config, descriptors; pure parsers.

Every function takes bytes (or a parsed value) and a ``source`` to name in errors, and
raises nothing but :class:`MalformedError`. Media types say what a blob should be; the
blob's own first bytes say what it is (:func:`sniff`): containerd decompresses by magic
bytes, so a layer labelled gzip that is a plain tar still loads, and here it is a
warning, not a failed digest.

References: image-spec descriptor.md, image-index.md, manifest.md, config.md,
media-types.md; distribution manifest-v2-2.md (Docker schema 2 and manifest lists);
containerd archive/compression (DetectCompression: magic bytes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import orjson

from .. import compression
from ..errors import MalformedError
from ..ids import DiffID, is_digest

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})

# Layer media types -> the compression their bytes must have ("tar": none).
LAYER_COMPRESSION: Mapping[str, str] = {
    "application/vnd.oci.image.layer.v1.tar": "tar",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar": "tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
}

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"

# Bytes :func:`sniff` needs: a tar header's "ustar" magic sits at offset 257.
SNIFF_BYTES = 512


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True, slots=True)
class Descriptor:
    """What points at a blob: its media type, digest and size (and where it was read)."""
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def is_manifest(self) -> bool:
        return self.media_type in MANIFEST_TYPES


@dataclass(frozen=True, slots=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]


@dataclass(frozen=True, slots=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True, slots=True)
class Config:
    """An image config: the parsed document and what the model needs of it."""
    doc: Mapping[str, Any]
    diff_ids: tuple[DiffID, ...]
    platform: Platform


def _json_object(data: bytes, source: str, what: str) -> dict:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedError(source, f"{what} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise MalformedError(source, f"{what} is not a JSON object")
    return doc


def _string(obj: Mapping, key: str, source: str, what: str, required: bool = True) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise MalformedError(source, f"{what}: {key} is not a string")
    return value


def parse_platform(obj: Any, source: str) -> Platform | None:
    if obj is None:
        return None
    if not isinstance(obj, dict):
        raise MalformedError(source, "platform is not an object")
    return Platform(_string(obj, "os", source, "platform"),
                    _string(obj, "architecture", source, "platform"),
                    _string(obj, "variant", source, "platform", required=False))


def parse_descriptor(obj: Any, source: str) -> Descriptor:
    """A descriptor object; the digest must be ``sha256:<64 hex>`` (the only algorithm
    a layout here is read with) and the size a non-negative integer."""
    if not isinstance(obj, dict):
        raise MalformedError(source, "descriptor is not an object")
    digest = _string(obj, "digest", source, "descriptor")
    if not is_digest(digest):
        raise MalformedError(source, f"descriptor digest {digest!r} is not sha256:<64 hex>")
    size = obj.get("size")
    if type(size) is not int or size < 0:
        raise MalformedError(source, f"descriptor {digest}: size {size!r} is not a byte count")
    annotations = obj.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()):
        raise MalformedError(source, f"descriptor {digest}: annotations are not strings")
    return Descriptor(_string(obj, "mediaType", source, f"descriptor {digest}", required=False),
                      digest, size, parse_platform(obj.get("platform"), source), annotations)


def parse_index(data: bytes, source: str) -> Index:
    """An image index (or Docker manifest list); ``index.json`` is one too."""
    doc = _json_object(data, source, "image index")
    if doc.get("schemaVersion") != 2:
        raise MalformedError(source, f"image index schemaVersion {doc.get('schemaVersion')!r}")
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise MalformedError(source, "image index has no manifests list")
    return Index(_string(doc, "mediaType", source, "image index", required=False),
                 tuple(parse_descriptor(m, source) for m in manifests))


def parse_manifest(data: bytes, source: str) -> Manifest:
    doc = _json_object(data, source, "image manifest")
    if doc.get("schemaVersion") != 2:
        raise MalformedError(source, f"image manifest schemaVersion {doc.get('schemaVersion')!r}")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise MalformedError(source, "image manifest has no layers list")
    return Manifest(_string(doc, "mediaType", source, "image manifest", required=False),
                    parse_descriptor(doc.get("config"), source),
                    tuple(parse_descriptor(layer, source) for layer in layers))


def parse_config(data: bytes, source: str) -> Config:
    """An image config: ``rootfs.diff_ids`` must be digests, ``os``/``architecture`` strings."""
    doc = _json_object(data, source, "image config")
    rootfs = doc.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) and is_digest(d)
                                                 for d in diff_ids):
        raise MalformedError(source, "image config: rootfs.diff_ids is not a list of digests")
    platform = Platform(_string(doc, "os", source, "image config", required=False),
                        _string(doc, "architecture", source, "image config", required=False),
                        _string(doc, "variant", source, "image config", required=False))
    return Config(doc, tuple(DiffID(d) for d in diff_ids), platform)


def document_type(desc: Descriptor, data: bytes, source: str) -> str:
    """Whether a blob pointed at from an index is an index or a manifest.

    The descriptor's media type decides; when it is absent (older tools), the
    document's own ``mediaType``, else its shape (``manifests`` or ``layers``).
    """
    if desc.is_index:
        return "index"
    if desc.is_manifest:
        return "manifest"
    if desc.media_type:
        raise MalformedError(source, f"{desc.digest}: media type {desc.media_type!r} is "
                                     "neither an image index nor a manifest")
    doc = _json_object(data, source, desc.digest)
    own = doc.get("mediaType")
    if own in INDEX_TYPES or (own is None and "manifests" in doc):
        return "index"
    if own in MANIFEST_TYPES or (own is None and "layers" in doc):
        return "manifest"
    raise MalformedError(source, f"{desc.digest}: neither an image index nor a manifest")


def sniff(head: bytes) -> str:
    """What a blob's first bytes are: ``gzip``, ``zstd``, ``tar``, ``json`` or ``unknown``."""
    kind = compression.kind_of(head)
    if kind != "tar":
        return kind
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if len(head) >= 512 and not any(head[:512]):
        return "tar"                 # the end-of-archive block: an empty layer
    if head.lstrip()[:1] in (b"{", b"["):
        return "json"
    return "unknown"


def layer_mismatch(desc: Descriptor, head: bytes) -> str | None:
    """A warning when a layer's bytes are not what its media type says, else None."""
    want = LAYER_COMPRESSION.get(desc.media_type)
    got = sniff(head)
    if want is None:
        return f"layer {desc.digest}: unknown media type {desc.media_type!r} (content is {got})"
    if got != want:
        return (f"layer {desc.digest}: media type {desc.media_type} says {want}, "
                f"content is {got}")
    return None


def platform_matches(have: Platform | None, want: Platform) -> bool:
    """Docker's platform choice for one manifest (os and architecture; variant when
    both name one). An entry without a platform matches nothing here."""
    if have is None:
        return False
    if (have.os, have.architecture) != (want.os, want.architecture):
        return False
    return not (have.variant and want.variant) or have.variant == want.variant
