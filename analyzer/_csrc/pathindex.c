/* See pathindex.h. */
#define _GNU_SOURCE
#include "pathindex.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fastdigest.h"
#include "safeopen.h"

static pi_allocator mem = {malloc, calloc, realloc, free};

void pi_set_allocator(const pi_allocator *m)
{
    mem = *m;
}

/* Makes room for need elements of size bytes at p, doubling the capacity *cap. Returns
 * the buffer (moved perhaps, and allocated even for need 0), or NULL with p and *cap
 * untouched. */
static void *reserve(void *p, size_t *cap, size_t need, size_t size)
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
    q = mem.realloc(p, more * size);
    if (q)
        *cap = more;
    return q;
}

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
    int with_stats;
    uint32_t n, expected;      /* entries, and how many of them are marked */
    struct chunk **chunks;
    size_t nchunks, chunks_cap;
    uint32_t *slots;           /* entry number + 1, or 0 for an empty slot */
    size_t mask;               /* slot count - 1; the count is a power of two */
};

static void hash_path(const pi_index *ix, const uint8_t *path, size_t len,
                      uint8_t key[PI_KEY_SIZE])
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

/* The entry number of path, or -1. */
static int64_t lookup(const pi_index *ix, const uint8_t *path, size_t len)
{
    uint8_t key[PI_KEY_SIZE];
    hash_path(ix, path, len, key);
    return (int64_t)ix->slots[find_slot(ix, key)] - 1;
}

pi_index *pi_new(const uint8_t key[PI_KEY_SIZE], int with_stats)
{
    pi_index *ix = mem.calloc(1, sizeof *ix);
    if (!ix)
        return NULL;
    ix->slots = mem.calloc(MIN_SLOTS, sizeof *ix->slots);
    if (!ix->slots) {
        mem.free(ix);
        return NULL;
    }
    ix->mask = MIN_SLOTS - 1;
    ix->with_stats = with_stats != 0;
    fd_sha256_init(&ix->keyed);
    fd_sha256_update(&ix->keyed, key, PI_KEY_SIZE);
    return ix;
}

void pi_free(pi_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->nchunks; i++)
        mem.free(ix->chunks[i]);
    mem.free(ix->chunks);
    mem.free(ix->slots);
    mem.free(ix);
}

int pi_has_stats(const pi_index *ix) { return ix->with_stats; }
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
    slots = mem.calloc(count, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (uint32_t e = 0; e < ix->n; e++) {
        size_t i = first_slot(key_of(ix, e), mask);
        while (slots[i])
            i = (i + 1) & mask;
        slots[i] = e + 1;
    }
    mem.free(ix->slots);
    ix->slots = slots;
    ix->mask = mask;
    return 0;
}

static int add_chunk(pi_index *ix)
{
    size_t size = sizeof(struct chunk) + (ix->with_stats ? CHUNK_ENTRIES * sizeof(pi_stats) : 0);
    struct chunk **chunks = reserve(ix->chunks, &ix->chunks_cap, ix->nchunks + 1,
                                    sizeof *chunks);
    if (!chunks)
        return -ENOMEM;
    ix->chunks = chunks;
    chunks[ix->nchunks] = mem.malloc(size);
    if (!chunks[ix->nchunks])
        return -ENOMEM;
    ix->nchunks++;
    return 0;
}

int pi_add(pi_index *ix, const uint8_t *path, size_t len, const pi_stats *st)
{
    uint8_t key[PI_KEY_SIZE];
    size_t slot;
    uint32_t e = ix->n;

    hash_path(ix, path, len, key);
    slot = find_slot(ix, key);
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
    int64_t e = lookup(ix, path, len);
    if (e < 0)
        return 0;
    if (out && ix->with_stats)
        *out = *stats_of(ix, (uint32_t)e);
    return 1;
}

