"""The verify policy (engines/verify.py) on layers held in memory.

A layer here is a tar, its tar-split (cut as tar-split's disassembler cuts it, see
test_tarsplit.disassemble) and the directory Docker's overlay2 extraction makes of it,
emulated after moby pkg/archive Unpack/createTarFile and overlayWhiteoutConverter. The
same judgments on directories the real dockerd made are in test_oracle_verify.py.
"""
from __future__ import annotations

import ast
import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from analyzer.digest import crc64_iso
from analyzer.engines import verify as V
from analyzer.errors import EvidenceError
from analyzer.ids import ChainID, DiffID, ImageID, chain_id_from_parent, digest_of
from analyzer.model import Image, Layer, Store
from analyzer.pathindex import PathIndex
from analyzer.sources.layerfiles import DiskIndex
from analyzer.sources.tarsplit import HeaderReader, clean_name, iter_runs
from tests.test_tarsplit import disassemble, pack

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Entry:
    mode: int
    uid: int = 0
    gid: int = 0
    size: int = 0
    dev: int = 1
    ino: int = 0
    nlink: int = 1
    rdev: int = 0


@dataclass
class Disk:
    entries: dict[str, Entry] = field(default_factory=dict)
    content: dict[int, bytes] = field(default_factory=dict)       # by inode
    links: dict[str, str] = field(default_factory=dict)
    xattrs: dict[int, dict[str, bytes]] = field(default_factory=dict)
    next_ino: int = 2

    def add(self, path: str, entry: Entry, data: bytes | None = None) -> Entry:
        entry.ino = self.next_ino
        self.next_ino += 1
        if data is not None:
            self.content[entry.ino] = data
            entry.size = len(data)
        self.entries[path] = entry
        return entry


def extract(tar: bytes, aufs: bool = False) -> Disk:
    """What overlay2's (or aufs's) ApplyDiff leaves in the layer's diff directory."""
    disk = Disk()
    disk.add("", Entry(stat.S_IFDIR | 0o755))
    with tarfile.open(fileobj=io.BytesIO(tar), encoding="utf-8", errors="surrogateescape") as tf:
        for m in tf.getmembers():
            path = clean_name(m.name).lstrip("/")
            if path in (".", ""):
                continue                                   # Unpack skips "."
            parent = path.rpartition("/")[0]
            while parent and parent not in disk.entries:   # implied parents
                disk.add(parent, Entry(stat.S_IFDIR | 0o755))
                parent = parent.rpartition("/")[0]
            base = path.rpartition("/")[2]
            if base == ".wh..wh..opq" and not aufs:        # aufs: whiteouts stay files
                disk.xattrs.setdefault(disk.entries[path.rpartition("/")[0] or ""].ino,
                                       {})["trusted.overlay.opaque"] = b"y"
                continue
            if base.startswith(".wh.") and not aufs:
                target = path[:-len(base)] + base[4:]
                disk.add(target, Entry(stat.S_IFCHR, m.uid, m.gid))
                continue
            xattrs = {k[13:]: v.encode("utf-8", "surrogateescape")
                      for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}
            if m.islnk():
                target = disk.entries[clean_name(m.linkname)]
                target.nlink += 1
                target.mode = stat.S_IFMT(target.mode) | m.mode & 0o7777
                target.uid, target.gid = m.uid, m.gid
                disk.entries[path] = target
                continue
            kind = {tarfile.DIRTYPE: stat.S_IFDIR, tarfile.SYMTYPE: stat.S_IFLNK,
                    tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK,
                    tarfile.FIFOTYPE: stat.S_IFIFO}.get(m.type, stat.S_IFREG)
            mode = kind | (0o777 if kind == stat.S_IFLNK else m.mode & 0o7777)
            if kind == stat.S_IFDIR and path in disk.entries:
                entry = disk.entries[path]
                entry.mode, entry.uid, entry.gid = mode, m.uid, m.gid
            else:
                data = tf.extractfile(m).read() if m.isreg() else None
                entry = disk.add(path, Entry(mode, m.uid, m.gid), data)
                if kind in (stat.S_IFCHR, stat.S_IFBLK):
                    entry.rdev = (m.devmajor << 8) | m.devminor
            if kind == stat.S_IFLNK:
                disk.links[path] = m.linkname
            if xattrs:
                disk.xattrs[entry.ino] = xattrs
    return disk


