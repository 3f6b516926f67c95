"""The native parsers of evidence under libFuzzer with AddressSanitizer and UBSan: the
tar-split scan (_csrc/tarsplit.c), fed mutations of real tar-split files (those dockerd
wrote in examples/sample-root.tar.gz) and of one naming the fuzz target's own layer
files; and the layer store's record check (_csrc/layerrecords.c); each for a bounded
time. Fails when the fuzzer finds a crash, a leak or undefined
behaviour (its report is shown). Needs clang (Debian package ``clang``)."""
from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import tarfile
from pathlib import Path

from tests.layerdir import layer_tar, tar_split_lines

REPO = Path(__file__).resolve().parents[1]
CSRC = REPO / "analyzer" / "_csrc"
TARGET = REPO / "tests" / "fuzz" / "tarsplit_scan.c"
SAMPLE = REPO / "examples" / "sample-root.tar.gz"
SECONDS = 60
MAX_LEN = 16384
# The fuzz target's layer (LAYER in tarsplit_scan.c).
LAYER = {"a": b"hello\n", "d/b": b"0123456789abcdef", "d/e": b""}


def build(out: Path, target: Path = TARGET) -> Path:
    clang = shutil.which("clang")
    assert clang, "clang is needed to build the fuzz target (apt-get install clang)"
    binary = out / target.stem
    subprocess.run([clang, "-g", "-O1", "-fsanitize=fuzzer,address,undefined",
                    "-fno-sanitize-recover=undefined", f"-I{CSRC}", str(target),
                    *map(str, sorted(CSRC.glob("*.c"))), "-o", str(binary), "-lpthread"],
                   check=True, capture_output=True, timeout=600)
    return binary


def seeds(corpus: Path, scratch: Path) -> None:
    """Real tar-split text (cut to MAX_LEN at a line's end), and the tar-split of the
    target's own layer, behind the first byte (the scan's starting padding: none; the
    target's layer read ahead by the scan's reader thread, and not)."""
    corpus.mkdir()
    with tarfile.open(SAMPLE) as tf:
        for n, member in enumerate(m for m in tf if m.name.endswith("/tar-split.json.gz")):
            text = gzip.decompress(tf.extractfile(member).read())
            (corpus / f"sample-{n}").write_bytes(b"\0" + text[:text.rfind(b"\n", 0, MAX_LEN - 1) + 1])
    layer = scratch / "seed-layer"
    for name, data in LAYER.items():
        (layer / name).parent.mkdir(parents=True, exist_ok=True)
        (layer / name).write_bytes(data)
        (layer / name).chmod(0o644)
    (layer / "d").chmod(0o755)
    own = tar_split_lines(layer_tar(layer))
    (corpus / "own-layer").write_bytes(b"\0" + own)
    (corpus / "own-layer-ahead").write_bytes(b"\4" + own)
    # The stream scan (first byte's bit 3): the layer's tar, ustar and PAX (mtime records).
    (corpus / "own-stream").write_bytes(b"\x08" + layer_tar(layer))
    (corpus / "own-stream-pax").write_bytes(b"\x09" + layer_tar(layer, form=tarfile.PAX_FORMAT))


def test_tarsplit_scan_survives_the_fuzzer(tmp_path):
    binary = build(tmp_path)
    seeds(tmp_path / "corpus", tmp_path)
    (tmp_path / "layer").mkdir()
    result = subprocess.run(
        [str(binary), f"-max_total_time={SECONDS}", f"-max_len={MAX_LEN}", "-timeout=30",
         "-rss_limit_mb=2048", "-seed=1", "-print_final_stats=1", str(tmp_path / "corpus")],
        cwd=tmp_path, env={"TARSPLIT_FUZZ_LAYER": str(tmp_path / "layer"),
                           "ASAN_OPTIONS": "detect_leaks=1", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=SECONDS + 600)
    assert result.returncode == 0, result.stderr[-6000:]
    assert "stat::number_of_executed_units" in result.stderr


RECORDS_TARGET = REPO / "tests" / "fuzz" / "layer_records.c"
RECORDS_SECONDS = 20    # a pure function of a few hundred bytes: it covers fast


def test_layer_records_survive_the_fuzzer(tmp_path):
    """The layer store's record check (_csrc/layerrecords.c), fed mutations of a sound
    base record and a sound child record (tests/test_layerrecords.py has their makings)."""
    binary = build(tmp_path, RECORDS_TARGET)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    diff = "sha256:" + hashlib.sha256(b"diff").hexdigest()
    parent = "sha256:" + hashlib.sha256(b"parent").hexdigest()
    chain = hashlib.sha256(f"{parent} {diff}".encode()).hexdigest()
    (corpus / "base").write_bytes(b"\xfe".join([diff[7:].encode(), diff.encode() + b"\n",
                                                 b"1234", b"3f2e1d0c9b8a"]))
    (corpus / "child").write_bytes(b"\xfe".join([chain.encode(), diff.encode(), b"0",
                                                  b"cache", parent.encode()]))
    result = subprocess.run(
        [str(binary), f"-max_total_time={RECORDS_SECONDS}", "-max_len=512", "-timeout=30",
         "-rss_limit_mb=2048", "-seed=1", "-print_final_stats=1", str(corpus)],
        cwd=tmp_path, env={"ASAN_OPTIONS": "detect_leaks=1", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=RECORDS_SECONDS + 600)
    assert result.returncode == 0, result.stderr[-6000:]
    assert "stat::number_of_executed_units" in result.stderr
