"""Class 3 of issue 10: device nodes, fifos and sockets where a file is expected.

A character device in place of ``repositories.json`` had 64 MiB read from it, a block
device as a layer file was opened; a fifo could hang the read, a socket gave "No such
device or address". Now nothing under the root but a regular file is ever opened for
reading (``safeopen.py``, ``_csrc/safeopen.c``): each such file is one warning, "not a
regular file", naming it, and the rest of the analysis answers. That the special file
was not even opened is what the kernel says: an inotify watch on its directory sees
every open of it, by any process.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import stat
import struct
from pathlib import Path

import pytest

from . import IMAGEDB, LAYERDB, REPOSITORIES, cache_id, image_id, layer_chain, rows_without

CENTOS_LAYER = "2e37a15d485b4f9f8c209a55665cc5f645b61965011ea0cec1379b2f234a3f03"
NGINX_CONTAINER = "7dc838d5105eca6a6b8f245033e7b58ddb4678b3dbb1707c89d2fc71c1bb782a"
OTHER_CONTAINER = "14b5a9d533814a984be5b9629896631691c05638ba930b03c4e38f425b64af3c"

# What can stand where a file is expected: /dev/zero's and /dev/null's numbers (one
# never ends, one is empty), a fifo (a read would wait for a writer forever), a socket.
KINDS = {
    "zero": stat.S_IFCHR | 0o644, "null": stat.S_IFCHR | 0o644,
    "fifo": stat.S_IFIFO | 0o644, "socket": stat.S_IFSOCK | 0o644,
}
DEVICES = {"zero": os.makedev(1, 5), "null": os.makedev(1, 3)}


def plant(path: Path, kind: str) -> None:
    """Put a special file of this kind where path was (we are root: mknod makes all four)."""
    if path.exists():
        path.unlink()
    os.mknod(path, KINDS[kind], DEVICES.get(kind, 0))


_IN_OPEN = 0x20
_EVENT = struct.Struct("iIII")          # struct inotify_event, before its name


class Opens:
    """The names opened in one directory (by anyone) while watched: inotify's IN_OPEN.
    An O_PATH open, which runs no driver and reads nothing, is not one."""

    def __init__(self, directory: Path):
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        if libc.inotify_add_watch(self.fd, os.fsencode(directory), _IN_OPEN) < 0:
            err = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(err, os.strerror(err), str(directory))

    def names(self) -> set[str]:
        """Every name opened since the watch began; the watch ends."""
        seen: set[str] = set()
        try:
            while True:
                try:
                    buf = os.read(self.fd, 1 << 16)
                except BlockingIOError:
                    return seen
                at = 0
                while at < len(buf):
                    _, _, _, length = _EVENT.unpack_from(buf, at)
                    at += _EVENT.size
                    seen.add(os.fsdecode(buf[at:at + length].rstrip(b"\0")))
                    at += length
        finally:
            os.close(self.fd)


def test_the_watch_sees_an_open(tmp_path):
    """Without this the other tests could not fail: a plain open of a device is seen."""
    plant(tmp_path / "dev", "null")
    opens = Opens(tmp_path)
    os.close(os.open(tmp_path / "dev", os.O_PATH))
    os.stat(tmp_path / "dev")
    assert opens.names() == set()
    opens = Opens(tmp_path)
    os.close(os.open(tmp_path / "dev", os.O_RDONLY | os.O_NONBLOCK))
    assert opens.names() == {"dev"}


def run_unopened(ev, path: Path, *args: str):
    """analyze ARGS on the sealed evidence, asserting the special file at path was never
    opened."""
    opens = Opens(path.parent)
    try:
        got = ev.run(*args)
    finally:
        opened = opens.names()
    assert path.name not in opened, f"{path} was opened by analyze {' '.join(args)}"
    return got


def _image_ids(table: str) -> set[str]:
    return {row.split()[2] for row in table.splitlines()[1:] if row.strip()}


def _verdicts(result) -> tuple[dict, dict]:
    report = json.loads(result.out)
    return ({i["id"]: (i["config_ok"], i["layers_ok"]) for i in report["images"]},
            {x["chain_id"][7:]: x for x in report["layers"]})


@pytest.mark.parametrize("kind", KINDS)
def test_repositories_json(sample_root, damaged, baseline, kind):
    ev = damaged(sample_root)
    target = ev.path / REPOSITORIES
    plant(target, kind)
    ev.seal()
    got = run_unopened(ev, target, "ls", "-a").check(0)
    assert got.warnings() == [f"{REPOSITORIES}: not a regular file"], got.describe()
    # Every image is still there, untagged.
    assert _image_ids(got.out) == _image_ids(baseline(sample_root, "ls", "-a").out)
    assert all(row.startswith("<none>") for row in got.out.splitlines()[1:])


@pytest.mark.parametrize("kind", KINDS)
def test_image_config(sample_root, damaged, baseline, kind):
    ev = damaged(sample_root)
    centos = image_id(sample_root, "centos:latest")[7:]
    target = ev.path / IMAGEDB / "content/sha256" / centos
    plant(target, kind)
    ev.seal()
    named = f"{IMAGEDB}/content/sha256/{centos}"
    got = run_unopened(ev, target, "ls").check(0)
    assert got.warned(named, "not a regular file"), got.describe()
    assert rows_without(got.out, [centos]) == rows_without(baseline(sample_root, "ls").out,
                                                           [centos])
    got = run_unopened(ev, target, "inspect", "redis:alpine").check(0)
    assert got.out == baseline(sample_root, "inspect", "redis:alpine").out


@pytest.mark.parametrize("kind", KINDS)
def test_layer_diff_id_file(sample_root, damaged, baseline, kind):
    """The layer store's ``diff`` file (the diff ID): that layer, and the images above
    it, are skipped; the others answer."""
    ev = damaged(sample_root)
    target = ev.path / LAYERDB / CENTOS_LAYER / "diff"
    plant(target, kind)
    ev.seal()
    named = f"{LAYERDB}/{CENTOS_LAYER}/diff"
    centos = image_id(sample_root, "centos:latest")[7:]
    got = run_unopened(ev, target, "ls").check(0)
    # One warning for the file, with what it costs (not a second for its missing value).
    assert [w for w in got.warnings() if w.startswith(named)] == [
        f"{named}: not a regular file; layer skipped"], got.describe()
    assert rows_without(got.out, [centos]) == rows_without(baseline(sample_root, "ls").out,
                                                           [centos])


@pytest.mark.parametrize("kind", ["zero", "fifo", "socket"])
def test_file_in_a_layer_under_verify(sample_root, damaged, baseline, kind):
    """A file of a layer's tree is compared by its type, never opened: the layer is a
    mismatch that names it, every other verdict stands."""
    ev = damaged(sample_root)
    diff = ev.path / "overlay2" / cache_id(sample_root, CENTOS_LAYER) / "diff"
    target = diff / "usr/lib/centos/etc/f007"
    assert target.is_file()
    plant(target, kind)
    ev.seal()
    got = run_unopened(ev, target, "verify", "--json").check(1)
    images, layers = _verdicts(got)
    want_images, want_layers = _verdicts(baseline(sample_root, "verify", "--json"))
    bad = layers[CENTOS_LAYER]
    assert bad["status"] == "mismatch", got.describe()
    assert [(f["path"], f["reason"]) for f in bad["bad_files"]] == [
        ("usr/lib/centos/etc/f007", "changed")]
    assert "not a regular file" in bad["bad_files"][0]["detail"]
    centos_chain = set(layer_chain(sample_root, "centos:latest"))
    assert {c: x["status"] for c, x in layers.items() if c != CENTOS_LAYER} == {
        c: x["status"] for c, x in want_layers.items() if c != CENTOS_LAYER}
    centos = image_id(sample_root, "centos:latest")
    assert {i: v for i, v in images.items() if i != centos} == {
        i: v for i, v in want_images.items() if i != centos}
    assert CENTOS_LAYER in centos_chain


@pytest.mark.parametrize("kind", KINDS)
def test_tar_split(sample_root, damaged, baseline, kind):
    ev = damaged(sample_root)
    target = ev.path / LAYERDB / CENTOS_LAYER / "tar-split.json.gz"
    plant(target, kind)
    ev.seal()
    named = f"{LAYERDB}/{CENTOS_LAYER}/tar-split.json.gz"
    got = run_unopened(ev, target, "verify", "--json").check(1)
    images, layers = _verdicts(got)
    assert layers[CENTOS_LAYER]["status"] == "unverifiable", got.describe()
    assert named in json.dumps(layers[CENTOS_LAYER]) or got.warned(named, "not a regular file")
    assert "not a regular file" in got.err + json.dumps(layers[CENTOS_LAYER])
    _, want_layers = _verdicts(baseline(sample_root, "verify", "--json"))
    assert {c: x["status"] for c, x in layers.items() if c != CENTOS_LAYER} == {
        c: x["status"] for c, x in want_layers.items() if c != CENTOS_LAYER}
    got = run_unopened(ev, target, "verify", "redis:alpine").check(0)
    assert got.out == baseline(sample_root, "verify", "redis:alpine").out


@pytest.mark.parametrize("kind", KINDS)
def test_container_config(sample_root, damaged, baseline, kind):
    ev = damaged(sample_root)
    target = ev.path / "containers" / OTHER_CONTAINER / "config.v2.json"
    plant(target, kind)
    ev.seal()
    named = f"containers/{OTHER_CONTAINER}/config.v2.json"
    for args in [("ps", "-a"), ("df", "-v")]:
        got = run_unopened(ev, target, *args).check(0)
        assert got.warnings() == [f"{named}: not a regular file"], got.describe()
        assert NGINX_CONTAINER[:12] in got.out and OTHER_CONTAINER[:12] not in got.out
    got = run_unopened(ev, target, "ps", "-a")
    assert rows_without(got.out, [OTHER_CONTAINER]) == rows_without(
        baseline(sample_root, "ps", "-a").out, [OTHER_CONTAINER])


@pytest.mark.parametrize("kind", ["zero", "fifo"])
@pytest.mark.parametrize("name", ["mount-id", "parent"])
def test_container_mount_file(sample_root, damaged, baseline, kind, name):
    """A file of the layer store's mount record: as moby's loadMount, the mount is not
    loaded (its size is unknown), one warning says so; the containers are all listed."""
    ev = damaged(sample_root)
    target = ev.path / "image/overlay2/layerdb/mounts" / OTHER_CONTAINER / name
    plant(target, kind)
    ev.seal()
    named = f"image/overlay2/layerdb/mounts/{OTHER_CONTAINER}/{name}"
    got = run_unopened(ev, target, "ps", "-a").check(0)
    assert got.warnings() == [f"{named}: not a regular file; mount skipped"], got.describe()
    assert got.out == baseline(sample_root, "ps", "-a").out


@pytest.mark.parametrize("kind", ["zero", "fifo", "socket"])
def test_container_log(sample_root, damaged, baseline, kind):
    """A container's log is measured, never read: a special file there changes nothing."""
    ev = damaged(sample_root)
    target = ev.path / "containers" / NGINX_CONTAINER / f"{NGINX_CONTAINER}-json.log"
    plant(target, kind)
    ev.seal()
    for args in [("df", "-v"), ("ps", "-a", "-s")]:
        got = run_unopened(ev, target, *args).check(0)
        assert got.out == baseline(sample_root, *args).out, got.describe()


