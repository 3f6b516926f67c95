"""`analyze verify` on data roots made by the real dockerd 20.10, untouched and tampered with.

One session root holds images loaded with ``docker load`` (regular files, a few MB file,
an empty file, directories, symlinks, hard links, set-ID and owned files, xattrs, a fifo,
a non-UTF-8 name, ustar/PAX/GNU long names, whiteouts, an opaque directory, an empty
layer), images built by the legacy builder and by BuildKit (layers whose tar-split the
daemon wrote itself), and pushed to a loopback registry (so distribution/ knows their
compressed digests). The daemon is stopped before anything is read. Each tampering runs
on a fresh copy and must be reported on the right layer and file, and nothing else.
"""
from __future__ import annotations

import base64
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pytest

from tests.oracle.build import LAYER_MTIME, ImageSpec, Layer, busybox_layer, save_archive
from tests.oracle.daemon import Daemon, Registry, copy_root

REPO = Path(__file__).resolve().parents[1]
BIG_MB = 160
RAW_NAME = "app/caf\xe9-\udcff.txt"          # UTF-8 "é", then the byte 0xFF: not UTF-8
RAW_NAME_BYTES = RAW_NAME.encode("utf-8", "surrogateescape")
RAW_NAME_JSON = RAW_NAME_BYTES.decode("utf-8", "backslashreplace")   # as JSON writes it


class RawLayer(Layer):
    """A layer whose members keep the modes, owners, PAX records and format they are given."""

    def __init__(self, fmt: int = tarfile.PAX_FORMAT):
        super().__init__()
        self.fmt = fmt

    def add(self, name: str, data: bytes | None = None, **attrs) -> "RawLayer":
        info = tarfile.TarInfo(name)
        info.mtime = LAYER_MTIME
        for key, value in attrs.items():
            setattr(info, key, value)
        if data is not None:
            info.size = len(data)
            self.payloads[name] = data
        self.members.append(info)
        return self

    def tar(self) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=self.fmt, encoding="utf-8",
                          errors="surrogateescape") as tf:
            for info in self.members:
                data = self.payloads.get(info.name) if info.isreg() else None
                tf.addfile(info, io.BytesIO(data) if data is not None else None)
        return buf.getvalue()


def app_layer(rng: random.Random) -> RawLayer:
    layer = RawLayer()
    layer.dir("app").file("app/hello.txt", b"hello world\n")
    layer.file("app/big.bin", rng.randbytes(3 * 1024 * 1024 + 17))
    layer.file("app/empty", b"")
    layer.add("app/suid", b"suid\n", mode=0o4755)
    layer.add("app/owned", b"owned\n", mode=0o640, uid=1234, gid=5678)
    layer.symlink("app/link", "hello.txt").hardlink("app/hard", "app/hello.txt")
    layer.add("app/xattr.txt", b"xa\n", mode=0o644,
              pax_headers={"SCHILY.xattr.user.comment": "hi there"})
    layer.add(RAW_NAME, b"raw\n", mode=0o644)
    layer.add("app/fifo", type=tarfile.FIFOTYPE, mode=0o644)
    layer.dir("app/sub").file("app/sub/a", b"a\n").file("app/sub/b", b"b\n")
    layer.dir("data").file("data/keep", b"keep\n").file("data/gone", b"gone\n")
    layer.file("app/" + "long/" * 30 + "name.txt", b"long\n")
    return layer


def change_layer() -> RawLayer:
    layer = RawLayer(tarfile.GNU_FORMAT)
    layer.whiteout("data/gone").opaque("app/sub").file("app/sub/c", b"c\n")
    layer.file("x/" + "y" * 120 + "/gnu-long.txt", b"gnu\n")
    layer.add("x/gnu-link", type=tarfile.SYMTYPE, linkname="z" * 150, mode=0o777)
    return layer


# Whiteouts, an opaque directory (removed and made again), a copy-up of metadata only,
# a hard link and a symlink: what the daemon itself writes into a layer's tar.
BUILD_STEPS = ("rm /app/hello.txt && chmod u+s /app/empty && mkdir -p /opq && echo x > /opq/x "
               "&& rm -rf /app/sub && mkdir /app/sub && echo n > /app/sub/n "
               "&& ln /opq/x /opq/hard && ln -s x /opq/sym")


