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

#include "walk.h"

#define PI_KEY_SIZE 16
/* Entry numbers are stored + 1 in 32 bits, 0 marking an empty slot. */
#define PI_MAX_ENTRIES 0xFFFFFFFEu

/* What verify compares of an lstat. nlink fits 32 bits: the kernel's i_nlink does. */
typedef struct {
    uint64_t size, dev, ino, rdev;
    uint32_t mode, uid, gid, nlink;
} pi_stats;

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

/* The keyed hash that stands for path in the index: computed once, it serves several
 * calls on one path (pi_get_key, pi_add_key, pi_expect_key), and every index made with
 * the same key (pi_same_key), since hashing is most of what a lookup costs. */
void pi_key(const pi_index *ix, const uint8_t *path, size_t len, uint8_t key[PI_KEY_SIZE]);
int pi_same_key(const pi_index *a, const pi_index *b);
/* pi_get and pi_add of the path whose pi_key is key. */
int pi_get_key(const pi_index *ix, const uint8_t key[PI_KEY_SIZE], pi_stats *out);
int pi_add_key(pi_index *ix, const uint8_t key[PI_KEY_SIZE], const pi_stats *st);
/* Marks the path whose pi_key is key expected, not its ancestors: 1 if it was not marked
 * (or is not in the index: its ancestors may be), 0 if it was (and so are they). */
int pi_expect_key(pi_index *ix, const uint8_t key[PI_KEY_SIZE]);

/* Marks path and its ancestors expected: from path up to "" through the bytes before
 * each last '/', stopping at the first one already expected; those not in the index are
 * passed over. */
void pi_expect(pi_index *ix, const uint8_t *path, size_t len);
/* 1 if path is in the index and expected, else 0. */
int pi_expected(const pi_index *ix, const uint8_t *path, size_t len);

/* Adds "" with fstat(dir_fd), then every entry below it with its lstat, as wk_walk
 * (walk.c) finds them: links never followed, a directory that cannot be read appended
 * to *errors (which must start zeroed) with none of its entries. helper: wk_walk's
 * second thread, -1 when the layers' passes running leave a CPU to it (fd_pass_begin),
 * 0 never, 1 always.
 * Returns 0; the errno of fstat(dir_fd) (nothing added); or -ENOMEM / -EOVERFLOW as
 * pi_add does, when the walk stopped (what it added stays). */
int pi_walk(pi_index *ix, int dir_fd, wk_errors *errors, int helper);

#endif
