/* The one init of analyzer._fastdigest's C, its one portable switch and its features.
 *
 * fd_init builds what every call reads (the CRC-64 and CRC-32C slicing tables, the
 * PCLMULQDQ folding constants) and installs hash_fd's SIGBUS handler, once. The pyx calls
 * it at import, then fd_set_portable.
 */
#ifndef ANALYZER_INIT_H
#define ANALYZER_INIT_H

void fd_init(void);

#include "mem.h"

/* Every allocation of the walkers, the path index, the tree usage tables and read_files'
 * arena from now on: call once, at import, before anything is made. */
void fd_set_allocator(const fd_allocator *mem);

/* portable != 0: every path with a portable alternative takes it -- SHA-256 and CRC-64
 * without SHA-NI or PCLMULQDQ, CRC-32C without SSE4.2, walks one name at a time without
 * openat2; 0: what the CPU and the kernel offer. Must not overlap other calls. */
void fd_set_portable(int portable);

typedef struct {
    int sha_ni;     /* SHA-256 with the SHA extensions */
    int pclmul;     /* CRC-64 folded with PCLMULQDQ */
    int sse42;      /* CRC-32C with the crc32 instruction */
    int openat2;    /* the kernel has openat2: read_files and hash_file_at need it */
} fd_features;

void fd_get_features(fd_features *out);

#endif
