"""PathIndex and walk_index: the native index (_csrc/pathindex.c) against its twin.

The twin (analyzer/_pathindex_py.py) is the spec. Every behaviour test runs on both
backends, the walk tests also on the native walk forced to open one name at a time (as on
kernels without openat2); randomized sequences of adds and expects must leave both in the
same state. Only the native module's own promises (memory per entry, the busy flag, no
pickling) are tested on it alone.
"""
from __future__ import annotations

import errno
import os
import pickle
import resource
import stat
import subprocess
import threading
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import _fastdigest, _pathindex_py, native, pathindex

KEY = bytes(range(16))
U32 = 2**32 - 1
U64 = 2**64 - 1
STATS = (0o100644, 1000, 1000, 4096, 2049, 12, 1, 0)
HYPOTHESIS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture],
                      deadline=None, max_examples=300)
# Walks run on the shared ``backend`` fixture too: its native-portable walk opens
# directories one name at a time, as on kernels without openat2.


def fields(st_: os.stat_result) -> tuple[int, ...]:
    return (st_.st_mode, st_.st_uid, st_.st_gid, st_.st_size, st_.st_dev, st_.st_ino,
            st_.st_nlink, st_.st_rdev)


# -- the index ----------------------------------------------------------------------------

def test_key_must_be_16_bytes(backend):
    for key in (b"", b"k" * 15, b"k" * 17):
        with pytest.raises(ValueError):
            backend.PathIndex(key)
    backend.PathIndex(b"k" * 16, stats=False)


def test_add_get_contains_len(backend):
    ix = backend.PathIndex(KEY)
    assert len(ix) == 0
    assert ix.add(b"a/b", STATS) is True
    assert ix.add(b"", (1,) * 8) is True
    assert len(ix) == 2
    assert b"a/b" in ix and b"" in ix
    assert b"a" not in ix and b"a/b/" not in ix and b"A/b" not in ix
    assert ix.get(b"a/b") == STATS
    assert ix.get(b"") == (1,) * 8
    assert ix.get(b"a") is None


def test_duplicate_changes_nothing(backend):
    ix = backend.PathIndex(KEY)
    assert ix.add(b"x", STATS)
    ix.expect(b"x")
    assert ix.add(b"x", (9,) * 8) is False
    assert ix.get(b"x") == STATS
    assert len(ix) == 1
    assert ix.expected(b"x") and ix.unexpected == 0


def test_stats_round_trip_large_values(backend):
    big = (0o170777 | U32 & ~0o177777, U32, U32, 2**63 - 1, U64, U64 - 1, U32, U64 - 2)
    ix = backend.PathIndex(KEY)
    ix.add(b"big", big)
    ix.add(b"zero", (0,) * 8)
    assert ix.get(b"big") == big
    assert ix.get(b"zero") == (0,) * 8
    assert all(type(v) is int for v in ix.get(b"big"))


def test_stats_required_and_checked(backend):
    ix = backend.PathIndex(KEY)
    with pytest.raises(ValueError):
        ix.add(b"a")
    for bad in ((1,) * 7, (1,) * 9, ()):
        with pytest.raises(ValueError):
            ix.add(b"a", bad)
    assert len(ix) == 0
    ix.add(b"a", [1, 2, 3, 4, 5, 6, 7, 8])             # any sequence of 8
    assert ix.get(b"a") == (1, 2, 3, 4, 5, 6, 7, 8)
    with pytest.raises((TypeError, ValueError)):
        ix.add(b"b", ("x",) * 8)
    # the path is looked up before st is converted
    assert ix.add(b"a", ("x",) * 8) is False


def test_index_without_stats(backend):
    ix = backend.PathIndex(KEY, stats=False)
    with pytest.raises(ValueError):
        ix.add(b"a", STATS)
    assert ix.add(b"a") is True
    assert ix.add(b"a", None) is False
    assert b"a" in ix and len(ix) == 1
    with pytest.raises(ValueError):
        ix.get(b"a")
    ix.expect(b"a/b")
    assert ix.expected(b"a") and ix.unexpected == 0


