"""Docker's identifiers, as types.

An ImageID, DiffID, ChainID or RepoDigest always holds the full ``sha256:<hex>``
string; only ``render/`` truncates. CacheID and MountID are driver strings and
are not always 64-hex (BuildKit registers layers under 25-char base36 keys).

References: moby layer/layer.go (CreateChainID), pkg/stringid (TruncateID),
image-spec config.md (ImageID, DiffID, ChainID).
"""
from __future__ import annotations

import hashlib
from typing import Iterable, NewType

ImageID = NewType("ImageID", str)
DiffID = NewType("DiffID", str)
ChainID = NewType("ChainID", str)
RepoDigest = NewType("RepoDigest", str)
CacheID = NewType("CacheID", str)
MountID = NewType("MountID", str)
ContainerID = NewType("ContainerID", str)

SHA256_PREFIX = "sha256:"

# The DiffID of an empty tar (1024 NUL bytes), moby layer/empty.go.
EMPTY_LAYER_DIFF_ID = DiffID(
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef")


_HEX_DIGITS = "0123456789abcdef"


# str.strip with a character set: the cheapest exact check in CPython, and these
# run once per file of a big layer store.
def is_digest(value: str) -> bool:
    """True for a well-formed ``sha256:<64 lowercase hex>``."""
    return len(value) == 71 and value.startswith(SHA256_PREFIX) and not value[7:].strip(_HEX_DIGITS)


def is_hex64(value: str) -> bool:
    return len(value) == 64 and not value.strip(_HEX_DIGITS)


def digest_of(data: bytes) -> str:
    """``sha256:<hex>`` of some bytes: how image IDs are made from configs."""
    return SHA256_PREFIX + hashlib.sha256(data).hexdigest()


def hex_part(digest: str) -> str:
    """The hex after the algorithm, as directory names hold it."""
    return digest.partition(":")[2] if ":" in digest else digest


def chain_id_from_parent(parent: ChainID | None, diff_id: DiffID) -> ChainID:
    # moby: layer/layer.go createChainIDFromParent — both operands are full
    # "sha256:<hex>" strings joined by one space.
    if parent is None:
        return ChainID(diff_id)
    return ChainID(digest_of(f"{parent} {diff_id}".encode()))


def chain_ids(diff_ids: Iterable[DiffID]) -> list[ChainID]:
    """The chain ID of every prefix of ``diff_ids`` (bottom first)."""
    out: list[ChainID] = []
    parent: ChainID | None = None
    for diff_id in diff_ids:
        parent = chain_id_from_parent(parent, diff_id)
        out.append(parent)
    return out


def short_id(value: str) -> str:
    # moby: pkg/stringid TruncateID — drop up to the first ':', keep 12.
    return value.partition(":")[2][:12] if ":" in value else value[:12]


def is_path_name(value: str) -> bool:
    """One name of a directory (a cache ID, a mount ID): no way up or down, no NUL."""
    return value not in ("", ".", "..") and "/" not in value and "\0" not in value
