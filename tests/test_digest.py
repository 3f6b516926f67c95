"""The digest backends against hashlib and a bit-by-bit CRC-64/GO-ISO.

Every parity test runs on the native module with the CPU's accelerated paths, on the
native module forced to its portable C, and on the pure-Python twin.
"""
from __future__ import annotations

import array
import base64
import errno
import functools
import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import _fastdigest, _native_py
from tests.conftest import DEFAULT_PORTABLE

REPO = Path(__file__).resolve().parents[1]

# Boundaries inside the native code: 64-byte SHA blocks and 16-byte CRC folds, the 16 KiB
# pieces of the unfused path (_csrc/fastdigest.c CACHE_CHUNK), hash_fd's 256 KiB reads and
# its mapped windows for regions of 1 MiB or more (_csrc/hashfd.c).
CACHE_CHUNK = 16 * 1024
READ_SIZE = 256 * 1024
MAP_MIN = 1024 * 1024
MAP_WINDOW = 16 * 1024 * 1024

ISO_REFLECTED = 0xD800000000000000
MASK = (1 << 64) - 1

HYPOTHESIS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


def crc64_bitwise(data: bytes, crc: int = 0) -> int:
    """Go's crc64.Update, one bit at a time, straight from the definition."""
    crc ^= MASK
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (ISO_REFLECTED if crc & 1 else 0)
    return crc ^ MASK


BYTE_TABLE = [crc64_bitwise(bytes([b]), MASK) ^ MASK for b in range(256)]


def crc64_bytewise(data: bytes, crc: int = 0) -> int:
    """The same with the one-byte table (fast enough for megabytes)."""
    crc ^= MASK
    for byte in data:
        crc = BYTE_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ MASK


def random_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.fixture
def native():
    _fastdigest.set_portable(False)
    try:
        yield _fastdigest
    finally:
        _fastdigest.set_portable(DEFAULT_PORTABLE)


def sha256_of(backend, *chunks) -> bytes:
    sha = backend.Sha256()
    for chunk in chunks:
        sha.update(chunk)
    return sha.digest()


# --- known values -------------------------------------------------------------------------

def test_reference_crc_known_values():
    assert crc64_bitwise(b"123456789") == 0xB90956C775A41001
    assert crc64_bytewise(b"123456789") == 0xB90956C775A41001


def test_known_vectors(backend):
    assert backend.crc64_iso(b"") == 0
    assert backend.crc64_iso(b"123456789") == 0xB90956C775A41001   # CRC-64/GO-ISO check
    # tar-split tar/asm/assemble_test.go: the payloads of its two sample files
    for text, payload in [("imma hurr til I derp", "AnSksavsa04="),
                          ("café con leche, por favor", "fkhZ7+b8oLs=")]:
        crc = backend.crc64_iso(text.encode())
        assert base64.b64encode(crc.to_bytes(8, "big")).decode() == payload
    assert sha256_of(backend) == hashlib.sha256(b"").digest()
    assert sha256_of(backend, b"abc").hex() == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


# --- parity on fixed sizes ----------------------------------------------------------------

EDGE_SIZES = [0, 1, 7, 8, 9, 15, 16, 17, 55, 56, 63, 64, 65, 127, 128, 129, 191, 192, 193,
              1000, 2047, 2048, 4096, CACHE_CHUNK - 1, CACHE_CHUNK, CACHE_CHUNK + 1, 65536 + 17]


@pytest.mark.parametrize("size", EDGE_SIZES)
def test_edge_sizes(backend, size):
    data = random_bytes(size, seed=size)
    assert backend.crc64_iso(data) == crc64_bitwise(data)
    assert backend.crc64_iso(data, 0x0123456789ABCDEF) == crc64_bitwise(data, 0x0123456789ABCDEF)
    assert sha256_of(backend, data) == hashlib.sha256(data).digest()


@functools.cache
def megabytes(size: int) -> tuple[bytes, int, bytes]:
    data = random_bytes(size, seed=size)
    return data, crc64_bytewise(data), hashlib.sha256(data).digest()


