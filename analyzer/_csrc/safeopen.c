/* See safeopen.h. */
#define _GNU_SOURCE
#include "safeopen.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#if defined(__x86_64__) || defined(__aarch64__)
#define SYS_openat2 437
#endif
#endif

struct so_open_how { uint64_t flags, mode, resolve; };
#define SO_RESOLVE_NO_MAGICLINKS 0x02
#define SO_RESOLVE_NO_SYMLINKS 0x04
#define SO_RESOLVE_BENEATH 0x08

int so_open_beneath(int dirfd, const char *path, int oflags)
{
#ifdef SYS_openat2
    struct so_open_how how = {(uint64_t)(unsigned)oflags, 0,
                              SO_RESOLVE_BENEATH | SO_RESOLVE_NO_SYMLINKS | SO_RESOLVE_NO_MAGICLINKS};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
#else
    (void)dirfd; (void)path; (void)oflags;
    errno = ENOSYS;
    return -1;
#endif
}

int so_have_openat2(void)
{
    static int known = -1;
    if (known < 0) {
        int fd = so_open_beneath(AT_FDCWD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        known = fd >= 0;
        if (fd >= 0)
            close(fd);
    }
    return known;
}

int so_open(int dirfd, const char *path, int *oflags, int beneath)
{
    for (;;) {
        int fd = beneath ? so_open_beneath(dirfd, path, *oflags)
                         : openat(dirfd, path, *oflags | O_NOFOLLOW);
        if (fd >= 0)
            return fd;
        if (errno == EPERM && (*oflags & O_NOATIME))
            *oflags &= ~O_NOATIME;
        else if (errno != EINTR)
            return -1;
    }
}

static int not_regular(const struct stat *st)
{
    return S_ISDIR(st->st_mode) ? EISDIR : EINVAL;
}

int so_open_file(int dirfd, const char *path, int *oflags, int beneath, struct stat *st)
{
    /* fstatat has no RESOLVE_BENEATH: on a path of several names it follows links on the
     * way. So what it says of a special file is believed once an O_PATH open, which runs
     * no driver and reads nothing, has reached that file the safe way (else that open's
     * ELOOP or EXDEV is the answer); anything it cannot look at is left to the open. */
    if (fstatat(dirfd, path, st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st->st_mode)
        && !S_ISLNK(st->st_mode)) {
        int flags = O_PATH | O_CLOEXEC;
        int fd = so_open(dirfd, path, &flags, beneath);
        if (fd < 0)
            return -1;
        int err = fstat(fd, st) == 0 ? (S_ISREG(st->st_mode) ? 0 : not_regular(st)) : errno;
        close(fd);
        if (err) {
            errno = err;
            return -1;
        }
    }
    int fd = so_open(dirfd, path, oflags, beneath);
    if (fd < 0)
        return -1;
    int err = fstat(fd, st) != 0 ? errno : S_ISREG(st->st_mode) ? 0 : not_regular(st);
    if (err) {
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}
