"""Fuzz targets for the graph-driver store's files, read through the source boundary
(issue 10 class 10): repositories.json, image configs and their metadata, the layer
store's files, container mounts and container configs.

One file of the sample root at a time is damaged — a JSON value swapped for any other
(wrong type, huge number, deep nesting), a key dropped, the bytes cut or flipped, or
garbage — and the root is read and answered as the commands answer: ``ls -a``, ``ps
-a``, ``history`` and ``inspect`` of every image, ``prune -a`` and ``df -v``, each
rendered. The invariant: an answer, or one of the documented errors (AnalyzerError);
never another exception, never a hang (a loop is stopped by an alarm far above any
run's length, so load cannot make it fail).
"""
from __future__ import annotations

import hashlib
import json
import signal
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.errors import AnalyzerError
from analyzer.goapi.json import marshal_indent
from analyzer.render.containers import render_ps
from analyzer.render.df import render_verbose
from analyzer.render.history import render_history
from analyzer.render.images import render_images
from analyzer.render.inspect import inspect_image
from analyzer.service import ImageService

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample-root.tar.gz"
NOW = 1_800_000_000.0
HANG = 120      # seconds: one example takes well under one, even on two busy cores
FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    top = tmp_path_factory.mktemp("fuzz-root")
    with tarfile.open(SAMPLE) as tf:
        tf.extractall(top, filter="tar")
    return top


def targets(root: Path) -> list[list[str]]:
    """The files of the store's model, relative to the root, by kind (each kind is drawn
    as often as the others; tar-split is verify's, fuzzed in test_tarsplit)."""
    image = root / "image/overlay2"

    def files(top: Path, pattern: str = "*") -> list[str]:
        return [str(p.relative_to(root)) for p in sorted(top.rglob(pattern))
                if p.is_file() and not p.name.endswith(".gz")]
    return [[str((image / "repositories.json").relative_to(root))],
            files(image / "imagedb/content/sha256"), files(image / "imagedb/metadata/sha256"),
            files(image / "layerdb/sha256"), files(image / "layerdb/mounts"),
            files(root / "containers", "*.json")]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=12) | st.sampled_from(["", "sha256:", "sha256:" + "a" * 64, "../x",
                                             "0001-01-01T00:00:00Z", "-1"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=12)


def _paths(doc, prefix=()):
    """Every (path, value) in a JSON document, the document itself first."""
    yield prefix, doc
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) \
        if isinstance(doc, list) else ()
    for key, value in items:
        yield from _paths(value, (*prefix, key))


def _replace(doc, path, value):
    if not path:
        return value
    holder = doc
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    return doc


@st.composite
def damage(draw, original: bytes) -> bytes:
    kind = draw(st.sampled_from(["value", "drop", "bytes", "garbage"]))
    try:
        doc = json.loads(original)
    except ValueError:
        doc = None
    if kind in ("value", "drop") and isinstance(doc, (dict, list)):
        paths = [p for p, _ in _paths(doc)]
        path = draw(st.sampled_from(paths))
        if kind == "drop" and path:
            holder = doc
            for key in path[:-1]:
                holder = holder[key]
            del holder[path[-1]]
        else:
            doc = _replace(doc, path, draw(JSON_VALUES))
        return json.dumps(doc).encode()
    if kind == "garbage":
        return draw(st.binary(max_size=300))
    cut = draw(st.integers(0, len(original)))
    out = bytearray(original[:cut])
    for _ in range(draw(st.integers(0, 3))):
        if out:
            out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
    return bytes(out)


def answer(root: Path) -> None:
    """What ls -a, ps -a, history, inspect, prune -a and df -v compute and print."""
    with ImageService(str(root), lambda message: None) as service:
        store = service.store
        render_images(service.images({}, True, NOW), quiet=False, digests=True,
                      no_trunc=False, fmt="table", now=NOW)
        ctrs = service.containers({}, True, -1)
        render_ps(store, ctrs, quiet=False, no_trunc=True, fmt="table", now=NOW,
                  sizes=service.container_sizes(ctrs))
        for image in store.images.values():
            render_history(service.history(image.id), human=True, no_trunc=False, quiet=False,
                           now=NOW, fmt="table")
            marshal_indent([inspect_image(store, image, service.driver_metadata(image),
                                          service.layer_allocated(image))])
        service.image_prune(True, [], NOW)
        render_verbose(service.store_with_build_cache, service.disk_usage(NOW), NOW)


