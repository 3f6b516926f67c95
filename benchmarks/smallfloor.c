/* The floor of `verify` on a layer of small files (benchmarks/bench_smallfiles.py): the
 * system calls no safe reader of a layer directory can skip, natively and nothing else.
 * The walk lists each directory and looks at each entry without following it (lstat:
 * the inode's own type, which a directory entry's d_type may misstate on a crafted
 * filesystem, so that nothing but a regular file is ever opened); each regular file is
 * opened by its name from its directory's fd (O_NOFOLLOW), its type and size checked on
 * what was opened (fstat), read whole in one pread, its extended attributes listed
 * (verify judges them), closed. No tar-split, no hashing, no index: what is left of
 * verify's time above this row is its own work.
 *
 *     cc -O2 -o smallfloor smallfloor.c && ./smallfloor DIR     prints the files read
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static long files_read;
static char buf[1 << 16];

static void read_file(int dir_fd, const char *name)
{
    struct stat st;
    int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOATIME);
    if (fd < 0)
        return;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < (off_t)sizeof buf
            && pread(fd, buf, (size_t)st.st_size + 1, 0) == st.st_size) {
        flistxattr(fd, NULL, 0);
        files_read++;
    }
    close(fd);
}

static void walk(int dir_fd)
{
    DIR *dir = fdopendir(dir_fd);
    struct dirent *d;
    if (!dir) {
        close(dir_fd);
        return;
    }
    while ((d = readdir(dir))) {
        struct stat st;
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0
                || fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(dir), d->d_name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                walk(sub);
        } else if (S_ISREG(st.st_mode)) {
            read_file(dirfd(dir), d->d_name);
        }
    }
    closedir(dir);
}

int main(int argc, char **argv)
{
    int fd;
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    walk(fd);
    printf("%ld\n", files_read);
    return 0;
}
