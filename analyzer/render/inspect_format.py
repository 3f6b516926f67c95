"""``docker image inspect --format``: the template runs on the client's typed
``image.InspectResponse`` first, and on the raw JSON (with missingkey=error) when that
fails, as docker/cli's TemplateInspector does.

The typed value matters where Go prints a struct (``{{.Config}}`` prints
``{{ map[] [PATH=…] …}}``) and where encoding/json writes one (``{{json .Config}}``
keeps struct order and omitempty, not the daemon's keys): it is rebuilt here from
the daemon's JSON with the Docker 28.2 client's types.

References: docker/cli v28.2.2 cli/command/inspect/inspector.go; moby v28.2.2
api/types/image/image_inspect.go, api/types/container/config.go,
api/types/storage/driver_data.go; moby/docker-image-spec specs-go/v1/image.go;
opencontainers/image-spec specs-go/v1/{config,descriptor}.go.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from ..goapi.template import (ExecError, GoMap, GoMethod, GoNil, GoNumber, GoSlice, GoStruct,
                              TemplateError)
from ..goapi.time import parse_rfc3339_ns
from .formatter import parse

# Go struct types: (Go field, JSON key, Go type, omitempty). A type "~T" is an
# embedded struct whose fields JSON inlines and templates promote.
_S = "string"
STRUCTS: dict[str, tuple[tuple[str, str, str, bool], ...]] = {
    "image.InspectResponse": (
        ("ID", "Id", _S, False), ("RepoTags", "RepoTags", "[]string", False),
        ("RepoDigests", "RepoDigests", "[]string", False), ("Parent", "Parent", _S, False),
        ("Comment", "Comment", _S, False), ("Created", "Created", _S, True),
        ("Container", "Container", _S, True),
        ("ContainerConfig", "ContainerConfig", "*container.Config", True),
        ("DockerVersion", "DockerVersion", _S, True), ("Author", "Author", _S, False),
        ("Config", "Config", "*v1.DockerOCIImageConfig", False),
        ("Architecture", "Architecture", _S, False), ("Variant", "Variant", _S, True),
        ("Os", "Os", _S, False), ("OsVersion", "OsVersion", _S, True),
        ("Size", "Size", "int64", False), ("VirtualSize", "VirtualSize", "int64", True),
        ("GraphDriver", "GraphDriver", "storage.DriverData", False),
        ("RootFS", "RootFS", "image.RootFS", False),
        ("Metadata", "Metadata", "image.Metadata", False),
        ("Descriptor", "Descriptor", "*v1.Descriptor", True),
        ("Manifests", "Manifests", "[]interface {}", True),
    ),
    "container.Config": (
        ("Hostname", "Hostname", _S, False), ("Domainname", "Domainname", _S, False),
        ("User", "User", _S, False), ("AttachStdin", "AttachStdin", "bool", False),
        ("AttachStdout", "AttachStdout", "bool", False),
        ("AttachStderr", "AttachStderr", "bool", False),
        ("ExposedPorts", "ExposedPorts", "map[string]struct {}", True),
        ("Tty", "Tty", "bool", False), ("OpenStdin", "OpenStdin", "bool", False),
        ("StdinOnce", "StdinOnce", "bool", False), ("Env", "Env", "[]string", False),
        ("Cmd", "Cmd", "[]string", False),
        ("Healthcheck", "Healthcheck", "*container.HealthConfig", True),
        ("ArgsEscaped", "ArgsEscaped", "bool", True), ("Image", "Image", _S, False),
        ("Volumes", "Volumes", "map[string]struct {}", False),
        ("WorkingDir", "WorkingDir", _S, False), ("Entrypoint", "Entrypoint", "[]string", False),
        ("NetworkDisabled", "NetworkDisabled", "bool", True),
        ("MacAddress", "MacAddress", _S, True), ("OnBuild", "OnBuild", "[]string", False),
        ("Labels", "Labels", "map[string]string", False),
        ("StopSignal", "StopSignal", _S, True), ("StopTimeout", "StopTimeout", "*int", True),
        ("Shell", "Shell", "[]string", True),
    ),
    "container.HealthConfig": (
        ("Test", "Test", "[]string", True), ("Interval", "Interval", "time.Duration", True),
        ("Timeout", "Timeout", "time.Duration", True),
        ("StartPeriod", "StartPeriod", "time.Duration", True),
        ("StartInterval", "StartInterval", "time.Duration", True),
        ("Retries", "Retries", "int", True),
    ),
    "v1.DockerOCIImageConfig": (
        ("ImageConfig", "", "~v1.ImageConfig", False),
        ("DockerOCIImageConfigExt", "", "~v1.DockerOCIImageConfigExt", False),
    ),
    "v1.ImageConfig": (
        ("User", "User", _S, True), ("ExposedPorts", "ExposedPorts", "map[string]struct {}", True),
        ("Env", "Env", "[]string", True), ("Entrypoint", "Entrypoint", "[]string", True),
        ("Cmd", "Cmd", "[]string", True), ("Volumes", "Volumes", "map[string]struct {}", True),
        ("WorkingDir", "WorkingDir", _S, True), ("Labels", "Labels", "map[string]string", True),
        ("StopSignal", "StopSignal", _S, True), ("ArgsEscaped", "ArgsEscaped", "bool", True),
    ),
    "v1.DockerOCIImageConfigExt": (
        ("Healthcheck", "Healthcheck", "*v1.HealthcheckConfig", True),
        ("OnBuild", "OnBuild", "[]string", True), ("Shell", "Shell", "[]string", True),
    ),
    "v1.HealthcheckConfig": (
        ("Test", "Test", "[]string", True), ("Interval", "Interval", "time.Duration", True),
        ("Timeout", "Timeout", "time.Duration", True),
        ("StartPeriod", "StartPeriod", "time.Duration", True),
        ("StartInterval", "StartInterval", "time.Duration", True),
        ("Retries", "Retries", "int", True),
    ),
    "storage.DriverData": (
        ("Data", "Data", "map[string]string", False), ("Name", "Name", _S, False),
    ),
    "image.RootFS": (
        ("Type", "Type", _S, True), ("Layers", "Layers", "[]string", True),
    ),
    "image.Metadata": (("LastTagTime", "LastTagTime", "time.Time", True),),
    "v1.Descriptor": (
        ("MediaType", "mediaType", _S, False), ("Digest", "digest", _S, False),
        ("Size", "size", "int64", False), ("URLs", "urls", "[]string", True),
        ("Annotations", "annotations", "map[string]string", True),
        ("Data", "data", "[]interface {}", True), ("Platform", "platform", "*v1.Platform", True),
        ("ArtifactType", "artifactType", _S, True),
    ),
    "v1.Platform": (
        ("Architecture", "architecture", _S, False), ("OS", "os", _S, False),
        ("OSVersion", "os.version", _S, True), ("OSFeatures", "os.features", "[]string", True),
        ("Variant", "variant", _S, True),
    ),
}
_ZERO = {"string": "", "bool": False, "int": 0, "int64": 0, "time.Duration": 0}


def typed(raw: Any, go_type: str) -> Any:
    """The daemon's JSON value decoded into a Go value of ``go_type``."""
    if go_type in _ZERO:
        if go_type == "time.Duration":
            return _duration(raw if isinstance(raw, int) else 0)
        return raw if isinstance(raw, type(_ZERO[go_type])) else _ZERO[go_type]
    if go_type == "[]string":
        items = [x for x in raw if isinstance(x, str)] if isinstance(raw, list) else []
        return _nil_aware(GoSlice(items, "string"), raw)
    if go_type == "map[string]string":
        items = {k: v for k, v in raw.items() if isinstance(v, str)} if isinstance(raw, dict) else {}
        return _nil_aware(GoMap(items, "string"), raw)
    if go_type == "map[string]struct {}":
        items = {k: GoStruct("struct {}") for k in raw} if isinstance(raw, dict) else {}
        return _nil_aware(GoMap(items, "struct {}"), raw)
    if go_type == "[]interface {}":
        return raw_value(raw) if isinstance(raw, list) else None
    if go_type == "*int":
        return raw if isinstance(raw, int) else GoNil("*int")
    if go_type == "time.Time":
        return _time(raw if isinstance(raw, str) else "0001-01-01T00:00:00Z")
    if go_type.startswith("*"):
        if not isinstance(raw, dict):
            return GoNil(go_type)
        return _struct(raw, go_type[1:], pointer=True)
    return _struct(raw if isinstance(raw, dict) else {}, go_type)


