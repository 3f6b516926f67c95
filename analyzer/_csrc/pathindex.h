/* A compact index of the paths in a layer directory, for verify.
 *
 * A layer may hold a million files; a Python dict of paths and stat results costs about
 * half a kilobyte each. Here an entry is a 128-bit key -- the first 16 bytes of
 * SHA-256(key || path), so nobody who lacks the index's random key can aim a collision
 * at it -- a one-byte "expected" mark and, in an index made with stats, 48 bytes of
 * lstat; a table of 32-bit entry numbers (open addressing, load <= 1/2) finds them.
 * About 75 bytes an entry with stats and 28 without, table included. Path names are not
 * kept.
 *
 * Twin: analyzer/_pathindex_py.py (exact path keys), whose behaviour is the spec.
 * An index belongs to one thread at a time; nothing here needs Python.
 */
#ifndef ANALYZER_PATHINDEX_H
#define ANALYZER_PATHINDEX_H

#include <stddef.h>
#include <stdint.h>

#define PI_KEY_SIZE 16
/* Entry numbers are stored + 1 in 32 bits, 0 marking an empty slot. */
#define PI_MAX_ENTRIES 0xFFFFFFFEu

/* What verify compares of an lstat. nlink fits 32 bits: the kernel's i_nlink does. */
typedef struct {
    uint64_t size, dev, ino, rdev;
    uint32_t mode, uid, gid, nlink;
} pi_stats;

/* Where every allocation of this file goes; calloc zeroes. */
typedef struct {
    void *(*malloc)(size_t n);
    void *(*calloc)(size_t nelem, size_t elsize);
    void *(*realloc)(void *p, size_t n);
    void (*free)(void *p);
} pi_allocator;

/* Replaces libc's allocator (the default) for everything made from now on. Call before
 * anything else: an index must be freed with the allocator that made it. */
void pi_set_allocator(const pi_allocator *mem);

typedef struct pi_index pi_index;

/* A new empty index, or NULL when out of memory. with_stats != 0 keeps a pi_stats per
 * entry; without, entries pay nothing for them. */
pi_index *pi_new(const uint8_t key[PI_KEY_SIZE], int with_stats);
void pi_free(pi_index *ix);

int pi_has_stats(const pi_index *ix);
uint64_t pi_len(const pi_index *ix);
/* Entries not (yet) expected; O(1). */
uint64_t pi_unexpected(const pi_index *ix);

/* Adds path (len bytes, any bytes) with *st (ignored, and may be NULL, in an index
 * without stats). Returns 1 if added; 0 if it was there already (nothing changes);
 * -EOVERFLOW at PI_MAX_ENTRIES or -ENOMEM (nothing changes). */
int pi_add(pi_index *ix, const uint8_t *path, size_t len, const pi_stats *st);

/* 1 if path is in the index, copying its stats to *out when out and the index has them;
 * else 0. */
int pi_get(const pi_index *ix, const uint8_t *path, size_t len, pi_stats *out);

/* Marks path and its ancestors expected: from path up to "" through the bytes before
 * each last '/', stopping at the first one already expected; those not in the index are
 * passed over. */
void pi_expect(pi_index *ix, const uint8_t *path, size_t len);
/* 1 if path is in the index and expected, else 0. */
int pi_expected(const pi_index *ix, const uint8_t *path, size_t len);

/* The directories a walk could not open or read, each with its errno. */
typedef struct {
    size_t offset, len;    /* of its path in pi_errors.paths */
    int err;
} pi_error;

typedef struct {
    pi_error *items;
    size_t n, cap;
    uint8_t *paths;        /* the paths back to back */
    size_t paths_len, paths_cap;
} pi_errors;

void pi_errors_free(pi_errors *e);

/* Walks use openat2 where the kernel has it, unless portable != 0: then they open one
 * name at a time, as on kernels without it. Until this is called they do that too. Called
 * by fd_set_portable (init.h); not while a walk runs. */
void pi_walk_setup(int portable);

/* Adds "" with fstat(dir_fd), then every entry below it by its path relative to dir_fd
 * ('/' between names) with fstatat(AT_SYMLINK_NOFOLLOW). dir_fd is read through a dup
 * (and left rewound). Links are never followed: each directory below is opened from
 * dir_fd with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), in pieces when its path is
 * too long for one call, or one name at a time with O_NOFOLLOW without openat2; at most
 * two fds are open at once however deep the tree.
 * A directory that cannot be opened or read is appended to *errors (which must start
 * zeroed) and contributes no entries; the walk goes on. The order is unspecified.
 * Returns 0; the errno of fstat(dir_fd) (nothing added); or -ENOMEM / -EOVERFLOW as
 * pi_add does, when the walk stopped (what it added stays). */
int pi_walk(pi_index *ix, int dir_fd, pi_errors *errors);

#endif
