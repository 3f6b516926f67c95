/* See treeusage.h. */
#define _GNU_SOURCE
#include "treeusage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mem.h"


#define MIN_SLOTS 16

struct tu_table {
    tu_inode *inodes;          /* in the order they were found */
    uint32_t n;
    size_t cap;
    uint32_t *slots;           /* inode number + 1, or 0 for an empty slot; NULL compact */
    size_t mask;               /* slot count - 1; the count is a power of two */
};

/* Inode numbers are dense and small: spread them over the table (splitmix64's finish). */
static size_t first_slot(uint64_t dev, uint64_t ino, size_t mask)
{
    uint64_t h = ino ^ (dev * 0x9E3779B97F4A7C15u);
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9u;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBu;
    return (size_t)(h ^ (h >> 31)) & mask;
}

/* The slot holding (dev, ino), or the empty slot where it would go. */
static size_t find_slot(const tu_table *t, uint64_t dev, uint64_t ino)
{
    size_t i = first_slot(dev, ino, t->mask);
    for (;; i = (i + 1) & t->mask) {
        uint32_t s = t->slots[i];
        if (!s || (t->inodes[s - 1].ino == ino && t->inodes[s - 1].dev == dev))
            return i;
    }
}

tu_table *tu_new(void)
{
    tu_table *t = fd_mem.realloc(NULL, sizeof *t);
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    return t;
}

void tu_free(tu_table *t)
{
    if (!t)
        return;
    fd_mem.free(t->inodes);
    fd_mem.free(t->slots);
    fd_mem.free(t);
}

uint64_t tu_len(const tu_table *t) { return t->n; }

/* Doubles the table and puts the inodes back in the order they were found, as if each
 * had been added to the bigger table in turn (undo relies on that). */
static int grow_table(tu_table *t)
{
    size_t count = t->slots ? (t->mask + 1) * 2 : MIN_SLOTS, mask;
    uint32_t *slots;
    while (count / 2 < (size_t)t->n + 1)
        count *= 2;
    mask = count - 1;
    slots = fd_mem.calloc(count, sizeof *slots);      /* calloc checks count * size */
    if (!slots)
        return -ENOMEM;
    for (uint32_t e = 0; e < t->n; e++) {
        size_t i = first_slot(t->inodes[e].dev, t->inodes[e].ino, mask);
        while (slots[i])
            i = (i + 1) & mask;
        slots[i] = e + 1;
    }
    fd_mem.free(t->slots);
    t->slots = slots;
    t->mask = mask;
    return 0;
}

/* The inode's entry, added with links 0 when new: its number, or -ENOMEM. */
static int64_t entry_of(tu_table *t, const tu_inode *inode)
{
    size_t slot;
    uint32_t e = t->n;
    while (!t->slots || (size_t)e + 1 > (t->mask + 1) / 2)
        if (grow_table(t) < 0)
            return -ENOMEM;
    slot = find_slot(t, inode->dev, inode->ino);
    if (t->slots[slot])
        return t->slots[slot] - 1;
    if (e == UINT32_MAX - 1)
        return -ENOMEM;
    if (e >= t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        tu_inode *more = cap <= SIZE_MAX / sizeof *more
                         ? fd_mem.realloc(t->inodes, cap * sizeof *more) : NULL;
        if (!more)
            return -ENOMEM;
        t->inodes = more;
        t->cap = cap;
    }
    t->inodes[e] = *inode;
    t->inodes[e].links = 0;
    t->slots[slot] = e + 1;
    t->n = e + 1;
    return e;
}

int tu_add(tu_table *t, const tu_inode *inode)
{
    int64_t e = entry_of(t, inode);
    if (e < 0)
        return (int)e;
    t->inodes[e].links++;
    return 0;
}

void tu_compact(tu_table *t)
{
    fd_mem.free(t->slots);
    t->slots = NULL;
    t->mask = 0;
    if (t->n < t->cap) {
        tu_inode *fit = t->n ? fd_mem.realloc(t->inodes, t->n * sizeof *fit) : NULL;
        if (fit || !t->n) {
            if (!t->n)
                fd_mem.free(t->inodes);
            t->inodes = fit;
            t->cap = t->n;
        }
    }
}

uint64_t tu_allocated_bytes(const tu_table *t)
{
    uint64_t sum = 0;
    for (uint32_t e = 0; e < t->n; e++)
        sum += t->inodes[e].allocated;
    return sum;
}

/* The inodes of several tables, each once: its links found in all of them, and
 * whether it is counted yet. */
struct found {
    uint64_t dev, ino;
    uint32_t links;
    uint8_t counted;
};

struct union_set {
    struct found *found;
    uint32_t *slots;           /* found index + 1, or 0 */
    size_t mask, n;
};

/* Room for every inode of the tables, or -ENOMEM. */
static int union_open(struct union_set *u, const tu_table *const *tables, size_t ntables)
{
    size_t total = 0, count = MIN_SLOTS;
    for (size_t k = 0; k < ntables; k++)
        total += tables[k]->n;
    memset(u, 0, sizeof *u);
    if (total >= UINT32_MAX - 1)
        return -ENOMEM;
    while (count / 2 < total + 1)
        count *= 2;
    u->found = fd_mem.realloc(NULL, (total ? total : 1) * sizeof *u->found);
    u->slots = count <= SIZE_MAX / sizeof *u->slots
               ? fd_mem.realloc(NULL, count * sizeof *u->slots) : NULL;
    if (!u->found || !u->slots) {
        fd_mem.free(u->found);
        fd_mem.free(u->slots);
        return -ENOMEM;
    }
    memset(u->slots, 0, count * sizeof *u->slots);
    u->mask = count - 1;
    return 0;
}