@pytest.mark.parametrize("size", [3 * READ_SIZE + 5, 5 * 1024 * 1024 + 3])
def test_several_megabytes(backend, size):
    data, crc, sha256 = megabytes(size)
    assert backend.crc64_iso(data) == crc
    assert sha256_of(backend, data) == sha256


def test_all_ones_and_zeros(backend):
    for data in (bytes(100_000), b"\xff" * 100_000):
        assert backend.crc64_iso(data) == crc64_bytewise(data)
        assert sha256_of(backend, data) == hashlib.sha256(data).digest()


def test_any_buffer(backend):
    data = random_bytes(5000, seed=1)
    words = array.array("Q", data[:4992])
    for buf in (bytearray(data), memoryview(data)[3:], memoryview(bytearray(data))[:-1], words):
        raw = bytes(buf)
        assert backend.crc64_iso(buf) == crc64_bitwise(raw)
        assert sha256_of(backend, buf) == hashlib.sha256(raw).digest()


def test_bad_arguments(backend):
    with pytest.raises(TypeError):
        backend.crc64_iso("text")
    with pytest.raises(TypeError):
        backend.Sha256().update("text")
    with pytest.raises(OverflowError):
        backend.crc64_iso(b"x", -1)
    with pytest.raises(OverflowError):
        backend.crc64_iso(b"x", 1 << 64)
    assert backend.crc64_iso(b"x", MASK) == crc64_bitwise(b"x", MASK)


# --- streaming ----------------------------------------------------------------------------

def test_digest_does_not_finalize(backend):
    sha = backend.Sha256()
    sha.update(b"a" * 100)
    first = sha.digest()
    assert sha.digest() == first
    sha.update(b"b" * 30)
    assert first == hashlib.sha256(b"a" * 100).digest()
    assert sha.digest() == hashlib.sha256(b"a" * 100 + b"b" * 30).digest()


def test_copy_is_independent(backend):
    sha = backend.Sha256()
    sha.update(b"x" * 70)
    other = sha.copy()
    other.update(b"y")
    sha.update(b"z")
    assert sha.digest() == hashlib.sha256(b"x" * 70 + b"z").digest()
    assert other.digest() == hashlib.sha256(b"x" * 70 + b"y").digest()


@HYPOTHESIS
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=8))
def test_chunked_equals_one_shot(backend, data, cuts):
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    chunks = [data[a:b] for a, b in zip(bounds, bounds[1:])]
    crc = 0
    for chunk in chunks:
        crc = backend.crc64_iso(chunk, crc)
    assert crc == backend.crc64_iso(data) == crc64_bitwise(data)
    assert sha256_of(backend, *chunks) == sha256_of(backend, data) == hashlib.sha256(data).digest()


# --- hash_fd ------------------------------------------------------------------------------

BIG_SIZE = 3 * 1024 * 1024 + 5


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    data = random_bytes(BIG_SIZE, seed=7)
    path = tmp_path_factory.mktemp("digest") / "big"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    yield fd, data
    os.close(fd)


# (offset, length): read-size and block boundaries, whole file, and a read past the end.
SLICES = [(0, -1), (0, 0), (0, 1), (1, 63), (5, 64), (7, 65), (0, CACHE_CHUNK - 1),
          (3, CACHE_CHUNK + 1), (0, READ_SIZE - 1), (1, READ_SIZE), (2, READ_SIZE + 1),
          (100, 2 * READ_SIZE + 63), (5, MAP_MIN - 1), (4095, MAP_MIN), (4097, -1),
          (0, BIG_SIZE), (BIG_SIZE - MAP_MIN - 7, 2 * MAP_MIN), (BIG_SIZE - 10, 100),
          (BIG_SIZE + 5, 10)]
_reference_crcs: dict[tuple[int, int], int] = {}


def reference_crc(data: bytes, offset: int, length: int) -> int:
    if (offset, length) not in _reference_crcs:
        end = len(data) if length < 0 else offset + length
        _reference_crcs[offset, length] = crc64_bytewise(data[offset:end])
    return _reference_crcs[offset, length]


