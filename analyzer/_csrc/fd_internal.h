/* Shared between the C files of _fastdigest; not part of its API. */
#ifndef ANALYZER_FD_INTERNAL_H
#define ANALYZER_FD_INTERNAL_H

#include <pthread.h>

#include "fastdigest.h"

#if defined(__x86_64__)
#define FD_X86 1
#endif

/* Which paths fd_set_portable chose; read by every call, written only by it. */
extern int fd_use_sha_ni;
extern int fd_use_pclmul;

/* FIPS 180-4 section 4.2.2. */
extern const uint32_t fd_sha256_k[64];

/* Slicing-by-8 tables of a reflected CRC of up to 64 bits (CRC-64/GO-ISO here, CRC-32C in
 * thin.c): out[k][b] is the raw CRC of byte b followed by k zero bytes. */
void fd_slicing_tables(uint64_t reflected_poly, uint64_t out[8][256]);

/* Once, from fd_init. */
void fd_crc64_tables_init(void);
void fd_thin_tables_init(void);
void fd_thin_set_sse42(int use);

/* The CRC on its "raw" register, i.e. without Go's pre- and post-inversion (crc64.Update
 * does crc = ^crc before and after the table loop). */
uint64_t fd_crc64_raw_table(uint64_t raw, const uint8_t *p, size_t n);

/* Once, from fd_init: hash_fd's SIGBUS handler (see hashfd.c), and fd_cpus. */
void fd_hash_fd_init(void);
/* Starts a helper thread run(arg) with *lock and *cond made for it, every signal blocked
 * in it: 1, or 0 (nothing left made) when it could not. */
int fd_start_helper(pthread_t *thread, pthread_mutex_t *lock, pthread_cond_t *cond,
                    void *(*run)(void *), void *arg);
/* Sets *done under *lock, wakes every waiter on *cond, waits for the thread to end, and
 * destroys *lock and *cond. */
void fd_end_helper(pthread_t thread, pthread_mutex_t *lock, pthread_cond_t *cond, int *done);
/* The CPUs this process may run on (taskset, a container's cpuset), not all there are. */
extern long fd_cpus;
/* A layer's pass that takes a helper thread when a CPU is free for it (a walk, a tar-split
 * scan) begins: 1 while the passes running now, this one among them, leave a CPU to each
 * one's helper (verify -j 2 on two CPUs: none), else 0. Each ends with fd_pass_end. */
int fd_pass_begin(void);
void fd_pass_end(void);

#ifdef FD_X86
int fd_x86_detect_sha_ni(void);
int fd_x86_detect_pclmul(void);
void fd_x86_init(void);
void fd_x86_sha256_blocks(uint32_t h[8], const uint8_t *p, size_t nblocks);
/* n >= 64 */
uint64_t fd_x86_crc64_raw(uint64_t raw, const uint8_t *p, size_t n);
/* SHA-256 blocks and the raw CRC of the same nblocks * 64 bytes, nblocks >= 1. */
uint64_t fd_x86_sha256_crc64_raw(uint32_t h[8], uint64_t raw, const uint8_t *p, size_t nblocks);
#endif

#endif
