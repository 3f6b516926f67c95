/* See pathindex.h. */
#define _GNU_SOURCE
#include "pathindex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fastdigest.h"
#include "fd_internal.h"
#include "mem.h"
#include "walk.h"


/* -- the index ----------------------------------------------------------------------- */

/* Entries live in chunks that never move: growing copies no big array and leaves at
 * most one chunk of slack. */
#define CHUNK_BITS 12
#define CHUNK_ENTRIES (1u << CHUNK_BITS)
#define MIN_SLOTS 16

struct chunk {
    uint8_t keys[CHUNK_ENTRIES][PI_KEY_SIZE];
    uint8_t expected[CHUNK_ENTRIES];
    pi_stats stats[];          /* CHUNK_ENTRIES of them in an index with stats, else none */
};

struct pi_index {
    fd_sha256 keyed;           /* SHA-256 fed the key: each path's hash goes on from a copy */
    uint8_t key[PI_KEY_SIZE];
    int with_stats;
    uint32_t n, expected;      /* entries, and how many of them are marked */
    struct chunk **chunks;
    size_t nchunks, chunks_cap;
    uint32_t *slots;           /* entry number + 1, or 0 for an empty slot */
    size_t mask;               /* slot count - 1; the count is a power of two */
};

void pi_key(const pi_index *ix, const uint8_t *path, size_t len, uint8_t key[PI_KEY_SIZE])
{
    fd_sha256 s = ix->keyed;
    uint8_t digest[32];
    fd_sha256_update(&s, path, len);
    fd_sha256_digest(&s, digest);
    memcpy(key, digest, PI_KEY_SIZE);
}

static uint8_t *key_of(const pi_index *ix, uint32_t e)
{
    return ix->chunks[e >> CHUNK_BITS]->keys[e & (CHUNK_ENTRIES - 1)];
}

static uint8_t *mark_of(const pi_index *ix, uint32_t e)
{
    return &ix->chunks[e >> CHUNK_BITS]->expected[e & (CHUNK_ENTRIES - 1)];
}

static pi_stats *stats_of(const pi_index *ix, uint32_t e)
{
    return &ix->chunks[e >> CHUNK_BITS]->stats[e & (CHUNK_ENTRIES - 1)];
}

/* Keys are SHA-256 output, uniform already: their first bytes are the table hash. */
static size_t first_slot(const uint8_t key[PI_KEY_SIZE], size_t mask)
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    return (size_t)h & mask;
}

/* The slot holding key, or the empty slot where it would go. Two keys that are equal
 * are taken for the same path (odds ~n^2 / 2^129). */
static size_t find_slot(const pi_index *ix, const uint8_t key[PI_KEY_SIZE])
{
    size_t i = first_slot(key, ix->mask);
    for (;; i = (i + 1) & ix->mask) {
        uint32_t s = ix->slots[i];
        if (!s || memcmp(key_of(ix, s - 1), key, PI_KEY_SIZE) == 0)
            return i;
    }
}

/* The entry number of the path whose key is key, or -1. */
static int64_t lookup_key(const pi_index *ix, const uint8_t key[PI_KEY_SIZE])
{
    return (int64_t)ix->slots[find_slot(ix, key)] - 1;
}

static int64_t lookup(const pi_index *ix, const uint8_t *path, size_t len)
{
    uint8_t key[PI_KEY_SIZE];
    pi_key(ix, path, len, key);
    return lookup_key(ix, key);
}

pi_index *pi_new(const uint8_t key[PI_KEY_SIZE], int with_stats)
{
    pi_index *ix = fd_mem.calloc(1, sizeof *ix);
    if (!ix)
        return NULL;
    ix->slots = fd_mem.calloc(MIN_SLOTS, sizeof *ix->slots);
    if (!ix->slots) {
        fd_mem.free(ix);
        return NULL;
    }
    ix->mask = MIN_SLOTS - 1;
    ix->with_stats = with_stats != 0;
    memcpy(ix->key, key, PI_KEY_SIZE);
    fd_sha256_init(&ix->keyed);
    fd_sha256_update(&ix->keyed, key, PI_KEY_SIZE);
    return ix;
}

void pi_free(pi_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->nchunks; i++)
        fd_mem.free(ix->chunks[i]);
    fd_mem.free(ix->chunks);
    fd_mem.free(ix->slots);
    fd_mem.free(ix);
}

int pi_has_stats(const pi_index *ix) { return ix->with_stats; }
int pi_same_key(const pi_index *a, const pi_index *b)
{
    return memcmp(a->key, b->key, PI_KEY_SIZE) == 0;
}
uint64_t pi_len(const pi_index *ix) { return ix->n; }
uint64_t pi_unexpected(const pi_index *ix) { return ix->n - ix->expected; }

/* Doubles the table and puts the entries back in entry order, as if each had been added
 * to the bigger table in turn (undo_entries relies on that). */
