"""A synthetic overlay2 data root, laid out file for file as dockerd writes one.

Images share base chains the way real hosts do: a few hundred base images, and
many images that add a few layers on top of one of them. Each layer's ``diff/``
holds real files (a package directory of small files, now and then a hard link
and a symbolic link, as image layers do), about a dozen entries a layer, so that
what prices bytes walks real trees; ``files=0`` leaves them empty. Each layer's
``size`` is the apparent size of its files, as the daemon records it. The daemon
loads such a root as it would a real one, so the benchmarks can time it against
the same files.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import time

EMPTY_TAR_SPLIT = gzip.compress(b'{"type":2,"payload":"' + b"A" * 1364 + b'","position":0}\n')


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _write(path: str, data: bytes | str) -> None:
    if isinstance(data, str):
        data = data.encode()
    with open(path, "wb") as f:
        f.write(data)


class Builder:
    def __init__(self, root: str, seed: int, files: int = 8):
        self.root = root
        self.files = files                      # regular files in a layer, on average
        self.rng = random.Random(seed)
        self.base = os.path.join(root, "image", "overlay2")
        self.layers: dict[str, str] = {}        # chain id -> cache id
        for d in ("imagedb/content/sha256", "imagedb/metadata/sha256", "layerdb/sha256",
                  "distribution"):
            os.makedirs(os.path.join(self.base, d), exist_ok=True)
        os.makedirs(os.path.join(root, "overlay2", "l"), exist_ok=True)
        os.makedirs(os.path.join(root, "containers"), exist_ok=True)
        self.repos: dict[str, dict[str, str]] = {}

    def contents(self, diff: str) -> int:
        """Fill a layer's diff/ with files; returns their apparent size."""
        if not self.files:
            return 0
        rng = self.rng
        pkg = os.path.join(diff, "usr", "share", f"pkg{rng.randrange(10**6)}")
        os.makedirs(pkg)
        total = 0
        names = []
        for i in range(rng.randrange(self.files // 2, self.files * 3 // 2 + 1)):
            size = int(rng.paretovariate(1.5) * 400) if rng.random() < 0.9 else 0
            size = min(size, 256 * 1024)
            name = os.path.join(pkg, f"f{i}")
            _write(name, rng.randbytes(size))
            names.append(name)
            total += size
        if names and rng.random() < 0.1:
            os.link(names[0], os.path.join(pkg, "hardlink"))
        if rng.random() < 0.2:
            os.symlink("f0", os.path.join(pkg, "symlink"))
            total += 2
        return total

    def layer(self, parent: str | None, diff_id: str) -> str:
        chain = diff_id if parent is None else _digest(f"{parent} {diff_id}".encode())
        if chain in self.layers:
            return chain
        cache_id = "%064x" % self.rng.getrandbits(256)
        od = os.path.join(self.root, "overlay2", cache_id)
        os.makedirs(os.path.join(od, "diff"))
        size = self.contents(os.path.join(od, "diff"))
        d = os.path.join(self.base, "layerdb/sha256", chain[7:])
        os.mkdir(d)
        _write(os.path.join(d, "diff"), diff_id)
        _write(os.path.join(d, "size"), str(size))
        _write(os.path.join(d, "cache-id"), cache_id)
        if parent is not None:
            _write(os.path.join(d, "parent"), parent)
        _write(os.path.join(d, "tar-split.json.gz"), EMPTY_TAR_SPLIT)
        link = "".join(self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(26))
        _write(os.path.join(od, "link"), link)
        os.symlink(f"../{cache_id}/diff", os.path.join(self.root, "overlay2", "l", link))
        if parent is not None:
            os.mkdir(os.path.join(od, "work"))
            _write(os.path.join(od, "lower"), f"l/{link}")
        self.layers[chain] = cache_id
        return chain

    def image(self, diff_ids: list[str], created: float, tag: str | None,
              labels: dict[str, str]) -> str:
        parent = None
        for diff_id in diff_ids:
            parent = self.layer(parent, diff_id)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + \
            ".%09dZ" % self.rng.randrange(10**9)
        config = {
            "architecture": "amd64", "os": "linux", "created": stamp,
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"],
                       "Cmd": ["/bin/sh"], "Labels": labels or None},
            "history": [{"created": stamp, "created_by": f"/bin/sh -c #(nop) ADD file:{d[7:19]}"}
                        for d in diff_ids],
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
        data = json.dumps(config, separators=(",", ":")).encode()
        image_id = _digest(data)
        _write(os.path.join(self.base, "imagedb/content/sha256", image_id[7:]), data)
        md = os.path.join(self.base, "imagedb/metadata/sha256", image_id[7:])
        os.mkdir(md)
        _write(os.path.join(md, "lastUpdated"), stamp)
        if tag:
            name = tag.rsplit(":", 1)[0]
            self.repos.setdefault(name, {})[tag] = image_id
            if self.rng.random() < 0.3:
                digest = "%064x" % self.rng.getrandbits(256)
                self.repos[name][f"{name}@sha256:{digest}"] = image_id
        return image_id

    def finish(self) -> None:
        _write(os.path.join(self.base, "repositories.json"),
               json.dumps({"Repositories": self.repos}, separators=(",", ":"), sort_keys=True))


def build(root: str, images: int, layers_per_image: float = 3.5, seed: int = 1,
          files: int = 8) -> dict:
    """Make a root with about ``images`` images and ``images * layers_per_image`` layers,
    each with about ``files`` regular files."""
    b = Builder(root, seed, files)
    rng = b.rng
    now = time.time()
    bases: list[list[str]] = []
    nbase = max(1, images // 20)
    for i in range(nbase):
        diffs = ["sha256:%064x" % rng.getrandbits(256) for _ in range(5)]
        bases.append(diffs)
        b.image(diffs, now - rng.randrange(86400, 86400 * 400), f"base{i}:latest",
                {"tier": "base"})
    # Top images add 1..2n-1 layers each (n on average), so that with the bases'
    # five layers per 20 images, layers ~= images * layers_per_image.
    extra = max(1, round(layers_per_image - 5 / 20))
    for i in range(images - nbase):
        diffs = rng.choice(bases) + ["sha256:%064x" % rng.getrandbits(256)
                                     for _ in range(rng.randrange(1, 2 * extra + 1))]
        tag = f"app{i % 997}:v{i}" if rng.random() < 0.9 else None
        b.image(diffs, now - rng.randrange(60, 86400 * 365), tag,
                {"team": f"t{i % 7}"} if rng.random() < 0.5 else {})
    b.finish()
    return {"images": images, "layers": len(b.layers)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--files", "--files-per-layer", type=int, default=8,
                    help="regular files in a layer, on average")
    args = ap.parse_args()
    print(build(args.root, args.images, files=args.files))
