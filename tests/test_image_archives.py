"""OCI image layouts and ``docker save`` archives, as made by dockerd 20.10 and skopeo,
read in every flavour (directory, .tar, .tar.gz, .tar.zst) and compared with what
those tools say they hold (tests/oracle/archives.py)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from analyzer.errors import EvidenceError, MalformedError
from analyzer.ids import digest_of
from analyzer.engines.blobverify import verify_archive
from analyzer.sources import dockersave, layout, ocilayout, ocispec
from analyzer.sources.evidence import open_root
from tests.oracle import archives

SOURCES = ("save20", "save28", "savecd", "gzip", "zstd", "plain", "multi", "archive", "index",
           "nested")


def open_archive(path: Path):
    """The store and the files verify reads, from whichever reader detects the archive."""
    root = open_root(str(path))
    is_save = dockersave.detect({layout.DATA_ROOT: root}) is not None
    return (dockersave.read_save if is_save else ocilayout.read_layout)(root)


def read(path: Path):
    return open_archive(path)[0]


@pytest.mark.parametrize("flavour", archives.FLAVOURS)
@pytest.mark.parametrize("source", SOURCES)
def test_images_as_the_tools_recorded(image_archives, source, flavour):
    assert set(image_archives.sources) == set(SOURCES)
    store = read(image_archives.path(source, flavour))
    assert not store.diagnostics
    truth = image_archives.images(source)
    host = image_archives.truth["host_platform"]
    assert set(store.images) == {i["id"] for i in truth}
    for want in truth:
        image = store.images[want["id"]]
        assert list(image.diff_ids) == want["diff_ids"]
        named = sorted(r.familiar for r in store.refs(image.id))
        if want["platform"] == host:
            assert named == sorted(want["names"])
            assert image.id not in store.other_platforms
        else:
            assert named == [] and image.id in store.other_platforms
    # Names as `docker load` listed them (dockerd 28.5 with the containerd store for
    # the layouts, the saving daemon for the saves).
    listed = {r.familiar for r in store.references}
    assert listed == set(image_archives.truth["sources"][source]["loaded"])


def test_the_material_is_what_the_tests_need(image_archives):
    """Preconditions the other tests rely on, asserted from how the material was built."""
    for source in SOURCES:
        for image in image_archives.images(source):
            assert len(image["diff_ids"]) == 2
    platforms = [i["platform"] for i in image_archives.images("index")]
    assert platforms == ["linux/amd64", "linux/arm64"]
    assert len(image_archives.images("multi")) == 2


def test_media_types_against_magic_bytes(image_archives):
    """skopeo 1.9 labels uncompressed layers gzip: named as a warning per blob."""
    for source, want in (("gzip", None), ("zstd", None), ("plain", "content is tar")):
        layout = image_archives.path(source, "dir")
        for layer in image_archives.images(source)[0]["layers"]:
            desc = ocispec.Descriptor(layer["mediaType"], layer["digest"], layer["size"])
            with open(layout / ocilayout.blob_path(desc.digest), "rb") as f:
                warning = ocispec.layer_mismatch(desc, f.read(ocispec.SNIFF_BYTES))
            if want is None:
                assert warning is None
            else:
                assert want in warning and desc.digest in warning


def copy_layout(image_archives, source: str, tmp_path: Path) -> Path:
    dest = tmp_path / source
    shutil.copytree(image_archives.path(source, "dir"), dest, symlinks=True)
    return dest


def test_missing_and_tampered_blobs_are_named(image_archives, tmp_path):
    layout = copy_layout(image_archives, "multi", tmp_path)
    a, b = image_archives.images("multi")
    # Image a's config edited (one byte), image b's top layer gone.
    config = layout / ocilayout.blob_path(a["id"])
    data = bytearray(config.read_bytes())
    data[-2:-1] = b" "
    config.write_bytes(bytes(data))
    (layout / ocilayout.blob_path(b["layers"][1]["digest"])).unlink()
    store = read(layout)
    assert set(store.images) == set()
    messages = [str(d) for d in store.diagnostics]
    assert len(messages) == 2
    assert any(a["id"] in m and "does not match its digest" in m for m in messages)
    assert any(b["layers"][1]["digest"] in m and "missing" in m for m in messages)


def test_a_blob_that_links_out_is_not_followed(image_archives, tmp_path):
    layout = copy_layout(image_archives, "multi", tmp_path)
    a, b = image_archives.images("multi")
    outside = tmp_path / "outside"
    outside.write_bytes((layout / ocilayout.blob_path(a["id"])).read_bytes())
    os.replace(layout / ocilayout.blob_path(a["id"]), tmp_path / "moved")
    os.symlink(outside, layout / ocilayout.blob_path(a["id"]))
    store = read(layout)
    assert set(store.images) == {b["id"]}       # image b does not use a's config
    [diag] = store.diagnostics
    assert diag.source == ocilayout.blob_path(a["id"])


def _write_blob(layout: Path, doc: dict) -> dict:
    data = json.dumps(doc).encode()
    (layout / ocilayout.blob_path(digest_of(data))).write_bytes(data)
    return {"mediaType": doc["mediaType"], "digest": digest_of(data), "size": len(data)}


def test_an_index_cycle_ends_with_a_warning(image_archives, tmp_path):
    """A cycle needs a blob that names itself, so its digest cannot match: the walk
    stops there (and a cycle of believed blobs would be caught by the stack)."""
    layout = copy_layout(image_archives, "nested", tmp_path)
    index = json.loads((layout / "index.json").read_text())
    top = index["manifests"][0]
    inner = json.loads((layout / ocilayout.blob_path(top["digest"])).read_text())
    inner["manifests"].append(dict(top, annotations={}))     # back to the top index
    desc = _write_blob(layout, inner)
    loop = {"schemaVersion": 2, "mediaType": ocispec.OCI_INDEX, "manifests": [desc]}
    # Stored under the digest the inner index points at: the file now names itself.
    (layout / ocilayout.blob_path(top["digest"])).write_text(json.dumps(loop))
    store = read(layout)
    assert store.images == {}
    assert any(top["digest"] in str(d) for d in store.diagnostics)


def test_the_walk_catches_a_cycle_it_believes(monkeypatch, image_archives, tmp_path):
    layout = copy_layout(image_archives, "nested", tmp_path)
    top = json.loads((layout / "index.json").read_text())["manifests"][0]
    path = layout / ocilayout.blob_path(top["digest"])
    doc = json.loads(path.read_text())
    doc["manifests"].append(dict(top, annotations={}))
    path.write_text(json.dumps(doc))
    real = ocilayout.read_blob
    # Believe every blob's digest, to reach the stack check.
    monkeypatch.setattr(ocilayout, "read_blob",
                        lambda root, desc, limit: root.read(ocilayout.blob_path(desc.digest),
                                                            limit) if desc.digest == top["digest"]
                        else real(root, desc, limit))
    store = read(layout)
    assert any("index cycle" in str(d) for d in store.diagnostics)
    assert len(store.images) == 2


@pytest.mark.parametrize("data", [b"", b"[]", b"{}", b'{"schemaVersion":2}',
                                  b'{"schemaVersion":2,"manifests":[{"digest":"sha256:00"}]}',
                                  b'{"schemaVersion":2,"manifests":[1]}'])
def test_documents_refused_as_malformed(data):
    for parse in (ocispec.parse_index, ocispec.parse_manifest, ocispec.parse_config):
        with pytest.raises(MalformedError):
            parse(data, "x")


@pytest.mark.parametrize("data", [b"", b"{}", b"[1]", b'[{"Config":1}]',
                                  b'[{"Config":"c","Layers":[2]}]'])
def test_manifest_json_refused_as_malformed(data):
    with pytest.raises(MalformedError):
        dockersave.parse_manifest_json(data)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_parsers_fuzzed_from_real_documents(image_archives, data):
    """Mutated or cut real documents give a value or MalformedError, nothing else."""
    layout = image_archives.path("nested", "dir")
    docs = [(ocispec.parse_index, (layout / "index.json").read_bytes()),
            (dockersave.parse_manifest_json,
             (image_archives.path("save20", "dir") / "manifest.json").read_bytes())]
    for image in image_archives.images("nested"):
        docs.append((ocispec.parse_manifest,
                     (layout / ocilayout.blob_path(image["manifest"])).read_bytes()))
        docs.append((ocispec.parse_config,
                     (layout / ocilayout.blob_path(image["id"])).read_bytes()))
    parse, doc = data.draw(st.sampled_from(docs))
    cut = data.draw(st.integers(0, len(doc)))
    at = data.draw(st.integers(0, max(0, cut - 1)))
    byte = data.draw(st.integers(0, 255))
    mutated = bytearray(doc[:cut])
    if mutated:
        mutated[at] = byte
    try:
        parse(bytes(mutated), "x")
    except MalformedError:
        pass


def test_sniff():
    assert ocispec.sniff(b"\x1f\x8b\x08\x00") == "gzip"
    assert ocispec.sniff(b"\x28\xb5\x2f\xfd\x00") == "zstd"
    assert ocispec.sniff(bytes(512)) == "tar"
    assert ocispec.sniff(b"{}") == "json"
    assert ocispec.sniff(b"\x00\x01") == "unknown"


def test_ls_lists_other_platforms_with_all_only(image_archives):
    from analyzer.engines.listing import list_images
    store = read(image_archives.path("index", "tar.zst"))
    amd64, arm64 = (i["id"] for i in image_archives.images("index"))
    assert [s.image.id for s in list_images(store, {}, all_images=False)] == [amd64]
    listed = list_images(store, {}, all_images=True)
    assert {s.image.id for s in listed} == {amd64, arm64}


@pytest.mark.parametrize("flavour", archives.FLAVOURS)
@pytest.mark.parametrize("source", SOURCES)
def test_verify_intact(image_archives, source, flavour):
    store, files = open_archive(image_archives.path(source, flavour))
    report = verify_archive(files, store, jobs=2)
    assert report.ok, report
    truth = image_archives.images(source)
    assert {i.id for i in report.images} == {i["id"] for i in truth}
    layout = image_archives.truth["sources"][source]["kind"] == "oci-layout"
    for image in report.images:
        assert image.manifest_ok is (True if layout else None)
    for want in truth:
        for diff_id, layer in zip(want["diff_ids"], want.get("layers") or [None] * 2):
            [lr] = [lr for lr in report.layers if lr.diff_id == diff_id and (
                layer is None or lr.blob.digest == layer["digest"])]
            assert lr.computed_diff_id == diff_id and lr.bytes_hashed > 0
            if layer is not None:
                assert lr.blob.digest == layer["digest"] and lr.blob.compressed_ok
                assert lr.blob.media_type == (layer["mediaType"] if layout else None)
            elif source == "save28":     # layers saved as blobs named by their diff ID
                assert lr.blob.digest == diff_id and lr.blob.compressed_ok
            else:
                assert lr.blob is None   # the legacy <id>/layer.tar has no digest of its own
    # Only skopeo's uncompressed layers labelled gzip are named, each once.
    if source == "plain":
        assert len(report.warnings) == 2
        assert all("says gzip, content is tar" in w for w in report.warnings)
    else:
        assert report.warnings == ()


def test_verify_names_a_tampered_layer_blob(image_archives, tmp_path):
    layout = copy_layout(image_archives, "multi", tmp_path)
    a, b = image_archives.images("multi")
    assert a["layers"][0] == b["layers"][0]          # the shared base: the other is a's own
    top = a["layers"][1]
    path = layout / ocilayout.blob_path(top["digest"])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    store, files = open_archive(layout)
    report = verify_archive(files, store)
    assert not report.ok
    bad = [lr for lr in report.layers if not lr.ok]
    assert [lr.blob.digest for lr in bad] == [top["digest"]]
    assert bad[0].status == "mismatch" and not bad[0].blob.compressed_ok
    assert top["digest"] in bad[0].reason
    assert all(i.ok for i in report.images)


def test_a_truncated_layer_blob_is_a_mismatch(image_archives, tmp_path):
    layout = copy_layout(image_archives, "zstd", tmp_path)
    [image] = image_archives.images("zstd")
    top = image["layers"][1]
    path = layout / ocilayout.blob_path(top["digest"])
    path.write_bytes(path.read_bytes()[:-7])
    store, files = open_archive(layout)
    [bad] = [lr for lr in verify_archive(files, store).layers if not lr.ok]
    assert bad.blob.digest == top["digest"] and "truncated" in bad.reason


def test_reclaim_a_name_frees_what_only_it_holds(image_archives):
    from analyzer.engines.archivereclaim import reclaim_entries
    layout = image_archives.path("multi", "dir")
    _, files = open_archive(image_archives.path("multi", "tar.gz"))
    a, b = image_archives.images("multi")
    assert a["layers"][0] == b["layers"][0] and a["layers"][1] != b["layers"][1]
    own = [a["manifest"], a["id"], a["layers"][1]["digest"]]
    result = reclaim_entries(files.entries(), ["a1:latest"], [])
    assert result.untagged == ("a1:latest",)
    want = sorted((ocilayout.blob_path(d), (layout / ocilayout.blob_path(d)).stat().st_size)
                  for d in own)
    assert [(b.path, b.bytes) for b in result.deleted_blobs] == want
    assert sorted(b.digest for b in result.deleted_blobs) == sorted(own)
    assert result.bytes_freed == sum(size for _, size in want)
    assert [b.path for b in result.held_blobs] == [ocilayout.blob_path(a["layers"][0]["digest"])]
    # Both names: everything goes; a name the archive does not have: nothing.
    both = reclaim_entries(files.entries(), ["a1:latest", "oci/b:1"], [])
    assert len(both.deleted_blobs) == 7 and not both.held_blobs
    assert reclaim_entries(files.entries(), ["nothere:latest"], []).bytes_freed == 0


def test_reclaim_one_tag_of_a_save_frees_nothing_until_the_last(image_archives):
    from analyzer.engines.archivereclaim import reclaim_entries
    _, files = open_archive(image_archives.path("save20", "tar"))
    assert reclaim_entries(files.entries(), ["oci/a:1"], []).bytes_freed == 0
    both = reclaim_entries(files.entries(), ["oci/a:1", "oci/a:latest"], [])
    saved = json.loads((image_archives.path("save20", "dir") / "manifest.json").read_text())
    [a] = [e for e in saved if "oci/a:1" in e["RepoTags"]]
    [b] = [e for e in saved if "oci/b:1" in e["RepoTags"]]
    assert a["Layers"][0] == b["Layers"][0] and a["Layers"][1] != b["Layers"][1]
    assert [b.path for b in both.deleted_blobs] == sorted([a["Config"], a["Layers"][1]])
    assert both.untagged == ("oci/a:1", "oci/a:latest")


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_archives_fuzzed(image_archives, tmp_path_factory, data):
    """A real archive cut short or with a byte changed gives an answer (with warnings)
    or EvidenceError, never another exception."""
    source = data.draw(st.sampled_from(["multi", "save28", "nested"]))
    flavour = data.draw(st.sampled_from(["tar", "tar.gz", "tar.zst"]))
    whole = image_archives.path(source, flavour).read_bytes()
    cut = data.draw(st.integers(0, len(whole)))
    mutated = bytearray(whole[:cut])
    if mutated:
        mutated[data.draw(st.integers(0, cut - 1))] = data.draw(st.integers(0, 255))
    path = tmp_path_factory.mktemp("fuzz") / f"a.{flavour}"
    path.write_bytes(bytes(mutated))
    try:
        store, files = open_archive(path)
        verify_archive(files, store, jobs=1)
    except EvidenceError:
        pass


# -- a layer's size once unpacked (imagearchive.unpacked_size) ---------------------------
def _layer_tar(entries: list[tuple[str, str, bytes | str]]) -> bytes:
    """A layer tar of (name, kind, content or link target) entries, end blocks included."""
    import io
    import tarfile
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, body in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            elif kind == "file":
                info.size = len(body)
                tf.addfile(info, io.BytesIO(body))
            else:
                info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                             "char": tarfile.CHRTYPE}[kind]
                info.linkname = body
                tf.addfile(info)
    return out.getvalue()


def _sizes_every_way(tmp_path: Path, tar: bytes) -> set[int]:
    """unpacked_size of the tar as gzip, zstd and plain streams, and header by header."""
    import gzip
    import zstandard
    from analyzer.sources.imagearchive import _plain_unpacked_size, unpacked_size
    got = {unpacked_size(iter([blob[i:i + 7]for i in range(0, len(blob), 7)]))
           for blob in (tar, gzip.compress(tar), zstandard.ZstdCompressor().compress(tar))}
    path = tmp_path / "layer.tar"
    path.write_bytes(b"x" * 100 + tar)
    fd = os.open(path, os.O_RDONLY)
    try:
        got.add(_plain_unpacked_size(fd, 100, len(tar)))
    finally:
        os.close(fd)
    return got


def test_unpacked_size_counts_as_directory_size_does(tmp_path):
    """moby's directory.Size of the unpacked layer: files and link targets, each file once,
    directories, devices and whiteouts nothing; a path written again counts once."""
    tar = _layer_tar([
        ("etc", "dir", b""), ("etc/passwd", "file", b"root:x:0:0\n"),        # 11
        ("bin/sh", "symlink", "/bin/busybox"),                                 # 12
        ("bin/busybox", "file", b"B" * 1000), ("bin/ls", "hardlink", "bin/busybox"),  # 1000
        ("./etc/passwd", "file", b"root\n"),                                   # 11 -> 5
        ("usr/.wh.gone", "file", b""), ("dev/null", "char", ""),
    ])
    assert _sizes_every_way(tmp_path, tar) == {5 + 12 + 1000}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c/d", "c/e"]),
                          st.sampled_from(["file", "symlink"]),
                          st.binary(max_size=300)), max_size=8))
def test_unpacked_size_is_one_answer_whatever_the_compression(tmp_path, entries):
    tar = _layer_tar([(n, k, b if k == "file" else b.hex()[:90]) for n, k, b in entries])
    want: dict[str, int] = {}
    for name, kind, body in entries:
        want[name] = len(body) if kind == "file" else len(body.hex()[:90])
    assert _sizes_every_way(tmp_path, tar) == {sum(want.values())}


@pytest.mark.parametrize("cut", ["in a member", "between members", "end blocks"])
def test_a_cut_plain_layer_is_a_fault_not_a_smaller_size(tmp_path, cut):
    import io
    import tarfile
    from analyzer.sources.imagearchive import _plain_unpacked_size
    tar = _layer_tar([("a", "file", b"A" * 5000), ("b", "file", b"B" * 5000)])
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        second = tf.getmembers()[1].offset
        end = tf.offset
    at = {"in a member": 3000, "between members": second, "end blocks": end}[cut]
    path = tmp_path / "cut.tar"
    path.write_bytes(tar[:at])
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(tarfile.TarError):
            _plain_unpacked_size(fd, 0, at)
    finally:
        os.close(fd)


# -- one read per blob: verify measures nothing, its progress ends at its total ----------

@pytest.mark.parametrize("source", ["save20", "savecd", "multi", "zstd", "plain"])
def test_verify_reads_each_blob_once_and_unpacks_nothing_to_measure(
        image_archives, monkeypatch, source):
    """Sizes (every layer decompressed) are for ls, history and inspect: verify's own
    pass is its only read of a blob, and what its progress counts ends at the total
    the bar was given."""
    from analyzer.service import ImageService
    from analyzer.sources.imagearchive import ArchiveFiles

    def measured(self, store):
        raise AssertionError("verify measured the layers")
    monkeypatch.setattr(ArchiveFiles, "measured", measured)
    reads: list[str] = []
    chunks = ArchiveFiles.chunks
    monkeypatch.setattr(ArchiveFiles, "chunks",
                        lambda self, path: (reads.append(path), chunks(self, path))[1])
    counted: list[int] = []
    with ImageService(str(image_archives.path(source, "dir")), lambda m: None) as service:
        total = service.verify_bytes(None)
        report = service.verify(None, 2, progress=counted.append)
    assert report.ok and sorted(reads) == sorted(set(reads)) and reads
    assert sum(counted) == total == sum(lr.bytes_hashed for lr in report.layers) > 0


def test_ls_measures_the_layers_verify_left_unmeasured(image_archives):
    from analyzer.service import ImageService
    with ImageService(str(image_archives.path("gzip", "dir")), lambda m: None) as service:
        read, shown = service.read_store, service.store
        assert read.images == shown.images and read.layers.keys() == shown.layers.keys()
        blobs = {c: layer.diff_size for c, layer in read.layers.items()}
        # gzip blobs: each layer's unpacked size is more than its blob's bytes.
        assert all(shown.layers[c].diff_size > blobs[c] for c in blobs)


def test_a_gzip_bomb_comes_out_a_bounded_piece_at_a_time():
    """256 KB of gzip that inflates to 256 MB is hashed in pieces of at most OUTPUT_LIMIT,
    whatever chunk it arrives in; members one after another are one stream. (256 times
    OUTPUT_LIMIT: an unbounded decoder would hand out one piece of it all, as it would
    of a bigger bomb, which would take longer only to make and hash.)"""
    import gzip
    import hashlib
    import zlib
    from analyzer import compression
    from analyzer.engines.blobverify import digest_stream
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(deflate.compress(bytes(1 << 24)) for _ in range(16)) + deflate.flush()
    blob = bomb + gzip.compress(b"tail")
    pieces = 0
    for piece in compression.Decompressed([blob]):
        assert 0 < len(piece) <= compression.OUTPUT_LIMIT
        pieces += 1
    assert pieces >= (1 << 28) // compression.OUTPUT_LIMIT
    want = hashlib.sha256()
    for _ in range(16):
        want.update(bytes(1 << 24))
    want.update(b"tail")
    got = digest_stream([blob[:1000], blob[1000:]])
    assert got.diff_id == "sha256:" + want.hexdigest() and got.uncompressed_bytes == (1 << 28) + 4
