/* The one walk of a tree in the evidence: verify's path index and the byte meter both
 * see a layer through it.
 *
 * Every entry below a directory fd is reported by its path relative to that fd with its
 * lstat; links are never followed and only directories are ever opened (O_DIRECTORY,
 * by safeopen.c's policy), each from the top fd with openat2 (RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS), in pieces when its path is too long for one call, or one name at
 * a time without openat2; at most two fds are open at once however deep the tree (two
 * for each walker, with a helper thread).
 *
 * Twin: analyzer/_walk_py.py. Nothing here needs Python; a walk belongs to the thread
 * that called it (and to its helper, which ends before it returns).
 */
#ifndef ANALYZER_WALK_H
#define ANALYZER_WALK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* What a walk tells whoever asked for it. */
typedef struct {
    void *ctx;
    /* An entry, by its path (len bytes, NUL-terminated, '/' between names): 0 to go on,
     * -errno to stop the walk. */
    int (*entry)(void *ctx, const uint8_t *path, size_t len, const struct stat *st);
    /* Before a directory's entries: a mark that undo takes back to when the listing fails
     * part way, so that a directory gives all its entries or none (the twin lists a
     * directory whole before it reports any). Either may be NULL. */
    uint64_t (*mark)(void *ctx);
    void (*undo)(void *ctx, uint64_t mark);
} wk_visitor;

/* The directories a walk could not open or read (and a top it could not lstat), each
 * with its errno. */
typedef struct {
    size_t offset, len;    /* of its path in wk_errors.paths */
    int err;
} wk_error;

typedef struct {
    wk_error *items;
    size_t n, cap;
    uint8_t *paths;        /* the paths back to back */
    size_t paths_len, paths_cap;
} wk_errors;

void wk_errors_free(wk_errors *e);

/* Walks use openat2 where the kernel has it, unless portable != 0: then they open one
 * name at a time, as on kernels without it. Until this is called they do that too. Called
 * by fd_set_portable (init.h); not while a walk runs. */
void wk_setup(int portable);

/* Walks the tree at top (len bytes, relative to dir_fd; "" is dir_fd itself).
 *
 * helper != 0: a second thread walks beside this one (if it can start), each listing a
 * directory of its own; the visitor is still called by one of them at a time (under a
 * lock, a directory's entries together), and not after wk_walk returns.
 *
 * "" reports itself with fstat(dir_fd) and is listed through a dup of dir_fd, left
 * rewound. Any other top is looked up beneath dir_fd without following a link (a ".."
 * or a leading '/' is EXDEV, as openat2 says of a way out): absent, nothing is reported;
 * not lstat-able, it goes to *errors; else it is reported, and if a directory, so is
 * everything below it.
 * A directory that cannot be opened or read is appended to *errors (which must start
 * zeroed) and contributes no entries; the walk goes on. The order is unspecified.
 * Returns 0; the errno of fstat(dir_fd) for top "" (nothing reported); or -errno when
 * the visitor or memory stopped the walk. */
int wk_walk(int dir_fd, const uint8_t *top, size_t top_len, const wk_visitor *v,
            wk_errors *errors, int helper);

#endif
