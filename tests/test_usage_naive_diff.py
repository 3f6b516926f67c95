"""DiffSize by moby's naive diff: a vfs layer's full copy against its parent's, a legacy
overlay container's upper against its init layer's."""
from __future__ import annotations

import os
import stat

from analyzer.sources.evidence import open_root
from analyzer.sources.usage import naive_diff_size, overlay_diff_size


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


def test_legacy_overlay_container_against_its_init_layer(tmp_path):
    """Only the upper's files count, each against what the init layer's mount shows."""
    image, init, upper = (tmp_path / n for n in ("image/root", "init/upper", "ctr/upper"))
    for d in (image / "bin", image / "srv", init / "etc", upper / "etc", upper / "bin",
              upper / "srv", upper / "new"):
        d.mkdir(parents=True)
    (image / "bin" / "busybox").write_bytes(b"b" * 100)
    (image / "srv" / "gone").write_bytes(b"g" * 9)
    for d in (init, upper):                        # the container's copy of its init files
        (d / "etc" / "hostname").write_bytes(b"")
        (d / "etc" / "hosts").write_bytes(b"h" * 3)
        os.utime(d / "etc" / "hosts", ns=(10**18, 10**18))
    os.utime(init / "etc" / "hostname", ns=(10**18, 10**18))
    os.utime(upper / "etc" / "hostname", ns=(10**18, 10**18))
    os.link(image / "bin" / "busybox", image / "bin" / "cat")      # hard links in the root
    (upper / "bin" / "cat").write_bytes(b"b" * 100)                # copied up, then chmod
    os.chmod(upper / "bin" / "cat", 0o600)
    os.utime(upper / "bin" / "cat", ns=(os.stat(image / "bin" / "cat").st_mtime_ns,) * 2)
    os.mknod(upper / "srv" / "gone", 0o600 | stat.S_IFCHR, os.makedev(0, 0))  # a whiteout: 0B
    (upper / "new" / "n").write_bytes(b"n" * 2)
    root = open_root(str(tmp_path))
    assert overlay_diff_size(root, "ctr/upper", ["init/upper", "image/root"]) == 100 + 2
    # Only its init files: 0B, not the upper's raw size.
    assert overlay_diff_size(root, "init/upper", ["init/upper", "image/root"]) == 0
    assert overlay_diff_size(root, "none/upper", ["init/upper", "image/root"]) == -1
