/* The floor of `analyze ls` (benchmarks/bench_ls.py): what no reader of an overlay2
 * image store can skip, natively and nothing else. For every metadata file the reader
 * reads (repositories.json; each image's config, parent and lastUpdated; each layer's
 * diff, size, cache-id and parent; each mount's mount-id, init-id and parent): the type
 * check before the open (never open what is not a regular file), the open beneath the
 * root (openat2: no link followed out of it), the type and size check of what was
 * opened, one read, the close. The same system calls as the reader's
 * (analyzer/_csrc/safeopen.c so_open_file, readfiles.c), one file at a time.
 *
 *     cc -O2 -o lsfloor lsfloor.c && ./lsfloor ROOT [DRIVER]     prints the files read
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int root_fd;
static long files_read;
static char buf[1 << 20];

static void slurp(const char *rel)
{
    struct stat st;
    if (fstatat(root_fd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
        return;
    struct open_how how = {
        .flags = O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOATIME | O_CLOEXEC,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    int fd = (int)syscall(SYS_openat2, root_fd, rel, &how, sizeof how);
    if (fd < 0)
        return;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)
        && read(fd, buf, (size_t)st.st_size + 1 < sizeof buf ? (size_t)st.st_size + 1
                                                              : sizeof buf) >= 0)
        files_read++;
    close(fd);
}

/* For each entry E of directory rel: files[0] is "" for rel/E itself, else rel/E/files[0];
 * and dir/E/name for each name of files[1..] (an image's config, then its metadata). */
static void each(const char *rel, const char *const *files, const char *dir)
{
    int fd = openat(root_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d)
        return;
    char path[4096];
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        for (const char *const *f = files; *f; f++) {
            if (f == files && !**f)
                snprintf(path, sizeof path, "%s/%s", rel, e->d_name);
            else
                snprintf(path, sizeof path, "%s/%s/%s", f == files ? rel : dir, e->d_name, *f);
            slurp(path);
        }
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s ROOT [DRIVER]\n", argv[0]);
        return 2;
    }
    root_fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
        perror(argv[1]);
        return 1;
    }
    char base[256], rel[512];
    snprintf(base, sizeof base, "image/%s", argc > 2 ? argv[2] : "overlay2");
    static const char *const image[] = {"", "parent", "lastUpdated", NULL};
    static const char *const layer[] = {"diff", "size", "cache-id", "parent", NULL};
    static const char *const mount[] = {"mount-id", "init-id", "parent", NULL};
    char meta[512];
    snprintf(rel, sizeof rel, "%s/repositories.json", base);
    slurp(rel);
    snprintf(rel, sizeof rel, "%s/imagedb/content/sha256", base);
    snprintf(meta, sizeof meta, "%s/imagedb/metadata/sha256", base);
    each(rel, image, meta);
    snprintf(rel, sizeof rel, "%s/layerdb/sha256", base);
    each(rel, layer, rel);
    snprintf(rel, sizeof rel, "%s/layerdb/mounts", base);
    each(rel, mount, rel);
    printf("%ld\n", files_read);
    return 0;
}
