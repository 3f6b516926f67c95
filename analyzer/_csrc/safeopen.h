/* The one safe-open policy of the C side (analyzer/safeopen.py is the Python one): below
 * a directory fd, read-only, never through a link, never out of the directory.
 *
 * A path of several names goes through openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS) where the kernel has it; without it, callers open one name at a
 * time with O_NOFOLLOW. O_NOATIME keeps the evidence's access times as they were while
 * the kernel allows it (it needs ownership or CAP_FOWNER): the first EPERM drops it from
 * the caller's flags for good. Every function is thread-safe and needs no Python.
 */
#ifndef ANALYZER_SAFEOPEN_H
#define ANALYZER_SAFEOPEN_H

#include <sys/stat.h>

/* 1 when openat2 with RESOLVE_BENEATH works here, else 0 (probed once). */
int so_have_openat2(void);

/* openat2(dirfd, path, oflags, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS): an fd, or -1 with errno (ELOOP for a link on the way, EXDEV for
 * a way out, ENOSYS without openat2). */
int so_open_beneath(int dirfd, const char *path, int oflags);

/* Opens path below dirfd with *oflags: through so_open_beneath when beneath != 0, else as
 * one name with O_NOFOLLOW added. EINTR is retried; at an EPERM while *oflags holds
 * O_NOATIME, O_NOATIME is cleared from *oflags and the open tried again. An fd, or -1 with
 * errno. */
int so_open(int dirfd, const char *path, int *oflags, int beneath);

/* Opens a regular file below dirfd as so_open does (*oflags should carry O_NONBLOCK), and
 * nothing else: a device's open runs its driver (a tape rewinds, a watchdog arms) and a
 * fifo's can block, so the entry is looked at first (fstatat, AT_SYMLINK_NOFOLLOW) and a
 * special file is never opened for reading; what is opened is confirmed by fstat into
 * *st before any read, since the entry may have been replaced in between. An fd, or -1
 * with errno: EINVAL for a device, fifo or socket, EISDIR for a directory, else as
 * so_open (ELOOP for a link). */
int so_open_file(int dirfd, const char *path, int *oflags, int beneath, struct stat *st);

#endif