@pytest.mark.parametrize("offset,length", SLICES)
@pytest.mark.parametrize("prefix", [b"", b"p" * 37])
def test_hash_fd_slices(backend, big_file, offset, length, prefix):
    fd, data = big_file
    want = data[offset:] if length < 0 else data[offset:offset + length]
    sha = backend.Sha256()
    sha.update(prefix)                     # leaves a partial block before the file's bytes
    crc, nread = backend.hash_fd(fd, offset, length, sha)
    assert nread == len(want)
    assert crc == reference_crc(data, offset, length)
    assert sha.digest() == hashlib.sha256(prefix + want).digest()


def test_hash_fd_without_sha(backend, big_file):
    fd, data = big_file
    assert backend.hash_fd(fd, 1, READ_SIZE, None) == (reference_crc(data, 1, READ_SIZE), READ_SIZE)


@pytest.fixture(scope="module")
def huge_file(tmp_path_factory):
    """More than one mapped window, with its CRC from the portable C (tested above)."""
    data = random_bytes(MAP_WINDOW + 3 * MAP_MIN + 5, seed=11)
    path = tmp_path_factory.mktemp("digest") / "huge"
    path.write_bytes(data)
    _fastdigest.set_portable(True)
    try:
        crc_of = {key: _fastdigest.crc64_iso(data[key[0]:key[1]])
                  for key in [(0, len(data)), (4095, len(data)), (1, MAP_WINDOW + 1),
                              (MAP_WINDOW - 3, MAP_WINDOW - 3 + MAP_MIN)]}
    finally:
        _fastdigest.set_portable(DEFAULT_PORTABLE)
    fd = os.open(path, os.O_RDONLY)
    yield fd, data, crc_of
    os.close(fd)


@pytest.mark.parametrize("portable", [False, True], ids=["native", "native-portable"])
@pytest.mark.parametrize("offset,length", [(0, -1), (4095, -1), (1, MAP_WINDOW),
                                           (MAP_WINDOW - 3, MAP_MIN)])
def test_hash_fd_across_windows(huge_file, portable, offset, length):
    fd, data, crc_of = huge_file
    end = len(data) if length < 0 else offset + length
    _fastdigest.set_portable(portable)
    try:
        sha = _fastdigest.Sha256()
        sha.update(b"q")
        got = _fastdigest.hash_fd(fd, offset, length, sha)
    finally:
        _fastdigest.set_portable(DEFAULT_PORTABLE)
    assert got == (crc_of[offset, end], end - offset)
    assert sha.digest() == hashlib.sha256(b"q" + data[offset:end]).digest()


@HYPOTHESIS
@given(data=st.binary(max_size=2000), prefix=st.binary(max_size=130),
       offset=st.integers(0, 2100), length=st.integers(-1, 2100))
def test_hash_fd_any_file(backend, tmp_path, data, prefix, offset, length):
    path = tmp_path / "f"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        sha = backend.Sha256()
        sha.update(prefix)
        crc, nread = backend.hash_fd(fd, offset, length, sha)
    finally:
        os.close(fd)
    want = data[offset:] if length < 0 else data[offset:offset + length]
    assert (crc, nread) == (crc64_bitwise(want), len(want))
    assert sha.digest() == hashlib.sha256(prefix + want).digest()



# --- compare_fd ---------------------------------------------------------------------------

@HYPOTHESIS
@given(data=st.binary(max_size=2000), want=st.binary(max_size=2100), offset=st.integers(0, 2100),
       crc=st.integers(0, MASK), flip=st.integers(-1, 2099))
def test_compare_fd_any_file(backend, tmp_path, data, want, offset, crc, flip):
    """What the file holds from offset, as far as it goes, against want: its CRC-64 and
    the first byte that differs; flip makes want the file's own bytes but for one."""
    path = tmp_path / "f"
    path.write_bytes(data)
    held = data[offset:offset + len(want)]
    if flip >= 0:
        want = bytearray(data[offset:])
        if flip < len(want):
            want[flip] ^= 0x5A
        want = bytes(want)
        held = data[offset:]
    fd = os.open(path, os.O_RDONLY)
    try:
        got = backend.compare_fd(fd, offset, memoryview(want), crc)
    finally:
        os.close(fd)
    differs = next((i for i, (a, b) in enumerate(zip(held, want)) if a != b), -1)
    assert got == (len(held), crc64_bitwise(held, crc), differs)


