"""TreeUsage and walk_usage: the byte meter's walk (_csrc/walk.c, _csrc/treeusage.c)
against its twin (analyzer/_treeusage_py.py, the spec) and against an independent count
of the same trees with os.lstat.

Every test runs on each backend (conftest's ``backend``): the native walk with openat2,
the native walk opening one name at a time (as on kernels without openat2), the twin.
"""
from __future__ import annotations

import errno
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer import _fastdigest, _native_py, native, treeusage
from tests.conftest import DEFAULT_PORTABLE
from tests.test_pathindex import build_tree, drop_root, in_child


@pytest.fixture
def tree(tmp_path):
    """build_tree's layer (links in and out, a fifo, odd names) and a hard link of its
    file from a second tree beside it."""
    build_tree(tmp_path / "tree", tmp_path / "outside")
    (tmp_path / "other").mkdir()
    os.link(tmp_path / "tree" / "dir" / "f", tmp_path / "other" / "third")
    (tmp_path / "other" / "own").write_bytes(b"y" * 5000)
    return tmp_path


def count(top, paths: list[str]) -> dict:
    """allocated, freed, apparent and inodes of paths below top, by os.lstat."""
    found: dict[tuple[int, int], list] = {}
    for rel in paths:
        full = os.path.join(top, rel)
        if not os.path.lexists(full):
            continue
        names = [full]
        if stat.S_ISDIR(os.lstat(full).st_mode):
            for d, dirs, files in os.walk(full):
                names += [os.path.join(d, n) for n in dirs + files]
        for name in names:
            s = os.lstat(name)
            entry = found.setdefault((s.st_dev, s.st_ino), [s, 0])
            entry[1] += 1
    return {
        "allocated": sum(s.st_blocks * 512 for s, _ in found.values()),
        "freed": sum(s.st_blocks * 512 for s, links in found.values()
                     if stat.S_ISDIR(s.st_mode) or links >= s.st_nlink),
        "apparent": sum(s.st_size for s, _ in found.values() if not stat.S_ISDIR(s.st_mode)),
        "inodes": len(found),
    }


def measured(usage) -> dict:
    return {"allocated": usage.allocated_bytes(), "freed": freed_of([usage]),
            "apparent": usage.apparent_bytes(), "inodes": len(usage)}


def freed_of(usages):
    """freed_bytes of the backend the usages come from."""
    ours = all(isinstance(u, _fastdigest.TreeUsage) for u in usages)
    return (_fastdigest if ours else _native_py).freed_bytes(usages)


def walk(backend, top, groups):
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return backend.walk_usage(fd, [[os.fsencode(p) for p in g] for g in groups])
    finally:
        os.close(fd)


GROUPS = [["tree"], ["tree/dir", "other"], ["tree", "other"], ["other/third"],
          ["tree/link-to-dir", "tree/etc"], ["tree/dir/f", "tree/dir/hard"], [""],
          ["missing", "tree/missing/deeper", "tree/dir/f/below"]]


@pytest.mark.parametrize("group", GROUPS, ids=str)
def test_counts_as_lstat_does(backend, tree, group):
    (usage, errors), = walk(backend, tree, [group])
    assert errors == []
    assert measured(usage) == count(tree, group)


def test_a_hard_link_frees_its_file_only_with_every_link(backend, tree):
    f = os.lstat(tree / "tree" / "dir" / "f")
    (alone, _), (both, _) = walk(backend, tree, [["tree"], ["tree", "other"]])
    assert f.st_nlink == 3 and f.st_blocks
    assert alone.allocated_bytes() - backend.freed_bytes([alone]) == f.st_blocks * 512
    assert both.allocated_bytes() == backend.freed_bytes([both])


def test_freed_bytes_counts_each_inode_once_and_adds_links(backend, tree):
    (layer, _), (rest, _), (whole, _) = walk(backend, tree, [["tree"], ["other"],
                                                            ["tree", "other"]])
    assert backend.freed_bytes([layer, rest]) == backend.freed_bytes([whole])
    # Found twice, links count twice: 2 of the file's 3 from "other", 4 from "tree".
    assert backend.freed_bytes([rest, rest]) == backend.freed_bytes([rest])
    assert backend.freed_bytes([layer, layer]) == layer.allocated_bytes()
    assert backend.freed_bytes([]) == 0


def test_attribute_counts_each_inode_once_for_the_first_that_found_it(backend, tree):
    f = os.lstat(tree / "tree" / "dir" / "f")
    (layer, _), (rest, _), (whole, _) = walk(backend, tree, [["tree"], ["other"],
                                                            ["tree", "other"]])
    dev = os.lstat(tree).st_dev
    (first, second), elsewhere = backend.attribute([rest, layer], dev)
    assert elsewhere == (0, 0)
    # The file linked from both goes to "other", which came first.
    assert first == (rest.allocated_bytes(), len(rest))
    assert second == (layer.allocated_bytes() - f.st_blocks * 512, len(layer) - 1)
    assert first[0] + second[0] == whole.allocated_bytes()
    assert first[1] + second[1] == len(whole)
    # Inodes of another device (a mount below the tree) are apart, whoever found them.
    shares, elsewhere = backend.attribute([rest, layer], dev + 1)
    assert shares == [(0, 0), (0, 0)]
    assert elsewhere == (whole.allocated_bytes(), len(whole))
    assert backend.attribute([], dev) == ([], (0, 0))


