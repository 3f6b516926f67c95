"""aufs's own parent records (``aufs/layers/<id>``) damaged, on real aufs roots: the pre-1.10
graph (docker-explorer's aufs.v1) and a layer store (aufs.v2), tests/fixtures/docker-explorer.

dockerd reasons with its layer store's chain and mounts what ``aufs/layers`` names: a loop, a
parent that is gone, a link, or a line that is no ID there is one warning naming the file,
and every command answers as on the undamaged root.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable

import pytest

from . import Evidence, Result

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "docker-explorer"
LAYERS = "aufs/layers"
COMMANDS = [("ls", "-a"), ("ps", "-a", "-s"), ("df", "-v"), ("reclaim", "-f", "busybox"),
            ("verify",)]
# Its answer counts the bytes under aufs/layers, which damage written there changes.
SHOW_BYTES = ("reclaim",)


@pytest.fixture(scope="session")
def aufs_roots(scratch: Path) -> dict[str, Path]:
    out = {}
    for name in ("aufs.v1", "aufs.v2"):
        dest = scratch / name
        dest.mkdir()
        subprocess.run(["tar", "-xzf", str(FIXTURES / f"{name}.tgz"), "-C", str(dest)],
                       check=True, capture_output=True)
        out[name] = dest / "docker"
    return out


def _chain(root: Path) -> tuple[str, str]:
    """(a layer or container, its nearest parent), by their aufs/layers files."""
    for path in sorted((root / LAYERS).iterdir()):
        ids = path.read_text().split()
        if ids and (root / LAYERS / ids[0]).exists():
            return path.name, ids[0]
    raise AssertionError("no chain")


def _container(root: Path) -> str:
    return next(p.name for p in sorted((root / LAYERS).iterdir())
                if (root / LAYERS / f"{p.name}-init").exists())


def _self(root: Path) -> list[str]:
    top, base = _chain(root)
    (root / LAYERS / top).write_text(f"{top}\n{base}\n")
    return [top]


def _pair(root: Path) -> list[str]:
    top, base = _chain(root)
    (root / LAYERS / base).write_text(f"{top}\n")
    return sorted([top, base])       # as a layer store's cycle: each member is named


def _gone(root: Path) -> list[str]:
    top, _ = _chain(root)
    (root / LAYERS / top).write_text("ab" * 32 + "\n")
    return [top]


def _link(root: Path) -> list[str]:
    name = _container(root)
    (root / LAYERS / name).unlink()
    (root / LAYERS / name).symlink_to("/etc/passwd")
    return [name]


def _not_ids(root: Path) -> list[str]:
    name = _container(root)
    path = root / LAYERS / name
    path.write_bytes(b"\xff\xfe not an id\n" + path.read_bytes())
    return [name]


def _wrong(root: Path) -> list[str]:
    name = _container(root)
    path = root / LAYERS / name
    path.write_text("\n".join(path.read_text().split()[1:]) + "\n")   # its init layer dropped
    return [name]


DAMAGE: dict[str, tuple[Callable[[Path], list[str]], tuple[str, ...]]] = {
    "self": (_self, ("loops",)),
    "pair": (_pair, ("loops", "a cycle of 2")),
    "missing-parent": (_gone, ("has no aufs/diff directory",)),
    "link": (_link, ("symbolic link",)),
    "not-ids": (_not_ids, ("line 1", "is not a layer ID")),
    "disagrees": (_wrong, ("parents want=",)),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("snapshot", ["aufs.v1", "aufs.v2"])
def test_aufs_layers_damage_is_one_warning_and_the_rest_answers(
        aufs_roots, damaged, baseline, snapshot, damage):
    source = aufs_roots[snapshot]
    ev: Evidence = damaged(source)
    make, words = DAMAGE[damage]
    names = make(ev.path)
    ev.seal()
    for args in COMMANDS:
        want: Result = baseline(source, *args)
        got = ev.run(*args).check(want.rc)
        if args[0] in SHOW_BYTES:
            assert got.out.splitlines()[:5] == want.out.splitlines()[:5], got.describe()
        else:
            assert got.out == want.out, got.describe()
        new = [w for w in got.warnings() if w not in want.warnings()]
        assert [w.partition(": ")[0] for w in new] == [f"{LAYERS}/{n}" for n in names], \
            got.describe()
        for warning in new:
            assert all(w in warning for w in words), warning
            assert "the layer store's chain is used" in warning, warning


@pytest.mark.parametrize("snapshot", ["aufs.v1", "aufs.v2"])
def test_intact_aufs_layers_warn_nothing(aufs_roots, baseline, snapshot):
    result = baseline(aufs_roots[snapshot], "ls", "-a").check()
    assert result.err == ""
