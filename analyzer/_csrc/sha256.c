/* SHA-256 (FIPS 180-4): the streaming state, the portable compression function, and the
 * choice of the SHA-NI one (x86.c) when fd_set_portable found it. */
#include <string.h>

#include "fd_internal.h"

const uint32_t fd_sha256_k[64] __attribute__((aligned(16))) = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t initial_h[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static inline uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static inline uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* FIPS 180-4 section 6.2.2, with the message schedule kept in a 16-word ring. */
static void blocks_portable(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
    uint32_t w[16];
    for (; nblocks; nblocks--, p += 64) {
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
        /* unrolled, the rotation of a..h becomes register renaming (+40% here) */
#pragma GCC unroll 64
        for (int t = 0; t < 64; t++) {
            uint32_t wt;
            if (t < 16) {
                wt = w[t] = load_be32(p + 4 * t);
            } else {
                uint32_t w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
                uint32_t s0 = ror(w15, 7) ^ ror(w15, 18) ^ (w15 >> 3);
                uint32_t s1 = ror(w2, 17) ^ ror(w2, 19) ^ (w2 >> 10);
                wt = w[t & 15] = w[t & 15] + s0 + w[(t - 7) & 15] + s1;
            }
            uint32_t t1 = hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g))
                          + fd_sha256_k[t] + wt;
            uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            hh = g; g = f; f = e; e = d + t1;
            d = c; c = b; b = a; a = t1 + t2;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d;
        h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }
}

static void blocks(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
#ifdef FD_X86
    if (fd_use_sha_ni) {
        fd_x86_sha256_blocks(h, p, nblocks);
        return;
    }
#endif
    blocks_portable(h, p, nblocks);
}

void fd_sha256_init(fd_sha256 *s)
{
    memcpy(s->h, initial_h, sizeof s->h);
    s->length = 0;
    s->used = 0;
}

void fd_sha256_update(fd_sha256 *s, const uint8_t *p, size_t n)
{
    s->length += n;
    if (s->used) {
        size_t take = 64 - s->used < n ? 64 - s->used : n;
        memcpy(s->block + s->used, p, take);
        s->used += (uint32_t)take;
        p += take;
        n -= take;
        if (s->used < 64)
            return;
        blocks(s->h, s->block, 1);
        s->used = 0;
    }
    if (n >= 64) {
        blocks(s->h, p, n / 64);
        p += n & ~(size_t)63;
        n &= 63;
    }
    memcpy(s->block, p, n);
    s->used = (uint32_t)n;
}

/* Padding of FIPS 180-4 section 5.1.1, on a copy so that s can go on. */
void fd_sha256_digest(const fd_sha256 *s, uint8_t out[32])
{
    uint32_t h[8];
    uint8_t tail[128] = {0};
    size_t n = s->used, padded = n < 56 ? 64 : 128;
    uint64_t bits = s->length * 8;

    memcpy(h, s->h, sizeof h);
    memcpy(tail, s->block, n);
    tail[n] = 0x80;
    for (int i = 0; i < 8; i++)
        tail[padded - 1 - i] = (uint8_t)(bits >> (8 * i));
    blocks(h, tail, padded / 64);
    for (int i = 0; i < 8; i++)
        store_be32(out + 4 * i, h[i]);
}
