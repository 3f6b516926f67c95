/* C API of analyzer._fastdigest: SHA-256 and CRC-64/GO-ISO (Go's hash/crc64 ISO table,
 * the checksum tar-split stores for every file), alone or fused into one pass.
 *
 * Every function is thread-safe and needs no Python: the pyx calls them with the GIL
 * released. A fd_sha256 belongs to one thread at a time. fd_init (init.h) comes first.
 */
#ifndef ANALYZER_FASTDIGEST_H
#define ANALYZER_FASTDIGEST_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];       /* chaining value a..h */
    uint64_t length;     /* bytes fed so far */
    uint8_t block[64];   /* the partial block not compressed yet */
    uint32_t used;       /* bytes in block, always < 64 */
} fd_sha256;

void fd_sha256_init(fd_sha256 *s);
void fd_sha256_update(fd_sha256 *s, const uint8_t *p, size_t n);
/* Writes the digest of what was fed so far; s itself is left as it was. */
void fd_sha256_digest(const fd_sha256 *s, uint8_t out[32]);

/* Chainable like Go's crc64.Update(crc, crc64.MakeTable(crc64.ISO), p). */
uint64_t fd_crc64_update(uint64_t crc, const uint8_t *p, size_t n);

/* fd_sha256_update(s, p, n) and fd_crc64_update(crc, p, n) in one pass over p. */
uint64_t fd_sha256_crc64_update(fd_sha256 *s, uint64_t crc, const uint8_t *p, size_t n);

/* Reads fd from offset, length bytes (or to end of file if length < 0), feeding s (may be
 * NULL) and the CRC-64 of the bytes read: pread for small regions, a mapping for large ones
 * (hashfd.c). A short file ends early: the count in *nread tells. Returns 0, or the errno of
 * a failed pread (EINTR is retried) or ENOMEM; *crc and *nread then cover what was read
 * before the failure. */
int fd_hash_fd(int fd, int64_t offset, int64_t length, fd_sha256 *s,
               uint64_t *crc, int64_t *nread);

/* Opens path below dirfd with openat2 as safeopen.h says (read-only, no links, O_NOATIME
 * while the kernel allows it, O_NONBLOCK so a fifo put in a file's place cannot hang us), checks that
 * it is a regular file, hashes it whole as fd_hash_fd does and closes it; *has_xattrs says
 * whether it carries extended attributes. Returns 0, FD_NOT_REGULAR, or an errno (of the
 * open, the read or flistxattr). */
#define FD_NOT_REGULAR (-1)
int fd_hash_file_at(int dirfd, const char *path, fd_sha256 *s, uint64_t *crc,
                    int64_t *nread, int *has_xattrs);

#endif
