"""``docker image inspect``: the daemon's ImageInspect object, plus where the layers live.

The daemon decodes the config into Go structs and encodes them again, so fields
come out in struct order with Go's zero values; this module does the same from
the parsed config.

References: moby v20.10 api/types/types.go (ImageInspect), daemon/images/image_inspect.go
(v28.5.2's too, and api/server/router/image/inspect_response.go: legacyConfigFields),
moby/docker-image-spec specs-go/v1/image.go, image-spec specs-go/v1/config.go,
api/types/container/config.go (Config), image/image.go (V1Image); GraphDriver.Data
comes from the driver (sources/drivers.py metadata, after overlay2's GetMetadata).
"""
from __future__ import annotations

from typing import Any, Mapping

from ..engines.daemonapi import API_20_10, at_least
from ..goapi.unmarshal import field
from ..model import Image, Store

# (json name, omitempty, zero value) in container.Config field order.
_CONTAINER_CONFIG: tuple[tuple[str, bool, Any], ...] = (
    ("Hostname", False, ""), ("Domainname", False, ""), ("User", False, ""),
    ("AttachStdin", False, False), ("AttachStdout", False, False),
    ("AttachStderr", False, False), ("ExposedPorts", True, None), ("Tty", False, False),
    ("OpenStdin", False, False), ("StdinOnce", False, False), ("Env", False, None),
    ("Cmd", False, None), ("Healthcheck", True, None), ("ArgsEscaped", True, False),
    ("Image", False, ""), ("Volumes", False, None), ("WorkingDir", False, ""),
    ("Entrypoint", False, None), ("NetworkDisabled", True, False),
    ("MacAddress", True, ""), ("OnBuild", False, None), ("Labels", False, None),
    ("StopSignal", True, ""), ("StopTimeout", True, None), ("Shell", True, None),
)
_HEALTHCHECK = (("Test", True, None), ("Interval", True, 0), ("Timeout", True, 0),
                ("StartPeriod", True, 0), ("Retries", True, 0))
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


# ocispec.ImageConfig then DockerOCIImageConfigExt, every field omitempty.
_IMAGE_CONFIG = ("User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir",
                 "Labels", "StopSignal", "ArgsEscaped", "Healthcheck", "OnBuild", "Shell")
_OCI_HEALTHCHECK = ("Test", "Interval", "Timeout", "StartPeriod", "StartInterval",
                    "Retries")
_LEGACY_CONFIG: dict[str, Any] = {"Cmd": None, "Entrypoint": None, "Env": None,
                                  "Labels": None, "OnBuild": None, "User": "",
                                  "Volumes": None, "WorkingDir": ""}


def _empty(value: Any) -> bool:
    return value is None or value is False or value == 0 or value == "" or \
        (isinstance(value, (list, dict)) and not value)


def _lookup(raw: Mapping[str, Any], name: str) -> Any:
    # Go's decoder matches field names case-insensitively.
    if name in raw:
        return raw[name]
    lower = name.lower()
    return next((v for k, v in raw.items() if k.lower() == lower), None)