class FakeLayerFiles:
    """The LayerFiles protocol over a tar-split and a Disk."""
    unsupported = None
    root_ids = (0, 0)
    damage = None
    xattrs_known = True
    whiteouts_as_files = False
    whiteouts_remove = False
    parent_copy = None
    tar_split_path = "image/overlay2/layerdb/sha256/x/tar-split.json.gz"
    rebuilds_stream = True

    def __init__(self, tar_split: bytes | None, disk: Disk | None):
        self.gz, self.disk = tar_split, disk
        self.present = disk is not None

    def tar_split(self, sha=None):
        if self.gz is None:
            return None
        return self._members()

    def _members(self):
        reader = HeaderReader()
        for run, entry in iter_runs([self.gz], self.tar_split_path):
            header = None
            if entry is not None:
                try:
                    header = reader.read(run)
                except ValueError as exc:
                    header = str(exc)
            yield run, entry, header

    def index(self):
        entries = dict(self.disk.entries)
        index = PathIndex(os.urandom(16))
        for path, e in entries.items():
            index.add(os.fsencode(path), (e.mode, e.uid, e.gid, e.size, e.dev, e.ino, e.nlink,
                                          e.rdev))
        return DiskIndex(index, lambda: ((path, e.mode) for path, e in entries.items()))

    def readlink(self, path):
        return self.disk.links.get(path)

    def xattrs(self, path):
        return dict(self.disk.xattrs.get(self.disk.entries[path].ino, {}))

    def hash_file(self, path, sha):
        entry = self.disk.entries.get(path)
        if entry is None or not stat.S_ISREG(entry.mode):
            raise EvidenceError(path, "not a regular file")
        data = self.disk.content.get(entry.ino, b"")
        sha.update(data)
        return crc64_iso(data), len(data), self.xattrs(path)

    def close(self):
        pass


def member(tf: tarfile.TarFile, name: str, data: bytes | None = None, **kw) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = 1_600_000_000
    for k, v in kw.items():
        setattr(info, k, v)
    if data is not None:
        info.size = len(data)
    tf.addfile(info, io.BytesIO(data) if data is not None else None)


