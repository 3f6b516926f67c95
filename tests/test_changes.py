"""docker diff's naive diff and the union view it compares, edge by edge (the oracle
judges them on real containers: tests/test_oracle_diff.py, overlay2 and vfs)."""
from __future__ import annotations

import stat

import pytest

from analyzer.engines.changes import Change, tree_changes
from analyzer.engines.rootfs import NotInScope, init_layer, resolve_in_scope, union
from analyzer.goapi.archive import same_fs_time
from analyzer.sources.evidence import Stat

DIR, FILE, LINK = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o644, stat.S_IFLNK | 0o777


def st(mode: int, size: int = 0, mtime_s: int = 100, uid: int = 0) -> Stat:
    return Stat(mode, size, 0, 0, 0, 1, uid, 0, mtime_s * 10**9)


def test_union_lays_layers_over_each_other():
    bottom = ({"/etc": st(DIR), "/etc/a": st(FILE, 1), "/etc/b": st(FILE), "/opq": st(DIR),
               "/opq/old": st(FILE), "/d2f": st(DIR), "/d2f/kid": st(FILE), "/gone": st(DIR),
               "/gone/deep": st(FILE)}, [], frozenset())
    top = ({"/etc": st(DIR, mtime_s=9), "/etc/a": st(FILE, 2), "/opq": st(DIR),
            "/opq/new": st(FILE), "/d2f": st(FILE)}, ["/gone", "/etc/b"], frozenset({"/opq"}))
    view = union([top, bottom])
    assert {p: (v.stat.size, v.layer) for p, v in view.items()} == {
        "/etc": (0, 0), "/etc/a": (2, 0), "/opq": (0, 0), "/opq/new": (0, 0), "/d2f": (0, 0)}
    assert view["/etc"].stat.mtime_ns == 9 * 10**9         # the top directory's attributes


def test_union_keeps_what_no_layer_above_touches():
    bottom = ({"/a": st(DIR), "/a/x": st(FILE)}, [], frozenset())
    top = ({"/a": st(DIR), "/a/y": st(FILE), "/b": st(LINK)}, [], frozenset())
    assert sorted(union([top, bottom])) == ["/a", "/a/x", "/a/y", "/b"]
    # A whiteout of a path no layer below has hides nothing.
    assert sorted(union([({}, ["/nothing"], frozenset()), bottom])) == ["/a", "/a/x"]


def test_tree_changes_add_change_delete_and_hidden_children():
    old = {"/d": st(DIR), "/d/x": st(FILE, 1), "/d/y": st(FILE), "/f2d": st(FILE),
           "/d2f": st(DIR), "/d2f/kid": st(FILE), "/same": st(DIR), "/same/s": st(FILE),
           "/meta": st(FILE, uid=0)}
    new = {"/d": st(DIR, mtime_s=500), "/d/x": st(FILE, 2), "/d/new": st(FILE),
           "/f2d": st(DIR), "/f2d/in": st(FILE), "/d2f": st(FILE), "/same": st(DIR),
           "/same/s": st(FILE), "/meta": st(FILE, uid=1)}
    got = tree_changes(new, old, lambda path: True)
    assert got == [Change("C", "/d"), Change("A", "/d/new"), Change("C", "/d/x"),
                   Change("D", "/d/y"), Change("C", "/d2f"), Change("C", "/f2d"),
                   Change("A", "/f2d/in"), Change("C", "/meta")]


def test_tree_changes_sees_capabilities_and_lists_added_trees_whole():
    old = {"/bin": st(DIR), "/bin/ping": st(FILE)}
    new = {"/bin": st(DIR), "/bin/ping": st(FILE), "/n": st(DIR), "/n/m": st(DIR),
           "/n/m/f": st(FILE)}
    got = tree_changes(new, old, lambda path: path != "/bin/ping")
    assert got == [Change("C", "/bin"), Change("C", "/bin/ping"), Change("A", "/n"),
                   Change("A", "/n/m"), Change("A", "/n/m/f")]


def test_same_fs_time_forgives_a_missing_nanosecond_part():
    assert same_fs_time(5 * 10**9 + 7, 5 * 10**9)
    assert not same_fs_time(5 * 10**9 + 7, 5 * 10**9 + 8)
    assert not same_fs_time(5 * 10**9, 6 * 10**9)


def test_init_layer_is_made_only_where_the_image_has_nothing():
    view = union([({"/etc": st(DIR), "/etc/hosts": st(FILE, 9), "/proc": st(DIR)}, [],
                   frozenset())])
    made = init_layer(view)
    assert "/etc/hosts" not in made and "/proc" not in made and "/etc" not in made
    assert made["/dev"][0].mode == stat.S_IFDIR | 0o755                 # a parent, made
    assert made["/.dockerenv"][0].mode == stat.S_IFREG | 0o755
    assert made["/etc/mtab"] == (made["/etc/mtab"][0], "/proc/mounts")
    assert sorted(made) == ["/.dockerenv", "/dev", "/dev/console", "/dev/pts", "/dev/shm",
                            "/etc/hostname", "/etc/mtab", "/etc/resolv.conf", "/sys"]


def test_resolve_in_scope_follows_links_inside_the_container_only():
    view = {"/usr": st(DIR), "/usr/bin": st(DIR), "/usr/bin/sh": st(FILE), "/bin": st(LINK),
            "/up": st(LINK), "/loop": st(LINK), "/sh": st(LINK)}
    targets = {"/bin": "usr/bin", "/up": "../../..", "/loop": "/loop", "/sh": "/bin/sh"}
    resolve = lambda path, follow=False: resolve_in_scope(path, view, targets.__getitem__,
                                                          follow)
    assert resolve("/bin/sh") == "/usr/bin/sh"
    assert resolve("/../../up/usr/bin/sh") == "/usr/bin/sh"        # never above "/"
    assert resolve("/sh") == "/sh" and resolve("/sh", True) == "/usr/bin/sh"
    with pytest.raises(NotInScope):
        resolve("/loop/x")


def test_a_new_container_gets_its_working_directory():
    view = union([({"/etc": st(DIR)}, [], frozenset())])
    made = init_layer(view, "/srv/app/")
    assert made["/srv"][0].mode == made["/srv/app"][0].mode == stat.S_IFDIR | 0o755
    assert "/etc" not in init_layer(view, "/etc") and init_layer(view, "") == init_layer(view)
