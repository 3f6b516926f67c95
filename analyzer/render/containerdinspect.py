"""``docker image inspect`` on the containerd image store, as dockerd 28.5 answers API 1.50.

The image config is encoded as docker-image-spec's DockerOCIImageConfig (omitempty
fields), then merged over the legacy keys API 1.50 always shows (``Cmd``,
``Entrypoint``, ``Env``, ``Labels``, ``OnBuild``, ``User``, ``Volumes``,
``WorkingDir``); the merged map comes out with its keys sorted, as Go encodes maps.

References: moby v28.5.2 daemon/containerd/image_inspect.go (ImageInspect,
collectRepoTagsAndDigests), api/server/router/image/inspect_response.go
(legacyConfigFields, inspectCompatResponse), image_routes.go getImagesByName,
moby/docker-image-spec specs-go/v1/image.go, image-spec specs-go/v1/config.go.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..engines.containerdinspect import Inspected
from .inspect import image_config, rfc3339nano


def inspect_image(item: Inspected, containers: Sequence[str]) -> dict[str, Any]:
    cfg = item.config or {}
    out: dict[str, Any] = {
        "Id": item.id,
        "RepoTags": list(item.repo_tags),
        "RepoDigests": list(item.repo_digests),
        "Parent": item.parent,
        "Comment": "",
        "Created": "",
        "DockerVersion": "",
        "Author": "",
        "Architecture": "",
        "Os": "",
    }
    if item.config is not None:
        history = cfg.get("history") or ()
        if history and isinstance(history[-1], dict):
            out["Comment"] = history[-1].get("comment") or ""
        if isinstance(cfg.get("created"), str):
            out["Created"] = rfc3339nano(cfg["created"])
        out["Author"] = cfg.get("author") or ""
        out["Architecture"] = cfg.get("architecture") or ""
        if cfg.get("variant"):
            out["Variant"] = cfg["variant"]
        out["Os"] = cfg.get("os") or ""
        if cfg.get("os.version"):
            out["OsVersion"] = cfg["os.version"]
    out["Size"] = item.size
    out["GraphDriver"] = {"Data": None, "Name": item.snapshotter}
    rootfs = cfg.get("rootfs") or {}
    out["RootFS"] = {"Type": rootfs.get("type") or ""}
    if rootfs.get("diff_ids"):
        out["RootFS"]["Layers"] = list(rootfs["diff_ids"])
    out["Metadata"] = {"LastTagTime": item.last_tag_time}
    descriptor: dict[str, Any] = {"mediaType": item.target.media_type,
                                  "digest": item.target.digest, "size": item.target.size}
    if item.annotations:
        descriptor["annotations"] = dict(item.annotations)
    out["Descriptor"] = descriptor
    out["Config"] = image_config(cfg.get("config") if item.config is not None else None)
    # What Docker does not show: the snapshots of the chain and who uses the image.
    out["AnalyzerLayers"] = [{"ChainID": chain, "DiffID": diff, "Snapshot": key, "Size": size}
                             for chain, diff, key, size in item.layers]
    out["AnalyzerContainers"] = sorted(containers)
    return out
