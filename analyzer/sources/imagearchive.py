"""Images found in an image archive (OCI layout or ``docker save``) turned into the model.

Both containers end in the same list: for each manifest, its config bytes, its layer
blobs and the names it was saved under. The image ID is the config digest; layers get
chain IDs from the config's diff IDs, their "cache ID" is the blob's path in the
archive and their size the blob's (what the archive holds: there is no unpacked layer
to measure). Of the manifests one index lists for several platforms, the one Docker
would choose for this host carries the names; the others are listed with ``-a`` only.

References: moby image/tarexport/load.go (names from RepoTags), containerd
images/archive/importer.go (names from ``io.containerd.image.name``, else
``org.opencontainers.image.ref.name``), containerd platforms (the choice).
"""
from __future__ import annotations

import platform as host_platform
from dataclasses import dataclass

from .. import reference as refs
from ..errors import AnalyzerError, MalformedError
from ..ids import CacheID, ChainID, ImageID, chain_id_from_parent, digest_of
from ..model import Diagnostic, Image, Layer, Reference, Store
from .graphdriver import _unix_ns
from .ocispec import Descriptor, Platform, parse_config, platform_matches


@dataclass(frozen=True, slots=True)
class LayerBlob:
    """A layer as the archive holds it: where, and the descriptor that points at it
    (None in a legacy save, whose manifest.json names files, not digests)."""
    path: str
    size: int
    descriptor: Descriptor | None


@dataclass(frozen=True, slots=True)
class ArchiveImage:
    """One manifest's image as found in an archive, before it is checked."""
    config: bytes
    config_path: str
    manifest: Descriptor | None        # None in a legacy save
    layers: tuple[LayerBlob, ...]
    names: tuple[str, ...]             # references as written in the archive
    group: str                         # the index (or file) that listed it
    platform: Platform | None          # the index entry's platform, if it has one


# machine -> GOARCH, for the platform Docker would pick on this host.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
           "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host() -> Platform:
    machine = host_platform.machine()
    return Platform("linux", _GOARCH.get(machine, machine))


def build_store(kind: str, found: list[ArchiveImage], diagnostics: list[Diagnostic],
                want: Platform) -> Store:
    """The model of an archive's images; bad ones are skipped with a diagnostic."""
    images: dict[ImageID, Image] = {}
    layers: dict[ChainID, Layer] = {}
    references: dict[str, Reference] = {}
    chosen = _platform_choice(found, want)
    others: set[ImageID] = set()
    for item in found:
        image = _image(item, layers, diagnostics)
        if image is None:
            continue
        images.setdefault(image.id, image)
        if item is not chosen.get(item.group):
            others.add(image.id)
            continue
        for name in item.names:
            ref = _reference(name, image.id, item.config_path, diagnostics)
            if ref is not None:
                references.setdefault(ref.familiar, ref)
    return Store(driver=kind, images=images, layers=layers,
                 references=tuple(references.values()), diagnostics=tuple(diagnostics),
                 other_platforms=frozenset(others - {r.image_id for r in references.values()}))


def _platform_choice(found: list[ArchiveImage], want: Platform) -> dict[str, ArchiveImage]:
    """Per group, the manifest Docker would use here: the one for this platform, else
    (a single manifest, or none matches) the first."""
    groups: dict[str, list[ArchiveImage]] = {}
    for item in found:
        groups.setdefault(item.group, []).append(item)
    return {g: next((i for i in items if platform_matches(i.platform, want)), items[0])
            for g, items in groups.items()}


def _image(item: ArchiveImage, layers: dict[ChainID, Layer],
           diagnostics: list[Diagnostic]) -> Image | None:
    try:
        config = parse_config(item.config, item.config_path)
    except MalformedError as exc:
        diagnostics.append(Diagnostic(exc.path, exc.reason))
        return None
    if len(config.diff_ids) != len(item.layers):
        diagnostics.append(Diagnostic(item.config_path, (
            f"config has {len(config.diff_ids)} diff IDs for {len(item.layers)} layers; "
            "image skipped")))
        return None
    parent: ChainID | None = None
    for diff_id, blob in zip(config.diff_ids, item.layers):
        chain = chain_id_from_parent(parent, diff_id)
        layers.setdefault(chain, Layer(chain_id=chain, diff_id=diff_id, parent=parent,
                                       cache_id=CacheID(blob.path), diff_size=blob.size,
                                       source=blob.path))
        parent = chain
    created = config.doc.get("created")
    return Image(id=ImageID(digest_of(item.config)), config=config.doc,
                 diff_ids=config.diff_ids, top_layer=parent, parent=None,
                 created=created if isinstance(created, str) else None,
                 created_ns=_unix_ns(created), last_updated=None, source=item.config_path)


def _reference(name: str, image_id: ImageID, source: str,
               diagnostics: list[Diagnostic]) -> Reference | None:
    """A name as ``docker load`` lists it: normalized, ``latest`` when it has no tag
    (a bare ``ref.name`` such as ``t1`` becomes ``t1:latest``, as dockerd 28.5 says)."""
    try:
        ref = refs.tag_name_only(refs.parse_normalized_named(name))
    except AnalyzerError as exc:
        diagnostics.append(Diagnostic(source, f"name {name!r} is not a reference: {exc}"))
        return None
    return Reference(name=ref.familiar_name, familiar=ref.familiar, normalized=str(ref),
                     image_id=image_id, is_digest=bool(ref.digest) and not ref.tag,
                     source=source)
