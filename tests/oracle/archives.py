"""Image archives made by the real tools, and what those tools say they hold.

dockerd 20.10 loads images built by :mod:`build` and ``docker save``s them (the legacy
format: ``manifest.json``, ``repositories``, ``<id>/layer.tar``), and so does dockerd 28.5
(an OCI layout with ``manifest.json`` beside it) with a graph driver and with the
containerd image store (the blobs as they came: gzip and zstd); skopeo 1.9 copies that
save into OCI image layouts (gzip, zstd, uncompressed layers, several images in one
layout, ``oci-archive:``); two real manifests of different platforms are put under an
image index, and that index under another (nested). Every source is kept as a
directory, ``.tar``, ``.tar.gz`` and ``.tar.zst`` (GNU tar, gzip, zstd).

The truth (``truth.json``) comes from the tools, not from our parsers: image IDs and diff
IDs from ``docker image inspect`` (the save) or from the config bytes
``skopeo inspect --config --raw`` prints (the layouts), layer descriptors from
``skopeo inspect --raw``, names from ``docker load``: of each save by the daemon that
made it, of each layout by dockerd 28.5 with the containerd image store (``loaded``;
``oci:DIR:t1`` loads as ``t1:latest``); each save's history as its daemon prints it;
sizes (``unpacked``) as dockerd 28.5 with a graph driver prints them once it has
loaded the images.

References: image-spec image-layout.md, image-index.md (platform, annotations
``org.opencontainers.image.ref.name``), containerd's ``io.containerd.image.name``,
moby image/tarexport/save.go (legacy save).
"""
from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .build import ImageSpec, busybox_layer, save_archive, synthetic_layer
from .daemon import JUDGES, Daemon
from .record import recording_lock

SKOPEO = "/usr/bin/skopeo"
FLAVOURS = ("dir", "tar", "tar.gz", "tar.zst")
HOST_PLATFORM = "linux/amd64"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
_TRUTH = "truth.json"
_SEED = 14


def _images() -> dict[str, ImageSpec]:
    """Three images: two of the host platform sharing a base layer, one arm64."""
    rng = random.Random(_SEED)
    base = busybox_layer()
    images = {
        "a": ImageSpec([base, synthetic_layer(rng, "opt/a", 6, (200, 4000))],
                       datetime(2024, 1, 2, tzinfo=timezone.utc), tags=["oci/a:1", "oci/a:latest"]),
        "b": ImageSpec([base, synthetic_layer(rng, "opt/b", 4, (200, 4000))],
                       datetime(2024, 1, 3, tzinfo=timezone.utc), tags=["oci/b:1"]),
        "arm": ImageSpec([base, synthetic_layer(rng, "opt/arm", 3, (200, 4000))],
                         datetime(2024, 1, 4, tzinfo=timezone.utc), tags=["oci/a:arm64"],
                         architecture="arm64"),
    }
    # Tests that look at a second layer (shared base, per-layer verify) rely on this.
    for name, spec in images.items():
        assert len(spec.diff_ids) == 2 and len(set(spec.diff_ids)) == 2, name
    return images


@dataclass(frozen=True)
class Archives:
    """The recorded material: ``path(source, flavour)`` and the truth of each source."""
    base: Path
    truth: dict

    def path(self, source: str, flavour: str) -> Path:
        return self.base / self.truth["sources"][source]["files"][flavour]

    @property
    def sources(self) -> list[str]:
        return sorted(self.truth["sources"])

    def images(self, source: str) -> list[dict]:
        return self.truth["sources"][source]["images"]


def ensure_recorded(cache: Path) -> Archives:
    """The material under ``cache/archives``, made first if it is missing."""
    base = cache / "archives"
    with recording_lock(cache / ".archives.lock"):
        if not (base / _TRUTH).exists():
            shutil.rmtree(base, ignore_errors=True)     # a recording cut short
            work = Path(tempfile.mkdtemp(prefix="archives-", dir=cache))
            record(work)
            work.rename(base)
    return Archives(base, json.loads((base / _TRUTH).read_text()))


