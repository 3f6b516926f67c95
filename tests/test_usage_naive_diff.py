"""vfs's DiffSize: moby's naive diff of a layer's full copy against its parent's."""
from __future__ import annotations

import os

from analyzer.sources.evidence import open_root
from analyzer.sources.usage import naive_diff_size


def test_counts_added_and_changed_files_once(tmp_path):
    parent, layer = tmp_path / "parent", tmp_path / "layer"
    for d in (parent, layer):
        (d / "etc").mkdir(parents=True)
        (d / "etc" / "same").write_bytes(b"x" * 10)
        os.utime(d / "etc" / "same", ns=(10**18, 10**18))
        (d / "etc" / "touched").write_bytes(b"y" * 7)
    os.utime(parent / "etc" / "touched", ns=(10**18, 10**18))
    os.utime(layer / "etc" / "touched", ns=(2 * 10**18, 2 * 10**18))   # mtime differs
    (layer / "new").write_bytes(b"z" * 5)
    os.link(layer / "new", layer / "new-link")                         # one inode, once
    (layer / "dir").mkdir()                                            # directories: 0
    root = open_root(str(tmp_path))
    assert naive_diff_size(root, "layer", "parent") == 7 + 5
    assert naive_diff_size(root, "missing", "parent") == -1