def image_config(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """The API 1.50 ``Config`` object of an image config's ``config``."""
    out: dict[str, Any] = {}
    for name in _IMAGE_CONFIG:
        value = _lookup(raw or {}, name)
        if name == "Healthcheck" and isinstance(value, dict):
            value = {k: _lookup(value, k) for k in _OCI_HEALTHCHECK
                     if not _empty(_lookup(value, k))}
        if not _empty(value):
            out[name] = value
    merged = dict(_LEGACY_CONFIG)
    merged.update(out)
    return dict(sorted(merged.items()))


def rfc3339nano(created: str) -> str:
    """Go's Format(RFC3339Nano) of a parsed time: the fraction without trailing zeros."""
    head, dot, rest = created.partition(".")
    if not dot:
        return created
    digits = len(rest) - len(rest.lstrip("0123456789"))
    frac = rest[:digits].rstrip("0")
    return head + ("." + frac if frac else "") + rest[digits:]


def _is_empty(value: Any, zero: Any) -> bool:
    # Go omitempty: false, 0, "", nil, and empty maps/slices.
    return value is None or value == zero or (isinstance(value, (list, dict)) and not value)


def _struct(raw: Mapping[str, Any] | None, schema) -> dict[str, Any]:
    raw = raw or {}
    out: dict[str, Any] = {}
    for name, omitempty, zero in schema:
        value = field(raw, name)
        if value is None:
            value = zero
        if name == "Healthcheck" and value is not None:
            value = _struct(value, _HEALTHCHECK)
        if omitempty and _is_empty(value, zero):
            continue
        out[name] = value
    return out


def _comment(cfg: Mapping[str, Any]) -> str:
    # daemon/images/image_inspect.go: the config's comment, else the last history entry's.
    comment = cfg.get("comment") or ""
    history = cfg.get("history") or ()
    if not comment and history:
        comment = history[-1].get("comment") or ""
    return comment


def container_config(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    return _struct(raw, _CONTAINER_CONFIG)


def inspect_image(store: Store, image: Image, driver_data: Mapping[str, str] | None,
                  allocated: Mapping[str, int] | None = None, api: str = API_20_10
                  ) -> dict[str, Any]:
    """``docker image inspect``'s object; driver_data is the graph driver's GetMetadata.

    From API 1.44 VirtualSize is gone and a missing Created is left out (not Go's zero
    time); from 1.45 Container and ContainerConfig are gone; from 1.50 Config is the
    image-spec config with the legacy keys merged in, encoded last (moby v28.5.2
    api/server/router/image: getImagesByName, inspectCompatResponse).
    """
    cfg = image.config
    refs = store.refs(image.id)
    size = store.image_size(image)
    out: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": [r.familiar for r in refs if not r.is_digest],
        "RepoDigests": [r.familiar for r in refs if r.is_digest],
        "Parent": image.parent or "",
        "Comment": _comment(cfg),
    }
    if image.created or not at_least(api, "1.44"):
        out["Created"] = rfc3339nano(image.created) if image.created else GO_ZERO_TIME
    if not at_least(api, "1.45"):
        out["Container"] = cfg.get("container") or ""
        out["ContainerConfig"] = container_config(cfg.get("container_config"))
    out["DockerVersion"] = cfg.get("docker_version") or ""
    out["Author"] = cfg.get("author") or ""
    legacy_config = not at_least(api, "1.50")
    if legacy_config:
        out["Config"] = container_config(cfg["config"]) if cfg.get("config") is not None \
            else None
    out["Architecture"] = cfg.get("architecture") or ""
    if cfg.get("variant"):
        out["Variant"] = cfg["variant"]
    out["Os"] = cfg.get("os") or ""
    if cfg.get("os.version"):
        out["OsVersion"] = cfg["os.version"]
    out["Size"] = size
    if not at_least(api, "1.44"):
        out["VirtualSize"] = size
    data = None if driver_data is None else dict(sorted(driver_data.items()))
    out["GraphDriver"] = {"Data": data, "Name": store.driver}
    rootfs: dict[str, Any] = {"Type": (cfg.get("rootfs") or {}).get("type") or ""}
    if image.diff_ids:
        rootfs["Layers"] = list(image.diff_ids)
    out["RootFS"] = rootfs
    out["Metadata"] = {"LastTagTime": image.last_updated or GO_ZERO_TIME}
    if not legacy_config:
        out["Config"] = image_config(cfg.get("config"))
    # What Docker does not show: the layer store entries and who uses the image.
    out["AnalyzerLayers"] = [
        {"ChainID": layer.chain_id, "DiffID": layer.diff_id, "CacheID": layer.cache_id,
         "Size": layer.diff_size,
         "AllocatedBytes": None if allocated is None else allocated.get(layer.chain_id)}
        for layer in reversed(store.chain(image.top_layer))]
    out["AnalyzerContainers"] = sorted(c.id for c in store.containers_by_image.get(image.id, ()))
    return out
