"""OCI image layouts: ``oci-layout``, ``index.json`` and ``blobs/<alg>/<hex>``, read in place.

``index.json`` is walked down through image indexes (nested ones too) to manifests,
then to each manifest's config. Every blob read is checked against its descriptor
(size, then digest) before it is believed; a blob that is missing, a link, too large,
or not what its descriptor says is a warning naming it, and the images under it are
skipped — the rest still answers. Names come from the top-level entry's annotations.

References: image-spec image-layout.md (oci-layout, index.json, blobs),
image-index.md; containerd images/archive/importer.go (names, nested indexes).
"""
from __future__ import annotations

import functools

from ..errors import EvidenceError, MalformedError
from ..ids import digest_of, hex_part
from ..model import Diagnostic, Store
from . import Detected, Roots, layout
from .evidence import EvidenceRoot
from .imagearchive import ArchiveFiles, ArchiveImage, LayerBlob, build
from .layout import OCI_INDEX as INDEX_JSON
from .layout import OCI_LAYOUT_FILE as OCI_LAYOUT
from .layout import oci_blob as blob_path
from .ocispec import (ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, Descriptor,
                      document_type, parse_index, parse_manifest)

# Index and manifest documents: containerd and the registries refuse larger ones.
DOCUMENT_LIMIT = 4 << 20
CONFIG_LIMIT = 64 << 20
# Indexes under indexes deeper than this are not followed (a cycle is caught sooner).
MAX_DEPTH = 16


KIND = "oci-layout"


def detect(roots: Roots) -> Detected | None:
    """An OCI image layout: ``oci-layout`` and ``index.json`` (a ``docker save`` that
    also has ``manifest.json`` is read as a save, as ``docker load`` reads it)."""
    root = roots[layout.DATA_ROOT]
    if root.lstat(OCI_LAYOUT) is not None and root.lstat(INDEX_JSON) is not None:
        return Detected(KIND, KIND)
    return None


def read(roots: Roots, found: Detected) -> Store:
    return read_layout(roots[layout.DATA_ROOT])[0]


def names_of(desc: Descriptor) -> tuple[str, ...]:
    """The name a top-level entry gives its image: containerd's full name when it has
    one, else ``org.opencontainers.image.ref.name`` as written."""
    for key in (ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME):
        name = desc.annotations.get(key)
        if name:
            return (name,)
    return ()


def read_blob(root: EvidenceRoot, desc: Descriptor, limit: int) -> bytes:
    """A blob's bytes, checked against its descriptor.

    Raises:
        EvidenceError: missing, unreadable (a link, not a file), over ``limit``, or not
            the size or digest its descriptor says.
    """
    rel = blob_path(desc.digest)
    if desc.size > limit:
        raise EvidenceError(rel, f"descriptor size {desc.size} is over {limit} bytes; not read")
    data = root.read(rel, limit)
    if data is None:
        raise EvidenceError(rel, f"blob {desc.digest} is missing")
    if len(data) != desc.size:
        raise EvidenceError(rel, f"blob {desc.digest} has {len(data)} bytes, its descriptor "
                                 f"says {desc.size}")
    got = digest_of(data)
    if got != desc.digest:
        raise EvidenceError(rel, f"blob content does not match its digest {desc.digest} "
                                 f"(got {got})")
    return data


class _Walk:
    def __init__(self, root: EvidenceRoot):
        self.root = root
        self.found: list[ArchiveImage] = []
        self.diagnostics: list[Diagnostic] = []

    def warn(self, exc: EvidenceError) -> None:
        self.diagnostics.append(Diagnostic(exc.path, exc.reason))

    def entry(self, desc: Descriptor, names: tuple[str, ...], group: str,
              stack: tuple[Descriptor, ...], entry: int) -> None:
        source = blob_path(desc.digest)
        if desc.digest in (d.digest for d in stack):
            self.diagnostics.append(Diagnostic(source, "index cycle: " + " -> ".join(
                (*(d.digest for d in stack), desc.digest)) + "; not followed"))
            return
        if len(stack) >= MAX_DEPTH:
            self.diagnostics.append(Diagnostic(source, f"indexes nested deeper than "
                                                       f"{MAX_DEPTH}; not followed"))
            return
        try:
            data = read_blob(self.root, desc, DOCUMENT_LIMIT)
            if document_type(desc, data, source) == "index":
                for child in parse_index(data, source).manifests:
                    self.entry(child, names, f"{group}/{hex_part(desc.digest)[:12]}",
                               (*stack, desc), entry)
            else:
                self.manifest(desc, data, names, group, stack, entry)
        except EvidenceError as exc:
            self.warn(exc)

    def manifest(self, desc: Descriptor, data: bytes, names: tuple[str, ...],
                 group: str, via: tuple[Descriptor, ...], entry: int) -> None:
        source = blob_path(desc.digest)
        manifest = parse_manifest(data, source)
        config = read_blob(self.root, manifest.config, CONFIG_LIMIT)
        layers = []
        for layer in manifest.layers:
            rel = blob_path(layer.digest)
            st = self.root.lstat(rel)
            if st is None:
                raise EvidenceError(rel, f"layer blob {layer.digest} of manifest "
                                         f"{desc.digest} is missing; image skipped")
            if not st.is_reg:
                raise EvidenceError(rel, f"layer blob {layer.digest} is not a regular file "
                                         "(a link is not followed); image skipped")
            if st.size != layer.size:
                self.diagnostics.append(Diagnostic(rel, (
                    f"layer blob {layer.digest} has {st.size} bytes, its descriptor "
                    f"says {layer.size}")))
            layers.append(LayerBlob(rel, layer.size, layer))
        self.found.append(ArchiveImage(config, blob_path(manifest.config.digest), desc,
                                       tuple(layers), names, group, desc.platform, entry, via))


def find_images(root: EvidenceRoot) -> tuple[list[ArchiveImage], list[Diagnostic]]:
    """Every manifest ``index.json`` leads to, with the names of its top-level entry."""
    walk = _Walk(root)
    try:
        _check_layout_file(root)
        data = root.read(INDEX_JSON, DOCUMENT_LIMIT)
        if data is None:
            raise EvidenceError(INDEX_JSON, "missing")
        index = parse_index(data, INDEX_JSON)
    except EvidenceError as exc:
        walk.warn(exc)
        return walk.found, walk.diagnostics
    for i, desc in enumerate(index.manifests):
        walk.entry(desc, names_of(desc), f"{INDEX_JSON}/{i}", (), i)
    return walk.found, walk.diagnostics


def _check_layout_file(root: EvidenceRoot) -> None:
    import orjson
    data = root.read(OCI_LAYOUT)
    try:
        version = orjson.loads(data or b"").get("imageLayoutVersion")
    except (orjson.JSONDecodeError, AttributeError):
        version = None
    if not isinstance(version, str):
        raise MalformedError(OCI_LAYOUT, "no imageLayoutVersion: not an OCI image layout")


# Once per root: the store and what verify and reclaim read come from one reading (a
# compressed archive is spooled once, when a layer's bytes are first read).
@functools.lru_cache(maxsize=1)
def read_layout(root: EvidenceRoot) -> tuple[Store, ArchiveFiles]:
    found, diagnostics = find_images(root)
    return build(root, "oci-layout", found, diagnostics)
