"""Scenarios: populate a running :class:`Daemon` into a realistic data root.

Each scenario has a seed (its loaded images, and so their IDs, depend only on it),
a ``populate`` function, the read-only commands to record on it, and a sequence of
``docker image rm`` / ``docker * prune`` cases to record after them.

Arguments may hold placeholders that :func:`expand` resolves against the live
daemon just before the command runs, because some IDs (built images, containers,
pushed digests) change from run to run:

- ``{id:REF}`` 12-hex short ID, ``{longid:REF}`` 64 hex, ``{fullid:REF}`` ``sha256:…``
- ``{prefix:REF}`` the shortest unique prefix (at least 3) of REF's ID
- ``{ambiguous}`` the longest prefix that at least two image IDs share
- ``{digest:REF}`` REF's first ``name@sha256:…``; ``{tagdigest:REF}`` ``name:tag@sha256:…``
- ``{parent:REF}`` the full ID of REF's parent (legacy builder)
- ``{created:REF}`` / ``{created-N:REF}`` REF's Created in Unix seconds (minus N)

A bare repository name as REF also finds an image that has only digest references.
"""
from __future__ import annotations

import json
import random
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Sequence

from .build import (HistoryStep, ImageSpec, Layer, busybox_layer, dockerfile_context,
                    random_text, save_archive, synthetic_layer)
from .daemon import Daemon, DockerError, Registry

SLEEP_FOREVER = ("sleep", "100000")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: int
    populate: Callable[[Daemon, "Context"], None]
    commands: Sequence[Sequence[str]]   # extra read-only docker commands (argv after "docker")
    rm_cases: Sequence[Sequence[str]]   # docker image rm / * prune argv, run in order
    uses_registry: bool = False
    judge: str = "dockerd20"            # a key of daemon.JUDGES
    # False: analyze reads the driver's image store only, and refuses by name what
    # needs the layers' files (record.reads_layer_files).
    layer_files: bool = True
    generic: bool = True                # record.GENERIC_COMMANDS too (ls, ps, df, ...)


@dataclass
class Context:
    """What a populate function gets besides the daemon."""
    rng: random.Random
    workdir: str
    registry: Registry | None = None


# -- helpers -------------------------------------------------------------------------
def load(d: Daemon, *images: ImageSpec) -> None:
    d.run("load", input=save_archive(images))


def run(d: Daemon, name: str, image: str, *cmd: str, detach: bool = False,
        volumes: Sequence[str] = (), expect: int = 0) -> None:
    """``docker run`` without network; ``expect`` is the exit status the command must give."""
    argv = ["run", "--network", "none", "--name", name]
    for v in volumes:
        argv += ["-v", v]
    if detach:
        argv.append("-d")
    proc = d.docker(*argv, image, *cmd)
    if proc.returncode != expect:
        raise DockerError(proc)


def create(d: Daemon, name: str, image: str, *cmd: str) -> None:
    d.run("create", "--network", "none", "--name", name, image, *cmd)


def build(d: Daemon, ctx: Context, name: str, dockerfile: str, *, buildkit: bool,
          files: dict[str, bytes] | None = None, tag: Sequence[str] = ()) -> None:
    context = dockerfile_context(tempfile.mkdtemp(prefix=f"{name}-", dir=ctx.workdir),
                                 dockerfile, files)
    args = [a for t in tag for a in ("-t", t)]
    d.build(context, *args, buildkit=buildkit)


def push_and_forget(d: Daemon, reg: Registry, spec_tags: Sequence[str]) -> dict[str, str]:
    """Push loopback-named tags, then remove them locally; returns tag -> manifest digest."""
    digests = {}
    for tag in spec_tags:
        out = d.run("push", tag)
        digests[tag] = re.search(r"digest: (sha256:[0-9a-f]{64})", out).group(1)
    d.run("image", "rm", *spec_tags)
    return digests


# -- placeholders --------------------------------------------------------------------
# Not inside a Go template's "{{...}}" (``{{end}}`` is an action, not a placeholder).
PLACEHOLDER = re.compile(r"(?<!\{)\{([a-z0-9]+)(?:([+-]\d+))?(?::([^{}]*))?\}(?!\})")


def expand(d: Daemon, arg: str) -> str:
    """Resolve the ``{kind:REF}`` placeholders of one argument against the live daemon."""
    def one(m: re.Match) -> str:
        kind, delta, ref = m.group(1), int(m.group(2) or 0), m.group(3)
        if kind == "ambiguous":
            return _ambiguous_prefix(_all_image_ids(d))
        if kind == "parent":
            image_id = _inspect(d, ref)["Parent"]
            if not image_id:
                raise LookupError(f"{ref} has no parent")
            return image_id
        info = _inspect(d, ref)
        full = info["Id"]
        if kind == "id":
            return full[7:19]
        if kind == "longid":
            return full[7:]
        if kind == "fullid":
            return full
        if kind == "prefix":
            return _unique_prefix(full[7:], _all_image_ids(d))
        if kind == "digest":
            return info["RepoDigests"][0]
        if kind == "tagdigest":
            return f"{ref}@{info['RepoDigests'][0].split('@', 1)[1]}"
        if kind == "created":
            return str(unix_seconds(info["Created"]) + delta)
        raise ValueError(f"unknown placeholder {m.group(0)}")
    return PLACEHOLDER.sub(one, arg)


def _inspect(d: Daemon, ref: str) -> dict:
    """Inspect ``ref``; a bare repository name also finds an image with only digests."""
    proc = d.docker("image", "inspect", ref)
    if proc.returncode == 0:
        return json.loads(proc.stdout)[0]
    ids = d.run("image", "ls", "-a", "-q", "--no-trunc", ref).split()
    if not ids:
        raise DockerError(proc)
    return d.inspect("image", ids[0])[0]


def _all_image_ids(d: Daemon) -> list[str]:
    return sorted({i[7:] for i in d.run("image", "ls", "-aq", "--no-trunc").split()})


def _unique_prefix(hex_id: str, all_ids: Sequence[str]) -> str:
    for n in range(3, 65):
        if sum(i.startswith(hex_id[:n]) for i in all_ids) == 1:
            return hex_id[:n]
    raise LookupError(hex_id)


def _ambiguous_prefix(all_ids: Sequence[str]) -> str:
    best = ""
    for a, b in zip(all_ids, all_ids[1:]):   # sorted: the longest shared prefix is adjacent
        n = 0
        while n < 64 and a[n] == b[n]:
            n += 1
        best = max(best, a[:n], key=len)
    if not best:
        raise LookupError("no two image IDs share a first character")
    return best


def unix_seconds(created: str) -> int:
    """Seconds of an RFC 3339 time as inspect prints it (``ls`` compares whole seconds)."""
    return int(datetime.strptime(created[:19], "%Y-%m-%dT%H:%M:%S")
               .replace(tzinfo=timezone.utc).timestamp())


