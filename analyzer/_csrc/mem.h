/* Where the native module's memory comes from, and the one doubling rule for its arrays. */
#ifndef ANALYZER_MEM_H
#define ANALYZER_MEM_H

#include <stddef.h>
#include <stdint.h>

/* Every allocation of the walkers, the path index and the tree usage tables goes here;
 * calloc zeroes. libc's by default; the extension installs Python's raw allocator at import
 * (fd_set_allocator, init.h), before anything is made: a table is freed by the allocator that
 * made it. */
typedef struct {
    void *(*malloc)(size_t n);
    void *(*calloc)(size_t nelem, size_t elsize);
    void *(*realloc)(void *p, size_t n);
    void (*free)(void *p);
} fd_allocator;

extern fd_allocator fd_mem;

/* Makes room for need elements of size bytes at p, doubling the capacity *cap. Returns the
 * buffer (moved perhaps, and allocated even for need 0), or NULL with p and *cap untouched. */
static inline void *fd_reserve(void *p, size_t *cap, size_t need, size_t size)
{
    size_t more = *cap ? *cap : 64;
    void *q;
    if (p && need <= *cap)
        return p;
    while (more < need) {
        if (more > SIZE_MAX / 2 / size)
            return NULL;
        more *= 2;
    }
    q = fd_mem.realloc(p, more * size);
    if (q)
        *cap = more;
    return q;
}

#endif