# -- recording -----------------------------------------------------------------------
def record(out: Path) -> dict:
    """Make every source under ``out`` in every flavour; write and return the truth."""
    images = _images()
    sources: dict[str, dict] = {}
    with Daemon() as d:
        d.run("save", "-o", str(out / "arm.tar"), *_loaded(d, images["arm"]))
        sources["save20"] = _docker_save(d, out / "save20.tar",
                                         _loaded(d, images["a"], images["b"]))
    layouts = _skopeo_layouts(out, out / "save20.tar", out / "arm.tar")
    for name, images_of_layout in layouts.items():
        sources[name] = {"kind": "oci-layout", "images": images_of_layout}
    sources["index"] = _index_layout(out, nested=False)
    sources["nested"] = _index_layout(out, nested=True)
    (out / "arm.tar").unlink()
    shutil.rmtree(out / "arm")
    for name, src in sources.items():
        src["files"] = _flavours(out, name, from_tar=name in ("save20", "archive"))
    # dockerd 28.5 (graph driver): its save is an OCI layout with manifest.json beside it.
    with Daemon(judge=JUDGES["dockerd28"]) as d:
        sources["save28"] = _docker_save(d, out / "save28.tar",
                                         _loaded(d, images["a"], images["b"]))
    # dockerd 28.5 with the containerd image store: what `docker load` of each layout
    # lists (the names' truth), then a save of blobs kept as they came (gzip, zstd).
    with Daemon(judge=JUDGES["dockerd28-containerd"]) as d:
        for name, src in list(sources.items()):
            if src["kind"] == "oci-layout":
                src["loaded"] = _loaded_names(d.run("load", "-i", str(out / src["files"]["tar"])))
        # The index's arm64 image (skopeo's config, not the one dockerd 20.10 saved).
        d.run("save", "--platform", "linux/arm64", "-o", str(out / "armcd.tar"), "oci/multi:1")
        # Only the zstd layout names oci/a:1; oci/b:1 is the same gzip image in two.
        d.run("save", "-o", str(out / "savecd.tar"), "oci/a:1", "oci/b:1")
        d.run("image", "rm", "oci/a:1", "oci/b:1")
        loaded = _loaded_names(d.run("load", "-i", str(out / "savecd.tar")))
        layout_images = {i["manifest"]: i for i in (*sources["zstd"]["images"],
                                                    *sources["archive"]["images"])}
        # Image IDs there are manifest digests: the layouts' truth says whose config.
        by_manifest = {info["Id"]: info for info in d.inspect("image", *loaded)}
        sources["savecd"] = {"kind": "docker-save", "engine": d.server_version, "loaded": loaded,
                             "images": [dict(layout_images[m], names=sorted(info["RepoTags"]))
                                        for m, info in sorted(by_manifest.items())]}
    for name in ("save28", "savecd"):
        sources[name]["files"] = _flavours(out, name, from_tar=True)
    # dockerd 28.5 (graph driver) loads the index's arm64 image on this host too (given
    # as the containerd store saves it): its sizes are recorded as the others' are,
    # for the rows ls -a lists of other platforms.
    truth = {"host_platform": HOST_PLATFORM, "sources": sources,
             "unpacked": _unpacked_sizes(out / "save20.tar", out / "savecd.tar",
                                         out / "armcd.tar")}
    (out / "armcd.tar").unlink()
    (out / _TRUTH).write_text(json.dumps(truth, indent=1))
    return truth


def _unpacked_sizes(*saves: Path) -> dict[str, dict]:
    """What dockerd 28.5 (graph driver) says of each image of these saves once loaded:
    by image ID, ``docker image ls``'s SIZE, ``inspect``'s Size, and ``history``'s SIZE
    of each row in bytes (the layers as unpacked, not as the archive holds them). The
    layouts' images are savecd's (the same config blobs), loaded through its save, as
    that daemon loads no bare OCI layout."""
    with Daemon(judge=JUDGES["dockerd28"]) as d:
        for save in saves:
            d.run("load", "-i", str(save))
        rows = [json.loads(line) for line in d.run(
            "image", "ls", "--no-trunc", "--format", "{{json .}}").splitlines()]
        ids = sorted({row["ID"] for row in rows})
        return {info["Id"]: {
            "ls_size": next(r["Size"] for r in rows if r["ID"] == info["Id"]),
            "size": info["Size"],
            "history": [int(line) for line in d.run(
                "image", "history", "--no-trunc", "--human=false", "--format", "{{.Size}}",
                info["Id"]).split()]} for info in d.inspect("image", *ids)}


