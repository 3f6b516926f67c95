/* Reading many small files below a directory fd, in one call without the GIL.
 *
 * The hot loop of loading a big layer store: tens of thousands of tiny metadata
 * files (diff, size, cache-id, parent, configs). Each path is opened with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) where the kernel has it, so no
 * path can leave the directory or pass through a link, and read once.
 */
#ifndef ANALYZER_READFILES_H
#define ANALYZER_READFILES_H

#include <stddef.h>
#include <sys/types.h>

typedef struct {
    unsigned char *data;   /* all contents, back to back (malloc'd; caller frees) */
    size_t len, cap;
} rf_arena;

/* 1 when openat2 with RESOLVE_BENEATH works here, else 0 (probed once). */
int rf_have_openat2(void);

/* openat2(dirfd, path, oflags, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS): an fd, or -1 with errno (ELOOP for a link on the way,
 * EXDEV for a way out, ENOSYS without openat2). */
int rf_open_beneath(int dirfd, const char *path, int oflags);

/* For each of n paths: contents appended to arena at offsets[i], length lens[i],
 * errs[i] = 0; or errs[i] = errno (ENOENT, ELOOP for a link, EXDEV for a way
 * out, EFBIG past limit bytes, ...). Without openat2, paths must be single
 * names (the caller resolved the directory). Returns -1 only on ENOMEM. */
int rf_read_files(int dirfd, const char *const *paths, size_t n, size_t limit, int oflags,
                  rf_arena *arena, size_t *offsets, size_t *lens, int *errs);

#endif