@dataclass
class Fixture:
    root: Path
    images: dict[str, str]                 # tag -> image ID
    chains: dict[str, str]                 # layer name -> chain ID
    cache: dict[str, str]                  # layer name -> cache ID
    pushed: str                            # chain ID of a layer pushed to the registry

    def layer_dir(self, root: Path, name: str) -> Path:
        return root / "image/overlay2/layerdb/sha256" / self.chains[name][7:]

    def diff(self, root: Path, name: str) -> Path:
        return root / "overlay2" / self.cache[name] / "diff"


def _build(base: Path) -> Fixture:
    rng = random.Random(20240102)
    layers = {"base": busybox_layer(), "app": app_layer(rng), "change": change_layer(),
              "empty": Layer()}
    spec = ImageSpec(layers=list(layers.values()), tags=["verify:all"],
                     created=datetime(2024, 1, 2, tzinfo=timezone.utc))
    big = ImageSpec(layers=[RawLayer().add("blob", os.urandom(BIG_MB * 1024 * 1024), mode=0o644)],
                    tags=["verify:big"], created=datetime(2024, 1, 3, tzinfo=timezone.utc))
    with Daemon(tmp_parent=str(base)) as d, Registry(tmp_parent=str(base)) as reg:
        d.run("load", input=save_archive([spec, big]))
        ctx = base / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(
            f"FROM verify:all\nRUN echo built > /built.txt && {BUILD_STEPS}\n")
        d.build(ctx, "-t", "verify:legacy", buildkit=False)
        (ctx / "Dockerfile").write_text(
            f"FROM verify:all\nRUN echo kit > /kit.txt && {BUILD_STEPS}\n")
        d.build(ctx, "-t", "verify:kit", buildkit=True)
        d.run("tag", "verify:all", f"{reg.address}/verify:all")
        d.run("push", f"{reg.address}/verify:all")
        images = {tag: d.inspect("image", f"verify:{tag}")[0]["Id"]
                  for tag in ("all", "legacy", "kit", "big")}
        d.settle()
        root = base / "root"
        copy_root(d.data_root, root)
    diff_chain = _chains(root)
    chains = {name: diff_chain[diff] for name, diff in zip(layers, spec.diff_ids)}
    built = json.loads((root / "image/overlay2/imagedb/content/sha256" /
                        images["legacy"][7:]).read_bytes())["rootfs"]["diff_ids"]
    chains["legacy"] = diff_chain[built[-1]]
    kit = json.loads((root / "image/overlay2/imagedb/content/sha256" /
                      images["kit"][7:]).read_bytes())["rootfs"]["diff_ids"]
    chains["kit"] = diff_chain[kit[-1]]
    layerdb = root / "image/overlay2/layerdb/sha256"
    cache = {name: (layerdb / c[7:] / "cache-id").read_text() for name, c in chains.items()}
    return Fixture(root, images, chains, cache, chains["app"])


def _chains(root: Path) -> dict[str, str]:
    """diff ID -> chain ID of every layer (the diff IDs here are all distinct)."""
    layerdb = root / "image/overlay2/layerdb/sha256"
    return {(d / "diff").read_text(): "sha256:" + d.name for d in layerdb.iterdir()}


@pytest.fixture(scope="session")
def verify_fixture(tmp_path_factory) -> Fixture:
    return _build(tmp_path_factory.mktemp("verify"))


def analyze_verify(root: Path, *args: str) -> tuple[dict, str, int]:
    env = dict(os.environ, LC_ALL="C.UTF-8")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-m", "analyzer", "--data-root", str(root),
                           "verify", "--json", *args],
                          capture_output=True, env=env, cwd=REPO, timeout=300,
                          stdin=subprocess.DEVNULL)
    return json.loads(proc.stdout), proc.stderr.decode(errors="replace"), proc.returncode


def tampered(fx: Fixture, tmp_path: Path, change: Callable[[Path], None]) -> Path:
    root = tmp_path / "root"
    subprocess.run(["cp", "-a", "--one-file-system", str(fx.root), str(root)], check=True)
    change(root)
    return root


