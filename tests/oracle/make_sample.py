"""Make the small sample data root shipped in ``examples/``, with the real daemon.

    python -m tests.oracle.make_sample examples/sample-root.tar.gz

The images are named after the Docker documentation's example (centos, redis,
docker, nginx, node, mongo) but hold only synthetic text files: layers come from
``docker load`` of archives built here and from pulls through a loopback registry
mirror (so they carry ``name@sha256:`` digests). Beside the tarball it writes
``examples/README.md`` (the commands and what Docker printed) and the ground truth
``tests/fixtures/sample-root-truth.json``, for tests that need no daemon.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import tarfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

from .build import ImageSpec, Layer, random_text, save_archive, synthetic_layer
from .daemon import Daemon, Registry
from .record import SAMPLE_TRUTH, image_times, timed
from .scenarios import expand, push_and_forget

SEED = 20170101
# Runtime state dockerd rebuilds on start; containerd's content store and metadata
# (pulled manifests, their leases) are kept.
EXCLUDED = ("containerd/daemon/io.containerd.runtime.v1.linux",
            "containerd/daemon/io.containerd.runtime.v2.task",
            "containerd/daemon/io.containerd.snapshotter.v1.btrfs",
            "containerd/daemon/io.containerd.snapshotter.v1.native",
            "containerd/daemon/io.containerd.snapshotter.v1.overlayfs",
            "containerd/daemon/tmpmounts", "runtimes", "tmp", "network")

# Read-only commands recorded on the sample (argv after "docker").
SAMPLE_COMMANDS = [
    ["image", "ls"],
    ["image", "ls", "-a"],
    ["image", "ls", "--digests"],
    ["image", "ls", "-q"],
    ["image", "ls", "-f", "dangling=true"],
    ["image", "ls", "redis"],
    ["image", "ls", "--format", "json"],
    ["ps", "-a"],
    ["ps", "-a", "--no-trunc"],
    ["system", "df"],
    ["system", "df", "-v"],
    ["image", "history", "docker:latest"],
    ["image", "history", "nginx"],
]
# rm cases that leave the root as it was (checked), then the one that changes it:
# every case's "before" is the tarball.
SAMPLE_RM = [
    ["image", "rm", "nosuch"],
    ["image", "rm", "-f", "nosuch:1"],
    ["image", "rm", "{id:mongo:3.2}"],
    ["image", "rm", "{id:nginx:latest}"],
    ["image", "rm", "centos:latest"],
]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def sample_images(rng: random.Random, at) -> tuple[list[ImageSpec], ImageSpec]:
    """The pushed images, and the older nginx:latest loaded before the pull."""
    alpine = synthetic_layer(rng, "lib/apk", 6, (300, 3000))      # shared by redis, docker
    debian = synthetic_layer(rng, "var/lib/dpkg", 8, (300, 3000))  # shared by nginx, node
    docker_fix = (Layer().dir("lib").dir("lib/apk").whiteout("lib/apk/etc")
                  .dir("usr").dir("usr/local").dir("usr/local/bin")
                  .file("usr/local/bin/dockerd-entrypoint.sh",
                        b"#!/bin/sh\nexec dockerd \"$@\"\n", 0o755)
                  .symlink("usr/local/bin/docker-entrypoint.sh", "dockerd-entrypoint.sh"))
    nginx_conf = (Layer().dir("etc").opaque("etc/nginx")
                  .file("etc/nginx/nginx.conf", random_text(rng, 1200))
                  .hardlink("etc/nginx/default.conf", "etc/nginx/nginx.conf"))
    images = [
        ImageSpec([synthetic_layer(rng, "usr/lib/centos", 8, (400, 4000))],
                  utc(2017, 3, 3, 21, 49, 11), [at("library/centos:latest")],
                  cmd=("/bin/bash",), labels={"name": "CentOS Base Image",
                                              "vendor": "CentOS"}),
        ImageSpec([alpine, synthetic_layer(rng, "usr/local/bin/redis", 4, (500, 4000))],
                  utc(2017, 3, 4, 0, 11, 5), [at("library/redis:alpine")],
                  cmd=("redis-server",), exposed_ports=("6379/tcp",)),
        ImageSpec([alpine, synthetic_layer(rng, "usr/local/bin/docker", 4, (500, 4000)),
                   docker_fix],
                  utc(2017, 3, 2, 19, 1, 40), [at("library/docker:latest")],
                  entrypoint=("docker-entrypoint.sh",), cmd=("sh",)),
        ImageSpec([debian, synthetic_layer(rng, "usr/share/nginx", 5, (500, 4000)),
                   nginx_conf],
                  utc(2017, 2, 21, 15, 0, 32), [at("library/nginx:latest")],
                  cmd=("nginx", "-g", "daemon off;"), exposed_ports=("80/tcp", "443/tcp")),
        ImageSpec([debian, synthetic_layer(rng, "usr/local/lib/node", 6, (500, 4000))],
                  utc(2017, 3, 1, 5, 25, 31), [at("library/node:slim")],
                  cmd=("node",), env=("NODE_VERSION=7.7.1",)),
        ImageSpec([synthetic_layer(rng, "usr/lib/mongodb", 5, (500, 4000))],
                  utc(2017, 2, 28, 23, 5, 10), [at("library/mongo:3.2")],
                  entrypoint=("docker-entrypoint.sh",), cmd=("mongod",),
                  exposed_ports=("27017/tcp",)),
    ]
    old_nginx = ImageSpec([debian, synthetic_layer(rng, "usr/share/nginx", 5, (500, 4000))],
                          utc(2017, 1, 17, 22, 10, 0), ["nginx:latest"],
                          cmd=("nginx", "-g", "daemon off;"))
    return images, old_nginx


def populate(d: Daemon, reg: Registry) -> None:
    images, old_nginx = sample_images(random.Random(SEED), lambda n: f"{reg.address}/{n}")
    d.run("load", input=save_archive(images))
    push_and_forget(d, reg, [t for spec in images for t in spec.tags])
    d.run("load", input=save_archive([old_nginx]))
    for name in ("centos:latest", "redis:alpine", "docker:latest", "nginx:latest",
                 "node:slim", "mongo:3.2"):   # the old nginx becomes <none>
        d.run("pull", name)
    d.run("tag", "mongo:3.2", "mongo:3")
    d.run("create", "--network", "none", "--name", "web", "nginx:latest")
    d.run("create", "--network", "none", "--name", "cache", "redis:alpine",
          "redis-server", "--appendonly", "yes")


def walk(root: Path) -> Iterator[Path]:
    """Every path under ``root`` in sorted order, skipping ``EXCLUDED`` subtrees."""
    def rec(directory: Path) -> Iterator[Path]:
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            path = Path(entry.path)
            if str(path.relative_to(root)) in EXCLUDED:
                continue
            yield path
            if entry.is_dir(follow_symlinks=False):
                yield from rec(path)
    yield root
    yield from rec(root)


def write_tarball(root: Path, dest: Path) -> None:
    """gzip'd tar of ``root``, entries ``./…`` in sorted order, xattrs as PAX records."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                compresslevel=9, filename="") as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path in walk(root):
            rel = path.relative_to(root)
            info = tf.gettarinfo(str(path), arcname="." if rel == Path(".") else f"./{rel}")
            # overlay2 marks opaque directories with trusted.overlay.opaque=y. Binary values
            # (the uuid and origin overlayfs stamps on a container's upper directory when
            # it mounts it) would need PAX's hdrcharset, which GNU tar does not know.
            for name in os.listxattr(path, follow_symlinks=False):
                value = os.getxattr(path, name, follow_symlinks=False)
                try:
                    info.pax_headers[f"SCHILY.xattr.{name}"] = value.decode()
                except UnicodeDecodeError:
                    pass
            if info.isreg():
                with open(path, "rb") as f:
                    tf.addfile(info, f)
            else:
                tf.addfile(info)


