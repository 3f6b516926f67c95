"""The Go structs dockerd decodes its JSON files into, as far as the model reads them.

Readers check a parsed file against these shapes (goapi/unmarshal.py has Go's rules)
before building the model: a record dockerd could not decode is skipped, with the
file and the field named, instead of crashing a command or showing a wrong value.

References: moby v20.10 image/image.go (V1Image, Image, History), image/rootfs.go,
api/types/container/config.go (Config, HealthConfig), api/strslice, container/
container.go and state.go, api/types/types.go (Health), daemon/network/settings.go,
go-connections nat (PortMap, PortBinding), volume/mounts/mounts.go (MountPoint),
reference/store.go (repositories.json), daemon/graphdriver/devmapper/deviceset.go
(devInfo), volume/service/db.go (volumeMetadata).
"""
from __future__ import annotations

from ..goapi.unmarshal import (ANY, BOOL, EMPTY_STRUCT, INT, STRING, STRSLICE, TIME, UINT64,
                               ListOf, MapOf, Struct)

HEALTH_CONFIG = Struct({
    "Test": ListOf(STRING), "Interval": INT, "Timeout": INT, "StartPeriod": INT,
    "Retries": INT}, "container.HealthConfig")

CONTAINER_CONFIG = Struct({
    "Hostname": STRING, "Domainname": STRING, "User": STRING, "AttachStdin": BOOL,
    "AttachStdout": BOOL, "AttachStderr": BOOL, "ExposedPorts": MapOf(EMPTY_STRUCT),
    "Tty": BOOL, "OpenStdin": BOOL, "StdinOnce": BOOL, "Env": ListOf(STRING),
    "Cmd": STRSLICE, "Healthcheck": HEALTH_CONFIG, "ArgsEscaped": BOOL, "Image": STRING,
    "Volumes": MapOf(EMPTY_STRUCT), "WorkingDir": STRING, "Entrypoint": STRSLICE,
    "NetworkDisabled": BOOL, "MacAddress": STRING, "OnBuild": ListOf(STRING),
    "Labels": MapOf(STRING), "StopSignal": STRING, "StopTimeout": INT, "Shell": STRSLICE,
}, "container.Config")

HISTORY = Struct({
    "created": TIME, "author": STRING, "created_by": STRING, "comment": STRING,
    "empty_layer": BOOL}, "image.History")

IMAGE = Struct({
    "id": STRING, "parent": STRING, "comment": STRING, "created": TIME, "container": STRING,
    "container_config": CONTAINER_CONFIG, "docker_version": STRING, "author": STRING,
    "config": CONTAINER_CONFIG, "architecture": STRING, "variant": STRING, "os": STRING,
    "size": INT,
    "rootfs": Struct({"type": STRING, "diff_ids": ListOf(STRING)}, "image.RootFS"),
    "history": ListOf(HISTORY), "os.version": STRING, "os.features": ListOf(STRING),
}, "image.Image")

HEALTHCHECK_RESULT = Struct({"Start": TIME, "End": TIME, "ExitCode": INT, "Output": STRING},
                            "types.HealthcheckResult")

CONTAINER = Struct({
    "ID": STRING, "Created": TIME, "Path": STRING, "Args": ListOf(STRING),
    "Config": CONTAINER_CONFIG, "Image": STRING, "Name": STRING,
    "State": Struct({
        "Running": BOOL, "Paused": BOOL, "Restarting": BOOL, "OOMKilled": BOOL,
        "RemovalInProgress": BOOL, "Dead": BOOL, "Pid": INT, "ExitCode": INT,
        "Error": STRING, "StartedAt": TIME, "FinishedAt": TIME,
        "Health": Struct({"Status": STRING, "FailingStreak": INT,
                          "Log": ListOf(HEALTHCHECK_RESULT)},
                         "container.Health"),
    }, "container.State"),
    "NetworkSettings": Struct({
        "Ports": MapOf(ListOf(Struct({"HostIp": STRING, "HostPort": STRING},
                                     "nat.PortBinding"))),
        "Networks": MapOf(Struct({}, "network.EndpointSettings")),
    }, "network.Settings"),
    "MountPoints": MapOf(Struct({
        "Source": STRING, "Destination": STRING, "RW": BOOL, "Name": STRING,
        "Driver": STRING, "Type": STRING}, "mounts.MountPoint")),
}, "container.Container")

# reference/store.go: map[string]repository, a repository map[string]digest.Digest.
# Entries are checked one by one (one bad entry costs that entry only).
REPOSITORIES = Struct({"Repositories": MapOf(ANY)}, "reference.store")
REPOSITORY = MapOf(STRING)

# devicemapper's metadata/<hash>, as DeviceSet.loadMetadata unmarshals it.
DEV_INFO = Struct({"device_id": INT, "size": UINT64, "transaction_id": UINT64,
                   "initialized": BOOL, "deleted": BOOL}, "devmapper.devInfo")

# volume/service/db.go: the value of each key of volumes/metadata.db's "volumes" bucket.
VOLUME_METADATA = Struct({"Name": STRING, "Driver": STRING, "Labels": MapOf(STRING),
                          "Options": MapOf(STRING)}, "service.volumeMetadata")
