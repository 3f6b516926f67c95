/* CRC-32C for dm-thin metadata checksums, and the per-mapping loops of pool accounting.
 *
 * The kernel checksums every metadata block with crc32c (dm-block-manager.c
 * dm_bm_checksum). With the SSE4.2 crc32 instruction a 4 KiB block costs about 500 cycles
 * (one 8-byte step per 3-cycle latency); without it, slicing-by-8 tables as in crc64.c.
 * The accounting loops only decode block_time (>> 24) and index a byte array: trivial in
 * C, but ten million of them are seconds in Python.
 */
#include <string.h>

#include "thin.h"
#include "fd_internal.h"
#include "le.h"

#define CASTAGNOLI_REFLECTED 0x82F63B78u
#define TIME_BITS 24

static uint32_t table[8][256];
static int use_sse42;


static uint32_t crc32c_raw_table(uint32_t raw, const uint8_t *p, size_t n)
{
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w = load_le64(p) ^ raw;
        raw = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff]
              ^ table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff]
              ^ table[2][(w >> 40) & 0xff] ^ table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
    }
    for (; n; n--, p++)
        raw = table[0][(raw ^ *p) & 0xff] ^ (raw >> 8);
    return raw;
}

#if defined(__x86_64__) || defined(_M_X64)
#define THIN_X86 1
#include <cpuid.h>
#include <nmmintrin.h>

#define CPUID1_ECX_SSE42 (1u << 20)

static int detect_sse42(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & CPUID1_ECX_SSE42);
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_raw_sse42(uint32_t raw, const uint8_t *p, size_t n)
{
    uint64_t r = raw;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        r = _mm_crc32_u64(r, w);
    }
    raw = (uint32_t)r;
    for (; n; n--, p++)
        raw = _mm_crc32_u8(raw, *p);
    return raw;
}
#endif

void fd_thin_tables_init(void)
{
    static uint64_t wide[8][256];   /* a 32-bit CRC's values fit: kept in 32 bits to use */
    fd_slicing_tables(CASTAGNOLI_REFLECTED, wide);
    for (int k = 0; k < 8; k++)
        for (int b = 0; b < 256; b++)
            table[k][b] = (uint32_t)wide[k][b];
}

void fd_thin_set_sse42(int use)
{
#ifdef THIN_X86
    use_sse42 = use && detect_sse42();
#else
    (void)use;
#endif
}

int fd_thin_using_sse42(void) { return use_sse42; }

uint32_t fd_crc32c_update(uint32_t crc, const uint8_t *p, size_t n)
{
#ifdef THIN_X86
    if (use_sse42)
        return ~crc32c_raw_sse42(~crc, p, n);
#endif
    return ~crc32c_raw_table(~crc, p, n);
}

int fd_thin_keys_ok(const uint8_t *keys, size_t n, uint64_t lo, uint64_t hi)
{
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t k = load_le64(keys + 8 * i);
        if (k < lo || k > hi || (i && k <= prev))
            return 0;
        prev = k;
    }
    return 1;
}

uint64_t fd_thin_tally(uint8_t *counts, size_t ncounts, const uint8_t *values, size_t n,
                       unsigned add)
{
    uint64_t outside = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t b = load_le64(values + 8 * i) >> TIME_BITS;
        if (b >= ncounts) {
            outside++;
            continue;
        }
        unsigned c = counts[b] + add;
        counts[b] = c < 255 ? (uint8_t)c : 255;
    }
    return outside;
}

uint64_t fd_thin_count_eq(const uint8_t *counts, size_t ncounts, const uint8_t *values,
                          size_t n, unsigned want)
{
    uint64_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t b = load_le64(values + 8 * i) >> TIME_BITS;
        hits += b < ncounts && counts[b] == want;
    }
    return hits;
}

uint64_t fd_thin_mark(uint8_t *flags, size_t nflags, const uint8_t *values, size_t n,
                      unsigned bit)
{
    uint64_t outside = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t b = load_le64(values + 8 * i) >> TIME_BITS;
        if (b < nflags)
            flags[b] |= (uint8_t)bit;
        else
            outside++;
    }
    return outside;
}
