/* CRC-64/GO-ISO, the checksum tar-split keeps for every file body
 * (tar/storage/getter.go: crc64.MakeTable(crc64.ISO)): reflected, polynomial
 * x^64 + x^4 + x^3 + x + 1 (0xD800000000000000 reflected), init and xorout all ones.
 *
 * The portable path is slicing-by-8: table[k][b] is the raw CRC of byte b followed by k zero
 * bytes, so eight table reads advance the register over eight bytes. x86.c folds with
 * PCLMULQDQ instead when fd_set_portable found it.
 */
#include <string.h>

#include "fd_internal.h"
#include "le.h"

#define CRC64_ISO_REFLECTED 0xD800000000000000ULL

static uint64_t table[8][256];

void fd_slicing_tables(uint64_t reflected_poly, uint64_t out[8][256])
{
    for (int b = 0; b < 256; b++) {
        uint64_t c = (uint64_t)b;
        for (int i = 0; i < 8; i++)
            c = (c >> 1) ^ (c & 1 ? reflected_poly : 0);
        out[0][b] = c;
    }
    for (int k = 1; k < 8; k++)
        for (int b = 0; b < 256; b++)
            out[k][b] = (out[k - 1][b] >> 8) ^ out[0][out[k - 1][b] & 0xff];
}

void fd_crc64_tables_init(void)
{
    fd_slicing_tables(CRC64_ISO_REFLECTED, table);
}


uint64_t fd_crc64_raw_table(uint64_t raw, const uint8_t *p, size_t n)
{
    for (; n >= 8; n -= 8, p += 8) {
        raw ^= load_le64(p);
        raw = table[7][raw & 0xff] ^ table[6][(raw >> 8) & 0xff] ^ table[5][(raw >> 16) & 0xff]
              ^ table[4][(raw >> 24) & 0xff] ^ table[3][(raw >> 32) & 0xff]
              ^ table[2][(raw >> 40) & 0xff] ^ table[1][(raw >> 48) & 0xff] ^ table[0][raw >> 56];
    }
    for (; n; n--, p++)
        raw = table[0][(raw ^ *p) & 0xff] ^ (raw >> 8);
    return raw;
}

uint64_t fd_crc64_update(uint64_t crc, const uint8_t *p, size_t n)
{
#ifdef FD_X86
    if (fd_use_pclmul && n >= 64)
        return ~fd_x86_crc64_raw(~crc, p, n);
#endif
    return ~fd_crc64_raw_table(~crc, p, n);
}
