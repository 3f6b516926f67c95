/* x86-64 paths, chosen at run time by fd_set_portable from CPUID: SHA-256 with the SHA extensions
 * and CRC-64 folded with carry-less multiplication, alone or fused in one loop.
 *
 * Each function carries its own target attribute, so the module is built for generic
 * x86-64 and these paths run only where CPUID reports them.
 *
 * Why fused: SHA-NI is bound by the latency of its sha256rnds2 chain (32 per 64-byte
 * block), which leaves the vector units mostly idle; the eight PCLMULQDQ that fold the same
 * 64 bytes into the CRC fit in those gaps, so CRC-64 costs almost nothing next to SHA-256.
 *
 * Folding (after Gopal et al., "Fast CRC Computation for Generic Polynomials Using
 * PCLMULQDQ", Intel 2009, here derived for this polynomial): the message is cut in 16-byte
 * blocks, each loaded little-endian, so bit j of the register is the coefficient of
 * x^(127-j) of that block -- a bit-reflected 128-bit polynomial. An accumulator X = H*x^64 + L
 * (H the low quadword) moved D bits further down the message is X*x^D = H*x^(D+64) + L*x^D,
 * and only X mod P matters. A reflected 64x64 carry-less product comes out as the reflected
 * 128-bit value of A*B*x, so the constants are x^(D+63) mod P and x^(D-1) mod P. The last
 * 16-byte accumulator is the message itself as far as the CRC can tell: the table loop over
 * its bytes from a zero register gives the raw CRC.
 */
#include "fd_internal.h"

#ifdef FD_X86

#include <cpuid.h>
#include <immintrin.h>

#define TARGET_SHA __attribute__((target("sha,ssse3,sse4.1")))
#define TARGET_CLMUL __attribute__((target("pclmul,sse4.1")))
#define TARGET_BOTH __attribute__((target("sha,pclmul,ssse3,sse4.1")))
#define INLINE static inline __attribute__((always_inline))

#define CPUID1_ECX_PCLMUL (1u << 1)
#define CPUID1_ECX_SSSE3 (1u << 9)
#define CPUID1_ECX_SSE41 (1u << 19)
#define CPUID7_EBX_SHA (1u << 29)

static unsigned cpuid1_ecx(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) ? c : 0;
}

int fd_x86_detect_sha_ni(void)
{
    unsigned a, b, c, d;
    unsigned need = CPUID1_ECX_SSSE3 | CPUID1_ECX_SSE41;
    if ((cpuid1_ecx() & need) != need || !__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    return (b & CPUID7_EBX_SHA) != 0;
}

int fd_x86_detect_pclmul(void)
{
    unsigned need = CPUID1_ECX_PCLMUL | CPUID1_ECX_SSE41;
    return (cpuid1_ecx() & need) == need;
}

/* {low, high} quadwords: {x^(D+63) mod P, x^(D-1) mod P}, reflected. */
static uint64_t fold512[2], fold128[2];

static uint64_t reflect64(uint64_t v)
{
    uint64_t r = 0;
    for (int i = 0; i < 64; i++, v >>= 1)
        r = (r << 1) | (v & 1);
    return r;
}

/* x^k mod P, P = x^64 + x^4 + x^3 + x + 1, as a reflected 64-bit value. */
static uint64_t xpow_mod_p(unsigned k)
{
    uint64_t r = 1;
    while (k--)
        r = (r << 1) ^ (r >> 63 ? 0x1B : 0);
    return reflect64(r);
}

void fd_x86_init(void)
{
    fold512[0] = xpow_mod_p(512 + 63);
    fold512[1] = xpow_mod_p(512 - 1);
    fold128[0] = xpow_mod_p(128 + 63);
    fold128[1] = xpow_mod_p(128 - 1);
}

INLINE TARGET_CLMUL __m128i fold(__m128i x, __m128i k)
{
    return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11));
}

/* Four lanes (consecutive 16-byte blocks) into one, then to the raw CRC. */
INLINE TARGET_CLMUL __m128i fold_lanes(__m128i x0, __m128i x1, __m128i x2, __m128i x3)
{
    const __m128i k128 = _mm_loadu_si128((const __m128i *)fold128);
    x1 = _mm_xor_si128(x1, fold(x0, k128));
    x2 = _mm_xor_si128(x2, fold(x1, k128));
    return _mm_xor_si128(x3, fold(x2, k128));
}

INLINE TARGET_CLMUL uint64_t raw_of(__m128i x)
{
    uint8_t b[16];
    _mm_storeu_si128((__m128i *)b, x);
    return fd_crc64_raw_table(0, b, 16);
}

TARGET_CLMUL uint64_t fd_x86_crc64_raw(uint64_t raw, const uint8_t *p, size_t n)
{
    const __m128i k512 = _mm_loadu_si128((const __m128i *)fold512);
    const __m128i k128 = _mm_loadu_si128((const __m128i *)fold128);
    __m128i x0 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_cvtsi64_si128((long long)raw));
    __m128i x1 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 32));
    __m128i x3 = _mm_loadu_si128((const __m128i *)(p + 48));

    for (p += 64, n -= 64; n >= 64; p += 64, n -= 64) {
        x0 = _mm_xor_si128(fold(x0, k512), _mm_loadu_si128((const __m128i *)p));
        x1 = _mm_xor_si128(fold(x1, k512), _mm_loadu_si128((const __m128i *)(p + 16)));
        x2 = _mm_xor_si128(fold(x2, k512), _mm_loadu_si128((const __m128i *)(p + 32)));
        x3 = _mm_xor_si128(fold(x3, k512), _mm_loadu_si128((const __m128i *)(p + 48)));
    }
    __m128i x = fold_lanes(x0, x1, x2, x3);
    for (; n >= 16; p += 16, n -= 16)
        x = _mm_xor_si128(fold(x, k128), _mm_loadu_si128((const __m128i *)p));
    return fd_crc64_raw_table(raw_of(x), p, n);
}