def state(d: Daemon) -> tuple:
    return (d.run("image", "ls", "-a", "--digests", "--no-trunc"), d.run("ps", "-a", "-q"),
            d.du())


def record(d: Daemon, tarball: Path) -> dict:
    """Record the sample's truth; the root must be exactly what ``tarball`` holds."""
    created = image_times(d)
    commands = []
    for template in SAMPLE_COMMANDS:
        commands.append({"template": template, **timed(d, [expand(d, a) for a in template])})
    rm = []
    root = os.path.relpath(tarball, SAMPLE_TRUTH.parent)
    before = state(d)
    for n, template in enumerate(SAMPLE_RM):
        argv = [expand(d, a) for a in template]
        du_before = d.du()
        entry = timed(d, argv)
        d.settle()
        rm.append({"template": template, **entry, "root": root, "du_before": du_before,
                   "du_after": d.du()})
        if n < len(SAMPLE_RM) - 1 and state(d) != before:
            raise RuntimeError(f"{argv} changed the sample root; only the last case may")
    return {"scenario": "sample", "seed": SEED, "server_version": d.server_version,
            "live_root": str(d.data_root), "root": root, "created": created,
            "commands": commands, "rm": rm}


README = """\
# Sample data root

`sample-root.tar.gz` is a small Docker data root (overlay2 driver) made by the real
dockerd {server_version} with `python -m tests.oracle.make_sample examples/sample-root.tar.gz`
on {date}. Its images are named after the Docker documentation's example but hold only
synthetic text files, so the tarball is tiny ({size} bytes) and safe to share:

- `centos:latest`, `redis:alpine`, `docker:latest`, `nginx:latest`, `node:slim` and
  `mongo:3.2` were built as `docker load` archives, pushed to a loopback registry and
  pulled back through it as a registry mirror, so each carries a `name@sha256:` digest;
- `redis:alpine` and `docker:latest` share their first layer, as do `nginx:latest`
  and `node:slim`; `docker:latest` deletes a file of a lower layer (a whiteout) and
  `nginx:latest` replaces a directory (an opaque directory);
- `mongo:3` is a second tag on `mongo:3.2`;
- an older `nginx:latest` was loaded first, so the pull left it dangling (`<none>`);
- two containers were only created (`docker create`), never started.

Runtime state that dockerd rebuilds when it starts (`runtimes/`, `tmp/`, `network/`,
containerd's task and snapshotter directories) is left out.

Try it (relative times depend on when you run it; `--as-of` pins "now"):

    analyze --data-root examples/sample-root.tar.gz ls -a
    analyze --data-root examples/sample-root.tar.gz --as-of {as_of} ps -a
    analyze --data-root examples/sample-root.tar.gz rm centos:latest
    analyze --data-root examples/sample-root.tar.gz reclaim centos:latest --json

What the Docker CLI (28.x) printed on this root at Unix time {as_of}:

```
$ docker image ls -a
{ls}$ docker ps -a
{ps}$ docker image rm centos:latest
{rm}```

The full ground truth (more commands, exit statuses, and how many bytes `du` saw each
removal free) is in `tests/fixtures/sample-root-truth.json`.
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tarball", type=Path)
    opts = parser.parse_args(argv)
    tarball = opts.tarball.resolve()
    with Registry() as reg, Daemon(registry_mirror=reg.url,
                                   insecure_registries=[reg.address]) as d:
        populate(d, reg)
        d.settle()
        write_tarball(d.data_root, tarball)
        truth = record(d, tarball)
    by_argv = {" ".join(c["docker"]): c for c in truth["commands"] + truth["rm"]}
    SAMPLE_TRUTH.parent.mkdir(parents=True, exist_ok=True)
    SAMPLE_TRUTH.write_text(json.dumps(truth, indent=1) + "\n")
    ls = by_argv["image ls -a"]
    (tarball.parent / "README.md").write_text(README.format(
        server_version=truth["server_version"], size=tarball.stat().st_size,
        date=time.strftime("%Y-%m-%d", time.gmtime(ls["t_before"])),
        as_of=int(ls["t_before"]), ls=ls["stdout"], ps=by_argv["ps -a"]["stdout"],
        rm=by_argv["image rm centos:latest"]["stdout"]))
    print(f"{tarball}: {tarball.stat().st_size} bytes; truth in {SAMPLE_TRUTH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