void pi_expect(pi_index *ix, const uint8_t *path, size_t len)
{
    for (;;) {
        int64_t e = lookup(ix, path, len);
        if (e >= 0) {
            uint8_t *mark = mark_of(ix, (uint32_t)e);
            if (*mark)
                return;        /* and so are its ancestors */
            *mark = 1;
            ix->expected++;
        }
        if (!len)
            return;
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

/* -- the walk ------------------------------------------------------------------------ */

static int use_openat2;

void pi_walk_setup(int portable)
{
    use_openat2 = !portable && so_have_openat2();
}

typedef struct {
    uint8_t *data;
    size_t len, cap;
} buffer;

static int append(buffer *b, const void *p, size_t n)
{
    uint8_t *data = reserve(b->data, &b->cap, b->len + n + 1, 1);
    if (!data)
        return -ENOMEM;
    b->data = data;
    memcpy(data + b->len, p, n);
    b->len += n;
    data[b->len] = 0;          /* a path in a buffer is ready for open */
    return 0;
}

struct walk {
    pi_index *ix;
    int dir_fd;
    int oflags;                /* O_NOATIME goes after the first EPERM: it needs ownership */
    buffer pending;            /* directories to list: each path, then its length */
    buffer path;               /* the directory being listed (then '/' and a name) */
    pi_errors *errors;
};

static int push(buffer *pending, const uint8_t *path, size_t len)
{
    if (append(pending, path, len) < 0 || append(pending, &len, sizeof len) < 0)
        return -ENOMEM;
    return 0;
}

/* Moves the last pending path to w->path. */
static int pop(struct walk *w)
{
    size_t len;
    buffer *p = &w->pending;
    memcpy(&len, p->data + p->len - sizeof len, sizeof len);
    p->len -= sizeof len + len;
    w->path.len = 0;
    return append(&w->path, p->data + p->len, len);
}

static void stats_from(const struct stat *st, pi_stats *out)
{
    out->mode = st->st_mode;
    out->uid = st->st_uid;
    out->gid = st->st_gid;
    out->nlink = (uint32_t)st->st_nlink;
    out->size = (uint64_t)st->st_size;
    out->dev = st->st_dev;
    out->ino = st->st_ino;
    out->rdev = st->st_rdev;
}

static int add_stat(pi_index *ix, const uint8_t *path, size_t len, const struct stat *st)
{
    pi_stats stats;
    stats_from(st, &stats);
    return pi_add(ix, path, len, &stats);
}

/* One piece of a path, from the fd at: an fd, or -errno. */
static int open_piece(struct walk *w, int at, const char *piece)
{
    int fd = so_open(at, piece, &w->oflags, use_openat2);
    return fd >= 0 ? fd : -errno;
}

/* How much of p to open in one call. openat2 takes up to PATH_MAX - 1 bytes, cut at a
 * '/'; openat one name, since its O_NOFOLLOW guards only a path's last one. */
static size_t piece_len(const char *p, size_t len)
{
    size_t max = use_openat2 ? PATH_MAX - 1 : 0;
    const char *cut = NULL;
    if (len <= max)
        return len;
    if (max)
        cut = memrchr(p, '/', max + 1);
    if (!cut)
        cut = memchr(p, '/', len);
    return cut ? (size_t)(cut - p) : len;
}

/* The directory at w->path, opened piece by piece, each piece from the fd the one before
 * gave, so that two fds at most are open: an fd, or -errno. The top is dir_fd itself,
 * duplicated: whoever opened it could read it. */
static int open_dir(struct walk *w)
{
    const char *path = (const char *)w->path.data;
    size_t len = w->path.len, at = 0;
    char piece[PATH_MAX];
    int fd = w->dir_fd;

    if (!len) {
        fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        return fd < 0 ? -errno : fd;
    }
    while (at < len) {
        size_t n = piece_len(path + at, len - at);
        int next;
        if (n >= sizeof piece)
            next = -ENAMETOOLONG;      /* one name longer than a path may be */
        else {
            memcpy(piece, path + at, n);
            piece[n] = 0;
            next = open_piece(w, fd, piece);
        }
        if (fd != w->dir_fd)
            close(fd);
        if (next < 0)
            return next;
        fd = next;
        at += n + 1;
    }
    return fd;
}

/* Adds the entry name of the directory at w->path (its first prefix bytes), queueing it
 * if it is a directory itself: 0, an errno that spoils the directory, or -errno. */
static int add_child(struct walk *w, int fd, const char *name, size_t prefix)
{
    struct stat st;
    int rc;
    if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        /* Gone since readdir (a live host): it is not there, as if listed a moment later. */
        return errno == ENOENT ? 0 : errno;
    w->path.len = prefix;
    if ((prefix && append(&w->path, "/", 1) < 0) || append(&w->path, name, strlen(name)) < 0)
        return -ENOMEM;
    rc = add_stat(w->ix, w->path.data, w->path.len, &st);
    if (rc < 0)
        return rc;
    return S_ISDIR(st.st_mode) ? push(&w->pending, w->path.data, w->path.len) : 0;
}

/* Lists the directory at w->path: 0, the errno that stopped it, or -errno. */
static int read_dir(struct walk *w)
{
    size_t prefix = w->path.len;
    int fd = open_dir(w), rc = 0;
    DIR *dir;
    if (fd < 0)
        return -fd;
    dir = fdopendir(fd);
    if (!dir) {
        rc = errno;
        close(fd);
        return rc;
    }
    /* The top's fd shares its offset with dir_fd: read it all, and leave it as os.scandir
     * leaves an fd, rewound. */
    if (!prefix)
        rewinddir(dir);
    for (;;) {
        struct dirent *d;
        errno = 0;
        d = readdir(dir);
        if (!d) {
            rc = errno;
            break;
        }
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
            continue;
        rc = add_child(w, dirfd(dir), d->d_name, prefix);
        if (rc)
            break;
    }
    if (!prefix)
        rewinddir(dir);
    closedir(dir);
    w->path.len = prefix;
    return rc;
}

static int add_error(pi_errors *e, const buffer *path, int err)
{
    pi_error *items = reserve(e->items, &e->cap, e->n + 1, sizeof *items);
    uint8_t *paths;
    if (!items)
        return -ENOMEM;
    e->items = items;
    paths = reserve(e->paths, &e->paths_cap, e->paths_len + path->len, 1);
    if (!paths)
        return -ENOMEM;
    e->paths = paths;
    memcpy(paths + e->paths_len, path->data, path->len);
    items[e->n].offset = e->paths_len;
    items[e->n].len = path->len;
    items[e->n].err = err;
    e->paths_len += path->len;
    e->n++;
    return 0;
}

/* A directory that fails part way leaves none of its entries (the twin lists a directory
 * whole before it adds anything), neither in the index nor queued. */
static int list_dir(struct walk *w)
{
    uint32_t entries = w->ix->n;
    size_t queued = w->pending.len;
    int rc = read_dir(w);
    if (rc <= 0)
        return rc;
    undo_entries(w->ix, entries);
    w->pending.len = queued;
    return add_error(w->errors, &w->path, rc);
}

int pi_walk(pi_index *ix, int dir_fd, pi_errors *errors)
{
    struct walk w = {ix, dir_fd, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME,
                     {NULL, 0, 0}, {NULL, 0, 0}, errors};
    struct stat st;
    int rc;

    if (fstat(dir_fd, &st) != 0)
        return errno;
    rc = add_stat(ix, (const uint8_t *)"", 0, &st);
    if (rc >= 0)
        rc = push(&w.pending, (const uint8_t *)"", 0);
    while (rc >= 0 && w.pending.len) {
        rc = pop(&w);
        if (rc >= 0)
            rc = list_dir(&w);
    }
    mem.free(w.pending.data);
    mem.free(w.path.data);
    return rc < 0 ? rc : 0;
}

void pi_errors_free(pi_errors *e)
{
    mem.free(e->items);
    mem.free(e->paths);
    e->items = NULL;
    e->paths = NULL;
    e->n = e->cap = e->paths_len = e->paths_cap = 0;
}
