"""The layer store's records checked in bulk (analyzer.layerrecords, _csrc/layerrecords.c).

The spec is the Python loader (sources/graphdriver.py ``_Loader.layer``): a record found
plain must be one it takes without a word, as the same Layer; whatever is not plain goes
to it. Held three ways: the extension and its twin give the same answers for any
record; each plain record is what the loader makes of it, silently; and a real data
root with one of its layer files damaged loads to the same store and the same warnings
with the check as without it (every record handed to the loader).
"""
from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import _layerrecords_py
from analyzer.errors import EvidenceError
from analyzer.sources import graphdriver, layout
from analyzer.sources.evidence.directory import DirectoryRoot

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample-root.tar.gz"
PROPERTY = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

DIFF = "sha256:" + hashlib.sha256(b"diff").hexdigest()
PARENT = "sha256:" + hashlib.sha256(b"parent").hexdigest()
CHAIN = hashlib.sha256(f"{PARENT} {DIFF}".encode()).hexdigest()
UNREAD = EvidenceError("image/overlay2/layerdb/sha256/x/size", "permission denied")
SPACE = st.sampled_from([b"", b" ", b"\n", b"\t\r\n", b"\x0b\x0c", b"\x1c", b"\xc2\x85",
                         b"\xc2\xa0", b"\0"])


def variants(value: bytes) -> st.SearchStrategy[bytes | None | EvidenceError]:
    """A file's content as a sound store writes it, padded or damaged."""
    padded = st.tuples(SPACE, SPACE).map(lambda ends: ends[0] + value + ends[1])
    flipped = st.tuples(st.integers(0, max(len(value) - 1, 0)), st.integers(0, 255)).map(
        lambda f: value[:f[0]] + bytes([f[1]]) + value[f[0] + 1:])
    damaged = st.one_of(flipped, st.just(value.upper()), st.just(value[:-1]), st.none(),
                        st.just(UNREAD), st.binary(max_size=80),
                        st.sampled_from([b"", b".", b"..", b"a/b", b"+5", b"-0", b"007",
                                         b"9" * 18, b"9" * 19, b"sha256:", b"\xff\xfe"]))
    # Sound more often than not, so that whole records often are.
    return st.integers(0, 9).flatmap(lambda k: st.just(value) if k < 6 else padded if k < 8
                                     else damaged)


@st.composite
def records(draw) -> tuple[str, list]:
    """(directory name, [diff, size, cache-id, parent]): a base or a child record."""
    base = draw(st.booleans())
    hexid = DIFF[7:] if base else CHAIN
    if draw(st.integers(0, 3)) == 0:
        hexid = draw(st.sampled_from([CHAIN if base else DIFF[7:], hexid[:63], hexid.upper()]))
    row = [draw(variants(DIFF.encode())), draw(variants(b"1234")),
           draw(variants(b"3f2e1d0c9b8a")),
           draw(st.none() | variants(PARENT.encode())) if base else draw(variants(PARENT.encode()))]
    return hexid, row


@pytest.fixture
def plain_layers(backend):
    return backend.plain_layers


@PROPERTY
@given(rows=st.lists(records(), max_size=6))
def test_extension_and_twin_agree(plain_layers, rows):
    hexids = [hexid for hexid, _ in rows]
    files = [item for _, row in rows for item in row]
    assert plain_layers(hexids, files) == _layerrecords_py.plain_layers(hexids, files)


@PROPERTY
@given(record=records())
def test_a_plain_record_is_what_the_loader_takes_silently(plain_layers, record):
    hexid, row = record
    loader = graphdriver._Loader(None, "overlay2")
    spec = loader.layer(hexid, graphdriver.texts(row, layout.LAYER_FILES))
    [plain] = plain_layers([hexid], row)
    if plain is not None:
        assert loader.diagnostics == []
        assert spec == graphdriver._Loader(None, "overlay2").plain_layer(hexid, *plain)


def test_sound_records_are_plain(plain_layers):
    row = [f"{DIFF}\n".encode(), b"1234", b"3f2e1d0c9b8a", PARENT.encode()]
    base = [DIFF.encode(), None, b"c", None]
    assert plain_layers([CHAIN, DIFF[7:]], row + base) == [
        (DIFF, 1234, "3f2e1d0c9b8a", PARENT), (DIFF, 0, "c", None)]
    with pytest.raises(ValueError):
        plain_layers([CHAIN], row[:3])


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    top = tmp_path_factory.mktemp("layerrecords")
    with tarfile.open(SAMPLE) as tf:
        tf.extractall(top, filter="tar")
    return top


def layer_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "image/overlay2/layerdb/sha256").glob("*/*")
                  if p.name in layout.LAYER_FILES)


def load(root: Path, monkeypatch, *, check: bool):
    """The store and its warnings, with the check or with every record left to the loader."""
    with monkeypatch.context() as m:
        if not check:
            m.setattr(graphdriver, "plain_layers", lambda names, got: [None] * len(names))
        store = graphdriver.read_graphdriver_store(DirectoryRoot(str(root)), "overlay2")
    return store.layers, store.images, store.diagnostics


def test_a_sound_store_is_read_plain(sample, monkeypatch):
    names = sorted(p.name for p in (sample / "image/overlay2/layerdb/sha256").iterdir())
    got = [(sample / "image/overlay2/layerdb/sha256" / n / f).read_bytes()
           if (sample / "image/overlay2/layerdb/sha256" / n / f).exists() else None
           for n in names for f in layout.LAYER_FILES]
    assert None not in graphdriver.plain_layers(names, got)
    assert load(sample, monkeypatch, check=True) == load(sample, monkeypatch, check=False)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damage_is_read_and_warned_of_as_the_loader_does(sample, monkeypatch, data):
    path = data.draw(st.sampled_from(layer_files(sample)))
    original = path.read_bytes()
    damaged = data.draw(variants(original.strip()).filter(lambda v: isinstance(v, bytes)))
    path.write_bytes(damaged)
    try:
        assert load(sample, monkeypatch, check=True) == load(sample, monkeypatch, check=False)
    finally:
        path.write_bytes(original)