def _nil_aware(value: Any, raw: Any) -> Any:
    value.is_nil = raw is None
    return value


def _struct(raw: dict, type_name: str, pointer: bool = False) -> GoStruct:
    fields: dict[str, Any] = {}
    embedded = []
    for go_name, key, go_type, _ in STRUCTS[type_name]:
        if go_type.startswith("~"):
            fields[go_name] = _struct(raw, go_type[1:])
            embedded.append(go_name)
        else:
            fields[go_name] = typed(_lookup(raw, key), go_type)
    value = GoStruct(type_name, fields, pointer=pointer, embedded=tuple(embedded))
    value.json = lambda: _json_struct(value)
    return value


def _lookup(raw: dict, key: str) -> Any:
    # encoding/json matches keys case-insensitively.
    if key in raw:
        return raw[key]
    lower = key.lower()
    return next((v for k, v in raw.items() if k.lower() == lower), None)


def _json_struct(value: GoStruct) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for go_name, key, go_type, omitempty in STRUCTS[value.type_name]:
        field = value.fields[go_name]
        if go_type.startswith("~"):
            out.update(_json_struct(field))
            continue
        if omitempty and _is_empty(field):
            continue
        out[key] = _json_of(field)
    return out


def _is_empty(v: Any) -> bool:
    """encoding/json's omitempty: false, 0, "", nil, and empty slices and maps."""
    if v is None or isinstance(v, GoNil) or v is False:
        return True
    if isinstance(v, int) and v == 0:
        return True
    if isinstance(v, (str, list, dict)) and len(v) == 0:
        return True
    return isinstance(v, GoStruct) and v.type_name == "time.Duration" and v.fields["ns"] == 0


