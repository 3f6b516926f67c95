/* See readfiles.h. */
#define _GNU_SOURCE
#include "readfiles.h"
#include "safeopen.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"

static int reserve(rf_arena *a, size_t more)
{
    unsigned char *p = more <= SIZE_MAX - a->len ? fd_reserve(a->data, &a->cap, a->len + more, 1)
                                                 : NULL;
    if (!p)
        return -1;
    a->data = p;
    return 0;
}

int rf_read_files(int dirfd, const char *const *paths, size_t n, size_t limit, int oflags,
                  rf_arena *arena, size_t *offsets, size_t *lens, int *errs)
{
    int beneath = so_have_openat2();
    for (size_t i = 0; i < n; i++) {
        offsets[i] = arena->len;
        lens[i] = 0;
        struct stat st;
        int fd = so_open_file(dirfd, paths[i], &oflags, beneath, &st);
        if (fd < 0) {
            errs[i] = errno;
            continue;
        }
        if ((uint64_t)st.st_size > limit) {   /* the read below would tell, a limit later */
            close(fd);
            errs[i] = EFBIG;
            continue;
        }
        if (reserve(arena, limit + 1) < 0) {
            close(fd);
            return -1;
        }
        /* One read: a regular file gives all it has up to the count asked for. */
        ssize_t got;
        do {
            got = read(fd, arena->data + arena->len, limit + 1);
        } while (got < 0 && errno == EINTR);
        int err = got < 0 ? errno : 0;
        if (!err && (size_t)got > limit)
            err = EFBIG;
        close(fd);
        errs[i] = err;
        if (!err) {
            lens[i] = (size_t)got;
            arena->len += (size_t)got;
        }
    }
    return 0;
}
