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

static ssize_t read_once(int fd, unsigned char *buf, size_t count)
{
    ssize_t got;
    do {
        got = read(fd, buf, count);
    } while (got < 0 && errno == EINTR);
    return got;
}

/* One read sized by the file, not by the limit (a limit may be GiBs): a regular file
 * gives all it has up to the count asked for, so a short read is its end; one more if
 * it grew since the fstat (a live host). Appends to arena and says how much in *len:
 * 0, EFBIG past limit bytes, the read's errno, or -1 out of memory. Twin: safeopen.py
 * read_regular. */
static int read_regular(int fd, uint64_t size, size_t limit, rf_arena *arena, size_t *len)
{
    if (size > limit)
        return EFBIG;
    size_t want = (size_t)size + 1;
    if (reserve(arena, want) < 0)
        return -1;
    ssize_t got = read_once(fd, arena->data + arena->len, want);
    if (got < 0)
        return errno;
    size_t have = (size_t)got;
    if (have > size) {
        if (reserve(arena, limit + 1) < 0)
            return -1;
        got = read_once(fd, arena->data + arena->len + have, limit + 1 - have);
        if (got < 0)
            return errno;
        have += (size_t)got;
        if (have > limit)
            return EFBIG;
    }
    arena->len += have;
    *len = have;
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
        int err = read_regular(fd, (uint64_t)st.st_size, limit, arena, &lens[i]);
        close(fd);
        if (err < 0)
            return -1;
        errs[i] = err;
    }
    return 0;
}