# -- scenario "basic": loads, imports, tags, whiteouts, all container states ----------
def populate_basic(d: Daemon, ctx: Context) -> None:
    rng = ctx.rng
    bb = busybox_layer()
    shared = synthetic_layer(rng, "usr/share/common", 12, (200, 6000))
    alpine1 = synthetic_layer(rng, "usr/lib/apk", 6, (500, 9000))
    deb1 = synthetic_layer(rng, "var/lib/dpkg", 9, (300, 12000))
    # Deletes a file of the shared layer and replaces a directory of deb1.
    deb2 = (Layer().dir("usr").dir("usr/share").dir("usr/share/common")
            .whiteout("usr/share/common/lib").opaque("var").opaque("var/lib/dpkg")
            .file("var/lib/dpkg/status", random_text(rng, 4000))
            .file("var/lib/dpkg/status-old", random_text(rng, 1500))
            .hardlink("var/lib/dpkg/status.link", "var/lib/dpkg/status")
            .symlink("var/lib/dpkg/latest", "status"))
    app = (synthetic_layer(rng, "app", 5, (1000, 30000), binary=True)
           .file("app/run", b"#!/bin/sh\nexec sleep 100000\n", 0o755))
    app2 = synthetic_layer(rng, "app", 6, (1000, 30000), binary=True)
    tool = synthetic_layer(rng, "opt/tool", 4, (100, 3000))
    tool2 = synthetic_layer(rng, "opt/tool", 4, (100, 3000))
    lonely = synthetic_layer(rng, "srv/lonely", 3, (100, 900))
    nocreated = synthetic_layer(rng, "etc/nocreated", 2, (50, 500))

    app_history = [HistoryStep("/bin/sh -c #(nop) ADD file:common in / "),
                   HistoryStep("/bin/sh -c #(nop) ADD file:dpkg in / "),
                   HistoryStep("/bin/sh -c rm -rf /usr/share/common/lib /var/lib/dpkg"),
                   HistoryStep("/bin/sh -c #(nop)  ENV APP_HOME=/app", True),
                   HistoryStep("/bin/sh -c #(nop)  LABEL tier=app", True),
                   HistoryStep("/bin/sh -c #(nop) COPY dir:app in /app ", comment="buildkit"),
                   HistoryStep("/bin/sh -c #(nop)  EXPOSE 8080/tcp", True),
                   HistoryStep('/bin/sh -c #(nop)  ENTRYPOINT ["/app/run"]', True)]
    load(d,
         ImageSpec([bb], utc(2023, 7, 18, 10, 0, 0), ["busybox:latest", "busybox:1.36",
                                                      "oracle/base:1"]),
         ImageSpec([shared, alpine1], utc(2023, 8, 7, 12, 30, 15, 250000), ["alpine:3.18"],
                   labels={"maintainer": "oracle", "tier": "base"}),
         ImageSpec([shared, alpine1], utc(2023, 9, 1, 8, 0, 0), ["alpine:edge"],
                   labels={"maintainer": "oracle", "tier": "base", "channel": "edge"}),
         ImageSpec([shared, deb1, deb2], utc(2024, 2, 13, 6, 6, 6), ["debian:bookworm"],
                   labels={"tier": "base", "vendor": "debian"}, workdir="/srv",
                   env=("PATH=/usr/bin:/bin", "LANG=C.UTF-8"), exposed_ports=("80/tcp",)),
         ImageSpec([shared, deb1, deb2, app], utc(2025, 3, 1, 9, 15, 0), ["myorg/app:1.0",
                                                                          "myorg/app:latest"],
                   history=app_history, labels={"tier": "app", "version": "1.0"},
                   entrypoint=("/app/run",), cmd=("--serve",), env=("APP_HOME=/app",),
                   exposed_ports=("8080/tcp",), author="Oracle <oracle@example.com>"),
         ImageSpec([bb, tool], utc(2021, 11, 30, 23, 59, 59), ["localhost:5000/team/tool:v2"],
                   labels={"tier": "tool"}),
         ImageSpec([nocreated], None, ["nocreated:1"]),
         ImageSpec([shared, lonely], utc(2020, 5, 5, 5, 5, 5)))         # untagged: dangling
    # A newer build of two tags: the old tool image is left dangling, myorg/app:1.0 stays.
    load(d,
         ImageSpec([shared, deb1, deb2, app2], utc(2025, 6, 1, 14, 0, 0), ["myorg/app:latest",
                                                                           "myorg/app:1.1"],
                   history=app_history, labels={"tier": "app", "version": "1.1"},
                   entrypoint=("/app/run",), cmd=("--serve",), exposed_ports=("8080/tcp",)),
         ImageSpec([bb, tool2], utc(2022, 4, 1, 0, 0, 1), ["localhost:5000/team/tool:v2"],
                   labels={"tier": "tool", "release": "2"}))
    rootfs = Layer().dir("etc").file("etc/hostname", b"imported\n").dir("data").file(
        "data/blob", random_text(rng, 20000)).tar()
    d.run("import", "-c", 'CMD ["/bin/sh"]', "-m", "imported tarball", "-", "imported/rootfs:1",
          input=rootfs)

    d.run("volume", "create", "data")
    d.run("volume", "create", "scratch")
    d.run("network", "create", "--label", "tier=net", "spare")
    d.run("network", "create", "idle")
    d.run("network", "create", "--config-only", "--subnet", "10.123.0.0/24", "cfg-only")
    create(d, "created-alpine", "alpine:3.18", "/bin/true")
    run(d, "exited-ok", "busybox:latest", "true")
    run(d, "exited-false", "busybox:latest", "false", expect=1)
    run(d, "exited-fail", "busybox:1.36", "sh", "-c",
        "echo payload > /data/payload; head -c 30000 /bin/busybox > /data/blob;"
        " echo rw > /rwfile; exit 3", volumes=["data:/data"], expect=3)
    run(d, "scratch-writer", "busybox:latest", "sh", "-c", "echo x > /s/x",
        volumes=["scratch:/s"])
    d.run("rm", "scratch-writer")
    run(d, "runner", "oracle/base:1", *SLEEP_FOREVER, detach=True)
    run(d, "tool-paused", "localhost:5000/team/tool:v2", *SLEEP_FOREVER, detach=True)
    d.run("pause", "tool-paused")


