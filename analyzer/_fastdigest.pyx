# cython: language_level=3
"""The native hashing core: SHA-256 and tar-split's CRC-64 over layer content, without the GIL.

What ``analyze verify`` spends its time on: reassembling each layer's tar stream to check
its diff ID (SHA-256) while checking every file body against the CRC-64 tar-split recorded
(tar/storage/getter.go, hash/crc64 ISO). ``hash_fd`` does both in one pass over a file, so
both cost about what SHA-256 alone does, and layers hash in parallel threads.

The C in _csrc/ picks SHA-NI and PCLMULQDQ at import when the CPU has them.
ANALYZER_DIGEST_PORTABLE=1 (read at import) or ``set_portable(True)`` forces the portable C.
Importing also installs a SIGBUS handler, which turns a fault in hash_fd's own mapping (a
file that shrank, an I/O error) into a short read and passes every other one on
(_csrc/hashfd.c).

References: tar-split tar/asm/assemble.go WriteOutputTarStream, tar/storage/getter.go;
moby layer/layer_store.go assembleTarTo.
"""
import os

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer

# Below this many bytes releasing and retaking the GIL costs more than it frees
# (hashlib's HASHLIB_GIL_MINSIZE is the same).
cdef Py_ssize_t GIL_MINSIZE = 2048


def set_portable(bint portable, /):
    """Use the portable C paths (True) or whatever the CPU offers (False).

    For tests and benchmarks; must not be called while other threads are hashing.
    """
    fd_setup(portable)


fd_setup(os.environ.get("ANALYZER_DIGEST_PORTABLE", "") not in ("", "0"))


def features():
    """The accelerated paths in use: detected by CPUID and not turned off by set_portable."""
    return {"sha_ni": bool(fd_using_sha_ni()), "pclmul": bool(fd_using_pclmul())}


@cython.final
@cython.auto_pickle(False)
cdef class Sha256:
    """SHA-256 like hashlib's, reduced to what verify needs. One thread at a time."""

    cdef fd_sha256 state
    # Set while a call runs without the GIL: a second thread gets an error, not a corrupt state.
    cdef bint busy

    def __cinit__(self):
        fd_sha256_init(&self.state)

    cdef int check_idle(self) except -1:
        if self.busy:
            raise RuntimeError("Sha256 object is in use by another thread")
        return 0

    def update(self, data, /):
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self.check_idle()
            if view.len >= GIL_MINSIZE:
                self.busy = True
                with nogil:
                    fd_sha256_update(&self.state, <const uint8_t *>view.buf, <size_t>view.len)
                self.busy = False
            else:
                fd_sha256_update(&self.state, <const uint8_t *>view.buf, <size_t>view.len)
        finally:
            PyBuffer_Release(&view)

    def digest(self):
        cdef uint8_t out[32]
        self.check_idle()
        fd_sha256_digest(&self.state, out)
        return out[:32]

    def copy(self):
        cdef Sha256 other = Sha256.__new__(Sha256)
        self.check_idle()
        other.state = self.state
        return other


def crc64_iso(data, uint64_t crc=0, /):
    """Go's crc64.Update(crc, crc64.MakeTable(crc64.ISO), data)."""
    cdef Py_buffer view
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        if view.len >= GIL_MINSIZE:
            with nogil:
                crc = fd_crc64_update(crc, <const uint8_t *>view.buf, <size_t>view.len)
        else:
            crc = fd_crc64_update(crc, <const uint8_t *>view.buf, <size_t>view.len)
    finally:
        PyBuffer_Release(&view)
    return crc