# -- the opening backends themselves ------------------------------------------------------
@pytest.fixture
def specials(tmp_path) -> Path:
    top = tmp_path / "top"
    (top / "d").mkdir(parents=True)
    (top / "d" / "file").write_bytes(b"content\n")
    for kind in KINDS:
        plant(top / "d" / kind, kind)
    return top


def test_read_files_opens_nothing_special(backend, specials):
    fd = os.open(specials, os.O_RDONLY | os.O_DIRECTORY)
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        paths = [b"d/file", *(f"d/{k}".encode() for k in KINDS), b"d"]
        opens = Opens(specials / "d")
        got = backend.read_files(fd, paths, 1 << 16, flags)
        assert opens.names() & set(KINDS) == set()
    finally:
        os.close(fd)
    assert got == [b"content\n", *[errno.EINVAL] * len(KINDS), errno.EISDIR]


def test_hash_file_at_opens_nothing_special(backend, specials):
    fd = os.open(specials, os.O_RDONLY | os.O_DIRECTORY)
    try:
        opens = Opens(specials / "d")
        for kind in KINDS:
            with pytest.raises(OSError) as caught:
                backend.hash_file_at(fd, f"d/{kind}".encode(), backend.Sha256())
            assert caught.value.errno == errno.EINVAL, kind
        with pytest.raises(OSError) as caught:
            backend.hash_file_at(fd, b"d", None)
        assert caught.value.errno == errno.EISDIR
        assert backend.hash_file_at(fd, b"d/file", None)[1] == 8
        assert opens.names() == {"file"}
    finally:
        os.close(fd)


def test_a_special_file_behind_a_link_on_the_way_is_the_link(backend, specials):
    """lstat follows links before the last name; what it saw through one is not believed:
    the answer is the link's (ELOOP), as for a regular file behind it."""
    (specials / "via").symlink_to("d")
    fd = os.open(specials, os.O_RDONLY | os.O_DIRECTORY)
    try:
        got = backend.read_files(fd, [b"via/zero", b"via/file"], 1 << 16,
                                 os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    finally:
        os.close(fd)
    assert got == [errno.ELOOP, errno.ELOOP]
