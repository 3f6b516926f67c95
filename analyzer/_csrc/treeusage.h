/* The bytes a tree holds on disk, as du counts them and as a removal frees them.
 *
 * A table of the inodes a walk (walk.c) found, keyed by (st_dev, st_ino): each inode's
 * allocated bytes (st_blocks * 512), apparent size, st_nlink, whether it is a directory,
 * and how many of its links the walks found. Each inode counts once however often it is
 * found; a file frees its bytes only when every one of its links was found (a hard link
 * elsewhere keeps it); a directory always does. What an inode is first seen with stays.
 * About 56 bytes an inode while walks add to it, 48 once compact.
 *
 * Twin: analyzer/_treeusage_py.py, whose behaviour is the spec. A table belongs to one
 * thread at a time; nothing here needs Python.
 */
#ifndef ANALYZER_TREEUSAGE_H
#define ANALYZER_TREEUSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "walk.h"

typedef struct tu_table tu_table;

typedef struct {
    uint64_t dev, ino, allocated, size;
    uint32_t nlink, links;
    uint8_t is_dir;
} tu_inode;

/* A new empty table, or NULL when out of memory. */
tu_table *tu_new(void);
void tu_free(tu_table *t);

uint64_t tu_len(const tu_table *t);

/* One link of an inode found (links is ignored: it counts as one). 0, or -ENOMEM
 * (nothing changes). */
int tu_add(tu_table *t, const tu_inode *inode);

/* Gives back what a table holds for adding: its slots (rebuilt when it is added to
 * again) and the spare room of its inodes. A table the walks are done with costs its
 * inodes alone. */
void tu_compact(tu_table *t);

/* Sums over the inodes: allocated bytes of each; apparent sizes of all but directories
 * (moby's directory.Size). */
uint64_t tu_allocated_bytes(const tu_table *t);
uint64_t tu_apparent_bytes(const tu_table *t);

/* What a removal of everything the tables found frees, in *out: each inode once, with
 * the links all of them found; directories always, files all of whose links were found.
 * 0, or -ENOMEM. About 28 bytes an inode while it runs. */
int tu_freed_bytes(const tu_table *const *tables, size_t ntables, uint64_t *out);

/* What an owner holds: allocated bytes and inodes, each inode once. */
typedef struct {
    uint64_t bytes, inodes;
} tu_share;

/* Every inode of the tables counted once, for the first table (in the order given) that
 * found it: in shares[k] (ntables of them) when it lies on device dev, else in
 * *elsewhere (other filesystems mounted below the walked tree, which du -x leaves out).
 * 0, or -ENOMEM. About 28 bytes an inode while it runs. */
int tu_attribute(const tu_table *const *tables, size_t ntables, uint64_t dev,
                 tu_share *shares, tu_share *elsewhere);

/* Walks top below dir_fd (wk_walk) into the table: 0, or -errno when it stopped. */
int tu_walk(tu_table *t, int dir_fd, const uint8_t *top, size_t len, wk_errors *errors);

#endif