def sample_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as tf:
        member(tf, ".", type=tarfile.DIRTYPE, mode=0o700)
        member(tf, "etc", type=tarfile.DIRTYPE, mode=0o755)
        member(tf, "etc/passwd", b"root:x:0:0\n", mode=0o644)
        member(tf, "etc/empty", b"", mode=0o600)
        member(tf, "etc/shadow", b"secret", mode=0o640, uid=0, gid=42)
        member(tf, "usr/bin/su", b"x" * 3000, mode=0o4755)          # implied parents
        member(tf, "etc/link", type=tarfile.SYMTYPE, linkname="passwd", mode=0o777)
        # A hard link whose header carries another mode: extraction chmods through it.
        member(tf, "etc/hard", type=tarfile.LNKTYPE, linkname="etc/shadow", mode=0o600)
        member(tf, "dev/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
        member(tf, "run/fifo", type=tarfile.FIFOTYPE, mode=0o644)
        member(tf, "x", b"attr", mode=0o644,
               pax_headers={"SCHILY.xattr.user.a": "1", "SCHILY.xattr.security.capability": "c"})
        member(tf, "old/.wh.gone", b"", mode=0o600, uid=7, gid=8)
        member(tf, "opq", type=tarfile.DIRTYPE, mode=0o755)
        member(tf, "opq/.wh..wh..opq", b"", mode=0o644)
        member(tf, "opq/new", b"new\n", mode=0o644)
        member(tf, "caf\xe9-\udcff", b"raw\n", mode=0o644)
    return buf.getvalue()


TAR = sample_tar()
DIFF_ID = DiffID("sha256:" + hashlib.sha256(TAR).hexdigest())
LAYER = Layer(chain_id=ChainID(DIFF_ID), diff_id=DIFF_ID, parent=None, cache_id="c" * 64,
              diff_size=4000, source="image/overlay2/layerdb/sha256/" + DIFF_ID[7:])


def check(change=None, tar: bytes = TAR, layer: Layer = LAYER) -> V.LayerResult:
    disk = extract(tar)
    if change:
        change(disk)
    return V.verify_layer(layer, FakeLayerFiles(pack(disassemble(tar)), disk))


def bad(result: V.LayerResult) -> list[tuple[str, str]]:
    return [(b.path, b.reason) for b in result.bad_files]


def test_intact_layer_is_ok():
    result = check()
    assert result.status == "ok" and result.fault is None and result.reason is None
    assert result.computed_diff_id == DIFF_ID
    assert result.bytes_hashed == len(TAR)
    assert result.files_checked == 16


def _set(path, **kw):
    def change(disk):
        disk.entries[path] = replace(disk.entries[path], **kw)
    return change


def _content(path, data):
    def change(disk):
        entry = disk.entries[path]
        disk.content[entry.ino] = data
        entry.size = len(data)
    return change


def _xattr(path, name, value):
    def change(disk):
        xattrs = disk.xattrs.setdefault(disk.entries[path].ino, {})
        if value is None:
            xattrs.pop(name, None)
        else:
            xattrs[name] = value
    return change


def _delete(path):
    def change(disk):
        del disk.entries[path]
    return change


def _add(path, mode=stat.S_IFREG | 0o644):
    def change(disk):
        disk.add(path, Entry(mode), b"" if stat.S_ISREG(mode) else None)
    return change


def _relink(path, target):
    def change(disk):
        disk.links[path] = target
    return change


CASES = [
    # change, bad files, fault, digest still matches
    (_content("etc/passwd", b"root:x:0:1\n"), [("etc/passwd", "changed")], "content", False),
    (_content("usr/bin/su", b"x" * 2000), [("usr/bin/su", "truncated")], "content", False),
    (_content("usr/bin/su", b"x" * 4000), [("usr/bin/su", "changed")], "content", False),
    (_content("etc/empty", b"grew"), [("etc/empty", "changed")], "content", True),
    (_delete("etc/passwd"), [("etc/passwd", "missing")], "content", False),
    (_delete("run/fifo"), [("run/fifo", "missing")], "content", True),
    (_add("etc/new"), [("etc/new", "added")], "content", True),
    (_add("newdir", stat.S_IFDIR | 0o755), [("newdir", "added")], "content", True),
    (_add("old/.wh.gone"), [("old/.wh.gone", "added")], "content", True),
    (_set("usr/bin/su", mode=stat.S_IFREG | 0o755), [("usr/bin/su", "metadata")], "metadata", True),
    (_set("etc/passwd", mode=stat.S_IFREG | 0o4644), [("etc/passwd", "metadata")], "metadata", True),
    (_set("etc", uid=5), [("etc", "metadata")], "metadata", True),
    (_set("dev/null", rdev=(1 << 8) | 5), [("dev/null", "metadata")], "metadata", True),
    (_set("run/fifo", mode=stat.S_IFREG | 0o644), [("run/fifo", "metadata")], "metadata", True),
    (_relink("etc/link", "/etc/passwd"), [("etc/link", "metadata")], "metadata", True),
    (_xattr("x", "user.a", b"2"), [("x", "metadata")], "metadata", True),
    (_xattr("x", "security.capability", None), [("x", "metadata")], "metadata", True),
    (_xattr("etc/passwd", "user.new", b"1"), [("etc/passwd", "metadata")], "metadata", True),
    (_set("old/gone", rdev=5), [("old/gone", "metadata")], "metadata", True),
    (_set("old/gone", uid=0), [("old/gone", "metadata")], "metadata", True),
    (_delete("old/gone"), [("old/gone", "missing")], "content", True),
    (_xattr("opq", "trusted.overlay.opaque", None), [("opq", "metadata")], "metadata", True),
    (_xattr("etc", "trusted.overlay.opaque", b"y"), [("etc", "metadata")], "metadata", True),
    (_set("etc/shadow", mode=stat.S_IFREG | 0o640), [("etc/shadow", "metadata")], "metadata", True),
    (_content("caf\xe9-\udcff", b"RAW\n"), [("caf\xe9-\udcff", "changed")], "content", False),
]


@pytest.mark.parametrize("change,want,fault,digest_ok", CASES)
def test_each_change_is_named(change, want, fault, digest_ok):
    result = check(change)
    assert result.status == "mismatch"
    assert bad(result) == want
    assert result.fault == fault
    assert (result.computed_diff_id == DIFF_ID) is digest_ok


def test_what_extraction_adds_is_not_flagged():
    def host(disk):
        # SELinux labels every new file; overlayfs marks dirs it copied up.
        for entry in disk.entries.values():
            disk.xattrs.setdefault(entry.ino, {})["security.selinux"] = b"system_u:object_r"
        disk.xattrs[disk.entries["etc"].ino]["trusted.overlay.origin"] = b"\x00\xfb"
        disk.xattrs[disk.entries["opq"].ino]["trusted.overlay.impure"] = b"y"
    assert check(host).status == "ok"


def test_root_entry_is_not_checked():
    # moby Unpack: `if fi.IsDir() && hdr.Name == "." { continue }`.
    assert check(_set("", mode=stat.S_IFDIR | 0o755, uid=3)).status == "ok"


def test_aufs_keeps_whiteouts_as_files():
    """aufs: the tar's .wh. members are files on disk, and aufs's own .wh..wh.* at the
    layer's top are not the layer's; a whiteout file gone or an overlay-style whiteout
    in its place is named."""
    def run(*changes):
        disk = extract(TAR, aufs=True)
        for change in changes:
            change(disk)
        files = FakeLayerFiles(pack(disassemble(TAR)), disk)
        files.whiteouts_as_files = True
        return V.verify_layer(LAYER, files)

    meta = [_add(".wh..wh.aufs"), _add(".wh..wh.plnk", stat.S_IFDIR | 0o700),
            _add(".wh..wh.orph", stat.S_IFDIR | 0o700)]
    assert run(*meta).status == "ok"
    assert bad(run(_delete("old/.wh.gone"))) == [("old/.wh.gone", "missing")]
    assert bad(run(_add("opq/.wh..wh.aufs"))) == [("opq/.wh..wh.aufs", "added")]
    assert bad(run(_add("old/gone", stat.S_IFCHR))) == [("old/gone", "added")]


def test_hard_link_broken():
    def unlink(disk):
        shadow = disk.entries["etc/shadow"]
        shadow.nlink = 1
        disk.entries["etc/hard"] = disk.add("etc/hard", Entry(shadow.mode, 0, 42), b"secret")
    result = check(unlink)
    assert bad(result) == [("etc/hard", "metadata")]
    assert "hard link" in result.bad_files[0].detail


def test_content_outranks_metadata_on_one_path():
    def both(disk):
        _content("etc/passwd", b"other bytes\n")(disk)
        _set("etc/passwd", mode=stat.S_IFREG | 0o777)(disk)
    assert bad(check(both)) == [("etc/passwd", "changed")]


def test_a_directory_where_an_empty_file_was():
    result = check(_set("etc/empty", mode=stat.S_IFDIR | 0o600))
    assert bad(result) == [("etc/empty", "metadata")]
    assert "type want=regular file got=directory" in result.bad_files[0].detail


def test_a_directory_where_a_file_was():
    def swap(disk):
        disk.entries["etc/passwd"] = Entry(stat.S_IFDIR | 0o755, ino=999)
    result = check(swap)
    assert bad(result) == [("etc/passwd", "changed")]
    assert "directory" in result.bad_files[0].detail


def test_tar_split_and_layer_problems():
    gz = pack(disassemble(TAR))
    missing_ts = V.verify_layer(LAYER, FakeLayerFiles(None, extract(TAR)))
    assert (missing_ts.status, missing_ts.fault) == ("unverifiable", "metadata")
    assert "tar-split.json.gz is missing" in missing_ts.reason
    broken = V.verify_layer(LAYER, FakeLayerFiles(gz[:len(gz) // 2], extract(TAR)))
    assert broken.status == "unverifiable" and "gzip" in broken.reason
    gone = V.verify_layer(LAYER, FakeLayerFiles(gz, None))
    assert (gone.status, gone.fault) == ("missing", "content")
    other = FakeLayerFiles(gz, extract(TAR))
    other.unsupported = "devicemapper keeps layers in block devices"
    assert V.verify_layer(LAYER, other).status == "unverifiable"


def test_wrong_diff_file_is_a_metadata_fault():
    wrong = replace(LAYER, diff_id=DiffID("sha256:" + "0" * 64))
    result = check(layer=wrong)
    assert (result.status, result.fault) == ("mismatch", "metadata")
    assert result.bad_files == ()
    assert "diff ID want=" in result.reason and "chain ID want=" in result.reason


def test_segment_changed_in_tar_split_is_a_digest_mismatch():
    entries = disassemble(TAR)
    seg = next(e for e in entries if e["type"] == 2 and e["payload"])
    import base64
    raw = bytearray(base64.b64decode(seg["payload"]))
    raw[-1] ^= 1                                      # padding byte of the last header block
    seg["payload"] = base64.b64encode(bytes(raw)).decode()
    result = V.verify_layer(LAYER, FakeLayerFiles(pack(entries), extract(TAR)))
    assert (result.status, result.fault) == ("mismatch", "metadata")
    assert result.computed_diff_id != DIFF_ID


def test_member_escaping_the_layer():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        member(tf, "a", b"inside")
    tar = buf.getvalue()
    entries = disassemble(tar)
    entries[1]["name"] = "../../etc/passwd"
    diff = DiffID(digest_of(tar))
    layer = replace(LAYER, chain_id=ChainID(diff), diff_id=diff)
    result = V.verify_layer(layer, FakeLayerFiles(pack(entries), extract(tar)))
    assert ("/..", "missing") in bad(result)


# -- images and the whole store -----------------------------------------------------------------

def _config(diff_ids) -> bytes:
    return ('{"rootfs":{"type":"layers","diff_ids":[%s]}}'
            % ",".join(f'"{d}"' for d in diff_ids)).encode()


def _store(layers: list[Layer], images: dict[ImageID, bytes]) -> Store:
    imgs = {}
    for image_id, config in images.items():
        import orjson
        diff_ids = tuple(orjson.loads(config)["rootfs"]["diff_ids"])
        top = None
        for d in diff_ids:
            top = chain_id_from_parent(top, d)
        imgs[image_id] = Image(image_id, orjson.loads(config), diff_ids, top, None, None, 0,
                               None, "imagedb")
    return Store(driver="overlay2", images=imgs, layers={lr.chain_id: lr for lr in layers},
                 references=())


def test_verify_image():
    config = _config([DIFF_ID])
    image_id = ImageID(digest_of(config))
    store = _store([LAYER], {image_id: config})
    assert V.verify_image(image_id, config, store).ok
    bad_config = V.verify_image(image_id, config + b" ", store)
    assert not bad_config.config_ok and bad_config.layers_ok
    assert "config digest want=" in bad_config.problems[0]
    other = DiffID("sha256:" + "1" * 64)
    missing = V.verify_image(image_id, _config([DIFF_ID, other]), store)
    assert not missing.layers_ok and "not in the layer store" in missing.problems[-1]
    assert not V.verify_image(image_id, b"{not json", store).layers_ok
    assert V.verify_image(image_id, None, store).problems == ("config file is missing",)
    # A layer store entry whose diff file names another diff ID.
    swapped = _store([replace(LAYER, diff_id=other)], {image_id: config})
    assert "diff ID want=" in V.verify_image(image_id, config, swapped).problems[0]


class FakeStoreFiles:
    def __init__(self, configs: dict[ImageID, bytes], layers: dict[ChainID, FakeLayerFiles]):
        self.configs, self.layers = configs, layers

    def image_ids(self):
        return sorted(self.configs)

    def image_config(self, image_id):
        return self.configs.get(image_id)

    def compressed_digests(self, diff_id):
        return ("sha256:" + "a" * 64,) if diff_id == DIFF_ID else ()

    def layer(self, layer):
        return self.layers[layer.chain_id]


def _two_layer_store():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        member(tf, "second", b"2" * 5000)
    tar2 = buf.getvalue()
    diff2 = DiffID(digest_of(tar2))
    chain2 = chain_id_from_parent(LAYER.chain_id, diff2)
    layer2 = Layer(chain2, diff2, LAYER.chain_id, "d" * 64, 5000, "layerdb/" + chain2[7:])
    config = _config([DIFF_ID, diff2])
    image_id = ImageID(digest_of(config))
    # An image the loader skipped (its config no longer matches its name).
    skipped = ImageID("sha256:" + "e" * 64)
    store = _store([LAYER, layer2], {image_id: config})
    files = {LAYER.chain_id: (pack(disassemble(TAR)), TAR), chain2: (pack(disassemble(tar2)), tar2)}
    return store, {image_id: config, skipped: _config([DIFF_ID])}, files, image_id, skipped


def test_verify_store_all_and_named():
    store, configs, files, image_id, skipped = _two_layer_store()

    def store_files():
        return FakeStoreFiles(configs, {c: FakeLayerFiles(gz, extract(t)) for c, (gz, t) in files.items()})

    seen = []
    report = V.verify_store(store_files(), store, jobs=2, progress=seen.append)
    assert [i.id for i in report.images] == sorted([image_id, skipped])
    by_id = {i.id: i for i in report.images}
    assert by_id[image_id].ok
    assert not by_id[skipped].config_ok and by_id[skipped].layers_ok
    assert not report.ok                              # the skipped image's config
    assert [lr.chain_id for lr in report.layers] == [LAYER.chain_id, store.layers[
        next(c for c in store.layers if c != LAYER.chain_id)].chain_id]
    assert all(lr.ok for lr in report.layers)
    assert sum(seen) == 3000 + 11 + 6 + 4 + 4 + 4 + 5000   # content bytes, not segments
    assert report.layers[0].compressed_digests == ("sha256:" + "a" * 64,)

    named = V.verify_store(store_files(), store, [image_id], jobs=1)
    assert named.ok and [i.id for i in named.images] == [image_id]
    assert V.verify_store(store_files(), store, jobs=1) == report


def test_engine_and_render_do_no_io():
    # STYLE: engines and render receive file access; they never open anything themselves.
    for rel in ("analyzer/engines/verify.py", "analyzer/render/verify.py"):
        tree = ast.parse((REPO / rel).read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("os", "io", "pathlib") or "sources" in n
                               for n in names), (rel, names)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "open", rel
