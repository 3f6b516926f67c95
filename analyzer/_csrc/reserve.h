/* Growing arrays for the native walkers and the path index: one doubling rule. */
#ifndef ANALYZER_RESERVE_H
#define ANALYZER_RESERVE_H

#include <stddef.h>
#include <stdint.h>

/* Makes room for need elements of size bytes at p, doubling the capacity *cap, with the
 * caller's realloc (Python's raw allocator under the extension). Returns the buffer (moved
 * perhaps, and allocated even for need 0), or NULL with p and *cap untouched. */
static inline void *fd_reserve(void *p, size_t *cap, size_t need, size_t size,
                               void *(*realloc_fn)(void *, size_t))
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
    q = realloc_fn(p, more * size);
    if (q)
        *cap = more;
    return q;
}

#endif
