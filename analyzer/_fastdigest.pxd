# Declarations of the C in _csrc/ (see fastdigest.h for what each function promises).
from libc.stdint cimport int64_t, uint8_t, uint64_t


cdef extern from "fastdigest.h" nogil:
    ctypedef struct fd_sha256:
        pass

    void fd_setup(int portable)
    int fd_using_sha_ni()
    int fd_using_pclmul()

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