@pytest.mark.parametrize("at", [0, 1, READ_SIZE - 1, READ_SIZE, BIG_SIZE - 1])
def test_compare_fd_across_reads(backend, big_file, at):
    fd, data = big_file
    assert backend.compare_fd(fd, 0, data) == (BIG_SIZE, reference_crc(data, 0, -1), -1)
    changed = bytearray(data)
    changed[at] ^= 1
    assert backend.compare_fd(fd, 0, changed) == (BIG_SIZE, reference_crc(data, 0, -1), at)
    assert backend.compare_fd(fd, 5, data[5:] + b"past the end")[::2] == (BIG_SIZE - 5, -1)


def test_compare_fd_errors(backend, tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(IsADirectoryError):
            backend.compare_fd(fd, 0, b"x")
        with pytest.raises(ValueError):
            backend.compare_fd(fd, -1, b"x")
    finally:
        os.close(fd)

def test_hash_fd_errors(backend, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"data")
    fd = os.open(path, os.O_RDONLY)
    os.close(fd)
    with pytest.raises(OSError) as raised:
        backend.hash_fd(fd, 0, -1, None)
    assert raised.value.errno == errno.EBADF
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(IsADirectoryError):
            backend.hash_fd(dir_fd, 0, -1, backend.Sha256())
    finally:
        os.close(dir_fd)
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(OSError) as raised:
            backend.hash_fd(read_end, 0, 10, None)
        assert raised.value.errno == errno.ESPIPE
    finally:
        os.close(read_end)
        os.close(write_end)
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(ValueError):
            backend.hash_fd(fd, -1, 10, None)
        with pytest.raises(ValueError):
            backend.hash_fd(fd, 0, -2, None)
        with pytest.raises(TypeError):
            backend.hash_fd(fd, 0, -1, hashlib.sha256())
    finally:
        os.close(fd)


@pytest.mark.parametrize("hashers", [1, 2])
def test_hash_fd_survives_truncation(native, tmp_path, hashers):
    # Big regions are hashed through a mapping, where a file that shrinks faults with SIGBUS
    # instead of reading short: hash_fd must still return what it read, and nothing else.
    # One thread hashing gets a helper that populates the mapping ahead of it (when the
    # machine has a CPU to spare), and the cut lands in what it populated; with two
    # threads at once on two CPUs, neither does.
    data = random_bytes(1 << 20, seed=5) * 96          # ~55 ms of hashing
    cut_short = 0
    for attempt in range(5):
        paths = [tmp_path / f"shrinking{attempt}-{i}" for i in range(hashers)]
        results: dict[int, tuple[int, int]] = {}
        shas = [native.Sha256() for _ in paths]
        fds = []
        for path in paths:
            path.write_bytes(data)
            fds.append(os.open(path, os.O_RDONLY))
        workers = [threading.Thread(target=lambda i=i: results.update(
            {i: native.hash_fd(fds[i], 0, -1, shas[i])})) for i in range(hashers)]
        for worker in workers:
            worker.start()
        time.sleep(0.01)
        for path in paths:
            os.truncate(path, 1 << 20)
        for worker in workers:
            worker.join()
        for i, fd in enumerate(fds):
            os.close(fd)
            crc, nread = results[i]
            assert crc == native.crc64_iso(data[:nread])
            assert shas[i].digest() == hashlib.sha256(data[:nread]).digest()
            cut_short += (1 << 20) < nread < len(data)      # cut in mid-file: the SIGBUS path
        if cut_short:
            break
    else:
        pytest.fail("the truncation never landed while hashing")


def test_hash_fd_leaves_no_thread(native, tmp_path):
    # The helper that populates a big window ahead of the hashing ends with the window,
    # also when the file ends early.
    data = random_bytes(1 << 20, seed=6) * 40
    path = tmp_path / "big"
    path.write_bytes(data)
    before = set(os.listdir("/proc/self/task"))
    fd = os.open(path, os.O_RDONLY)
    try:
        for offset, length in [(0, -1), (5, 3 * MAP_WINDOW), (MAP_WINDOW - 1, -1)]:
            sha = native.Sha256()
            end = len(data) if length < 0 else min(len(data), offset + length)
            assert native.hash_fd(fd, offset, length, sha) == (
                native.crc64_iso(data[offset:end]), end - offset)
            assert sha.digest() == hashlib.sha256(data[offset:end]).digest()
    finally:
        os.close(fd)
    # threads of earlier tests may have ended since; none may have been left behind
    assert set(os.listdir("/proc/self/task")) <= before


def test_other_sigbus_still_kills(tmp_path):
    # The SIGBUS handler takes only faults in hash_fd's own window.
    code = """if True:
        import mmap, os, sys
        from analyzer import _fastdigest
        path = sys.argv[1]
        with open(path, "wb") as f:
            f.write(b"x" * 8192)
        with open(path, "rb") as f:
            view = mmap.mmap(f.fileno(), 8192, prot=mmap.PROT_READ)
        os.truncate(path, 0)
        print(view[4096])
    """
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "f")], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == -signal.SIGBUS, result.stderr


