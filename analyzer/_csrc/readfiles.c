/* See readfiles.h. */
#define _GNU_SOURCE
#include "readfiles.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#if defined(__x86_64__) || defined(__aarch64__)
#define SYS_openat2 437
#endif
#endif

struct rf_open_how { uint64_t flags, mode, resolve; };
#define RF_RESOLVE_NO_MAGICLINKS 0x02
#define RF_RESOLVE_NO_SYMLINKS 0x04
#define RF_RESOLVE_BENEATH 0x08

static int open_beneath(int dirfd, const char *path, int oflags)
{
#ifdef SYS_openat2
    struct rf_open_how how = {(uint64_t)(unsigned)oflags, 0,
                              RF_RESOLVE_BENEATH | RF_RESOLVE_NO_SYMLINKS | RF_RESOLVE_NO_MAGICLINKS};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
#else
    (void)dirfd; (void)path; (void)oflags;
    errno = ENOSYS;
    return -1;
#endif
}

int rf_open_beneath(int dirfd, const char *path, int oflags)
{
    return open_beneath(dirfd, path, oflags);
}

int rf_have_openat2(void)
{
    static int known = -1;
    if (known < 0) {
        int fd = open_beneath(AT_FDCWD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        known = fd >= 0;
        if (fd >= 0)
            close(fd);
    }
    return known;
}

static int reserve(rf_arena *a, size_t more)
{
    if (a->cap - a->len >= more)
        return 0;
    size_t cap = a->cap ? a->cap : 1 << 16;
    while (cap - a->len < more)
        cap *= 2;
    unsigned char *p = realloc(a->data, cap);
    if (!p)
        return -1;
    a->data = p;
    a->cap = cap;
    return 0;
}

int rf_read_files(int dirfd, const char *const *paths, size_t n, size_t limit, int oflags,
                  rf_arena *arena, size_t *offsets, size_t *lens, int *errs)
{
    int beneath = rf_have_openat2();
    for (size_t i = 0; i < n; i++) {
        offsets[i] = arena->len;
        lens[i] = 0;
        int fd;
        do {
            fd = beneath ? open_beneath(dirfd, paths[i], oflags)
                         : openat(dirfd, paths[i], oflags | O_NOFOLLOW);
        } while (fd < 0 && errno == EINTR);
        if (fd < 0 && errno == EPERM && (oflags & O_NOATIME)) {
            /* O_NOATIME needs ownership or CAP_FOWNER: read without it from now on. */
            oflags &= ~O_NOATIME;
            i--;
            continue;
        }
        if (fd < 0) {
            errs[i] = errno;
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
        if (!err && got == 0) {
            struct stat st;
            if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode))
                err = EINVAL;
        }
        close(fd);
        errs[i] = err;
        if (!err) {
            lens[i] = (size_t)got;
            arena->len += (size_t)got;
        }
    }
    return 0;
}
