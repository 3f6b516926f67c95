"""engines/rootusage and sources/rootusage on small roots built here: the edge cases the
daemon-made roots of test_oracle_du do not have (hard links across layers, as the legacy
overlay driver makes them; names an archive lists; entries of no known owner)."""
from __future__ import annotations

import os
import subprocess

from analyzer.engines.rootusage import account, claims
from analyzer.ids import DiffID, chain_ids
from analyzer.model import Layer, Store
from analyzer.sources.evidence import open_root
from analyzer.sources.rootusage import measure

BASE, TOP = chain_ids([DiffID("sha256:" + "a" * 64), DiffID("sha256:" + "b" * 64)])


def legacy_overlay_store() -> Store:
    layers = {BASE: Layer(BASE, DiffID("sha256:" + "a" * 64), None, "base", 0, ""),
              TOP: Layer(TOP, DiffID("sha256:" + "b" * 64), BASE, "top", 0, "")}
    return Store(driver="overlay", images={}, layers=layers, references=())


def usage_of(path, store: Store):
    with open_root(str(path)) as root:
        owned = claims(store, root.listdir)
        sizes, elsewhere, problems = measure(root, [(c.paths, c.dirs) for c in owned])
        assert problems == []
        return account([(c, b, i) for c, (b, i) in zip(owned, sizes)], elsewhere)


def du(path, flag: str) -> int:
    return int(subprocess.run(["du", "-s", "-x", flag, str(path)], check=True,
                              capture_output=True, text=True).stdout.split()[0])


def test_a_file_linked_from_two_layers_counts_for_the_lowest(tmp_path):
    # The legacy overlay driver hard-links a child's root/ to its parent's files.
    for layer in ("base", "top"):
        (tmp_path / "overlay" / layer / "root").mkdir(parents=True)
    big = tmp_path / "overlay" / "top" / "root" / "big"
    big.write_bytes(os.urandom(200_000))
    os.link(big, tmp_path / "overlay" / "base" / "root" / "big")
    usage = usage_of(tmp_path, legacy_overlay_store())
    by_item = {o.claim.item: o for o in usage.owned}
    assert by_item[BASE].bytes >= 200_000 > by_item[TOP].bytes
    assert by_item[BASE].inodes == 3 and by_item[TOP].inodes == 2
    assert usage.total_bytes == du(tmp_path, "-B1")
    assert usage.total_inodes == du(tmp_path, "--inodes")
    assert usage.unexplained == () and usage.orphans == ()


def test_names_no_owner_has_are_unexplained_and_dot_names_are_not_entries(tmp_path):
    (tmp_path / "overlay" / "base").mkdir(parents=True)
    (tmp_path / "overlay" / "stranger").mkdir()
    (tmp_path / "elsewhere").write_bytes(b"x" * 5000)
    store = legacy_overlay_store()
    listed = {"": ["", ".", "overlay", "elsewhere"], "overlay": [".", "base", "stranger"]}
    owned = claims(store, lambda rel: listed.get(rel))
    assert {c.item for c in owned if c.category is None} == {"elsewhere"}
    assert [c.why for c in owned if c.category == "orphans"] == [
        "layer directory that no layer store entry names"]
    assert all("" not in c.paths for c in owned)
    usage = usage_of(tmp_path, store)
    assert [o.claim.item for o in usage.unexplained] == ["elsewhere"]
    assert usage.total_bytes == du(tmp_path, "-B1")


def test_lower_layers_claim_first():
    store = legacy_overlay_store()
    listed = {"": ["overlay"], "overlay": ["top", "base"]}
    ranked = [c.item for c in claims(store, lambda rel: listed.get(rel))
              if c.category == "image_layers"]
    assert ranked == [BASE, TOP]