def hash_fd(int fd, int64_t offset, int64_t length, Sha256 sha, /):
    """Read fd from offset, feed sha (if not None) and return (crc64, bytes_read).

    length -1 reads to end of file. A file shorter than asked for is not an error: the
    count says how much there was. A failed read raises OSError (its subclass for the errno);
    sha has then been fed what was read before it. Regions of 1 MiB or more are read through
    a mapping (faster than pread's copy), with the same results.
    """
    cdef fd_sha256 *state = NULL
    cdef uint64_t crc = 0
    cdef int64_t nread = 0
    cdef int err
    if offset < 0:
        raise ValueError(f"negative offset: {offset}")
    if length < -1:
        raise ValueError(f"length must be -1 or more: {length}")
    if sha is not None:
        sha.check_idle()
        sha.busy = True
        state = &sha.state
    with nogil:
        err = fd_hash_fd(fd, offset, length, state, &crc, &nread)
    if sha is not None:
        sha.busy = False
    if err:
        raise OSError(err, os.strerror(err))
    return crc, nread


# -- thin-pool metadata: CRC-32C and bulk leaf accounting (_csrc/thin.c) -----------------
# Twin: analyzer/_thin_py.py. Leaf values are dm-thin block_time (le64 data_block << 24 | time).

from libc.stdint cimport uint32_t

cdef extern from "thin.h" nogil:
    void fd_thin_setup(int portable)
    int fd_thin_using_sse42()
    uint32_t fd_crc32c_update(uint32_t crc, const uint8_t *p, size_t n)
    int fd_thin_keys_ok(const uint8_t *keys, size_t n, uint64_t lo, uint64_t hi)
    uint64_t fd_thin_tally(uint8_t *counts, size_t ncounts, const uint8_t *values, size_t n,
                           unsigned add)
    uint64_t fd_thin_count_eq(const uint8_t *counts, size_t ncounts, const uint8_t *values,
                              size_t n, unsigned want)
    uint64_t fd_thin_mark(uint8_t *flags, size_t nflags, const uint8_t *values, size_t n,
                          unsigned bit)

from cpython.buffer cimport PyBUF_WRITABLE

fd_thin_setup(os.environ.get("ANALYZER_DIGEST_PORTABLE", "") not in ("", "0"))


def thin_set_portable(bint portable, /):
    """Use the table CRC-32C (True) or SSE4.2 where the CPU has it (False). Tests only."""
    fd_thin_setup(portable)


def thin_features():
    """{"sse42": ...}: whether CRC-32C uses the SSE4.2 instruction."""
    return {"sse42": bool(fd_thin_using_sse42())}


def crc32c(data, uint32_t crc=0, /):
    """CRC-32C (Castagnoli), chainable; crc32c(b"123456789") == 0xE3069283."""
    cdef Py_buffer view
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        if view.len >= GIL_MINSIZE:
            with nogil:
                crc = fd_crc32c_update(crc, <const uint8_t *>view.buf, <size_t>view.len)
        else:
            crc = fd_crc32c_update(crc, <const uint8_t *>view.buf, <size_t>view.len)
    finally:
        PyBuffer_Release(&view)
    return crc


cdef size_t words_of(Py_buffer *view) except? 0:
    if view.len % 8:
        raise ValueError(f"expected whole le64 words, got {view.len} bytes")
    return <size_t>view.len // 8


def thin_keys_ok(keys, uint64_t lo, uint64_t hi, /):
    """True if the le64 keys ascend strictly and lie in [lo, hi] (a btree node's keys)."""
    cdef Py_buffer view
    cdef int ok
    PyObject_GetBuffer(keys, &view, PyBUF_SIMPLE)
    try:
        ok = fd_thin_keys_ok(<const uint8_t *>view.buf, words_of(&view), lo, hi)
    finally:
        PyBuffer_Release(&view)
    return bool(ok)


def thin_tally(counts, values, unsigned add, /):
    """counts[b] += add (saturating at 255) for the data block b of every value.

    Returns how many values name a block at or past len(counts), left uncounted.
    """
    cdef Py_buffer cview, vview
    cdef uint64_t outside
    cdef size_t n
    if add > 255:
        raise ValueError(f"add must be 0..255: {add}")
    PyObject_GetBuffer(counts, &cview, PyBUF_WRITABLE)
    try:
        PyObject_GetBuffer(values, &vview, PyBUF_SIMPLE)
        try:
            n = words_of(&vview)
            with nogil:
                outside = fd_thin_tally(<uint8_t *>cview.buf, <size_t>cview.len,
                                        <const uint8_t *>vview.buf, n, add)
        finally:
            PyBuffer_Release(&vview)
    finally:
        PyBuffer_Release(&cview)
    return outside