static int grow_table(pi_index *ix)
{
    size_t count = (ix->mask + 1) * 2, mask = count - 1;
    uint32_t *slots;
    if (count > SIZE_MAX / sizeof *slots)
        return -ENOMEM;
    slots = fd_mem.calloc(count, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (uint32_t e = 0; e < ix->n; e++) {
        size_t i = first_slot(key_of(ix, e), mask);
        while (slots[i])
            i = (i + 1) & mask;
        slots[i] = e + 1;
    }
    fd_mem.free(ix->slots);
    ix->slots = slots;
    ix->mask = mask;
    return 0;
}

static int add_chunk(pi_index *ix)
{
    size_t size = sizeof(struct chunk) + (ix->with_stats ? CHUNK_ENTRIES * sizeof(pi_stats) : 0);
    struct chunk **chunks = fd_reserve(ix->chunks, &ix->chunks_cap, ix->nchunks + 1,
                                    sizeof *chunks);
    if (!chunks)
        return -ENOMEM;
    ix->chunks = chunks;
    chunks[ix->nchunks] = fd_mem.malloc(size);
    if (!chunks[ix->nchunks])
        return -ENOMEM;
    ix->nchunks++;
    return 0;
}

int pi_add(pi_index *ix, const uint8_t *path, size_t len, const pi_stats *st)
{
    uint8_t key[PI_KEY_SIZE];
    pi_key(ix, path, len, key);
    return pi_add_key(ix, key, st);
}

int pi_add_key(pi_index *ix, const uint8_t key[PI_KEY_SIZE], const pi_stats *st)
{
    size_t slot = find_slot(ix, key);
    uint32_t e = ix->n;

    if (ix->slots[slot])
        return 0;
    if (e >= PI_MAX_ENTRIES)
        return -EOVERFLOW;
    if ((size_t)e + 1 > (ix->mask + 1) / 2) {
        if (grow_table(ix) < 0)
            return -ENOMEM;
        slot = find_slot(ix, key);
    }
    /* chunks outlive the entries undo_entries takes back, so one may be there already */
    if ((e >> CHUNK_BITS) >= ix->nchunks && add_chunk(ix) < 0)
        return -ENOMEM;
    memcpy(key_of(ix, e), key, PI_KEY_SIZE);
    *mark_of(ix, e) = 0;
    if (ix->with_stats)
        *stats_of(ix, e) = *st;
    ix->slots[slot] = e + 1;
    ix->n = e + 1;
    return 1;
}

int pi_get(const pi_index *ix, const uint8_t *path, size_t len, pi_stats *out)
{
    uint8_t key[PI_KEY_SIZE];
    pi_key(ix, path, len, key);
    return pi_get_key(ix, key, out);
}

int pi_get_key(const pi_index *ix, const uint8_t key[PI_KEY_SIZE], pi_stats *out)
{
    int64_t e = lookup_key(ix, key);
    if (e < 0)
        return 0;
    if (out && ix->with_stats)
        *out = *stats_of(ix, (uint32_t)e);
    return 1;
}

int pi_expect_key(pi_index *ix, const uint8_t key[PI_KEY_SIZE])
{
    int64_t e = lookup_key(ix, key);
    uint8_t *mark;
    if (e < 0)
        return 1;
    mark = mark_of(ix, (uint32_t)e);
    if (*mark)
        return 0;
    *mark = 1;
    ix->expected++;
    return 1;
}

void pi_expect(pi_index *ix, const uint8_t *path, size_t len)
{
    uint8_t key[PI_KEY_SIZE];
    for (;;) {
        pi_key(ix, path, len, key);
        if (!pi_expect_key(ix, key) || !len)
            return;            /* marked already, and so are its ancestors; or the top */
        const uint8_t *slash = memrchr(path, '/', len);
        len = slash ? (size_t)(slash - path) : 0;
    }
}

int pi_expected(const pi_index *ix, const uint8_t *path, size_t len)
{
    int64_t e = lookup(ix, path, len);
    return e >= 0 && *mark_of(ix, (uint32_t)e);
}

/* Takes back the entries after the first n, newest first. Emptying the newest entry's
 * slot puts the table back as it was before that entry: no other entry's probe can have
 * passed over the slot, since none came after it (grow_table re-adds in entry order, so
 * this holds across growth too). */
static void undo_entries(pi_index *ix, uint32_t n)
{
    while (ix->n > n) {
        ix->n--;
        ix->slots[find_slot(ix, key_of(ix, ix->n))] = 0;
    }
}

/* -- the walk (walk.c) --------------------------------------------------------------- */

static int add_entry(void *ctx, const uint8_t *path, size_t len, const struct stat *st)
{
    pi_stats stats;
    int rc;
    stats.mode = st->st_mode;
    stats.uid = st->st_uid;
    stats.gid = st->st_gid;
    stats.nlink = (uint32_t)st->st_nlink;
    stats.size = (uint64_t)st->st_size;
    stats.dev = st->st_dev;
    stats.ino = st->st_ino;
    stats.rdev = st->st_rdev;
    rc = pi_add(ctx, path, len, &stats);
    return rc < 0 ? rc : 0;
}

static uint64_t mark_entries(void *ctx)
{
    return ((pi_index *)ctx)->n;
}

static void undo_to(void *ctx, uint64_t mark)
{
    undo_entries(ctx, (uint32_t)mark);
}

int pi_walk(pi_index *ix, int dir_fd, wk_errors *errors, int helper)
{
    wk_visitor v = {ix, add_entry, mark_entries, undo_to};
    int free_cpu = fd_pass_begin();
    int rc = wk_walk(dir_fd, (const uint8_t *)"", 0, &v, errors, helper < 0 ? free_cpu : helper);
    fd_pass_end();
    return rc;
}