def make(backend, paths, stats=False):
    ix = backend.PathIndex(KEY, stats=stats)
    for p in paths:
        ix.add(p, STATS if stats else None)
    return ix


def test_expect_marks_present_ancestors(backend):
    ix = make(backend, [b"", b"a", b"a/b", b"a/b/c", b"a/x"])
    assert ix.unexpected == 5
    ix.expect(b"a/b/c")
    assert [ix.expected(p) for p in (b"", b"a", b"a/b", b"a/b/c", b"a/x")] == \
           [True, True, True, True, False]
    assert ix.unexpected == 1
    ix.expect(b"a/x")
    assert ix.unexpected == 0


def test_expect_stops_at_an_expected_ancestor(backend):
    ix = make(backend, [b"a/b", b"a/b/c"])
    ix.expect(b"a/b")
    ix.add(b"a", None)        # ancestors that come after a/b was marked
    ix.add(b"", None)
    ix.expect(b"a/b/c")       # marks a/b/c, finds a/b marked and stops there
    assert ix.expected(b"a/b/c") and ix.expected(b"a/b")
    assert not ix.expected(b"a") and not ix.expected(b"")
    assert ix.unexpected == 2
    ix.expect(b"a")
    assert ix.unexpected == 0


def test_expect_passes_over_absent_paths(backend):
    ix = make(backend, [b"", b"x"])
    ix.expect(b"x/y/z")       # neither x/y/z nor x/y is there; x and "" are
    assert ix.expected(b"x") and ix.expected(b"")
    assert not ix.expected(b"x/y") and b"x/y" not in ix
    assert ix.unexpected == 0 and len(ix) == 2


def test_expect_root_and_odd_paths(backend):
    ix = make(backend, [b"", b"a", b"a/", b"b"])
    ix.expect(b"")
    assert ix.expected(b"") and ix.unexpected == 3
    ix.expect(b"a//b")        # parents: "a/", then "a", then ""
    assert ix.expected(b"a/") and ix.expected(b"a") and ix.unexpected == 1
    ix.expect(b"/b")          # parent ""; b is a different path
    assert not ix.expected(b"b")
    empty = make(backend, [b"a"])
    empty.expect(b"")         # "" not in the index: nothing happens
    assert empty.unexpected == 1 and not empty.expected(b"")


NAMES = st.sampled_from([b"a", b"b", b"\xff", b"a b", b""])
PATHS = st.lists(NAMES, max_size=4).map(b"/".join)
STAT_VALUES = st.tuples(st.integers(0, U32), st.integers(0, U32), st.integers(0, U32),
                        st.integers(0, U64), st.integers(0, U64), st.integers(0, U64),
                        st.integers(0, U32), st.integers(0, U64))
OPS = st.lists(st.one_of(st.tuples(st.just("add"), PATHS, STAT_VALUES),
                         st.tuples(st.just("expect"), PATHS)), max_size=60)


def ancestors(path: bytes):
    while True:
        yield path
        if not path:
            return
        path = path.rpartition(b"/")[0]


@HYPOTHESIS
@given(ops=OPS, stats=st.booleans())
def test_native_and_twin_agree(ops, stats):
    native = _fastdigest.PathIndex(KEY, stats=stats)
    twin = _pathindex_py.PathIndex(KEY, stats=stats)
    seen = {b""}
    for op in ops:
        seen.update(ancestors(op[1]))
        if op[0] == "add":
            st_ = op[2] if stats else None
            assert native.add(op[1], st_) == twin.add(op[1], st_)
        else:
            native.expect(op[1])
            twin.expect(op[1])
        assert len(native) == len(twin)
        assert native.unexpected == twin.unexpected
    for path in seen:
        assert (path in native) == (path in twin)
        assert native.expected(path) == twin.expected(path)
        if stats:
            assert native.get(path) == twin.get(path)