# --- threads ------------------------------------------------------------------------------

def test_threads_in_parallel(backend, tmp_path):
    contents = [random_bytes(READ_SIZE * 2 + 1000 * i + 1, seed=100 + i) for i in range(4)]
    results: dict[int, tuple] = {}

    def work(i: int) -> None:
        path = tmp_path / f"f{i}"
        path.write_bytes(contents[i])
        fd = os.open(path, os.O_RDONLY)
        try:
            for _ in range(3):
                sha = backend.Sha256()
                results.setdefault(i, set()).add((backend.hash_fd(fd, 0, -1, sha), sha.digest()))
                results[i].add(((backend.crc64_iso(contents[i]), len(contents[i])),
                                sha256_of(backend, contents[i])))
        finally:
            os.close(fd)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, data in enumerate(contents):
        assert results[i] == {((crc64_bytewise(data), len(data)), hashlib.sha256(data).digest())}


def _ticks_inside_calls(call, calls: int) -> tuple[int, int]:
    """Run call() `calls` times in a thread; count how often this thread ran meanwhile."""
    spans: list[tuple[float, float]] = []

    def work() -> None:
        for _ in range(calls):
            start = time.perf_counter()
            call()
            spans.append((start, time.perf_counter()))

    worker = threading.Thread(target=work)
    ticks = []
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0.0005)
    worker.join()
    return sum(any(a < t < b for a, b in spans) for t in ticks), len(spans)


@pytest.mark.parametrize("what", ["hash_fd", "update", "crc64_iso"])
def test_native_releases_the_gil(native, tmp_path, what):
    # With the GIL held for a whole call, this thread could run at most at the call's two
    # edges; with it released it ticks all through each call of ~20 ms.
    data = random_bytes(1 << 20, seed=3) * 32
    path = tmp_path / "f"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        if what == "hash_fd":
            call = lambda: native.hash_fd(fd, 0, -1, native.Sha256())  # noqa: E731
        elif what == "update":
            call = lambda: native.Sha256().update(data)  # noqa: E731
        else:
            native.set_portable(True)        # the folded CRC is too quick to watch
            call = lambda: native.crc64_iso(data)  # noqa: E731
        inside, calls = _ticks_inside_calls(call, 3)
    finally:
        os.close(fd)
    assert inside >= 5 * calls


def test_native_sha256_refuses_a_second_thread(native):
    data = bytes(64 << 20)
    sha = native.Sha256()
    worker = threading.Thread(target=sha.update, args=(data,))
    refused = 0
    worker.start()
    while worker.is_alive():
        try:
            sha.digest()
        except RuntimeError:
            refused += 1
        time.sleep(0.0005)
    worker.join()
    assert refused
    assert sha.digest() == hashlib.sha256(data).digest()


# --- backend choice and CPU features ------------------------------------------------------

def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def test_features_follow_the_cpu(native):
    flags = cpu_flags()
    # CI builds on a kernel with openat2 (5.6 or later), as test_root assumes too.
    assert native.features() == {"sha_ni": "sha_ni" in flags, "pclmul": "pclmulqdq" in flags,
                                 "sse42": "sse4_2" in flags, "openat2": True}
    native.set_portable(True)
    off = {"sha_ni": False, "pclmul": False, "sse42": False, "openat2": True}
    assert native.features() == off
    assert _native_py.features() == off

