"""``docker save`` archives: ``manifest.json`` naming each image's config and layer files.

The legacy format (dockerd before 25: ``<id>/layer.tar``, ``<hex>.json``,
``repositories``) and the newer one (an OCI layout beside ``manifest.json``, layers as
``blobs/sha256/<diff ID hex>``) both list, per image, ``Config``, ``RepoTags`` and
``Layers``; ``docker load`` reads ``manifest.json`` first, so this reader does too.

References: moby image/tarexport/load.go (manifest.json, RepoTags),
image/tarexport/tarexport.go (manifestItem), image/tarexport/save.go.
"""
from __future__ import annotations

import functools

import orjson

from ..errors import EvidenceError, MalformedError
from ..model import Diagnostic, Store
from . import Detected, Roots, layout
from .evidence import EvidenceRoot
from .imagearchive import ArchiveFiles, ArchiveImage, LayerBlob, build
from .layout import DOCKER_SAVE_MANIFEST as MANIFEST_JSON
from .ocilayout import CONFIG_LIMIT, DOCUMENT_LIMIT


KIND = "docker-save"


def detect(roots: Roots) -> Detected | None:
    """A ``docker save`` archive: ``manifest.json`` at the top, beside an OCI layout
    (dockerd 25 and later) or ``repositories`` and ``<id>/`` directories (legacy)."""
    root = roots[layout.DATA_ROOT]
    if root.lstat(MANIFEST_JSON) is None:
        return None
    return Detected(KIND, "oci" if root.lstat(layout.OCI_INDEX) is not None else "legacy")


def read(roots: Roots, found: Detected) -> Store:
    return read_save(roots[layout.DATA_ROOT])[0]


def parse_manifest_json(data: bytes, source: str = MANIFEST_JSON
                        ) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """Each entry's (Config, RepoTags, Layers), as written.

    Raises:
        MalformedError: not a list of objects with string fields.
    """
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedError(source, f"not JSON: {exc}") from None
    if not isinstance(doc, list):
        raise MalformedError(source, "not a list of images")
    out = []
    for i, item in enumerate(doc):
        if not isinstance(item, dict):
            raise MalformedError(source, f"entry {i} is not an object")
        config, tags, layers = item.get("Config"), item.get("RepoTags") or [], item.get("Layers")
        if (not isinstance(config, str) or not isinstance(tags, list)
                or not isinstance(layers, list)
                or not all(isinstance(s, str) for s in (*tags, *layers))):
            raise MalformedError(source, f"entry {i}: Config, RepoTags or Layers malformed")
        out.append((config, tuple(tags), tuple(layers)))
    return out


def find_images(root: EvidenceRoot) -> tuple[list[ArchiveImage], list[Diagnostic]]:
    diagnostics: list[Diagnostic] = []
    found: list[ArchiveImage] = []
    try:
        entries = parse_manifest_json(root.read(MANIFEST_JSON, DOCUMENT_LIMIT) or b"")
    except EvidenceError as exc:
        return found, [Diagnostic(exc.path, exc.reason)]
    for i, (config_path, tags, layer_paths) in enumerate(entries):
        try:
            config = root.read(config_path, CONFIG_LIMIT)
            if config is None:
                raise EvidenceError(config_path, "config named by manifest.json is missing")
            layers = tuple(_layer(root, p) for p in layer_paths)
        except EvidenceError as exc:
            diagnostics.append(Diagnostic(exc.path, exc.reason))
            continue
        found.append(ArchiveImage(config, config_path, None, layers, tags,
                                  f"{MANIFEST_JSON}/{i}", None, i))
    return found, diagnostics


def _layer(root: EvidenceRoot, rel: str) -> LayerBlob:
    st = root.lstat(rel)
    if st is None:
        raise EvidenceError(rel, "layer named by manifest.json is missing; image skipped")
    if not st.is_reg:
        raise EvidenceError(rel, "layer is not a regular file (a link is not followed); "
                                 "image skipped")
    return LayerBlob(rel, st.size, None)


# Once per root: the store and what verify and reclaim read come from one reading (a
# compressed archive is spooled once, when a layer's bytes are first read).
@functools.lru_cache(maxsize=1)
def read_save(root: EvidenceRoot) -> tuple[Store, ArchiveFiles]:
    found, diagnostics = find_images(root)
    return build(root, "docker-save", found, diagnostics)