/* The chaining value a..h lives in two registers as sha256rnds2 wants it: {f,e,b,a} and
 * {h,g,d,c} (dword 0 first). */
INLINE TARGET_SHA void load_state(const uint32_t h[8], __m128i *abef, __m128i *cdgh)
{
    __m128i badc = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0xB1);
    __m128i hgfe = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(h + 4)), 0x1B);
    *abef = _mm_alignr_epi8(badc, hgfe, 8);
    *cdgh = _mm_blend_epi16(hgfe, badc, 0xF0);
}

INLINE TARGET_SHA void store_state(uint32_t h[8], __m128i abef, __m128i cdgh)
{
    __m128i abef_ = _mm_shuffle_epi32(abef, 0x1B);   /* a,b,e,f */
    __m128i ghcd = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)h, _mm_blend_epi16(abef_, ghcd, 0xF0));
    _mm_storeu_si128((__m128i *)(h + 4), _mm_alignr_epi8(ghcd, abef_, 8));
}

/* Big-endian message words from a little-endian load. */
INLINE TARGET_SHA __m128i words(__m128i m)
{
    return _mm_shuffle_epi8(m, _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL));
}

/* One 64-byte block, w0..w3 = message words 0..15. The schedule W[t] (t >= 16) is kept four
 * words to a register: sha256msg1 adds sigma0(W[t-15]) to W[t-16], the alignr supplies
 * W[t-7], and sha256msg2 adds sigma1(W[t-2]). */
INLINE TARGET_SHA void sha_block(__m128i *abef, __m128i *cdgh,
                                 __m128i w0, __m128i w1, __m128i w2, __m128i w3)
{
    const __m128i *k = (const __m128i *)fd_sha256_k;
    __m128i w[4] = {w0, w1, w2, w3};
    __m128i a = *abef, c = *cdgh;

#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) {
        if (i >= 4) {
            __m128i prev = w[(i + 3) & 3];
            __m128i sum = _mm_add_epi32(_mm_sha256msg1_epu32(w[i & 3], w[(i + 1) & 3]),
                                        _mm_alignr_epi8(prev, w[(i + 2) & 3], 4));
            w[i & 3] = _mm_sha256msg2_epu32(sum, prev);
        }
        __m128i wk = _mm_add_epi32(w[i & 3], _mm_load_si128(k + i));
        /* two rounds each; the register that held a,b,e,f now holds c,d,g,h */
        c = _mm_sha256rnds2_epu32(c, a, wk);
        a = _mm_sha256rnds2_epu32(a, c, _mm_shuffle_epi32(wk, 0x0E));
    }
    *abef = _mm_add_epi32(*abef, a);
    *cdgh = _mm_add_epi32(*cdgh, c);
}

TARGET_SHA void fd_x86_sha256_blocks(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
    __m128i abef, cdgh;
    load_state(h, &abef, &cdgh);
    for (; nblocks; nblocks--, p += 64)
        sha_block(&abef, &cdgh,
                  words(_mm_loadu_si128((const __m128i *)p)),
                  words(_mm_loadu_si128((const __m128i *)(p + 16))),
                  words(_mm_loadu_si128((const __m128i *)(p + 32))),
                  words(_mm_loadu_si128((const __m128i *)(p + 48))));
    store_state(h, abef, cdgh);
}

TARGET_BOTH uint64_t fd_x86_sha256_crc64_raw(uint32_t h[8], uint64_t raw, const uint8_t *p,
                                            size_t nblocks)
{
    const __m128i k512 = _mm_loadu_si128((const __m128i *)fold512);
    __m128i abef, cdgh;
    __m128i m0 = _mm_loadu_si128((const __m128i *)p);
    __m128i m1 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i m2 = _mm_loadu_si128((const __m128i *)(p + 32));
    __m128i m3 = _mm_loadu_si128((const __m128i *)(p + 48));
    __m128i x0 = _mm_xor_si128(m0, _mm_cvtsi64_si128((long long)raw)), x1 = m1, x2 = m2, x3 = m3;

    load_state(h, &abef, &cdgh);
    sha_block(&abef, &cdgh, words(m0), words(m1), words(m2), words(m3));
    while (--nblocks) {
        p += 64;
        m0 = _mm_loadu_si128((const __m128i *)p);
        m1 = _mm_loadu_si128((const __m128i *)(p + 16));
        m2 = _mm_loadu_si128((const __m128i *)(p + 32));
        m3 = _mm_loadu_si128((const __m128i *)(p + 48));
        x0 = _mm_xor_si128(fold(x0, k512), m0);
        x1 = _mm_xor_si128(fold(x1, k512), m1);
        x2 = _mm_xor_si128(fold(x2, k512), m2);
        x3 = _mm_xor_si128(fold(x3, k512), m3);
        sha_block(&abef, &cdgh, words(m0), words(m1), words(m2), words(m3));
    }
    store_state(h, abef, cdgh);
    return raw_of(fold_lanes(x0, x1, x2, x3));
}

#endif /* FD_X86 */