def _loaded(d: Daemon, *specs: ImageSpec) -> list[str]:
    """Load ``specs`` into ``d``; their tags."""
    d.run("load", input=save_archive(specs))
    return [tag for spec in specs for tag in spec.tags]


def _docker_save(d: Daemon, dest: Path, tags: list[str]) -> dict:
    """``docker save`` of ``tags`` and its truth: what loading it back lists, and the
    images ``docker image inspect`` then shows."""
    d.run("save", "-o", str(dest), *tags)
    d.run("image", "rm", *tags)
    loaded = _loaded_names(d.run("load", "-i", str(dest)))
    images = _save_images(d.inspect("image", *loaded))
    for image in images:
        image["history"] = [json.loads(line) for line in d.run(
            "image", "history", "--no-trunc", "--format", "{{json .}}", image["id"]).splitlines()]
    return {"kind": "docker-save", "engine": d.server_version, "loaded": loaded,
            "images": images}


def _loaded_names(output: str) -> list[str]:
    return [line.removeprefix("Loaded image: ") for line in output.splitlines()
            if line.startswith("Loaded image: ")]


def _save_images(infos: list[dict]) -> list[dict]:
    by_id: dict[str, dict] = {}
    for info in infos:
        by_id.setdefault(info["Id"], {
            "id": info["Id"], "diff_ids": info["RootFS"]["Layers"], "manifest": None,
            "platform": f"{info['Os']}/{info['Architecture']}",
            "names": sorted(info["RepoTags"])})
    return sorted(by_id.values(), key=lambda i: i["id"])


def _skopeo(*args: str) -> str:
    return subprocess.run([SKOPEO, "--insecure-policy", *args], check=True,
                          capture_output=True, text=True, timeout=120).stdout


def _skopeo_layouts(out: Path, save: Path, arm_save: Path) -> dict[str, list[dict]]:
    """skopeo's layouts: name -> the truth of each image in it."""
    a = f"docker-archive:{save}:oci/a:1"
    b = f"docker-archive:{save}:oci/b:1"
    _skopeo("copy", "-q", a, f"oci:{out / 'gzip'}:t1")          # a bare tag as ref.name
    _skopeo("copy", "-q", "--dest-compress-format", "zstd", a,
            f"oci:{out / 'zstd'}:docker.io/oci/a:1")
    # skopeo 1.9 labels these plain tars as gzip: the media type lies, the bytes do not.
    _skopeo("copy", "-q", "--dest-oci-accept-uncompressed-layers", a, f"oci:{out / 'plain'}:a1")
    _skopeo("copy", "-q", a, f"oci:{out / 'multi'}:a1")
    _skopeo("copy", "-q", b, f"oci:{out / 'multi'}:docker.io/oci/b:1")
    _skopeo("copy", "-q", b, f"oci-archive:{out / 'archive.tar'}:docker.io/oci/b:1")
    _skopeo("copy", "-q", f"docker-archive:{arm_save}:oci/a:arm64", f"oci:{out / 'arm'}:arm64")
    with tempfile.TemporaryDirectory() as tmp:      # the oci-archive's truth, unpacked
        with tarfile.open(out / "archive.tar") as tf:
            tf.extractall(tmp, filter="data")
        archive = [_layout_image(Path(tmp), "docker.io/oci/b:1", ["oci/b:1"])]
    return {"gzip": [_layout_image(out / "gzip", "t1", ["t1:latest"])],
            "zstd": [_layout_image(out / "zstd", "docker.io/oci/a:1", ["oci/a:1"])],
            "plain": [_layout_image(out / "plain", "a1", ["a1:latest"])],
            "multi": [_layout_image(out / "multi", "a1", ["a1:latest"]),
                      _layout_image(out / "multi", "docker.io/oci/b:1", ["oci/b:1"])],
            "archive": archive}