def bad_of(report: dict) -> dict[str, list[tuple[str, str]]]:
    """chain ID -> [(path, reason)] of every layer with bad files."""
    return {lr["chain_id"]: [(b["path"], b["reason"]) for b in lr["bad_files"]]
            for lr in report["layers"] if lr["bad_files"]}


def statuses(report: dict) -> dict[str, tuple[str, str | None]]:
    return {lr["chain_id"]: (lr["status"], lr["fault"]) for lr in report["layers"]}


def only_layer_fails(report: dict, chain: str, status: str, fault: str | None) -> None:
    got = statuses(report)
    assert got[chain] == (status, fault), report
    assert all(v == ("ok", None) for k, v in got.items() if k != chain), got


# -- the untouched root ---------------------------------------------------------------------

def test_untouched_root_verifies(verify_fixture):
    report, err, rc = analyze_verify(verify_fixture.root)
    assert rc == 0, (report, err)
    assert report["ok"] is True
    assert {i["id"] for i in report["images"]} >= set(verify_fixture.images.values())
    assert all(i["config_ok"] and i["layers_ok"] for i in report["images"])
    for layer in report["layers"]:
        assert layer["status"] == "ok", layer
        assert layer["computed_diff_id"] == layer["diff_id"]
        assert layer["bad_files"] == []
    # Every layer of the layer store, daemon-written tar-splits included.
    assert {lr["chain_id"] for lr in report["layers"]} == set(_chains(verify_fixture.root).values())


def test_compressed_digests_of_a_pushed_layer(verify_fixture):
    report, _, rc = analyze_verify(verify_fixture.root, "verify:all")
    assert rc == 0
    by_chain = {lr["chain_id"]: lr for lr in report["layers"]}
    digests = by_chain[verify_fixture.pushed]["compressed_digests"]
    assert digests and all(d.startswith("sha256:") for d in digests)
    diffid_by_digest = verify_fixture.root / "image/overlay2/distribution/diffid-by-digest/sha256"
    for d in digests:
        assert (diffid_by_digest / d[7:]).read_text() == by_chain[verify_fixture.pushed]["diff_id"]


def test_named_image_verifies_only_its_layers(verify_fixture):
    report, _, rc = analyze_verify(verify_fixture.root, "verify:kit")
    assert rc == 0
    assert [i["id"] for i in report["images"]] == [verify_fixture.images["kit"]]
    chain = report["images"][0]["layers"]
    assert [lr["chain_id"] for lr in report["layers"]] == chain
    assert chain[-1] == verify_fixture.chains["kit"]


def test_unknown_image_is_an_error(verify_fixture):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "analyzer", "--data-root",
                           str(verify_fixture.root), "verify", "nosuch:image"],
                          capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 1
    assert "No such image" in proc.stderr


def test_human_output(verify_fixture):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "analyzer", "--data-root",
                           str(verify_fixture.root), "verify", "-j", "1"],
                          capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split() == ["IMAGE", "ID", "CONFIG", "LAYERS"]
    assert "all ok" in proc.stdout.splitlines()[-1]
    assert proc.stderr == ""                     # not a tty: no progress bar


# -- tampering: each change found on its layer and file, nothing else -------------------------

def _write_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        old = f.read(1)
        f.seek(offset)
        f.write(bytes([old[0] ^ 0xFF]))


