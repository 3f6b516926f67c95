/* C API of the thin-pool loops of analyzer._fastdigest: CRC-32C over dm-thin metadata
 * blocks, and bulk accounting over mapping-tree leaves.
 *
 * Leaf values are dm-thin's block_time, little-endian u64 data_block << 24 | time
 * (linux drivers/md/dm-thin-metadata.c pack_block_time). Every function is thread-safe and
 * needs no Python; fd_init (init.h) comes first.
 */
#ifndef ANALYZER_THIN_H
#define ANALYZER_THIN_H

#include <stddef.h>
#include <stdint.h>

/* Whether CRC-32C uses the SSE4.2 crc32 instruction (fd_set_portable, init.h, chooses). */
int fd_thin_using_sse42(void);

/* CRC-32C (Castagnoli), chainable: standard init and final inversion, so
 * fd_crc32c_update(0, "123456789", 9) == 0xE3069283. */
uint32_t fd_crc32c_update(uint32_t crc, const uint8_t *p, size_t n);

/* 1 if the n le64 keys ascend strictly and lie in [lo, hi], else 0. */
int fd_thin_keys_ok(const uint8_t *keys, size_t n, uint64_t lo, uint64_t hi);

/* For the data block b of each of n values: counts[b] += add, saturating at 255.
 * Returns how many b were >= ncounts (not counted). */
uint64_t fd_thin_tally(uint8_t *counts, size_t ncounts, const uint8_t *values, size_t n,
                       unsigned add);

/* How many of n values have a data block b < ncounts with counts[b] == want. */
uint64_t fd_thin_count_eq(const uint8_t *counts, size_t ncounts, const uint8_t *values,
                          size_t n, unsigned want);

/* flags[b] |= bit for the data block b of each of n values; returns how many b >= nflags. */
uint64_t fd_thin_mark(uint8_t *flags, size_t nflags, const uint8_t *values, size_t n,
                      unsigned bit);

#endif
