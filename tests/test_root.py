"""The evidence opener: read-only, nothing outside the root, the same answers from a tar."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile

import pytest
import zstandard

from analyzer.errors import EvidenceError, UnsafePathError
from analyzer.sources.evidence import ArchiveRoot, DirectoryRoot, directory, open_root

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "examples", "sample-root.tar.gz")


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f").write_bytes(b"hello")
    (root / "a" / "big").write_bytes(b"x" * 100)
    (tmp_path / "outside").write_bytes(b"secret")
    os.symlink("../../outside", root / "a" / "escape")
    os.symlink("b", root / "a" / "inner")
    os.link(root / "a" / "b" / "f", root / "a" / "hard")
    return root


def test_directory_reads_and_refuses_links(tree):
    r = DirectoryRoot(str(tree))
    assert r.read("a/b/f") == b"hello"
    assert r.read("a/b/missing") is None
    assert r.read("nope/f") is None
    with pytest.raises(UnsafePathError):
        r.read("a/escape")
    with pytest.raises(UnsafePathError):
        r.read("a/inner/f")                  # a link inside the root is not followed either
    with pytest.raises(UnsafePathError):
        r.read("a/../../outside")
    with pytest.raises(EvidenceError):
        r.read("a/big", limit=10)
    assert r.readlink("a/escape") == "../../outside"


def test_read_files_reports_each_path(tree):
    r = DirectoryRoot(str(tree))
    got = r.read_files(["a/b/f", "a/missing", "a/escape", "a/inner/f", "../outside", "a/big"],
                       limit=50)
    assert got[0] == b"hello" and got[1] is None
    assert all(isinstance(g, UnsafePathError) for g in got[2:5])
    assert isinstance(got[5], EvidenceError)


def test_walk_does_not_follow_links_and_sees_hard_links(tree):
    r = DirectoryRoot(str(tree))
    paths = {p: st for p, st in r.walk("a")}
    assert "a/escape" in paths and paths["a/escape"].is_link
    assert not any(p.startswith("a/inner/") for p in paths)
    assert paths["a/hard"].ino == paths["a/b/f"].ino and paths["a/hard"].nlink == 2


def _tar_of(tree, compress: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.add(str(tree), arcname=".")
    data = buf.getvalue()
    if compress == "gz":
        import gzip
        return gzip.compress(data)
    if compress == "zst":
        return zstandard.ZstdCompressor().compress(data)
    return data


@pytest.mark.parametrize("compress", ["", "gz", "zst"])
def test_archive_answers_as_the_directory(tree, tmp_path, compress):
    path = tmp_path / f"root.tar.{compress or 'plain'}"
    path.write_bytes(_tar_of(tree, compress))
    r = open_root(str(path))
    assert isinstance(r, ArchiveRoot) and r.usage_is_estimate
    assert r.read("a/b/f") == b"hello"
    assert r.read("a/missing") is None
    with pytest.raises(UnsafePathError):
        r.read("a/escape")
    assert sorted(r.listdir("a")) == sorted(os.listdir(tree / "a"))
    st = dict(r.walk("a"))
    assert st["a/hard"].ino == st["a/b/f"].ino and st["a/b/f"].nlink == 2


def test_archive_lists_a_directory_in_the_archive_order(tmp_path):
    # Whatever is listed from an archive (and the warnings given in that order) is the
    # same from one run to the next: a set's order changes with the string hashing.
    names = [f"n{i * 7919 % 40:02d}" for i in range(40)]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name in names:
            tf.addfile(tarfile.TarInfo(f"d/{name}"), io.BytesIO(b""))
    (tmp_path / "root.tar").write_bytes(buf.getvalue())
    assert open_root(str(tmp_path / "root.tar")).listdir("d") == names


def _signature(root: str) -> dict:
    """Everything a write would change: metadata (atime included) and contents.

    A symbolic link's atime is left out: readlink(2), which verify needs to compare
    a link's target, counts as an access to the kernel (mount evidence noatime).
    """
    sig = {}

    def walk(dirpath: str) -> None:
        # O_NOATIME: the signature itself must not touch what it measures.
        fd = os.open(dirpath, os.O_RDONLY | os.O_DIRECTORY | os.O_NOATIME)
        try:
            entries = list(os.scandir(fd))
        finally:
            os.close(fd)
        for entry in entries:
            p = os.path.join(dirpath, entry.name)
            st = os.lstat(p)
            atime = None if entry.is_symlink() else st.st_atime_ns
            sig[p] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, atime, st.st_nlink)
            if entry.is_dir(follow_symlinks=False):
                walk(p)

    walk(root)
    return sig


def test_commands_never_write_to_the_evidence(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(SAMPLE) as tf:
        tf.extractall(root, filter="fully_trusted")
    # Accesses show under relatime only while atime is older than mtime: make it so.
    for p in _signature(str(root)):
        st = os.lstat(p)
        os.utime(p, ns=(st.st_mtime_ns - 10**9, st.st_mtime_ns), follow_symlinks=False)
    before = _signature(str(root))
    for args in (["ls", "-a"], ["ps", "-a"], ["df", "-v"], ["history", "centos"],
                 ["inspect", "centos"], ["rm", "-f", "centos", "redis:alpine"],
                 ["reclaim", "--json", "nginx"], ["prune", "-a", "--json"], ["verify"]):
        subprocess.run([sys.executable, "-m", "analyzer", "--data-root", str(root), *args],
                       cwd=REPO, capture_output=True, check=False)
    assert _signature(str(root)) == before


@pytest.fixture(params=["native", "portable"])
def hashing_root(request, tree, monkeypatch):
    """DirectoryRoot.hash_file by one native call (openat2), and by the Python path."""
    if request.param == "native":
        assert directory._hash_file_at is not None      # CI builds the module; openat2 is here
    else:
        monkeypatch.setattr(directory, "_hash_file_at", None)
    return DirectoryRoot(str(tree))


def test_hash_file_hashes_and_refuses_what_is_not_a_file(hashing_root, tree):
    import hashlib

    from analyzer.digest import Sha256, crc64_iso
    os.setxattr(tree / "a" / "big", "user.note", b"kept")
    os.mkfifo(tree / "a" / "fifo")
    sha = Sha256()
    assert hashing_root.hash_file("a/b/f", sha) == (crc64_iso(b"hello"), 5, {})
    assert sha.digest() == hashlib.sha256(b"hello").digest()
    assert hashing_root.hash_file("a/big", Sha256()) == (crc64_iso(b"x" * 100), 100,
                                                          {"user.note": b"kept"})
    # Never followed; the native call also says why (the Python path may say "no such file").
    native = directory._hash_file_at is not None
    for unsafe in ("a/escape", "a/inner/f", "a/../../outside"):
        with pytest.raises(UnsafePathError if native else EvidenceError):
            hashing_root.hash_file(unsafe, Sha256())
    for bad in ("a/b", "a/fifo", "a/missing"):        # a fifo must not block the open
        with pytest.raises(EvidenceError):
            hashing_root.hash_file(bad, Sha256())


def test_every_backend_is_the_whole_interface(tree, tmp_path):
    """Both backends and their subroots are EvidenceRoots (instantiation checks that no
    abstract method is left), and say what they can do by capability, not by class."""
    from analyzer.sources.evidence import EvidenceRoot
    path = tmp_path / "root.tar"
    path.write_bytes(_tar_of(tree, ""))
    with DirectoryRoot(str(tree)) as d:
        a = open_root(str(path))
        for root in (d, d.subroot("a"), a, a.subroot("a")):
            assert isinstance(root, EvidenceRoot)
        assert d.has_fd and d.subroot("a").has_fd and d.has_xattrs
        assert not a.has_fd and not a.subroot("a").has_fd and not a.has_xattrs
        with pytest.raises(EvidenceError, match="no file descriptor"):
            a.open_fd("a/b/f")
        with pytest.raises(EvidenceError):
            a.fileno()


def test_archive_subroot_answers_as_the_directory_subroot(tree, tmp_path):
    path = tmp_path / "root.tar"
    path.write_bytes(_tar_of(tree, ""))
    with DirectoryRoot(str(tree)) as d:
        dsub, asub = d.subroot("a"), open_root(str(path)).subroot("a")
        assert d.subroot("a/missing") is None and open_root(str(path)).subroot("a/big") is None
        assert asub.path == f"{path}/a" and dsub.path == f"{tree}/a"
        assert sorted(p for p, _ in asub.walk("")) == sorted(p for p, _ in dsub.walk(""))
        assert asub.read("b/f") == dsub.read("b/f") == b"hello"
        assert asub.readlink("escape") == dsub.readlink("escape") == "../../outside"
        assert sorted(asub.listdir("b")) == sorted(dsub.listdir("b")) == ["f"]
        with pytest.raises(UnsafePathError):
            asub.read("../big")
        dsub.close()


def test_directory_cache_keeps_the_directories_in_use_once_full(tmp_path, monkeypatch):
    """Past the cache's bound, the newest directories stay cached and the oldest leave
    (closed, not leaked): a layer's files come directory by directory, and each file of
    a big layer must not open its whole path again, name by name (issue 13: 50,000
    files in 11,618 directories opened 366,000 directories)."""
    from analyzer.safeopen import Opener
    monkeypatch.setattr(DirectoryRoot, "MAX_CACHED_DIRS", 4)
    dirs = [f"top/mid/d{i}/leaf" for i in range(12)]
    for d in dirs:
        (tmp_path / d).mkdir(parents=True)
        for name in "xyz":
            (tmp_path / d / name).write_bytes(name.encode())
    opened: list[str] = []

    class Counting(Opener):
        def open(self, dir_fd, path, flags=0, beneath=False):
            opened.append(path)
            return super().open(dir_fd, path, flags, beneath)

    fds_before = set(os.listdir("/proc/self/fd"))
    root = DirectoryRoot(str(tmp_path), opener=Counting())
    for _ in range(2):              # again: what left the cache is opened again, once
        for d in dirs:
            for name in "xyz":
                fd = root.open_fd(f"{d}/{name}")
                assert os.read(fd, 2) == name.encode()
                os.close(fd)
    directories = [p for p in opened if p not in "xyz"]
    # A pass opens each dN and its leaf once, and top and mid again each time the
    # cache (three slots beside the root) has pushed them out: at most once a file's
    # directory, never once a file (a cache that stops taking opens 141).
    assert len(directories) <= 2 * (2 * len(dirs) + len(dirs))
    assert opened.count("leaf") == 2 * len(dirs)
    assert root.read("top/mid/d0/leaf/x") == b"x"       # the root's own fd never leaves
    root.close()
    assert set(os.listdir("/proc/self/fd")) == fds_before