BASIC_COMMANDS = [
    ["image", "ls", "-f", "label=tier"],
    ["image", "ls", "-f", "label=tier=base"],
    ["image", "ls", "-f", "label=tier=app", "-f", "label=version=1.1"],
    ["image", "ls", "-a", "-f", "label=channel"],
    ["image", "ls", "-f", "label=nope"],
    ["image", "ls", "-f", "before=debian:bookworm"],
    ["image", "ls", "-a", "-f", "before=myorg/app:1.0"],
    ["image", "ls", "-f", "since=alpine:3.18"],
    ["image", "ls", "-f", "since={id:alpine:edge}"],
    ["image", "ls", "-f", "since=alpine:3.18", "-f", "before=myorg/app:latest"],
    ["image", "ls", "-f", "before=missing:1"],
    ["image", "ls", "-f", "reference=busybox"],
    ["image", "ls", "-f", "reference=*"],
    ["image", "ls", "-f", "reference=myorg/*"],
    ["image", "ls", "-f", "reference=*:latest"],
    ["image", "ls", "-f", "reference=*/*/*"],
    ["image", "ls", "-f", "reference=alpine", "-f", "reference=busybox:1.*"],
    ["image", "ls", "-f", "reference=localhost:5000/team/tool"],
    ["image", "ls", "-f", "dangling=true", "-f", "label=tier"],
    ["image", "ls", "-q", "-f", "reference=busybox"],
    ["image", "ls", "busybox"],
    ["image", "ls", "busybox:1.36"],
    ["image", "ls", "myorg/app"],
    ["image", "ls", "--digests", "myorg/app:1.1"],
    ["image", "ls", "nosuchrepo"],
    ["image", "ls", "-f", "bogus=1"],
    ["image", "ls", "-f", "dangling=maybe"],
    ["image", "history", "myorg/app:1.0"],
    ["image", "history", "--no-trunc", "myorg/app:latest"],
    ["image", "history", "debian:bookworm"],
    ["image", "history", "nocreated:1"],
    ["image", "history", "imported/rootfs:1"],
    ["image", "history", "-q", "alpine:edge"],
    ["image", "history", "{id:localhost:5000/team/tool:v2}"],
    ["image", "inspect", "myorg/app:1.0"],
    ["image", "inspect", "busybox"],
    ["image", "inspect", "{id:debian:bookworm}"],
    ["image", "inspect", "{fullid:alpine:edge}"],
    ["image", "inspect", "nocreated:1", "imported/rootfs:1"],
    ["image", "inspect", "localhost:5000/team/tool:v2", "missing:latest"],
    ["image", "inspect", "missing"],
] + [
    # --format with Go templates (every ls line names its image, so that rows whose
    # order Docker leaves to chance can be compared as sets).
    ["image", "ls", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"],
    ["image", "ls", "--format", "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.Size}}"],
    ["image", "ls", "-a", "--digests", "--format", "table {{.ID}}\\t{{.Repository}}"],
    ["image", "ls", "--format", "{{json .}}"],
    ["image", "ls", "--format", "table {{.Repository}}\\t{{json .}}"],
    ["image", "ls", "--format", '{{upper .Repository}} {{title .Tag}} {{lower .ID}} '
     '{{pad .Tag 1 2}}|{{truncate .ID 5}} {{split .Repository "/"}} '
     '{{join (split .Repository "/") "_"}} {{printf "%-12s|%q|%5d" .Tag .Size 7}}'],
    ["image", "ls", "--format", '{{.ID}} {{range $i, $p := split .Repository "/"}}'
     '{{if $i}}>{{end}}{{$p}}{{end}}{{with .Digest}} {{.}}{{end}} {{if eq .Tag "<none>"}}'
     'dangling{{else if eq .Tag "latest"}}latest{{else}}{{len .Tag}}{{end}}{{"\\t"}}'
     '{{index .ID 0}} {{slice .ID 1 4}} {{.Containers}} {{.CreatedAt}} {{println}}'],
    ["image", "ls", "-q", "--format", "{{.ID}}:{{.VirtualSize}}:{{.SharedSize}}"],
    ["image", "ls", "--format", "{{.Foo}}"],
    ["image", "ls", "--format", "{{.ID"],
    ["image", "ls", "--format", "{{nosuch .ID}}"],
    ["image", "ls", "--format", "{{index .Repository 99}}"],
    ["ps", "-a", "--format", "table {{.Names}}\\t{{.Status}}\\t{{.State}}"],
    ["ps", "-a", "--format", '{{.ID}} {{.Image}} {{.Command}} {{.Labels}} {{.Label "tier"}} '
     '{{.Mounts}} {{.LocalVolumes}} {{.Networks}} {{.Ports}} {{.RunningFor}} {{.CreatedAt}}'],
    ["ps", "-a", "--no-trunc", "--format", "table {{.ID}}\\t{{.Command}}\\t{{.Platform}}"],
    ["ps", "--format", "{{.Foo}}"],
    ["ps", "--format", "{{.Names"],
    ["ps", "-a", "-q", "--format", "{{.Names}}"],
    ["image", "history", "--format", "table {{.ID}}\\t{{.CreatedBy}}\\t{{.Size}}",
     "myorg/app:1.0"],
    ["image", "history", "--format", "{{json .}}", "debian:bookworm"],
    ["image", "history", "--human=false", "--format", "{{.CreatedAt}}|{{.CreatedSince}}|{{.Size}}",
     "myorg/app:1.0"],
    ["image", "history", "--human=false", "myorg/app:1.0"],
    ["image", "history", "--format", "{{.Nope}}", "busybox"],
    ["image", "inspect", "-f", "{{.Id}} {{.RootFS.Layers}}", "busybox", "myorg/app:1.0"],
    ["image", "inspect", "--format", "{{json .Config}}", "myorg/app:1.0", "debian:bookworm"],
    ["image", "inspect", "-f", "{{.Config.Labels}}|{{.Config.Env}}|{{index .RepoTags 0}}|"
     "{{.Size}}|{{.Created}}|{{.Os}}/{{.Architecture}}|{{.RootFS}}|{{.Metadata}}",
     "myorg/app:1.0", "nocreated:1"],
    ["image", "inspect", "-f", "{{range .RepoTags}}{{.}} {{end}}{{len .RootFS.Layers}} "
     "{{.Config.Cmd}} {{.Config}}", "busybox", "debian:bookworm"],
    ["image", "inspect", "-f", "{{json .RootFS}} {{json .Metadata}} {{json .RepoDigests}} "
     "{{.ID}} {{.Parent}}|{{.Comment}}|{{.Author}}", "myorg/app:1.0"],
    ["image", "inspect", "-f", "{{.Foo}}", "busybox"],
    ["image", "inspect", "-f", "{{.Id", "busybox"],
    ["image", "inspect", "-f", "{{.Id}}", "nosuch", "busybox"],
    ["image", "inspect", "-f", "{{index .Config.Labels \"tier\"}} {{.Config.Healthcheck}}",
     "myorg/app:1.0"],
    # ps: filters, --last, --latest, --size.
    *(["ps", "-a", "-f", f] for f in (
        "status=exited", "name=exited", "name=^/exited-o", "label=tier", "label=tier=tool",
        "ancestor=busybox", "ancestor=nosuch", "volume=data", "volume=/data", "network=none",
        "before=runner", "since=exited-false", "before=nosuch", "bogus=1", "status=foo",
        "exited=abc", "health=foo", "health=none", "publish=80:80", "is-task=maybe",
        "isolation=default", "expose=80")),
    ["ps", "-f", "status=paused"],
    ["ps", "-a", "-f", "exited=3", "-f", "exited=1"],
    ["ps", "-a", "-f", "status=exited", "-f", "status=created"],
    ["ps", "-n", "2"],
    ["ps", "-l", "--no-trunc"],
    ["ps", "-n", "1", "-f", "status=exited"],
    ["ps", "-a", "-s"],
    ["ps", "-s", "--format", "json"],
    ["diff", "exited-fail"],                            # a volume's mount point, a file
    ["diff", "runner"],
    ["export", "exited-fail"],
]

BASIC_RM = [
    ["image", "rm", "nosuch:tag"],
    ["image", "rm", "-f", "nosuch"],
    ["image", "rm", "{ambiguous}"],
    ["image", "rm", "busybox:1.36"],                     # one of three refs: untag only
    ["image", "rm", "{id:busybox:latest}"],              # two refs left, running container
    ["image", "rm", "-f", "{id:busybox:latest}"],        # running container: cannot be forced
    ["image", "rm", "alpine:3.18"],                      # stopped(created) container conflict
    ["image", "rm", "{prefix:alpine:edge}"],             # shares alpine:3.18's layers
    ["image", "rm", "myorg/app:1.0", "myorg/app:1.0"],   # the second sees the first's effect
    ["image", "rm", "{fullid:myorg/app:latest}"],        # two tags: must be forced
    ["image", "rm", "-f", "{longid:myorg/app:latest}", "nosuch:2"],
    ["image", "rm", "localhost:5000/team/tool:v2"],      # paused container uses it
    ["image", "rm", "-f", "localhost:5000/team/tool:v2"],  # untagged, kept: running
    ["image", "rm", "-f", "alpine:3.18"],                # stopped container: no layer lines
    ["image", "rm", "--no-prune", "debian:bookworm"],
    ["image", "prune", "-f", "--filter", "until=2021-01-01T00:00:00Z"],
    ["image", "prune", "-f", "--filter", "label=tier=tool"],
    ["image", "prune", "-f"],
    ["image", "rm", "-f", "{id:imported/rootfs:1}", "{id:nocreated:1}"],
    ["image", "prune", "-a", "-f"],                      # untags all but one ref of busybox
    ["image", "rm", "-f", "oracle/base:1"],              # running container: untag only
    # The other prunes (dockerd 20.10: every unused local volume, API 1.41).
    ["network", "prune", "-f", "--filter", "until=abc"],
    ["network", "prune", "-f", "--filter", "label=tier=net"],   # spare; not cfg-only
    ["container", "prune", "-f", "--filter", "bogus=1"],
    ["container", "prune", "-f", "--filter", "until=2021-01-01T00:00:00Z"],  # none that old
    ["container", "prune", "-f", "--filter", "label=tier=base"],  # created-alpine only
    ["volume", "prune", "-f", "--filter", "until=1h"],   # not a volume filter
    ["volume", "prune", "-a", "-f"],                     # --all needs API 1.42
    ["volume", "prune", "-f", "--filter", "label=nope"],
    ["volume", "prune", "-f"],                           # scratch; data is still used
    ["system", "prune", "-f", "--volumes", "--filter", "until=1h"],  # refused by the CLI
    ["system", "prune", "-f", "--volumes"],              # stopped containers, idle, data
    ["system", "prune", "-a", "-f"],
]


# -- scenario "builds": legacy builder parents, BuildKit, build cache ------------------
LEGACY_1 = """\
FROM oracle/busybox:latest
LABEL stage=legacy
RUN mkdir -p /srv/data && echo one > /srv/data/one && echo keep > /srv/keep
ENV APP_MODE=prod
COPY payload.txt /srv/payload.txt
RUN rm /srv/data/one && echo two > /srv/data/two
WORKDIR /srv
CMD ["sh", "-c", "cat /srv/payload.txt"]
"""
LEGACY_2 = """\
FROM oracle/busybox:latest
LABEL stage=legacy
RUN mkdir -p /srv/data && echo one > /srv/data/one && echo keep > /srv/keep
ENV APP_MODE=prod
RUN echo v2 > /srv/v2 && rm -rf /srv/data
LABEL version=2
"""
BUILDKIT_1 = """\
FROM oracle/runtime:1
RUN mkdir /work && echo bk > /work/bk && rm -rf /opt/runtime/etc
COPY payload.txt /work/payload.txt
RUN echo again > /work/again
LABEL builder=buildkit
"""
# The classic builder (DOCKER_BUILDKIT=0) commits each step's container: on this store
# the layer's snapshot sits on the build container's -init snapshot (/etc/hosts,
# /etc/resolv.conf, /etc/hostname, /.dockerenv), which no blob of the image holds.
CLASSIC_C8D = """\
FROM oracle/busybox:latest
RUN mkdir /classic && head -c 3000 /bin/busybox > /classic/blob && echo one > /classic/name
RUN echo two >> /classic/name
"""
BUILDKIT_2 = """\
FROM oracle/busybox:latest
RUN head -c 5000 /bin/busybox > /blob
ENV MODE=bk2
"""
BUILDKIT_3 = """\
FROM oracle/busybox:latest
RUN mkdir -p /srv && head -c 7000 /bin/busybox > /srv/blob && echo three > /srv/three
"""
LEGACY_TOOL = """\
FROM oracle/busybox:latest
RUN mkdir /tool && echo tool > /tool/name
RUN head -c 9000 /bin/busybox > /tool/blob
CMD ["cat", "/tool/name"]
"""


def populate_builds(d: Daemon, ctx: Context) -> None:
    rng = ctx.rng
    bb = busybox_layer()
    runtime = synthetic_layer(rng, "opt/runtime", 10, (500, 20000))
    load(d,
         ImageSpec([bb], utc(2024, 1, 10, 1, 2, 3), ["oracle/busybox:latest"],
                   labels={"org.opencontainers.image.title": "busybox"}),
         ImageSpec([bb, runtime], utc(2024, 3, 3, 3, 3, 3), ["oracle/runtime:1"],
                   labels={"tier": "runtime"}, workdir="/opt/runtime"))
    payload = {"payload.txt": random_text(rng, 3000)}
    # Two legacy builds that share their first steps: a branching chain of parents.
    build(d, ctx, "legacy1", LEGACY_1, buildkit=False, files=payload, tag=["legacy/app:1"])
    build(d, ctx, "legacy2", LEGACY_2, buildkit=False, tag=["legacy/app:2",
                                                             "legacy/app:latest"])
    build(d, ctx, "tool", LEGACY_TOOL, buildkit=False, tag=["legacy/tool:1"])
    build(d, ctx, "bk1", BUILDKIT_1, buildkit=True, files=payload, tag=["bk/app:1"])
    build(d, ctx, "bk2", BUILDKIT_2, buildkit=True, tag=["bk/app:2", "other/bk:2"])
    build(d, ctx, "bk3", BUILDKIT_3, buildkit=True, tag=["bk/app:3"])
    d.run("volume", "create", "cache")
    run(d, "tool-exited", "legacy/tool:1", "sh", "-c", "cat /tool/name > /cache/name",
        volumes=["cache:/cache"])
    run(d, "bk-running", "bk/app:1", *SLEEP_FOREVER, detach=True)
    create(d, "bk2-created", "bk/app:2", "true")
    create(d, "on-intermediate", expand(d, "{parent:legacy/tool:1}"), "true")


BUILDS_COMMANDS = [
    ["image", "ls", "-a", "-f", "label=stage=legacy"],
    ["image", "ls", "-f", "label=builder"],
    ["image", "ls", "-a", "-f", "since=oracle/runtime:1"],
    ["image", "ls", "-f", "before=bk/app:1"],
    ["image", "ls", "-f", "reference=*/app"],
    ["image", "ls", "legacy/app"],
    ["image", "history", "legacy/app:1"],
    ["image", "history", "--no-trunc", "legacy/app:2"],
    ["image", "history", "bk/app:1"],
    ["image", "history", "{parent:legacy/app:1}"],
    ["image", "inspect", "legacy/app:1"],
    ["image", "inspect", "{parent:legacy/app:1}"],
    ["image", "inspect", "bk/app:2"],
]

BUILDS_RM = [
    ["image", "rm", "{parent:legacy/app:1}"],            # dependent child images
    ["image", "rm", "-f", "{parent:legacy/app:1}"],
    ["image", "rm", "oracle/busybox:latest"],            # has children: untag only
    ["image", "rm", "legacy/app:2"],                     # legacy/app:latest stays
    ["image", "rm", "--no-prune", "legacy/app:latest"],  # its parent becomes dangling
    ["image", "rm", "{prefix:legacy/app:1}"],            # prunes parents up to the branch
    ["image", "prune", "-f"],                            # the dangling parent and its chain
    ["image", "rm", "bk/app:1"],                         # running container
    ["image", "rm", "-f", "bk/app:1"],                   # untagged, kept
    ["image", "rm", "bk/app:3"],                         # the build cache holds its layers
    ["image", "rm", "other/bk:2"],                       # bk/app:2 stays
    ["image", "rm", "bk/app:2"],                         # created container
    ["image", "rm", "-f", "bk/app:2"],                   # deleted, no layer lines
    ["image", "rm", "legacy/tool:1"],                    # exited container
    ["image", "rm", "-f", "{id:legacy/tool:1}"],         # parent chain held by a container
    ["image", "prune", "-a", "-f", "--filter", "until={created-1:oracle/runtime:1}"],
    ["image", "prune", "-a", "-f", "--filter", "label=tier"],
    ["image", "prune", "-a", "-f"],
]


# -- scenario "registry": pulled through a loopback mirror, digests -------------------
def populate_registry(d: Daemon, ctx: Context) -> None:
    rng, reg = ctx.rng, ctx.registry
    assert reg is not None
    bb = busybox_layer()
    base = synthetic_layer(rng, "lib/base", 8, (400, 9000))

    def at(name: str) -> str:
        return f"{reg.address}/{name}"

    def nginx(created: datetime) -> ImageSpec:
        return ImageSpec([base, synthetic_layer(rng, "usr/share/nginx", 5, (800, 16000))],
                         created, [at("library/nginx:latest")],
                         cmd=("nginx", "-g", "daemon off;"), exposed_ports=("80/tcp",))

    first = [
        ImageSpec([bb], utc(2024, 9, 9, 9, 9, 9), [at("library/busybox:stable")]),
        ImageSpec([base, synthetic_layer(rng, "usr/local/redis", 6, (800, 16000))],
                  utc(2025, 1, 2, 3, 4, 5), [at("library/redis:alpine")],
                  cmd=("redis-server",), exposed_ports=("6379/tcp",),
                  labels={"org.opencontainers.image.source": "redis"}),
        nginx(utc(2024, 12, 24, 18, 0, 0)),
        ImageSpec([synthetic_layer(rng, "usr/local/node", 7, (800, 16000))],
                  utc(2024, 6, 30, 12, 0, 0), [at("library/node:slim")],
                  cmd=("node",), env=("NODE_VERSION=20.0.0",)),
        ImageSpec([synthetic_layer(rng, "usr/lib/postgresql", 5, (800, 16000))],
                  utc(2024, 8, 8, 8, 8, 8), [at("library/postgres:16")],
                  labels={"team": "db"}),
        ImageSpec([base, synthetic_layer(rng, "var/www", 4, (500, 5000))],
                  utc(2025, 2, 14, 14, 14, 14), [at("myorg/web:2")], labels={"team": "web"}),
        ImageSpec([base, synthetic_layer(rng, "srv/api", 4, (500, 5000))],
                  utc(2025, 3, 15, 15, 15, 15), [at("myorg/api:1")], labels={"team": "api"}),
        ImageSpec([base, synthetic_layer(rng, "srv/worker", 3, (500, 5000))],
                  utc(2025, 4, 1, 10, 0, 0), [at("myorg/worker:1")]),
    ]
    load(d, *first)
    digests = push_and_forget(d, reg, [t for spec in first for t in spec.tags])
    for name in ("busybox:stable", "redis:alpine", "nginx:latest", "myorg/web:2",
                 "myorg/api:1", "myorg/worker:1"):
        d.run("pull", name)
    # Pulled by digest only: these images have no tag at all.
    for name in ("node:slim", "postgres:16"):
        d.run("pull", f"{name.split(':')[0]}@{digests[at('library/' + name)]}")
    # A newer nginx:latest: the old one keeps only its digest reference.
    newer = nginx(utc(2025, 5, 5, 5, 5, 5))
    load(d, newer)
    push_and_forget(d, reg, newer.tags)
    d.run("pull", "nginx:latest")
    d.run("tag", "redis:alpine", "redis:7-alpine")
    d.run("tag", "redis:alpine", "cache/redis:7")
    run(d, "bb-exited", "busybox:stable", "sh", "-c", "echo hi > /hi")
    run(d, "bb-running", "busybox:stable", *SLEEP_FOREVER, detach=True)
    create(d, "redis-created", "redis:alpine", "redis-server")
    create(d, "web-created", "myorg/web:2")


REGISTRY_COMMANDS = [
    ["image", "ls", "--digests", "redis"],
    ["image", "ls", "-f", "reference=node"],
    ["image", "ls", "--digests", "-f", "dangling=true"],
    ["image", "ls", "-f", "label=team"],
    ["image", "ls", "-f", "before={digest:nginx:latest}"],
    ["image", "ls", "-f", "since={digest:node}"],
    ["image", "ls", "--no-trunc", "--digests", "-f", "reference=*/*"],
    ["image", "ls", "--digests", "--format", "json", "-f", "reference=redis"],
    ["image", "history", "redis:alpine"],
    ["image", "history", "{digest:node}"],
    ["image", "inspect", "redis:7-alpine"],
    ["image", "inspect", "{digest:node}"],
    ["image", "inspect", "{tagdigest:nginx:latest}"],
    ["image", "inspect", "{id:myorg/web:2}", "busybox:stable"],
]

REGISTRY_RM = [
    ["image", "rm", "{tagdigest:redis:alpine}"],         # name:tag@digest: only the digest
    ["image", "rm", "redis:alpine"],                     # other tags stay
    ["image", "rm", "{fullid:cache/redis:7}"],           # two repositories: must be forced
    ["image", "rm", "redis:7-alpine"],
    ["image", "rm", "{fullid:cache/redis:7}"],           # created container: must be forced
    ["image", "rm", "-f", "cache/redis:7"],              # deleted, no layer lines
    ["image", "rm", "{digest:node}"],                    # digest-only image
    ["image", "rm", "myorg/worker:1"],                   # its digest goes with the last tag
    ["image", "rm", "{digest:nginx:latest}"],            # the tag stays
    ["image", "rm", "{id:myorg/web:2}", "nginx:latest", "{id:busybox:stable}"],
    ["image", "rm", "-f", "{id:busybox:stable}"],        # running container
    ["image", "prune", "-a", "-f", "--filter", "until={created:postgres}"],  # Created == until
    ["image", "prune", "-f"],                            # the old nginx: digest only
    ["image", "prune", "-a", "-f", "--filter", "label=team=api"],
    ["image", "prune", "-a", "-f", "--filter", "until=8760h"],
    ["image", "prune", "-a", "-f"],
    # The stopped and created containers go first, and with them what kept their images.
    ["system", "prune", "-a", "-f"],
]


# -- scenario "containerd": Docker 29's default store, judged by dockerd 28.5 -----------
BUILDKIT_C8D = """\
FROM oracle/busybox:latest
RUN mkdir /work && head -c 6000 /bin/busybox > /work/blob && echo c8d > /work/name
COPY payload.txt /work/payload.txt
LABEL builder=buildkit
"""


def populate_containerd(d: Daemon, ctx: Context) -> None:
    """Images in containerd's store (namespace moby) and one more namespace sharing blobs.

    Loads, an import, a BuildKit build, tags, pulls by tag and by digest through the
    loopback mirror, images left dangling by a newer load of their tag, every container
    state; ``ctr`` imports two images into namespace ``other`` (their blobs are shared,
    the default content sharing policy) and leaves a lease there. Every container's read-write
    snapshot is held by a lease of its own (moby leases.WithID).
    """
    rng, reg = ctx.rng, ctx.registry
    assert reg is not None
    bb = busybox_layer()
    shared = synthetic_layer(rng, "usr/share/common", 8, (300, 6000))
    app = synthetic_layer(rng, "app", 5, (1000, 20000), binary=True)
    tool = synthetic_layer(rng, "opt/tool", 4, (100, 3000))
    tool2 = synthetic_layer(rng, "opt/tool", 4, (100, 3000))

    def at(name: str) -> str:
        return f"{reg.address}/{name}"

    load(d,
         ImageSpec([bb], utc(2024, 1, 10, 1, 2, 3), ["oracle/busybox:latest", "busybox:1.36"],
                   labels={"org.opencontainers.image.title": "busybox"}),
         ImageSpec([bb, shared], utc(2024, 5, 5, 5, 5, 5), ["oracle/base:1"],
                   labels={"tier": "base"}, workdir="/srv"),
         ImageSpec([bb, shared, app], utc(2025, 3, 1, 9, 15, 0), ["myorg/app:1.0"],
                   labels={"tier": "app"}, entrypoint=("/bin/sh",), env=("APP=1",)),
         ImageSpec([bb, tool], utc(2021, 11, 30, 23, 59, 59), ["team/tool:v2"]))
    # A newer load of the tag: the old tool image is kept, dangling.
    load(d, ImageSpec([bb, tool2], utc(2022, 4, 1, 0, 0, 1), ["team/tool:v2"],
                      labels={"release": "2"}))
    rootfs = Layer().dir("etc").file("etc/hostname", b"imported\n").file(
        "etc/data", random_text(rng, 9000)).tar()
    d.run("import", "-c", 'CMD ["/bin/sh"]', "-m", "imported tarball", "-",
          "imported/rootfs:1", input=rootfs)
    build(d, ctx, "c8d", BUILDKIT_C8D, buildkit=True,
          files={"payload.txt": random_text(rng, 2500)}, tag=["bk/app:1", "other/bk:1"])
    build(d, ctx, "classic", CLASSIC_C8D, buildkit=False, tag=["classic/app:1"])

    pushed = [ImageSpec([bb, synthetic_layer(rng, "usr/local/redis", 5, (800, 12000))],
                        utc(2025, 1, 2, 3, 4, 5), [at("library/redis:alpine")],
                        cmd=("redis-server",), labels={"team": "db"}),
              ImageSpec([synthetic_layer(rng, "usr/local/node", 5, (800, 12000))],
                        utc(2024, 6, 30, 12, 0, 0), [at("library/node:slim")], cmd=("node",))]
    load(d, *pushed)
    digests = push_and_forget(d, reg, [t for spec in pushed for t in spec.tags])
    d.run("pull", "redis:alpine")
    d.run("pull", f"node@{digests[at('library/node:slim')]}")    # by digest only
    d.run("tag", "redis:alpine", "cache/redis:7")

    create(d, "created-base", "oracle/base:1", "/bin/true")
    # A volume in use and one that is not: df's Local Volumes row, measured the same way.
    d.run("volume", "create", "unused")
    run(d, "exited-ok", "busybox:1.36", "sh", "-c", "echo rw > /rwfile; head -c 20000 "
        "/bin/busybox > /blob; head -c 7000 /bin/busybox > /data/v", volumes=["c8d-data:/data"])
    run(d, "runner", "myorg/app:1.0", "-c", "sleep 100000", detach=True)
    run(d, "redis-exited", "redis:alpine", "false", expect=1)

    # Namespace "other": the same busybox and app blobs, imported (and unpacked) by ctr.
    d.ctr("other", "images", "import", "-",
          input=d.run_bytes("save", "myorg/app:1.0", "oracle/busybox:latest"))
    # `ctr images mount` leaves a lease (named by the mount point, gc.expire in 24 h)
    # holding an active snapshot on the image's chain; only the mount itself is undone.
    target = tempfile.mkdtemp(prefix="lease-", dir=ctx.workdir)
    d.ctr("other", "images", "mount", "--rw", "docker.io/myorg/app:1.0", target)
    subprocess.run(["umount", target], check=True, capture_output=True)


CONTAINERD_COMMANDS = [
    ["ps", "-a", "-s"],
    ["image", "ls", "--digests", "redis"],
    ["image", "ls", "-f", "label=tier"],
    ["image", "ls", "-f", "before=myorg/app:1.0"],
    ["image", "ls", "-f", "since=oracle/base:1"],
    ["image", "ls", "-f", "reference=*/*"],
    ["image", "ls", "-a", "--digests", "-f", "dangling=true"],
    ["image", "ls", "--no-trunc", "--digests", "--format", "json"],
    ["image", "history", "myorg/app:1.0"],
    ["image", "history", "bk/app:1"],
    ["image", "history", "--no-trunc", "imported/rootfs:1"],
    ["image", "history", "{digest:node}"],
    ["image", "inspect", "myorg/app:1.0"],
    ["image", "inspect", "bk/app:1"],
    ["image", "inspect", "{digest:node}", "redis:alpine"],
    ["image", "inspect", "missing"],
]

CONTAINERD_RM = [
    ["image", "rm", "nosuch:tag"],
    ["image", "rm", "{ambiguous}"],
    ["image", "rm", "busybox:1.36"],                     # one of two refs: untag only
    ["image", "rm", "myorg/app:1.0"],                    # running container
    ["image", "rm", "oracle/base:1"],                    # created container
    ["image", "rm", "{fullid:bk/app:1}"],                # two names: must be forced
    ["image", "rm", "other/bk:1"],
    ["image", "rm", "{prefix:bk/app:1}"],                # a short prefix
    ["image", "rm", "{id:bk/app:1}"],                    # last name: deleted, GC runs
    ["image", "rm", "{digest:node}"],                    # digest-only image
    ["image", "rm", "-f", "redis:alpine"],               # stopped container
    ["image", "rm", "-f", "myorg/app:1.0"],              # running container, forced
    ["image", "rm", "--no-prune", "{id:team/tool:v2}"],
    ["image", "prune", "-f"],                            # the dangling tool image
    ["image", "prune", "-a", "-f"],
]


# -- scenario "vfs": the basic population on the vfs driver --------------------------
VFS_COMMANDS = [
    ["ps", "-a", "-s"],
    ["image", "history", "myorg/app:1.0"],
    ["image", "inspect", "myorg/app:1.0", "busybox"],
    ["image", "ls", "--format", "{{.ID}} {{.Size}} {{.SharedSize}}"],
    ["diff", "exited-fail"],
    ["export", "exited-fail"],
]

VFS_RM = [
    ["image", "rm", "myorg/app:1.0"],                    # its own layer goes, the rest stays
    ["image", "rm", "-f", "alpine:3.18"],                # created container: untag only
    ["image", "rm", "{id:imported/rootfs:1}"],
    ["image", "prune", "-f"],
    ["image", "prune", "-a", "-f"],
]


# -- scenario "changes": containers that add, change and delete files (docker diff) ----
# Each step leaves a different trace in the RW layer: a copied-up file, a whiteout, an
# opaque directory, a directory replaced by a file and a file by a directory, a file
# created where the image itself had deleted one, a new directory tree.
CHANGES_SCRIPT = (
    "echo more >> /srv/conf/app.conf; rm /srv/keep/a; chmod 700 /srv/keep/b;"
    " rm -rf /srv/gone; mkdir /srv/gone; echo again > /srv/gone/z;"
    " rm -rf /srv/asdir; echo now-a-file > /srv/asdir;"
    " rm /srv/asfile; mkdir /srv/asfile; echo inside > /srv/asfile/f;"
    " echo back > /srv/erased; touch /srv/quiet/new;"
    " mkdir -p /opt/deep/er; echo x > /opt/deep/er/f; ln -s /srv/conf/app.conf /opt/link;"
    " ln /srv/keep/c /srv/hardlink; rm -rf /srv/emptied/*; mv /srv/moved /srv/renamed")


def populate_changes(d: Daemon, ctx: Context) -> None:
    rng = ctx.rng
    base = (Layer().dir("srv").dir("srv/conf").file("srv/conf/app.conf", random_text(rng, 300))
            .dir("srv/keep").file("srv/keep/a", b"a\n").file("srv/keep/b", b"b\n")
            .file("srv/keep/c", b"c\n").dir("srv/gone").file("srv/gone/x", b"x\n")
            .dir("srv/gone/sub").file("srv/gone/sub/y", b"y\n").dir("srv/asdir")
            .file("srv/asdir/f", b"f\n").file("srv/asfile", b"file\n")
            .file("srv/erased", b"soon gone\n").dir("srv/quiet").dir("srv/quiet/deeper")
            .dir("srv/emptied").file("srv/emptied/1", b"1\n").file("srv/emptied/2", b"2\n")
            .dir("srv/moved").file("srv/moved/m", b"m\n"))
    erase = Layer().dir("srv").whiteout("srv/erased")
    images = [ImageSpec([busybox_layer(), base, erase], utc(2024, 5, 6, 7, 8, 9),
                        ["changes/base:1"])]
    # Tags of one more small image until two IDs share a first digit ({ambiguous}).
    note = Layer().dir("etc").file("etc/note", b"note\n")
    while len({spec.image_id[7] for spec in images}) == len(images):
        images.append(ImageSpec([note], utc(2024, 1, 1, 0, 0, len(images)),
                                [f"changes/note:{len(images)}"]))
    load(d, *images)
    run(d, "changer", "changes/base:1", "sh", "-c", CHANGES_SCRIPT)
    run(d, "changer-live", "changes/base:1", *SLEEP_FOREVER, detach=True)
    # exec returns once the changes are made: nothing races the snapshot.
    d.run("exec", "changer-live", "sh", "-c", "rm /srv/keep/c; echo live > /srv/live")
    create(d, "untouched", "changes/base:1", "true")
    run_health_checks(d, "changes/base:1")


# Containers with a HEALTHCHECK: one whose check passes, one whose check fails (its
# streak makes it unhealthy), each killed once it has recorded a few results, so no
# check is running while the root is recorded and copied.
HEALTH_CHECKS = {"health-ok": "echo ok", "health-bad": "echo bad >&2; exit 3"}
HEALTH_RESULTS = 3


def run_health_checks(d: Daemon, image: str, timeout: float = 300) -> None:
    for name, check in HEALTH_CHECKS.items():
        d.run("run", "-d", "--network", "none", "--name", name, "--health-cmd", check,
              "--health-interval", "1s", "--health-retries", "2", image, *SLEEP_FOREVER)
    deadline = time.monotonic() + timeout
    for name in HEALTH_CHECKS:
        while len((d.inspect("container", name)[0]["State"].get("Health") or {})
                  .get("Log") or ()) < HEALTH_RESULTS:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: fewer than {HEALTH_RESULTS} health checks")
            time.sleep(0.5)
        d.run("kill", name)


CHANGES_COMMANDS = [
    ["diff", "changer"],
    ["diff", "changer-live"],
    ["diff", "untouched"],
    ["diff", "no-such-container"],
    ["export", "changer"],
    ["export", "changer-live"],
    ["export", "untouched"],                 # what `analyze export changes/base:1` makes
    ["cp", "changer:/srv"],                  # (the destination is the recorder's)
    ["cp", "changer:/opt/link"],
    ["cp", "-L", "changer:/opt/link"],
    ["cp", "changer-live:/srv/keep/."],
    ["cp", "changer:/nope"],
]


# -- scenario "overlay": the basic population and a legacy build on legacy overlay ------
LEGACY_OVERLAY = """\
FROM busybox:latest
RUN mkdir -p /srv/data && echo one > /srv/data/one && head -c 20000 /bin/busybox > /srv/blob
RUN rm /srv/data/one /bin/ls && echo two > /srv/data/two && chmod 700 /srv/blob
CMD ["cat", "/srv/data/two"]
"""
LEGACY_OVERLAY_2 = """\
FROM busybox:latest
RUN mkdir -p /srv/data && echo one > /srv/data/one && head -c 20000 /bin/busybox > /srv/blob
RUN echo v2 > /srv/v2 && rm -rf /srv/data
LABEL version=2
"""


def populate_overlay(d: Daemon, ctx: Context) -> None:
    populate_basic(d, ctx)
    # Layers committed from containers: their root/ hard-links the parent's, with changes.
    build(d, ctx, "overlay", LEGACY_OVERLAY, buildkit=False, tag=["legacy/overlay:1"])
    build(d, ctx, "overlay2nd", LEGACY_OVERLAY_2, buildkit=False, tag=["legacy/overlay:2"])
    run(d, "overlay-writer", "legacy/overlay:1", "sh", "-c",
        "rm /srv/blob; echo more >> /srv/data/two; mkdir /new; echo n > /new/n; chmod 600 /bin/cat")
    create(d, "overlay-created", "legacy/overlay:1", "true")


OVERLAY_COMMANDS = [
    ["ps", "-a", "-s"],
    ["image", "history", "myorg/app:1.0"],
    ["image", "history", "legacy/overlay:1"],
    ["image", "inspect", "myorg/app:1.0", "busybox", "legacy/overlay:1"],
    ["image", "inspect", "{parent:legacy/overlay:1}"],
    ["image", "ls", "-a", "--format", "{{.ID}} {{.Size}} {{.SharedSize}}"],
]

OVERLAY_RM = [
    ["image", "rm", "myorg/app:1.0"],                    # its own layer goes, the rest stays
    ["image", "rm", "-f", "alpine:3.18"],                # created container: untag only
    ["image", "rm", "{id:imported/rootfs:1}"],
    ["image", "rm", "legacy/overlay:2"],                 # its chain up to the shared step
    ["image", "rm", "-f", "legacy/overlay:1"],           # containers hold it: untag only
    ["image", "prune", "-f"],
    ["image", "prune", "-a", "-f"],
]


# -- scenario "prunes": BuildKit's cache and volumes, for builder/volume/system prune --
PRUNE_KEPT = """\
FROM oracle/busybox:latest
RUN mkdir /kept && head -c 12000 /bin/busybox > /kept/blob
COPY payload.txt /kept/payload.txt
"""
# Its image is removed afterwards: every record of the build becomes unshared.
PRUNE_GONE = """\
FROM oracle/busybox:latest
RUN mkdir /gone && head -c 30000 /bin/busybox > /gone/blob
RUN echo second > /gone/second
"""
# A stage no image keeps: its records are private from the start.
PRUNE_STAGES = """\
FROM oracle/busybox:latest AS stage
RUN head -c 20000 /bin/busybox > /stage-blob && echo stage > /stage-name
FROM oracle/busybox:latest
COPY --from=stage /stage-name /from-stage
"""


def populate_prunes(d: Daemon, ctx: Context) -> None:
    """BuildKit builds whose records are shared with an image, left private by a removed
    image, or private from the start (a stage); named and anonymous volumes, used by a
    stopped container or by none."""
    rng = ctx.rng
    bb = busybox_layer()
    # Two tagged images whose IDs share their first digit ({ambiguous}): 3a…, 34….
    load(d, ImageSpec([bb], utc(2024, 1, 10, 1, 2, 3), ["oracle/busybox:latest"]),
         *(ImageSpec([bb], utc(2023, 1, day, 1, 2, 3), [f"pad/ambiguous:{day}"],
                     labels={"pad": str(day)}) for day in (2, 8)))
    build(d, ctx, "kept", PRUNE_KEPT, buildkit=True,
          files={"payload.txt": random_text(rng, 5000)}, tag=["bk/kept:1"])
    build(d, ctx, "gone", PRUNE_GONE, buildkit=True, tag=["bk/gone:1"])
    build(d, ctx, "stages", PRUNE_STAGES, buildkit=True, tag=["bk/stages:1"])
    d.run("image", "rm", "bk/gone:1")
    _volumes(d, "bk/kept:1")


def populate_volumes(d: Daemon, ctx: Context) -> None:
    """The volumes of populate_prunes, without builds, on the containerd image store
    (image IDs are manifest digests there: enough images for two to share a first
    digit)."""
    bb = busybox_layer()
    load(d, ImageSpec([bb], utc(2024, 1, 10, 1, 2, 3), ["oracle/busybox:latest"]),
         *(ImageSpec([bb], utc(2023, 2, day, 1, 2, 3), [f"pad/ambiguous:{day}"],
                     labels={"pad": str(day)}) for day in range(1, 11)))
    _volumes(d, "oracle/busybox:latest")


def populate_prunes_c8d(d: Daemon, ctx: Context) -> None:
    """populate_volumes, then populate_prunes' builds on the containerd image store
    (BuildKit keeps its cache in containerd there) and containers in every state for
    container prune: a labelled one, a created one, a running one."""
    populate_volumes(d, ctx)
    rng = ctx.rng
    build(d, ctx, "kept", PRUNE_KEPT, buildkit=True,
          files={"payload.txt": random_text(rng, 5000)}, tag=["bk/kept:1"])
    build(d, ctx, "gone", PRUNE_GONE, buildkit=True, tag=["bk/gone:1"])
    build(d, ctx, "stages", PRUNE_STAGES, buildkit=True, tag=["bk/stages:1"])
    d.run("image", "rm", "bk/gone:1")
    d.run("run", "--network", "none", "--name", "labelled", "--label", "keep=no",
          "bk/kept:1", "sh", "-c", "head -c 15000 /bin/busybox > /labelled")
    create(d, "created-stages", "bk/stages:1", "/bin/true")
    run(d, "runner", "pad/ambiguous:3", "sleep", "100000", detach=True)


def _volumes(d: Daemon, image: str) -> None:
    d.run("volume", "create", "named-idle")
    d.run("volume", "create", "--label", "keep=yes", "named-kept")
    # An anonymous volume left behind by its removed container, one a stopped container
    # still has, and a named one another uses (one volume each: ps lists a container's
    # mounts in Go map order).
    run(d, "anon-writer", "oracle/busybox:latest", "sh", "-c",
        "head -c 9000 /bin/busybox > /anon/blob", volumes=["/anon"])
    d.run("rm", "anon-writer")
    run(d, "stopped", image, "sh", "-c", "echo x > /data/x", volumes=["named-used:/data"])
    run(d, "stopped-anon", image, "sh", "-c", "echo y > /scratch/y", volumes=["/scratch"])


PRUNES_RM = [
    ["builder", "prune", "-f", "--filter", "bogus=1"],
    ["builder", "prune", "-f", "--filter", "until=abc"],
    ["builder", "prune", "-f", "--filter", "until=24h"],          # every record is newer
    ["builder", "prune", "-f", "--filter", "type=source.local"],  # the build contexts
    ["volume", "prune", "-f", "--filter", "all=maybe"],
    ["volume", "prune", "-f", "--filter", "label!=keep"],
    ["volume", "prune", "-a", "-f", "--filter", "all=1"],   # the CLI's conflict (1.42+)
    ["volume", "prune", "-a", "-f"],
    ["system", "prune", "-f"],            # the stopped containers and the cache
    ["builder", "prune", "-a", "-f"],     # what images share goes too
]

# On the containerd image store: the volumes are the data root's all the same; the
# containers' read-write layers are snapshots and the build cache is in containerd.
PRUNES_C8D_RM = [
    ["volume", "prune", "-f", "--filter", "bogus=1"],
    ["volume", "prune", "-f", "--filter", "label!=keep"],
    ["volume", "prune", "-a", "-f", "--filter", "label=keep"],
    ["volume", "prune", "-a", "-f"],
    ["container", "prune", "-f", "--filter", "bogus=1"],
    ["container", "prune", "-f", "--filter", "until=2020-01-01T00:00:00Z"],   # none
    ["container", "prune", "-f", "--filter", "label=keep=no"],
    ["builder", "prune", "-f", "--filter", "type=source.local"],  # the build contexts
    ["builder", "prune", "-f"],           # what no image shares
    ["system", "prune", "-f"],            # the stopped containers and what they kept
    ["builder", "prune", "-a", "-f"],     # what images share goes too
    ["system", "prune", "-a", "-f", "--volumes"],
]


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("basic", 101, populate_basic, BASIC_COMMANDS, BASIC_RM),
    Scenario("builds", 202, populate_builds, BUILDS_COMMANDS, BUILDS_RM),
    Scenario("registry", 303, populate_registry, REGISTRY_COMMANDS, REGISTRY_RM,
             uses_registry=True),
    Scenario("vfs", 505, populate_basic, VFS_COMMANDS, VFS_RM, judge="dockerd20-vfs"),
    # The changes again on vfs: there the daemon compares two full copies (naive diff).
    Scenario("changes", 606, populate_changes, CHANGES_COMMANDS, ()),
    Scenario("changes-vfs", 607, populate_changes, CHANGES_COMMANDS, (),
             judge="dockerd20-vfs"),
    Scenario("overlay", 608, populate_overlay, OVERLAY_COMMANDS, OVERLAY_RM,
             judge="dockerd20-overlay"),
    # And on legacy overlay: the RW layer an upper/ over the image's root/ (a full tree).
    Scenario("changes-overlay", 609, populate_changes, CHANGES_COMMANDS, (),
             judge="dockerd20-overlay"),
    # A user-namespace-remapped root (<data-root>/100000.100000); dockerd 28.5's is
    # judged by tests/test_oracle_userns.py.
    Scenario("userns", 515, populate_basic, VFS_COMMANDS, VFS_RM, judge="dockerd20-userns"),
    # btrfs: what analyze answers from image/btrfs/ alone; the rest it refuses by name.
    Scenario("btrfs", 525, populate_basic, VFS_COMMANDS, VFS_RM, judge="dockerd20-btrfs",
             layer_files=False),
    # Docker 28 on overlay2 (its export writes permission bits only) and on the
    # containerd store (diff and export mount the snapshot, which moves the sizes other
    # commands record: these roots record only their own commands).
    Scenario("changes28", 610, populate_changes, CHANGES_COMMANDS, (),
             judge="dockerd28", generic=False),
    Scenario("changes-containerd", 611, populate_changes, CHANGES_COMMANDS, (),
             judge="dockerd28-containerd", generic=False),
    Scenario("containerd", 404, populate_containerd, CONTAINERD_COMMANDS, CONTAINERD_RM,
             uses_registry=True, judge="dockerd28-containerd"),
    # The same, with docker-ce's layout: a system containerd beside the data root.
    Scenario("containerd-system", 405, populate_containerd, CONTAINERD_COMMANDS, CONTAINERD_RM,
             uses_registry=True, judge="dockerd28-system-containerd"),
    # BuildKit's cache and volumes: dockerd 20.10 (API 1.41: volume prune takes every
    # unused volume) and dockerd 28.5 (only anonymous ones without --all).
    Scenario("prunes", 701, populate_prunes, (), PRUNES_RM),
    Scenario("prunes28", 702, populate_prunes, (), PRUNES_RM, judge="dockerd28"),
    Scenario("prunes-c8d", 703, populate_prunes_c8d, (), PRUNES_C8D_RM,
             judge="dockerd28-containerd"),
    # The main graph-driver scenarios again as dockerd 28.5 wrote and answers them (a
    # root with engine-id): its API 1.50 shapes, N/A for a missing Created, its prunes.
    Scenario("basic28", 111, populate_basic, BASIC_COMMANDS, BASIC_RM, judge="dockerd28"),
    Scenario("vfs28", 555, populate_basic, VFS_COMMANDS, VFS_RM, judge="dockerd28-vfs"),
    Scenario("builds28", 222, populate_builds, BUILDS_COMMANDS, BUILDS_RM, judge="dockerd28"),
    Scenario("registry28", 333, populate_registry, REGISTRY_COMMANDS, REGISTRY_RM,
             uses_registry=True, judge="dockerd28"),
    Scenario("userns28", 516, populate_basic, VFS_COMMANDS, VFS_RM, judge="dockerd28-userns"),
)}
