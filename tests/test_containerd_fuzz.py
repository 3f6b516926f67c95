"""Fuzz targets for the containerd store's parsers: mutated meta.db and snapshotter
databases (real ones, written by containerd 2.1) and hostile manifests give a value or
MalformedError — never another exception, never a hang."""
from __future__ import annotations

import gzip
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.containerdmodel import Descriptor, Image, MetaStore
from analyzer.engines.containerdhistory import image_history
from analyzer.engines.containerdinspect import inspect
from analyzer.engines.containerdlisting import image_of
from analyzer.render.containerdinspect import inspect_image
from analyzer.render.history import render_history
from analyzer.errors import MalformedError
from analyzer.model import Diagnostic
from analyzer.sources.containerdcontent import read_image_content
from analyzer.sources.containerdmeta import go_time, parse_meta_db, parse_snapshotter_db

FIXTURE = Path(__file__).parent / "fixtures" / "containerd"
META = gzip.decompress((FIXTURE / "meta.db.gz").read_bytes())
SNAPSHOTS = gzip.decompress((FIXTURE / "overlayfs-metadata.db.gz").read_bytes())
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for at, value in edits:
        out[at % len(out)] = value
    return bytes(out)


def test_fixture_is_a_real_store():
    meta = parse_meta_db(META, "meta.db")
    assert {n.name for n in meta.namespaces} >= {"moby", "other"}
    assert meta.images and meta.leases and meta.snapshots and not meta.diagnostics
    snapshots, diags = parse_snapshotter_db(SNAPSHOTS, "metadata.db")
    assert snapshots and not diags


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(META) - 1), st.integers(0, 255)),
                min_size=1, max_size=40))
def test_mutated_meta_db(edits):
    try:
        meta = parse_meta_db(_mutate(META, edits), "meta.db")
    except MalformedError as exc:
        assert exc.path == "meta.db"
        return
    assert isinstance(meta, MetaStore)
    assert all(d.source == "meta.db" for d in meta.diagnostics)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(SNAPSHOTS) - 1), st.integers(0, 255)),
                min_size=1, max_size=40))
def test_mutated_snapshotter_db(edits):
    try:
        snapshots, diags = parse_snapshotter_db(_mutate(SNAPSHOTS, edits), "metadata.db")
    except MalformedError:
        return
    assert all(isinstance(k, str) for k in snapshots)


@FUZZ
@given(st.binary(max_size=40))
def test_go_time_of_any_bytes(data):
    value = go_time(data)
    assert value is None or isinstance(value, int)


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1)
                     | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.sampled_from(
                         ["mediaType", "digest", "size", "manifests", "config", "layers",
                          "platform", "os", "architecture", "rootfs", "diff_ids", "history",
                          "created", "created_by", "comment", "empty_layer", "Labels",
                          "Cmd", "Env", "type"]),
                         inner, max_size=6), max_leaves=30)


@FUZZ
@given(_JSON, _JSON, st.binary(max_size=200))
def test_hostile_manifests_and_configs(manifest, config, raw):
    """A target whose blobs hold anything: walked without an exception."""
    import orjson
    blobs = {"sha256:m": orjson.dumps(manifest), "sha256:c": orjson.dumps(config),
             "sha256:r": raw}
    target = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:m",
              "size": 10}
    if isinstance(manifest, dict):
        manifest.setdefault("config", {"digest": "sha256:c", "mediaType": "x", "size": 1})
        blobs["sha256:m"] = orjson.dumps(manifest)
    diags: list[Diagnostic] = []
    for media_type in ("application/vnd.oci.image.index.v1+json",
                       "application/vnd.oci.image.manifest.v1+json"):
        content = read_image_content({**target, "mediaType": media_type}, set(blobs),
                                     blobs.get, diags, "blob")
        assert content.content_size >= 0
        # What every view makes of it.
        record = Image("moby", "docker.io/x/y:1", Descriptor(media_type, "sha256:m", 10), {},
                       {}, None, None)
        image = image_of(record, content)
        render_history(image_history(record, image, [record], lambda chain: None),
                       human=True, no_trunc=False, quiet=False, now=0)
        inspect_image(inspect(record, [record], content, lambda chain: None), [])