def thin_count_eq(counts, values, unsigned want, /):
    """How many values name a data block b (in range) with counts[b] == want."""
    cdef Py_buffer cview, vview
    cdef uint64_t hits
    cdef size_t n
    PyObject_GetBuffer(counts, &cview, PyBUF_SIMPLE)
    try:
        PyObject_GetBuffer(values, &vview, PyBUF_SIMPLE)
        try:
            n = words_of(&vview)
            with nogil:
                hits = fd_thin_count_eq(<const uint8_t *>cview.buf, <size_t>cview.len,
                                        <const uint8_t *>vview.buf, n, want)
        finally:
            PyBuffer_Release(&vview)
    finally:
        PyBuffer_Release(&cview)
    return hits


def thin_mark(flags, values, unsigned bit, /):
    """flags[b] |= bit for the data block b of every value; returns how many fell outside."""
    cdef Py_buffer fview, vview
    cdef uint64_t outside
    cdef size_t n
    if bit > 255:
        raise ValueError(f"bit must be 0..255: {bit}")
    PyObject_GetBuffer(flags, &fview, PyBUF_WRITABLE)
    try:
        PyObject_GetBuffer(values, &vview, PyBUF_SIMPLE)
        try:
            n = words_of(&vview)
            with nogil:
                outside = fd_thin_mark(<uint8_t *>fview.buf, <size_t>fview.len,
                                       <const uint8_t *>vview.buf, n, bit)
        finally:
            PyBuffer_Release(&vview)
    finally:
        PyBuffer_Release(&fview)
    return outside


# -- many small files, for loading metadata -------------------------------------------

from libc.stdlib cimport free, malloc

cdef extern from "readfiles.h" nogil:
    ctypedef struct rf_arena:
        unsigned char *data
        size_t len
        size_t cap
    int rf_have_openat2()
    int rf_read_files(int dirfd, const char *const *paths, size_t n, size_t limit, int oflags,
                      rf_arena *arena, size_t *offsets, size_t *lens, int *errs)


def have_openat2():
    """True when paths are opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)."""
    return bool(rf_have_openat2())


def read_files(int dir_fd, list paths, size_t limit, int oflags, /):
    """Read each of ``paths`` (bytes, relative to dir_fd) whole, with the GIL released.

    Returns a list holding, for each path, its contents (bytes) or an errno (int):
    ENOENT for an absent file, ELOOP for a link, EXDEV for a path out of dir_fd,
    EFBIG past ``limit`` bytes. Without openat2 (have_openat2() is False) each path
    must be a single name.
    """
    cdef size_t n = len(paths), i
    cdef size_t slots = n if n else 1
    cdef const char **cpaths = <const char **>malloc(slots * sizeof(char *))
    cdef size_t *offsets = <size_t *>malloc(slots * sizeof(size_t))
    cdef size_t *lens = <size_t *>malloc(slots * sizeof(size_t))
    cdef int *errs = <int *>malloc(slots * sizeof(int))
    cdef rf_arena arena
    cdef int rc
    arena.data = NULL
    arena.len = 0
    arena.cap = 0
    try:
        if not cpaths or not offsets or not lens or not errs:
            raise MemoryError()
        for i in range(n):
            cpaths[i] = <bytes>paths[i]          # the list keeps each bytes alive
        with nogil:
            rc = rf_read_files(dir_fd, cpaths, n, limit, oflags, &arena, offsets, lens, errs)
        if rc < 0:
            raise MemoryError()
        out = [None] * n
        for i in range(n):
            if errs[i]:
                out[i] = errs[i]
            else:
                out[i] = (<char *>arena.data)[offsets[i]:offsets[i] + lens[i]] if lens[i] else b""
        return out
    finally:
        free(cpaths)
        free(offsets)
        free(lens)
        free(errs)
        free(arena.data)
