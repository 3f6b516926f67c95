"""aufs's own record of each layer's parents (``aufs/layers/<id>``), checked against the
layer store.

moby's aufs driver writes, for every layer and container it creates, the IDs of all its
parents, nearest first, one a line, and mounts the branches that file names (getParentIDs):
the layer store's chain is what dockerd reasons with (rm, df, history), the file is what
it mounts (diff, export, cp). Both are read here; the model keeps the layer store's chain,
and a file that is not a regular file, holds a line that is no layer ID, names a parent
with no ``aufs/diff`` directory, names one twice or itself (a loop), or disagrees with the
layer store is one warning, naming the file.

References: moby daemon/graphdriver/aufs/aufs.go (Create: ``layers/<id>`` written with
the parent's and its ``getParentIDs``), aufs/dirs.go (getParentIDs: bufio.Scanner lines,
empty ones skipped).
"""
from __future__ import annotations

import re
from typing import Iterator, Mapping

from ..errors import EvidenceError
from ..ids import ChainID, short_id
from ..model import Diagnostic, Layer, Mount, parent_cycles
from . import layout
from .evidence import EvidenceRoot

# A layer's cache ID (a v1 or random 64-hex ID), or a container's init layer's.
_LAYER_ID = re.compile(rb"[0-9a-f]{64}(-init)?")
_KEEPS = "the layer store's chain is used"


def parse_parent_ids(data: bytes) -> list[bytes]:
    """getParentIDs: the non-empty lines (bufio.ScanLines drops a CR before the newline)."""
    return [line for line in (raw.removesuffix(b"\r") for raw in data.split(b"\n")) if line]


def _short(aufs_id: str) -> str:
    """12 characters, as the CLI shows IDs, keeping an init layer's suffix."""
    return short_id(aufs_id) + ("-init" if aufs_id.endswith("-init") else "")


def expected_parents(layers: Mapping[ChainID, Layer], mounts: Mapping[str, Mount]
                     ) -> dict[str, tuple[str, ...]]:
    """Each aufs ID's parents' IDs, nearest first, as the layer store chains them."""
    def chain(top: ChainID | None) -> tuple[str, ...]:
        ids: list[str] = []
        while top is not None and top in layers and len(ids) <= len(layers):
            ids.append(layers[top].cache_id)
            top = layers[top].parent
        return tuple(ids)

    out = {layer.cache_id: chain(layer.parent) for layer in layers.values()}
    for mount in mounts.values():
        below = chain(mount.parent)
        if mount.init_id is not None:
            out[mount.init_id] = below
            below = (mount.init_id, *below)
        out[mount.mount_id] = below
    return out


def check(root: EvidenceRoot, layers: Mapping[ChainID, Layer], mounts: Mapping[str, Mount]
          ) -> list[Diagnostic]:
    """A warning for each damaged file of ``aufs/layers``; nothing when all agree."""
    names = root.listdir(layout.AUFS_LAYERS)
    if names is None:
        return []
    known = set(root.listdir(layout.AUFS_DIFF) or ())
    expected = expected_parents(layers, mounts)
    problems: dict[str, str] = {}
    parents: dict[str, list[bytes]] = {}
    for name in sorted(names):
        problem = _read(root, name, parents)
        if problem is not None:
            problems[name] = problem
    # Each file names its nearest parent first: following those, a chain must end.
    nearest = {name: ids[0].decode("ascii", "replace") if ids else None
               for name, ids in parents.items()}
    for cycle in parent_cycles(nearest):
        for name in cycle:
            problems[name] = (f"the parent chain loops back to this ID (a cycle of "
                              f"{len(cycle)}: {' -> '.join(map(_short, cycle))}); {_KEEPS}")
    for name, ids in parents.items():
        if name not in problems:
            problem = next(_damage(name, ids, known, expected.get(name)), None)
            if problem is not None:
                problems[name] = problem
    return [Diagnostic(layout.aufs_layers(name), problems[name]) for name in sorted(problems)]


def _read(root: EvidenceRoot, name: str, parents: dict[str, list[bytes]]) -> str | None:
    """Read one file's parent IDs into parents, or say why it cannot be."""
    if not _LAYER_ID.fullmatch(name.encode("utf-8", "surrogateescape")):
        return "not named by a layer ID; not used"
    try:
        data = root.read(layout.aufs_layers(name))
    except EvidenceError as exc:
        return f"{exc.reason}; {_KEEPS}"
    if data is not None:            # None: gone since it was listed (a live host)
        parents[name] = parse_parent_ids(data)
    return None


def _damage(name: str, lines: list[bytes], known: set[str], want: tuple[str, ...] | None
            ) -> Iterator[str]:
    seen: set[str] = {name}
    for number, line in enumerate(lines, 1):
        if not _LAYER_ID.fullmatch(line):
            yield f"line {number}: {line[:80]!r} is not a layer ID; {_KEEPS}"
            return
        parent = line.decode("ascii")
        if parent in seen:
            what = "itself" if parent == name else f"{_short(parent)} twice"
            yield f"names {what}: the parent chain loops; {_KEEPS}"
            return
        seen.add(parent)
        if parent not in known:
            yield (f"line {number}: parent {_short(parent)} has no {layout.AUFS_DIFF} "
                   f"directory; {_KEEPS}")
            return
    got = tuple(line.decode("ascii") for line in lines)
    if want is not None and got != want:
        yield (f"parents want={','.join(map(_short, want)) or 'none'} "
               f"got={','.join(map(_short, got)) or 'none'}; {_KEEPS}")
