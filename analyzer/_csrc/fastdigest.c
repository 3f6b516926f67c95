/* The fused SHA-256 + CRC-64 update, on the paths fd_set_portable chose. */

#include "fd_internal.h"

int fd_use_sha_ni;
int fd_use_pclmul;

/* Without the fused kernel, SHA-256 and then the CRC run over pieces this size, so the
 * second pass finds the bytes still in L1. */
#define CACHE_CHUNK (16 * 1024)

uint64_t fd_sha256_crc64_update(fd_sha256 *s, uint64_t crc, const uint8_t *p, size_t n)
{
#ifdef FD_X86
    if (fd_use_sha_ni && fd_use_pclmul) {
        /* The kernel takes whole blocks of its own: first complete the partial block. */
        size_t head = s->used ? 64 - s->used : 0, nblocks;
        if (head > n)
            head = n;
        crc = fd_crc64_update(crc, p, head);
        fd_sha256_update(s, p, head);
        p += head;
        n -= head;
        nblocks = n / 64;
        if (nblocks) {
            crc = ~fd_x86_sha256_crc64_raw(s->h, ~crc, p, nblocks);
            s->length += (uint64_t)nblocks * 64;
            p += nblocks * 64;
            n -= nblocks * 64;
        }
        fd_sha256_update(s, p, n);
        return fd_crc64_update(crc, p, n);
    }
#endif
    for (size_t off = 0; off < n; off += CACHE_CHUNK) {
        size_t len = n - off < CACHE_CHUNK ? n - off : CACHE_CHUNK;
        fd_sha256_update(s, p + off, len);
        crc = fd_crc64_update(crc, p + off, len);
    }
    return crc;
}