def test_links_are_measured_not_followed(backend, tree):
    (usage, errors), = walk(backend, tree, [["tree/etc"]])
    assert errors == [] and len(usage) == 1
    assert usage.allocated_bytes() == os.lstat(tree / "tree" / "etc").st_blocks * 512


@pytest.mark.parametrize("path,err", [("tree/../outside", errno.EXDEV), ("/etc", errno.EXDEV),
                                      ("..", errno.EXDEV), ("tree/dir/../../outside", errno.EXDEV)])
def test_a_way_out_is_an_error_not_a_walk(backend, tree, path, err):
    (usage, errors), = walk(backend, tree, [[path]])
    assert (len(usage), errors) == (0, [(os.fsencode(path), err)])


@pytest.mark.parametrize("path", ["tree/etc/secret", "tree/etc/deeper", "tree/link-to-dir/f"])
def test_a_path_through_a_link_is_not_there(backend, tree, path):
    # As lstat through the opener says: a link is not a directory to look in.
    (usage, errors), = walk(backend, tree, [[path]])
    assert (len(usage), errors) == (0, [])


def test_native_and_twin_agree_on_every_group(tree):
    twin = walk(_native_py, tree, GROUPS)
    ours = walk(_fastdigest, tree, GROUPS)
    assert [(measured(u), e) for u, e in ours] == [(measured(u), e) for u, e in twin]


def test_unreadable_directories_are_errors_and_give_nothing(tree):
    layer = tree / "tree"
    (layer / "locked" / "inner").mkdir(parents=True)
    (layer / "locked" / "inner" / "f").write_bytes(b"z" * 9000)
    (layer / "noexec" / "sub").mkdir(parents=True)    # listable, but no lstat inside
    os.link(layer / "dir" / "f", layer / "noexec" / "hard")   # a link it must take back
    os.chmod(layer / "locked", 0)
    os.chmod(layer / "noexec", 0o644)

    os.chmod(tree, 0o755)          # nobody must reach "tree" from here
    fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)

    def walks():
        drop_root()
        found = {}
        for name, backend, names in (("twin", _native_py, False),
                                     ("native", _fastdigest, False),
                                     ("native-names", _fastdigest, True)):
            _fastdigest.set_portable(names)
            (usage, errors), = backend.walk_usage(fd, [[b"tree"]])
            found[name] = (measured(usage), sorted(errors))
        return found

    try:
        found = in_child(walks)
    finally:
        os.close(fd)
        os.chmod(layer / "locked", 0o755)
        os.chmod(layer / "noexec", 0o755)
        _fastdigest.set_portable(DEFAULT_PORTABLE)
    assert found["twin"][1] == [(b"tree/locked", errno.EACCES), (b"tree/noexec", errno.EACCES)]
    assert found["native"] == found["native-names"] == found["twin"]
    # Everything but what is below the two: their own inodes are found by their parent.
    kept = {}
    for d, dirs, files in os.walk(layer):
        for name in [d] + [os.path.join(d, n) for n in dirs + files]:
            if not name.startswith((f"{layer}/locked/", f"{layer}/noexec/")):
                s = os.lstat(name)
                kept[(s.st_dev, s.st_ino)] = s.st_blocks * 512
    assert found["twin"][0]["allocated"] == sum(kept.values())
    assert found["twin"][0]["inodes"] == len(kept)


@settings(deadline=None, max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40), st.integers(1, 4),
                          st.integers(0, 2**20), st.integers(0, 2**20), st.booleans()),
                max_size=60),
       st.lists(st.integers(0, 60), max_size=4))
def test_add_freed_bytes_and_attribute_agree_with_the_twin(adds, cuts):
    answers = []
    for backend in (_fastdigest, _native_py):
        tables = [backend.TreeUsage() for _ in range(len(cuts) + 1)]
        for i, args in enumerate(adds):
            tables[sum(i >= c for c in cuts)].add(*args)
        answers.append(([(t.allocated_bytes(), t.apparent_bytes(), len(t)) for t in tables],
                        backend.freed_bytes(tables), backend.attribute(tables, 1)))
    assert answers[0] == answers[1]


def test_a_table_is_added_to_after_a_walk(tree):
    (usage, _), = walk(_fastdigest, tree, [["tree"]])
    before = len(usage)
    st_ = os.lstat(tree / "other" / "own")
    usage.add(st_.st_dev, st_.st_ino, st_.st_nlink, st_.st_blocks * 512, st_.st_size, False)
    usage.add(st_.st_dev, st_.st_ino, st_.st_nlink, st_.st_blocks * 512, st_.st_size, False)
    assert len(usage) == before + 1
    (whole, _), = walk(_fastdigest, tree, [["tree", "other/own"]])
    assert measured(usage) == measured(whole)


def test_the_front_serves_the_chosen_backend():
    assert treeusage.TreeUsage is native.impl.TreeUsage
    assert treeusage.walk_usage is native.impl.walk_usage
    assert treeusage.freed_bytes is native.impl.freed_bytes
    assert treeusage.attribute is native.impl.attribute