def test_growth_past_many_resizes(backend):
    n = 200_000
    ix = backend.PathIndex(KEY)
    for i in range(n):
        assert ix.add(b"d%d/f%d" % (i // 1000, i), (i, i, i, i, i, i, i, i))
    assert len(ix) == n
    for i in range(n):
        assert ix.get(b"d%d/f%d" % (i // 1000, i)) == (i,) * 8
        assert b"d%d/g%d" % (i // 1000, i) not in ix
    for i in range(0, n, 2):
        ix.expect(b"d%d/f%d" % (i // 1000, i))
    assert ix.unexpected == n // 2
    assert ix.expected(b"d7/f7000") and not ix.expected(b"d7/f7001")


# -- walks ------------------------------------------------------------------------------

def build_tree(root: Path, outside: Path) -> None:
    """Every kind of entry a layer directory holds, and links that lead elsewhere."""
    outside.mkdir()
    (outside / "secret").write_text("not in the layer")
    (outside / "deeper").mkdir()
    root.mkdir(mode=0o755)
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "dir" / "f").write_bytes(b"x" * 100)
    (root / "dir" / "sub" / "g").write_bytes(b"")
    os.link(root / "dir" / "f", root / "dir" / "hard")
    os.symlink("dir", root / "link-to-dir")
    os.symlink("dir/f", root / "link-to-file")
    os.symlink("nowhere", root / "dangling")
    os.symlink(outside, root / "etc")          # named like a directory, leads out
    os.mkfifo(root / "dir" / "fifo")
    raw = os.fsencode(root)
    os.mkdir(raw + b"/\xff\xfe")
    with open(raw + b"/\xff\xfe/\x80name", "wb") as f:
        f.write(b"latin-1")


def tree_paths(root: Path) -> dict[bytes, tuple[int, ...]]:
    """What a walk must find: the tree's paths and lstat, by an independent walk."""
    out = {b"": fields(os.lstat(root))}
    raw = os.fsencode(root)
    for top, dirs, files in os.walk(raw):
        for name in dirs + files:
            full = os.path.join(top, name)
            out[os.path.relpath(full, raw)] = fields(os.lstat(full))
    return out


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    build_tree(root, tmp_path / "outside")
    return root


def walk(backend, root: Path):
    ix = backend.PathIndex(KEY)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        errors = backend.walk_index(ix, fd)
    finally:
        os.close(fd)
    return ix, errors


def test_walk_finds_every_entry_and_follows_no_link(backend, tree):
    want = tree_paths(tree)
    ix, errors = walk(backend, tree)
    assert errors == []
    assert len(ix) == len(want)
    for path, fs in want.items():
        assert ix.get(path) == fs, path
    for link in (b"etc", b"link-to-dir", b"link-to-file", b"dangling"):
        assert stat.S_ISLNK(ix.get(link)[0])
    assert stat.S_ISFIFO(ix.get(b"dir/fifo")[0])
    assert ix.get(b"\xff\xfe/\x80name")[3] == 7
    for below in (b"etc/secret", b"etc/deeper", b"link-to-dir/f", b"link-to-dir/sub"):
        assert below not in ix


def test_walk_native_and_twin_agree(tree):
    twin, twin_errors = walk(_pathindex_py, tree)
    native, native_errors = walk(_fastdigest, tree)
    assert native_errors == twin_errors == []
    assert len(native) == len(twin)
    for path in twin._entries:
        assert native.get(path) == twin.get(path)


@pytest.fixture(scope="module")
def wide_tree(tmp_path_factory):
    """Many directories for two walkers to share, nested, and one directory bigger than a
    walker reports at once (walk.c BATCH_MAX: 4 MiB of lstat and names, ~26,000 entries),
    which it reports in parts, holding the lock to the end."""
    top = tmp_path_factory.mktemp("wide")
    build_tree(top / "tree", top / "outside")
    for d in range(60):
        sub = top / "tree" / f"d{d:02d}" / f"e{d % 7}"
        sub.mkdir(parents=True)
        for i in range(d):
            (sub.parent / f"f{i}").write_bytes(b"x" * i)
        os.symlink("..", sub / "up")
    (top / "tree" / "big").mkdir()
    big = os.open(top / "tree" / "big", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i in range(30_000):
            os.close(os.open(f"n{i:05d}", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=big))
    finally:
        os.close(big)
    (top / "tree" / "big" / "inner").mkdir()
    return top / "tree"


@pytest.mark.parametrize("helper", [0, 1])
def test_walk_with_or_without_a_helper_thread_agrees_with_the_twin(wide_tree, helper):
    want = tree_paths(wide_tree)
    fd = os.open(wide_tree, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for portable in (False, True):
            _fastdigest.set_portable(portable)
            ix = _fastdigest.PathIndex(KEY)
            try:
                assert _fastdigest.walk_index(ix, fd, helper) == []
            finally:
                _fastdigest.set_portable(False)
            assert len(ix) == len(want)
            for path, fs in want.items():
                assert ix.get(path) == fs, path
        twin = _pathindex_py.PathIndex(KEY)
        assert _pathindex_py.walk_index(twin, fd, helper) == []
        assert len(twin) == len(want)
    finally:
        os.close(fd)


def test_walk_adds_to_what_is_there(backend, tree):
    ix = backend.PathIndex(KEY)
    ix.add(b"", (7,) * 8)
    ix.add(b"dir/f", (8,) * 8)
    ix.expect(b"dir/f")
    fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert backend.walk_index(ix, fd) == []
    finally:
        os.close(fd)
    assert len(ix) == len(tree_paths(tree))
    assert ix.get(b"") == (7,) * 8 and ix.get(b"dir/f") == (8,) * 8
    assert ix.get(b"dir/sub/g") is not None
    assert ix.expected(b"") and not ix.expected(b"dir")    # dir came after the expect
    assert ix.unexpected == len(ix) - 2


def test_walk_leaves_the_top_fd_rewound(backend, tree):
    fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
    try:
        ix = backend.PathIndex(KEY)
        assert backend.walk_index(ix, fd) == []
        assert len(ix) == len(tree_paths(tree))
        assert sorted(os.listdir(fd)) == sorted(os.listdir(tree))
    finally:
        os.close(fd)


def test_walk_needs_stats_and_a_directory(backend, tree):
    fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(ValueError):
            backend.walk_index(backend.PathIndex(KEY, stats=False), fd)
    finally:
        os.close(fd)
    fd = os.open(tree / "dir" / "f", os.O_RDONLY)
    try:
        assert backend.walk_index(backend.PathIndex(KEY), fd) == [(b"", errno.ENOTDIR)]
    finally:
        os.close(fd)
    fd = os.open(tree, os.O_RDONLY)
    os.close(fd)
    with pytest.raises(OSError) as exc:
        backend.walk_index(backend.PathIndex(KEY), fd)
    assert exc.value.errno == errno.EBADF


DEPTH = 1500      # names "dd": 4499 bytes of path, more than one openat2 call takes


@pytest.fixture(scope="module")
def deep_tree(tmp_path_factory):
    top = tmp_path_factory.mktemp("deep")
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(DEPTH):
        os.mkdir("dd", dir_fd=fd)
        sub = os.open("dd", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = sub
    os.close(os.open("bottom", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
    bottom = fields(os.stat("bottom", dir_fd=fd, follow_symlinks=False))
    os.close(fd)
    yield top, bottom
    subprocess.run(["rm", "-rf", top], check=True)     # shutil.rmtree recurses too deep


def test_walk_deeper_than_path_max(backend, deep_tree):
    top, bottom = deep_tree
    ix, errors = walk(backend, top)
    assert errors == []
    assert len(ix) == DEPTH + 2
    path = b"/".join([b"dd"] * DEPTH)
    assert len(path) > 4096
    assert ix.get(path + b"/bottom") == bottom
    assert stat.S_ISDIR(ix.get(path)[0])
    assert stat.S_ISDIR(ix.get(path[:2000].rstrip(b"/"))[0])


def in_child(fn):
    """fn() in a forked child; returns its result, fails the test on its exception."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            try:
                result = ("ok", fn())
            except BaseException as exc:
                result = ("error", repr(exc))
            with os.fdopen(w, "wb") as out:
                pickle.dump(result, out)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as inp:
        data = inp.read()
    os.waitpid(pid, 0)
    kind, value = pickle.loads(data)
    if kind == "error":
        pytest.fail(f"in the child: {value}")
    return value


def drop_root():
    """Root reads any directory: be nobody, so that permissions mean something."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)


def outcome(backend, fd, helper=-1):
    ix = backend.PathIndex(KEY)
    errors = sorted(backend.walk_index(ix, fd, helper))
    return errors, len(ix), ix


def test_unreadable_directories(tree):
    (tree / "locked" / "inner").mkdir(parents=True)
    (tree / "locked" / "inner" / "f").touch()
    (tree / "noexec" / "sub").mkdir(parents=True)    # listable, but no lstat inside
    (tree / "noexec" / "f").touch()
    os.chmod(tree / "locked", 0)
    os.chmod(tree / "noexec", 0o644)
    fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)

    def walks():
        drop_root()
        found = {}
        for name, backend, names, helper in (("twin", _pathindex_py, False, 0),
                                             ("native", _fastdigest, False, 0),
                                             ("native-names", _fastdigest, True, 0),
                                             ("native-helper", _fastdigest, False, 1)):
            _fastdigest.set_portable(names)
            errors, count, ix = outcome(backend, fd, helper)
            if name == "twin":
                paths = list(ix._entries)
            found[name] = (errors, count, {p: ix.get(p) for p in paths})
        return found

    try:
        found = in_child(walks)
    finally:
        os.close(fd)
        os.chmod(tree / "locked", 0o755)
        os.chmod(tree / "noexec", 0o755)
    want = sorted([(b"locked", errno.EACCES), (b"noexec", errno.EACCES)])
    assert found["twin"][0] == want
    assert found["native"] == found["twin"]
    assert found["native-names"] == found["twin"]
    assert found["native-helper"] == found["twin"]
    entries = found["twin"][2]
    assert b"locked" in entries and b"noexec" in entries
    assert not any(p.startswith((b"locked/", b"noexec/")) for p in entries)


def test_walk_keeps_two_fds_open_at_most(deep_tree):
    top, _ = deep_tree
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)

    def walks():
        spare, n = 0, 0
        while spare < 2:           # the limit that leaves exactly two fd numbers free
            try:
                os.fstat(n)
            except OSError:
                spare += 1
            n += 1
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))
        counts = []
        for backend, names in ((_pathindex_py, False), (_fastdigest, False), (_fastdigest, True)):
            _fastdigest.set_portable(names)
            errors, count, _ = outcome(backend, fd)
            counts.append((errors, count))
        return counts

    try:
        counts = in_child(walks)
    finally:
        os.close(fd)
    assert counts == [([], DEPTH + 2)] * 3


# -- the native module's own promises ---------------------------------------------------

@pytest.mark.parametrize("stats,limit", [(True, 100), (False, 40)])
def test_native_bytes_per_entry(stats, limit):
    n = 100_000
    paths = [b"usr/share/dir%03d/file%06d" % (i % 1000, i) for i in range(n)]
    st_ = STATS if stats else None
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        ix = _fastdigest.PathIndex(KEY, stats=stats)
        for p in paths:
            ix.add(p, st_)
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(ix) == n
    assert used / n <= limit


def test_native_refuses_a_second_thread_during_a_walk(tmp_path):
    for i in range(200):
        d = tmp_path / f"d{i}"
        d.mkdir()
        for j in range(100):
            (d / f"f{j}").touch()
    ix = _fastdigest.PathIndex(KEY)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    refused = []
    try:
        thread = threading.Thread(target=_fastdigest.walk_index, args=(ix, fd))
        thread.start()
        while thread.is_alive():
            try:
                ix.add(b"intruder", STATS)
            except RuntimeError:
                refused.append(True)
        thread.join()
    finally:
        os.close(fd)
    assert refused
    assert len(ix) == 1 + 200 * 101 + (b"intruder" in ix)


def test_native_cannot_be_pickled_or_used_uninitialized():
    with pytest.raises(TypeError):
        pickle.dumps(_fastdigest.PathIndex(KEY))
    bare = _fastdigest.PathIndex.__new__(_fastdigest.PathIndex)
    with pytest.raises(RuntimeError):
        len(bare)


def test_front_exports_the_chosen_backend():
    assert pathindex.PathIndex is native.impl.PathIndex
    assert pathindex.walk_index is native.impl.walk_index
    assert set(pathindex.__all__) == {"PathIndex", "walk_index"}