def _alarm(signum, frame):
    raise AssertionError(f"still reading after {HANG}s: a loop?")


class Edits:
    """Files changed in the shared root, put back as they were afterwards."""

    def __init__(self) -> None:
        self.saved: dict[Path, bytes | None] = {}

    def write(self, path: Path, data: bytes) -> None:
        if path not in self.saved:
            self.saved[path] = path.read_bytes() if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def remove(self, path: Path) -> None:
        self.saved.setdefault(path, path.read_bytes())
        path.unlink()

    def restore(self) -> None:
        for path, data in self.saved.items():
            if data is None:
                path.unlink()
            else:
                path.write_bytes(data)
        for path in self.saved:
            if not path.parent.exists() or any(path.parent.iterdir()):
                continue
            path.parent.rmdir()          # a metadata directory made for a forged config


def forge(root: Path, edits: Edits, rel: str, data: bytes) -> None:
    """Damage a file; an image config is filed under its new digest, with its references
    and metadata, as a forger would (or dockerd would skip it for its digest alone)."""
    path = root / rel
    content = "image/overlay2/imagedb/content/sha256/"
    if not rel.startswith(content):
        edits.write(path, data)
        return
    old, new = rel[len(content):], hashlib.sha256(data).hexdigest()
    if old == new:
        return
    edits.remove(path)
    edits.write(path.with_name(new), data)
    repos = root / "image/overlay2/repositories.json"
    edits.write(repos, repos.read_bytes().replace(old.encode(), new.encode()))
    meta = root / "image/overlay2/imagedb/metadata/sha256"
    for item in sorted((meta / old).glob("*")) if (meta / old).is_dir() else ():
        edits.write(meta / new / item.name, item.read_bytes())


@FUZZ
@given(st.data())
def test_one_damaged_file_gives_an_answer_or_a_documented_error(root, data):
    rel = data.draw(st.sampled_from(data.draw(st.sampled_from(targets(root)))))
    edits = Edits()
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        forge(root, edits, rel, data.draw(damage((root / rel).read_bytes())))
        signal.alarm(HANG)
        answer(root)
    except AnalyzerError:
        pass
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        edits.restore()


def test_the_sample_answers_undamaged(root):
    """The fuzz target reads the whole model: every image, container and layer."""
    answer(root)
    with ImageService(str(root), lambda message: None) as service:
        store = service.store
        assert len(store.images) == 7 and len(store.containers) == 2
        assert not service.diagnostics
    assert all(targets(root)) and sum(map(len, targets(root))) > 50


def test_a_forged_config_is_read(root):
    """Damage to an image config reaches the model: filed under its digest, it is read."""
    rel = targets(root)[1][0]
    doc = json.loads((root / rel).read_bytes())
    doc["config"] = {**(doc.get("config") or {}), "Labels": {"forged": "yes"}}
    data = json.dumps(doc).encode()
    edits = Edits()
    try:
        forge(root, edits, rel, data)
        with ImageService(str(root), lambda message: None) as service:
            image = service.store.images["sha256:" + hashlib.sha256(data).hexdigest()]
            assert image.config["config"]["Labels"] == {"forged": "yes"}
            assert not service.diagnostics
            assert len(service.store.images) == 7
    finally:
        edits.restore()
    assert (root / rel).read_bytes() != data


def test_bytes_that_are_not_utf8_in_every_small_file(root):
    """Each of the layer store's, mounts' and image metadata's files holding bytes that
    are not UTF-8 (a name keeps them; a digest or number with them is none)."""
    kinds = targets(root)
    for rel in [*kinds[2], *kinds[3], *kinds[4]]:
        edits = Edits()
        try:
            edits.write(root / rel, b"\x80sha256:\xff")
            answer(root)
        except AnalyzerError:
            pass
        finally:
            edits.restore()
