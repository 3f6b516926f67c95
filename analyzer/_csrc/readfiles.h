/* Reading many small files below a directory fd, in one call without the GIL.
 *
 * The hot loop of loading a big layer store: tens of thousands of tiny metadata
 * files (diff, size, cache-id, parent, configs). Each path is opened as
 * safeopen.h says (openat2 where the kernel has it, so no path can leave the
 * directory or pass through a link; nothing but a regular file opened), and read once.
 */
#ifndef ANALYZER_READFILES_H
#define ANALYZER_READFILES_H

#include <stddef.h>
#include <sys/types.h>

typedef struct {
    unsigned char *data;   /* all contents, back to back (malloc'd; caller frees) */
    size_t len, cap;
} rf_arena;

/* For each of n paths: contents appended to arena at offsets[i], length lens[i],
 * errs[i] = 0; or errs[i] = errno (ENOENT, ELOOP for a link, EXDEV for a way
 * out, EFBIG past limit bytes, EINVAL not a regular file,
 * EISDIR a directory, ...). Without openat2 (so_have_openat2), paths must
 * be single names (the caller resolved the directory). Returns -1 only on ENOMEM. */
int rf_read_files(int dirfd, const char *const *paths, size_t n, size_t limit, int oflags,
                  rf_arena *arena, size_t *offsets, size_t *lens, int *errs);

#endif