def _layout_image(layout: Path, ref: str, names: list[str]) -> dict:
    """One image of a layout as skopeo reads it: manifest, config digest, diff IDs."""
    src = f"oci:{layout}:{ref}"
    raw_manifest = _skopeo("inspect", "--raw", src).encode()
    manifest = json.loads(raw_manifest)
    config = _skopeo("inspect", "--config", "--raw", src).encode()
    doc = json.loads(config)
    return {"id": "sha256:" + hashlib.sha256(config).hexdigest(),
            "diff_ids": doc["rootfs"]["diff_ids"],
            "manifest": "sha256:" + hashlib.sha256(raw_manifest).hexdigest(),
            "platform": f"{doc['os']}/{doc['architecture']}", "names": names,
            "layers": [{k: layer[k] for k in ("mediaType", "digest", "size")}
                       for layer in manifest["layers"]]}


def _index_layout(out: Path, nested: bool) -> dict:
    """A multi-platform index built from two real manifests (gzip's amd64, arm's arm64)
    in a layout of its own; ``nested`` puts that index under another index."""
    name = "nested" if nested else "index"
    dest = out / name
    shutil.copytree(out / "gzip", dest)
    for blob in (out / "arm" / "blobs" / "sha256").iterdir():
        shutil.copy2(blob, dest / "blobs" / "sha256" / blob.name)
    entries, images = [], []
    for src, ref, platform in (("gzip", "t1", ("linux", "amd64")),
                               ("arm", "arm64", ("linux", "arm64"))):
        desc = _ref_descriptor(out / src, ref)
        entries.append({"mediaType": desc["mediaType"], "digest": desc["digest"],
                        "size": desc["size"],
                        "platform": {"os": platform[0], "architecture": platform[1]}})
        images.append(_layout_image(out / src, ref, ["oci/multi:1"]))
    top = _write_blob(dest, {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE,
                             "manifests": entries})
    if nested:
        top = _write_blob(dest, {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE,
                                 "manifests": [top]})
    top["annotations"] = {CONTAINERD_NAME: "docker.io/oci/multi:1", REF_NAME: "1"}
    (dest / "index.json").write_text(json.dumps(
        {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [top]}))
    return {"kind": "oci-layout", "images": images}


def _ref_descriptor(layout: Path, ref: str) -> dict:
    index = json.loads((layout / "index.json").read_text())
    return next(m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) == ref)


def _write_blob(layout: Path, doc: dict) -> dict:
    data = json.dumps(doc, separators=(",", ":")).encode()
    hex_digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / hex_digest).write_bytes(data)
    return {"mediaType": doc["mediaType"], "digest": f"sha256:{hex_digest}", "size": len(data)}


def _flavours(out: Path, name: str, from_tar: bool) -> dict[str, str]:
    """``name`` as a directory, .tar, .tar.gz and .tar.zst; returns flavour -> file."""
    files = {f: f"{name}" if f == "dir" else f"{name}.{f}" for f in FLAVOURS}
    if from_tar:
        (out / name).mkdir()
        subprocess.run(["tar", "-xf", str(out / files["tar"]), "-C", str(out / name)],
                       check=True)
    else:
        members = sorted(p.name for p in (out / name).iterdir())
        subprocess.run(["tar", "-cf", str(out / files["tar"]), "-C", str(out / name), *members],
                       check=True)
    with open(out / files["tar.gz"], "wb") as f:
        subprocess.run(["gzip", "-n", "-c", str(out / files["tar"])], stdout=f, check=True)
    subprocess.run(["zstd", "-q", "-f", "-o", str(out / files["tar.zst"]),
                    str(out / files["tar"])], check=True)
    return files


def main() -> None:
    import argparse
    import time
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path)
    opts = parser.parse_args()
    t0 = time.monotonic()
    archives = ensure_recorded(opts.dest)
    print(f"{len(archives.sources)} sources in {archives.base} ({time.monotonic() - t0:.1f}s)")


if __name__ == "__main__":
    main()