CASES = {
    # name: (layer, change(diff dir), expected bad files, fault, digest still matches)
    "one byte changed": ("app", lambda d: _write_byte(d / "app/big.bin", 1_000_000),
                         [("app/big.bin", "changed")], "content", False),
    "truncated": ("app", lambda d: os.truncate(d / "app/owned", 2),
                  [("app/owned", "truncated")], "content", False),
    "deleted": ("app", lambda d: (d / "data/keep").unlink(),
                [("data/keep", "missing")], "content", False),
    "added": ("app", lambda d: (d / "app/new.txt").write_bytes(b"new\n"),
              [("app/new.txt", "added")], "content", True),
    "setuid": ("app", lambda d: os.chmod(d / "app/sub/b", 0o4644),
               [("app/sub/b", "metadata")], "metadata", True),
    "symlink retargeted": ("app", lambda d: ((d / "app/link").unlink(),
                                             os.symlink("/etc/passwd", d / "app/link")),
                           [("app/link", "metadata")], "metadata", True),
    "owner": ("app", lambda d: os.chown(d / "app/suid", 1, 1, follow_symlinks=False),
              [("app/suid", "metadata")], "metadata", True),
    "xattr added": ("app", lambda d: os.setxattr(d / "app/sub/a", "user.evil", b"1"),
                    [("app/sub/a", "metadata")], "metadata", True),
    "xattr changed": ("app", lambda d: os.setxattr(d / "app/xattr.txt", "user.comment", b"no"),
                      [("app/xattr.txt", "metadata")], "metadata", True),
    "hard link broken": ("app", lambda d: (os.unlink(d / "app/hard"),
                                           shutil.copy(d / "app/hello.txt", d / "app/hard")),
                         [("app/hard", "metadata")], "metadata", True),
    "raw name changed": ("app", lambda d: _write_byte(d / RAW_NAME, 0),
                         [(RAW_NAME_JSON, "changed")], "content", False),
    "whiteout removed": ("change", lambda d: (d / "data/gone").unlink(),
                         [("data/gone", "missing")], "content", True),
    "opaque cleared": ("change", lambda d: os.removexattr(d / "app/sub", "trusted.overlay.opaque"),
                       [("app/sub", "metadata")], "metadata", True),
    "built layer file changed": ("legacy", lambda d: (d / "built.txt").write_bytes(b"BUILT\n"),
                                 [("built.txt", "changed")], "content", False),
    "grown": ("kit", lambda d: (d / "kit.txt").write_bytes(b"kit and more\n"),
              [("kit.txt", "changed")], "content", False),
    # On what the daemon wrote itself: the legacy builder's commit and BuildKit's snapshot.
    "built opaque cleared": ("legacy", lambda d: os.removexattr(d / "app/sub",
                                                                "trusted.overlay.opaque"),
                             [("app/sub", "metadata")], "metadata", True),
    "built whiteout removed": ("kit", lambda d: (d / "app/hello.txt").unlink(),
                               [("app/hello.txt", "missing")], "content", True),
    "built hard link broken": ("kit", lambda d: (os.unlink(d / "opq/hard"),
                                                 shutil.copy(d / "opq/x", d / "opq/hard")),
                               # the daemon's tar walks names in order: x is the link member
                               [("opq/x", "metadata")], "metadata", True),
    "built setuid dropped": ("legacy", lambda d: os.chmod(d / "app/empty", 0o644),
                             [("app/empty", "metadata")], "metadata", True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampered_file_is_named(verify_fixture, tmp_path, case):
    layer, change, want, fault, digest_ok = CASES[case]
    fx = verify_fixture
    root = tampered(fx, tmp_path, lambda r: change(fx.diff(r, layer)))
    report, err, rc = analyze_verify(root)
    assert rc == 1
    assert report["ok"] is False
    chain = fx.chains[layer]
    only_layer_fails(report, chain, "mismatch", fault)
    assert bad_of(report) == {chain: want}
    got = next(lr for lr in report["layers"] if lr["chain_id"] == chain)
    assert (got["computed_diff_id"] == got["diff_id"]) is digest_ok
    assert all(i["config_ok"] and i["layers_ok"] for i in report["images"])


def test_raw_name_in_json(verify_fixture, tmp_path):
    fx = verify_fixture
    root = tampered(fx, tmp_path, lambda r: CASES["raw name changed"][1](fx.diff(r, "app")))
    report, _, _ = analyze_verify(root)
    entry = next(b for lr in report["layers"] for b in lr["bad_files"])
    assert base64.b64decode(entry["path_b64"]) == RAW_NAME_BYTES == b"app/caf\xc3\xa9-\xff.txt"
    assert entry["path"] == RAW_NAME_JSON == "app/caf\xe9-\\xff.txt"


def test_swapped_diff_files(verify_fixture, tmp_path):
    fx = verify_fixture

    def swap(root: Path) -> None:
        a, b = fx.layer_dir(root, "app") / "diff", fx.layer_dir(root, "change") / "diff"
        da, db = a.read_bytes(), b.read_bytes()
        a.write_bytes(db)
        b.write_bytes(da)

    report, err, rc = analyze_verify(tampered(fx, tmp_path, swap))
    assert rc == 1
    got = statuses(report)
    for name in ("app", "change"):
        assert got[fx.chains[name]] == ("mismatch", "metadata")
        layer = next(lr for lr in report["layers"] if lr["chain_id"] == fx.chains[name])
        assert layer["bad_files"] == []            # the files are intact: the record is not
        assert "diff ID want=" in layer["reason"] and "chain ID want=" in layer["reason"]
    others = {k: v for k, v in got.items() if k not in (fx.chains["app"], fx.chains["change"])}
    assert all(v == ("ok", None) for v in others.values())
    for image in report["images"]:
        uses = image["id"] != fx.images["big"]       # every image but big has both layers
        assert image["config_ok"] and image["layers_ok"] is (not uses)
    assert "chain ID mismatch" in err


@pytest.mark.parametrize("damage", ["corrupt", "delete", "truncate", "not json"])
def test_damaged_tar_split_is_unverifiable(verify_fixture, tmp_path, damage):
    fx = verify_fixture

    def hurt(root: Path) -> None:
        path = fx.layer_dir(root, "change") / "tar-split.json.gz"
        data = path.read_bytes()
        if damage == "corrupt":
            _write_byte(path, len(data) // 2)
        elif damage == "delete":
            path.unlink()
        elif damage == "truncate":
            path.write_bytes(data[:len(data) // 2])
        else:
            import gzip
            path.write_bytes(gzip.compress(b'{"type":2,"payload":"AAAA","position":0}\nnot json\n'))

    report, _, rc = analyze_verify(tampered(fx, tmp_path, hurt))
    assert rc == 1
    only_layer_fails(report, fx.chains["change"], "unverifiable", "metadata")
    layer = next(lr for lr in report["layers"] if lr["chain_id"] == fx.chains["change"])
    assert "tar-split.json.gz" in layer["reason"]


def test_missing_layer_directory(verify_fixture, tmp_path):
    fx = verify_fixture
    root = tampered(fx, tmp_path, lambda r: shutil.rmtree(fx.diff(r, "app")))
    report, _, rc = analyze_verify(root)
    assert rc == 1
    only_layer_fails(report, fx.chains["app"], "missing", "content")


def test_tampered_config(verify_fixture, tmp_path):
    fx = verify_fixture
    image = fx.images["kit"]

    def edit(root: Path) -> None:
        path = root / "image/overlay2/imagedb/content/sha256" / image[7:]
        path.write_bytes(path.read_bytes().replace(b'"os":"linux"', b'"os":"Linux"'))

    report, err, rc = analyze_verify(tampered(fx, tmp_path, edit))
    assert rc == 1
    by_id = {i["id"]: i for i in report["images"]}
    assert by_id[image]["config_ok"] is False and by_id[image]["layers_ok"] is True
    assert all(i["config_ok"] for k, i in by_id.items() if k != image)
    assert all(lr["status"] == "ok" for lr in report["layers"])
    assert "config digest mismatch" in err          # the loader skipped it, as dockerd does


def test_two_jobs_same_answer(verify_fixture, tmp_path):
    fx = verify_fixture
    root = tampered(fx, tmp_path, lambda r: _write_byte(fx.diff(r, "app") / "app/big.bin", 5))
    one, _, _ = analyze_verify(root, "-j", "1")
    two, _, _ = analyze_verify(root, "-j", "2")
    del one["analysis"], two["analysis"]           # when each ran
    assert one == two


def _max_rss_kb(root: Path, *args: str) -> int:
    """Peak resident memory of `analyze verify ARGS` (ru_maxrss of that process)."""
    code = ("import resource, sys\nfrom analyzer.cli import run\ntry:\n    run()\nfinally:\n"
            "    print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code, "--data-root", str(root), "verify", "-q",
                           *args], capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stderr.split("MAXRSS")[1])


def test_memory_does_not_grow_with_bytes(verify_fixture):
    small = _max_rss_kb(verify_fixture.root, "verify:kit")
    big = _max_rss_kb(verify_fixture.root, "verify:big")
    # 160 MB of content; hash_fd maps at most a 16 MiB window at a time.
    assert big - small < 40 * 1024, (small, big)