def _json_of(v: Any) -> Any:
    if isinstance(v, GoNil) or v is None:
        return None
    if isinstance(v, (GoSlice, GoMap)) and getattr(v, "is_nil", False):
        return None
    if isinstance(v, GoStruct):
        return v.json() if v.json is not None else {}
    if isinstance(v, dict):
        return {k: _json_of(v[k]) for k in sorted(v)}     # Go writes maps sorted by key
    if isinstance(v, list):
        return [_json_of(x) for x in v]
    if isinstance(v, GoNumber):
        return json.loads(v.text)
    return v


def _time(text: str) -> GoStruct:
    """time.Time decoded from RFC 3339; String() as Go prints it."""
    def string() -> str:
        return go_time_string(text)
    value = GoStruct("time.Time", methods={"String": GoMethod(string)})
    value.json = lambda: text
    return value


def go_time_string(text: str) -> str:
    """time.Time.String of an RFC 3339 time, in the zone it was written with:
    ``2025-03-01 09:15:00 +0000 UTC``."""
    from datetime import datetime, timedelta, timezone
    secs, frac = divmod(parse_rfc3339_ns(text), 1_000_000_000)
    utc = text.endswith(("Z", "z"))
    offset = 0 if utc else _offset_seconds(text)
    t = datetime(1, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=secs + offset + 62135596800)
    out = f"{t.year:04d}" + t.strftime("-%m-%d %H:%M:%S")
    if frac:
        out += "." + f"{frac:09d}".rstrip("0")
    sign = "-" if offset < 0 else "+"
    zone = f"{sign}{abs(offset) // 3600:02d}{abs(offset) % 3600 // 60:02d}"
    return f"{out} {zone} " + ("UTC" if utc else zone)


def _offset_seconds(text: str) -> int:
    sign = 1 if text[-6] == "+" else -1
    return sign * (int(text[-5:-3]) * 3600 + int(text[-2:]) * 60)


def _duration(ns: int) -> GoStruct:
    """time.Duration: an int64 that prints as "1m30s"."""
    value = GoStruct("time.Duration", {"ns": ns},
                     methods={"String": GoMethod(lambda: duration_string(ns))})
    value.json = lambda: ns
    return value


def duration_string(ns: int) -> str:
    """time.Duration.String."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1_000_000_000:
        for unit, size in (("ns", 1), ("µs", 1_000), ("ms", 1_000_000)):
            if u < size * 1000:
                return sign + _frac(u, size) + unit
    secs_total, frac_ns = divmod(u, 1_000_000_000)
    hours, rest = divmod(secs_total, 3600)
    minutes, secs = divmod(rest, 60)
    out = _frac(secs * 1_000_000_000 + frac_ns, 1_000_000_000) + "s"
    if hours or minutes:
        out = f"{minutes}m" + out
    if hours:
        out = f"{hours}h" + out
    return sign + out


def _frac(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}." + f"{frac:0{digits}d}".rstrip("0")


def raw_value(v: Any) -> Any:
    """JSON as json.Decoder with UseNumber decodes it into interface{}."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return GoNumber(json.dumps(v))
    if isinstance(v, dict):
        return {k: raw_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [raw_value(x) for x in v]
    return v


def inspect_format(fmt: str, objects: Sequence[dict[str, Any] | Exception],
                   ) -> tuple[str, list[str], int]:
    """TemplateInspector over each image's JSON (or the error that replaced it):
    (stdout, error messages, exit status). A template that does not parse: exit 64."""
    try:
        tmpl = parse(fmt)
    except TemplateError as exc:
        return "", [f"template parsing error: {exc}"], 64
    out, errors = [], []
    for obj in objects:
        if isinstance(obj, Exception):
            errors.append(str(obj))
            continue
        docker_keys = {k: v for k, v in obj.items() if not k.startswith("Analyzer")}
        try:
            out.append(tmpl.execute(typed(docker_keys, "image.InspectResponse")) + "\n")
            continue
        except ExecError:
            pass
        try:
            out.append(tmpl.option_missingkey_error().execute(raw_value(obj)) + "\n")
        except ExecError as exc:
            errors.append(f"template parsing error: {exc}")
    return "".join(out) or "\n", errors, 1 if errors else 0


__all__ = ["duration_string", "go_time_string", "inspect_format", "raw_value",
           "typed"]
