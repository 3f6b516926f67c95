/* Little-endian loads, shared by the table CRCs and the thin-pool leaf loops. */
#ifndef ANALYZER_LE_H
#define ANALYZER_LE_H

#include <stdint.h>
#include <string.h>

static inline uint64_t load_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

#endif
