# Declarations of the C in _csrc/ (each header says what its functions promise).
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t


cdef extern from "init.h" nogil:
    ctypedef struct fd_features:
        int sha_ni
        int pclmul
        int sse42
        int openat2

    ctypedef struct fd_allocator:
        void *(*malloc)(size_t) noexcept nogil
        void *(*calloc)(size_t, size_t) noexcept nogil
        void *(*realloc)(void *, size_t) noexcept nogil
        void (*free)(void *) noexcept nogil

    void fd_init()
    void fd_set_allocator(const fd_allocator *mem)
    void fd_set_portable(int portable)
    void fd_get_features(fd_features *out)


cdef extern from "fastdigest.h" nogil:
    ctypedef struct fd_sha256:
        pass

    void fd_sha256_init(fd_sha256 *s)
    void fd_sha256_update(fd_sha256 *s, const uint8_t *p, size_t n)
    void fd_sha256_digest(const fd_sha256 *s, uint8_t *out)

    uint64_t fd_crc64_update(uint64_t crc, const uint8_t *p, size_t n)
    uint64_t fd_sha256_crc64_update(fd_sha256 *s, uint64_t crc, const uint8_t *p, size_t n)

    int fd_hash_fd(int fd, int64_t offset, int64_t length, fd_sha256 *s,
                   uint64_t *crc, int64_t *nread)

    int FD_NOT_REGULAR
    int fd_hash_file_at(int dirfd, const char *path, fd_sha256 *s, uint64_t *crc,
                        int64_t *nread, int *has_xattrs)


cdef extern from "thin.h" nogil:
    uint32_t fd_crc32c_update(uint32_t crc, const uint8_t *p, size_t n)
    int fd_thin_keys_ok(const uint8_t *keys, size_t n, uint64_t lo, uint64_t hi)
    uint64_t fd_thin_tally(uint8_t *counts, size_t ncounts, const uint8_t *values, size_t n,
                           unsigned add)
    uint64_t fd_thin_count_eq(const uint8_t *counts, size_t ncounts, const uint8_t *values,
                              size_t n, unsigned want)
    uint64_t fd_thin_mark(uint8_t *flags, size_t nflags, const uint8_t *values, size_t n,
                          unsigned bit)


cdef extern from "readfiles.h" nogil:
    ctypedef struct rf_arena:
        unsigned char *data
        size_t len
        size_t cap
    int rf_read_files(int dirfd, const char *const *paths, size_t n, size_t limit, int oflags,
                      rf_arena *arena, size_t *offsets, size_t *lens, int *errs)


cdef extern from "layerrecords.h" nogil:
    ctypedef struct lr_span:
        const uint8_t *p
        size_t n
    ctypedef struct lr_record:
        lr_span diff, cache_id, parent
        int64_t diff_size
    int lr_plain_layer(const uint8_t *hexid, size_t n, const lr_span *files, lr_record *out)


cdef extern from "walk.h" nogil:
    ctypedef struct wk_error:
        size_t offset, len
        int err
    ctypedef struct wk_errors:
        wk_error *items
        size_t n
        uint8_t *paths
    void wk_errors_free(wk_errors *e)


cdef extern from "pathindex.h" nogil:
    enum: PI_KEY_SIZE
    enum: PI_MAX_ENTRIES
    ctypedef struct pi_stats:
        uint64_t size, dev, ino, rdev
        uint32_t mode, uid, gid, nlink
    ctypedef struct pi_index:
        pass

    pi_index *pi_new(const uint8_t *key, int with_stats)
    void pi_free(pi_index *ix)
    int pi_has_stats(const pi_index *ix)
    uint64_t pi_len(const pi_index *ix)
    uint64_t pi_unexpected(const pi_index *ix)
    int pi_add(pi_index *ix, const uint8_t *path, size_t len, const pi_stats *st)
    int pi_get(const pi_index *ix, const uint8_t *path, size_t len, pi_stats *out)
    void pi_expect(pi_index *ix, const uint8_t *path, size_t len)
    int pi_expected(const pi_index *ix, const uint8_t *path, size_t len)
    int pi_walk(pi_index *ix, int dir_fd, wk_errors *errors, int helper)


cdef extern from "treeusage.h" nogil:
    ctypedef struct tu_table:
        pass
    ctypedef struct tu_inode:
        uint64_t dev, ino, allocated, size
        uint32_t nlink, links
        uint8_t is_dir
    tu_table *tu_new()
    void tu_free(tu_table *t)
    uint64_t tu_len(const tu_table *t)
    int tu_add(tu_table *t, const tu_inode *inode)
    void tu_compact(tu_table *t)
    uint64_t tu_allocated_bytes(const tu_table *t)
    uint64_t tu_apparent_bytes(const tu_table *t)
    int tu_freed_bytes(const tu_table *const *tables, size_t ntables, uint64_t *out)
    ctypedef struct tu_share:
        uint64_t bytes, inodes
    int tu_attribute(const tu_table *const *tables, size_t ntables, uint64_t dev,
                     tu_share *shares, tu_share *elsewhere)
    int tu_walk(tu_table *t, int dir_fd, const uint8_t *top, size_t len, wk_errors *errors)


cdef extern from "tarsplit.h" nogil:
    enum: TS_END
    enum: TS_SLOW
    ctypedef struct ts_scan:
        int dir_fd
        pi_index *disk
        pi_index *seen
        fd_sha256 *sha
        int xattrs_known
        uint32_t root_uid, root_gid
        size_t max_line, max_run
        int readahead
        uint8_t *run
        size_t run_len, run_cap
        uint64_t skip, number
        uint64_t hashed, content, files
    int ts_scan_lines(ts_scan *s, const uint8_t *buf, size_t len, size_t *pos)
    int ts_scan_stream(ts_scan *s, const uint8_t *buf, size_t len, size_t *pos)
    void ts_scan_free(ts_scan *s)