static void union_close(struct union_set *u)
{
    fd_mem.free(u->found);
    fd_mem.free(u->slots);
}

/* The inode's entry in the union, added when new (union_open made room for it). */
static struct found *union_find(struct union_set *u, const tu_inode *i)
{
    size_t s = first_slot(i->dev, i->ino, u->mask);
    while (u->slots[s] && (u->found[u->slots[s] - 1].ino != i->ino
                           || u->found[u->slots[s] - 1].dev != i->dev))
        s = (s + 1) & u->mask;
    if (!u->slots[s]) {
        u->found[u->n] = (struct found){i->dev, i->ino, 0, 0};
        u->slots[s] = (uint32_t)++u->n;
    }
    return &u->found[u->slots[s] - 1];
}

int tu_freed_bytes(const tu_table *const *tables, size_t ntables, uint64_t *out)
{
    struct union_set u;
    uint64_t sum = 0;
    if (union_open(&u, tables, ntables) < 0)
        return -ENOMEM;
    /* Once to add up each inode's links over all the tables, once to sum its bytes. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < ntables; k++) {
            for (uint32_t e = 0; e < tables[k]->n; e++) {
                const tu_inode *i = &tables[k]->inodes[e];
                struct found *f = union_find(&u, i);
                if (pass == 0)
                    f->links += i->links;
                else if (!f->counted) {
                    /* What the inode was first seen with stays, as in one table. */
                    f->counted = 1;
                    if (i->is_dir || f->links >= i->nlink)
                        sum += i->allocated;
                }
            }
        }
    }
    union_close(&u);
    *out = sum;
    return 0;
}

int tu_attribute(const tu_table *const *tables, size_t ntables, uint64_t dev,
                 tu_share *shares, tu_share *elsewhere)
{
    struct union_set u;
    if (union_open(&u, tables, ntables) < 0)
        return -ENOMEM;
    memset(elsewhere, 0, sizeof *elsewhere);
    for (size_t k = 0; k < ntables; k++) {
        memset(&shares[k], 0, sizeof shares[k]);
        for (uint32_t e = 0; e < tables[k]->n; e++) {
            const tu_inode *i = &tables[k]->inodes[e];
            struct found *f = union_find(&u, i);
            tu_share *to = i->dev == dev ? &shares[k] : elsewhere;
            if (f->counted)
                continue;
            f->counted = 1;
            to->bytes += i->allocated;
            to->inodes++;
        }
    }
    union_close(&u);
    return 0;
}

uint64_t tu_apparent_bytes(const tu_table *t)
{
    uint64_t sum = 0;
    for (uint32_t e = 0; e < t->n; e++)
        if (!t->inodes[e].is_dir)
            sum += t->inodes[e].size;
    return sum;
}

/* -- a walk into the table ----------------------------------------------------------- */

struct walk_into {
    tu_table *t;
    uint32_t mark;             /* inodes before the directory being listed */
    uint32_t *seen;            /* inodes from before it that it gave a link to */
    size_t nseen, seen_cap;
};

static int add_entry(void *ctx, const uint8_t *path, size_t len, const struct stat *st)
{
    struct walk_into *w = ctx;
    tu_inode inode = {st->st_dev, st->st_ino, (uint64_t)st->st_blocks * 512,
                      (uint64_t)st->st_size, (uint32_t)st->st_nlink, 0, S_ISDIR(st->st_mode)};
    int64_t e = entry_of(w->t, &inode);
    (void)path;
    (void)len;
    if (e < 0)
        return (int)e;
    if (e < w->mark) {
        if (w->nseen == w->seen_cap) {
            size_t cap = w->seen_cap ? w->seen_cap * 2 : 64;
            uint32_t *more = fd_mem.realloc(w->seen, cap * sizeof *more);
            if (!more)
                return -ENOMEM;
            w->seen = more;
            w->seen_cap = cap;
        }
        w->seen[w->nseen++] = (uint32_t)e;
    }
    w->t->inodes[e].links++;
    return 0;
}

static uint64_t mark_inodes(void *ctx)
{
    struct walk_into *w = ctx;
    w->mark = w->t->n;
    w->nseen = 0;
    return w->mark;
}

/* Takes back what the directory gave: its new inodes, newest first (emptying the newest
 * one's slot puts the table back as it was before it: no later probe can have passed
 * over it), and its links to older ones. */
static void undo_inodes(void *ctx, uint64_t mark)
{
    struct walk_into *w = ctx;
    tu_table *t = w->t;
    while (t->n > mark) {
        t->n--;
        t->slots[find_slot(t, t->inodes[t->n].dev, t->inodes[t->n].ino)] = 0;
    }
    while (w->nseen)
        t->inodes[w->seen[--w->nseen]].links--;
}

int tu_walk(tu_table *t, int dir_fd, const uint8_t *top, size_t len, wk_errors *errors)
{
    struct walk_into w = {t, t->n, NULL, 0, 0};
    wk_visitor v = {&w, add_entry, mark_inodes, undo_inodes};
    int rc = wk_walk(dir_fd, top, len, &v, errors, 0);
    fd_mem.free(w.seen);
    return rc;
}
