/* See walk.h. */
#define _GNU_SOURCE
#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fd_internal.h"
#include "mem.h"
#include "safeopen.h"


static int use_openat2;

void wk_setup(int portable)
{
    use_openat2 = !portable && so_have_openat2();
}

typedef struct {
    uint8_t *data;
    size_t len, cap;
} buffer;

static int append(buffer *b, const void *p, size_t n)
{
    uint8_t *data = fd_reserve(b->data, &b->cap, b->len + n + 1, 1);
    if (!data)
        return -ENOMEM;
    b->data = data;
    memcpy(data + b->len, p, n);
    b->len += n;
    data[b->len] = 0;          /* a path in a buffer is ready for open */
    return 0;
}

struct crew;

struct walk {
    const wk_visitor *v;
    int dir_fd;
    int oflags;                /* O_NOATIME goes after the first EPERM: it needs ownership */
    buffer *pending;           /* directories to list: each path, then its length (own or
                                * the crew's) */
    buffer own;                /* the pending directories of a walker alone */
    buffer path;               /* the directory being listed (then '/' and a name) */
    /* The directory's entries not reported yet, each its lstat, its name's length, its
     * name: reported together, the visitor is called (under the crew's lock) once a
     * directory rather than once an entry. */
    buffer batch;
    wk_errors *errors;
    struct crew *crew;         /* NULL: this thread walks alone */
    /* Once part of the directory is reported (a batch past BATCH_MAX), this walker holds
     * the crew's lock until the directory ends, so that what it reported since mark and
     * queued since queued is its own, to take back if the listing fails. */
    int holding;
    uint64_t mark;
    size_t queued;
};

/* Two walkers of one tree, this thread and a helper, sharing the pending directories;
 * each lists a directory of its own (lstat-ing its entries, most of a walk's time) and
 * reports it under the lock. */
struct crew {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t moved;
    buffer pending;
    int busy;                  /* walkers listing a directory */
    int waiting;               /* walkers waiting for a directory to list */
    int rc;                    /* -errno once a walker stopped the walk */
    int done;                  /* fd_end_helper's: the helper ends by itself */
    struct walk helper;
};

/* A batch this big is reported before its directory ends: memory stays bounded by a
 * directory's first entries, however many it holds. */
#define BATCH_MAX (4u << 20)

static void lock(struct walk *w)
{
    if (w->crew)
        pthread_mutex_lock(&w->crew->lock);
}

static void unlock(struct walk *w)
{
    if (w->crew)
        pthread_mutex_unlock(&w->crew->lock);
}

static int push(buffer *pending, const uint8_t *path, size_t len)
{
    if (append(pending, path, len) < 0 || append(pending, &len, sizeof len) < 0)
        return -ENOMEM;
    return 0;
}

/* Moves the last pending path to w->path. */
static int pop(struct walk *w)
{
    size_t len;
    buffer *p = w->pending;
    memcpy(&len, p->data + p->len - sizeof len, sizeof len);
    p->len -= sizeof len + len;
    w->path.len = 0;
    return append(&w->path, p->data + p->len, len);
}

/* One piece of a path, from the fd at: an fd, or -errno. */
static int open_piece(struct walk *w, int at, const char *piece)
{
    int fd = so_open(at, piece, &w->oflags, use_openat2);
    return fd >= 0 ? fd : -errno;
}

/* How much of p to open in one call. openat2 takes up to PATH_MAX - 1 bytes, cut at a
 * '/'; openat one name, since its O_NOFOLLOW guards only a path's last one. */
static size_t piece_len(const char *p, size_t len)
{
    size_t max = use_openat2 ? PATH_MAX - 1 : 0;
    const char *cut = NULL;
    if (len <= max)
        return len;
    if (max)
        cut = memrchr(p, '/', max + 1);
    if (!cut)
        cut = memchr(p, '/', len);
    return cut ? (size_t)(cut - p) : len;
}

/* The directory at w->path, opened piece by piece, each piece from the fd the one before
 * gave, so that two fds at most are open: an fd, or -errno. The top is dir_fd itself,
 * duplicated: whoever opened it could read it. */
static int open_dir(struct walk *w)
{
    const char *path = (const char *)w->path.data;
    size_t len = w->path.len, at = 0;
    char piece[PATH_MAX];
    int fd = w->dir_fd;

    if (!len) {
        fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        return fd < 0 ? -errno : fd;
    }
    while (at < len) {
        size_t n = piece_len(path + at, len - at);
        int next;
        if (n >= sizeof piece)
            next = -ENAMETOOLONG;      /* one name longer than a path may be */
        else {
            memcpy(piece, path + at, n);
            piece[n] = 0;
            next = open_piece(w, fd, piece);
        }
        if (fd != w->dir_fd)
            close(fd);
        if (next < 0)
            return next;
        fd = next;
        at += n + 1;
    }
    return fd;
}

/* Reports the batch's entries, the children of the directory at w->path (its first
 * prefix bytes), queueing the directories among them: 0 or -errno. The first time in a
 * directory it takes the crew's lock, held until the directory ends (list_dir). */
static int report(struct walk *w, size_t prefix)
{
    size_t at = 0, n;
    struct stat st;
    int rc = 0;
    if (!w->holding) {
        lock(w);
        w->holding = 1;
        w->mark = w->v->mark ? w->v->mark(w->v->ctx) : 0;
        w->queued = w->pending->len;
    }
    while (at < w->batch.len && rc >= 0) {
        memcpy(&st, w->batch.data + at, sizeof st);
        memcpy(&n, w->batch.data + at + sizeof st, sizeof n);
        at += sizeof st + sizeof n;
        w->path.len = prefix;
        if ((prefix && append(&w->path, "/", 1) < 0) || append(&w->path, w->batch.data + at, n) < 0)
            rc = -ENOMEM;
        else
            rc = w->v->entry(w->v->ctx, w->path.data, w->path.len, &st);
        if (rc >= 0 && S_ISDIR(st.st_mode))
            rc = push(w->pending, w->path.data, w->path.len);
        at += n;
    }
    w->batch.len = 0;
    w->path.len = prefix;
    return rc;
}

/* Adds the entry name of the directory at w->path (its first prefix bytes) to the batch:
 * 0, an errno that spoils the directory, or -errno. */
static int add_child(struct walk *w, int fd, const char *name, size_t prefix)
{
    struct stat st;
    size_t n = strlen(name);
    if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        /* Gone since readdir (a live host): it is not there, as if listed a moment later. */
        return errno == ENOENT ? 0 : errno;
    if (append(&w->batch, &st, sizeof st) < 0 || append(&w->batch, &n, sizeof n) < 0
            || append(&w->batch, name, n) < 0)
        return -ENOMEM;
    return w->batch.len > BATCH_MAX ? report(w, prefix) : 0;
}

/* Lists the directory at w->path: 0, the errno that stopped it, or -errno. */
static int read_dir(struct walk *w)
{
    size_t prefix = w->path.len;
    int fd = open_dir(w), rc = 0;
    DIR *dir;
    if (fd < 0)
        return -fd;
    dir = fdopendir(fd);
    if (!dir) {
        rc = errno;
        close(fd);
        return rc;
    }
    /* The top's fd shares its offset with dir_fd: read it all, and leave it as os.scandir
     * leaves an fd, rewound. */
    if (!prefix)
        rewinddir(dir);
    for (;;) {
        struct dirent *d;
        errno = 0;
        d = readdir(dir);
        if (!d) {
            rc = errno;
            break;
        }
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
            continue;
        rc = add_child(w, dirfd(dir), d->d_name, prefix);
        if (rc)
            break;
    }
    if (!prefix)
        rewinddir(dir);
    closedir(dir);
    w->path.len = prefix;
    return rc;
}

static int add_error(wk_errors *e, const uint8_t *path, size_t len, int err)
{
    wk_error *items = fd_reserve(e->items, &e->cap, e->n + 1, sizeof *items);
    uint8_t *paths;
    if (!items)
        return -ENOMEM;
    e->items = items;
    paths = fd_reserve(e->paths, &e->paths_cap, e->paths_len + len + 1, 1);
    if (!paths)
        return -ENOMEM;
    e->paths = paths;
    memcpy(paths + e->paths_len, path, len);
    items[e->n].offset = e->paths_len;
    items[e->n].len = len;
    items[e->n].err = err;
    e->paths_len += len;
    e->n++;
    return 0;
}

/* Lists the directory at w->path and reports its entries. A directory that fails part
 * way leaves none of them, neither reported (the visitor takes them back) nor queued. */
static int list_dir(struct walk *w)
{
    int rc;
    w->batch.len = 0;
    w->holding = 0;
    rc = read_dir(w);
    if (rc == 0) {
        rc = report(w, w->path.len);
    } else if (rc > 0) {
        if (w->holding) {
            if (w->v->undo)
                w->v->undo(w->v->ctx, w->mark);
            w->pending->len = w->queued;
        } else {
            lock(w);
            w->holding = 1;
        }
        rc = add_error(w->errors, w->path.data, w->path.len, rc);
    }
    if (w->holding)
        unlock(w);
    w->holding = 0;
    return rc;
}

/* Lists pending directories until none is left that a walker could still add to, or
 * the walk stops: 0 or -errno. Alone, a walker just goes through its own. */
static int run(struct walk *w)
{
    struct crew *c = w->crew;
    int rc = 0;
    lock(w);
    for (;;) {
        while (c && c->rc >= 0 && !w->pending->len && c->busy) {
            c->waiting++;
            pthread_cond_wait(&c->moved, &c->lock);
            c->waiting--;
        }
        if ((c && c->rc < 0) || !w->pending->len)
            break;
        rc = pop(w);
        if (rc >= 0) {
            if (c)
                c->busy++;
            unlock(w);
            rc = list_dir(w);
            lock(w);
            if (c)
                c->busy--;
        }
        if (c && (rc < 0 || w->pending->len || !c->busy)) {
            if (rc < 0)
                c->rc = rc;
            if (c->waiting)
                pthread_cond_broadcast(&c->moved);
        }
        if (rc < 0)
            break;
    }
    unlock(w);
    return rc;
}

static void *helper_run(void *arg)
{
    run(arg);              /* its error is the crew's */
    return NULL;
}

static void free_walk(struct walk *w)
{
    fd_mem.free(w->own.data);
    fd_mem.free(w->path.data);
    fd_mem.free(w->batch.data);
}

/* A top other than "": 0 when absent, an errno when it cannot be looked up, or 1 with
 * its lstat in *st. A ".." or a leading '/' would leave dir_fd. */
static int lstat_top(struct walk *w, const uint8_t *top, size_t len, struct stat *st)
{
    const uint8_t *slash = memrchr(top, '/', len);
    size_t parent = slash ? (size_t)(slash - top) : 0;
    const char *name = (const char *)top + (slash ? parent + 1 : 0);
    int fd, rc;

    if (memchr(top, 0, len))
        return EINVAL;
    if (top[0] == '/')
        return EXDEV;
    for (size_t at = 0; at < len;) {
        const uint8_t *end = memchr(top + at, '/', len - at);
        size_t n = end ? (size_t)(end - top) - at : len - at;
        if (n == 2 && top[at] == '.' && top[at + 1] == '.')
            return EXDEV;
        at += n + 1;
    }
    w->path.len = 0;
    if (append(&w->path, top, parent) < 0)
        return -ENOMEM;
    fd = open_dir(w);
    if (fd < 0)
        return fd == -ENOENT || fd == -ENOTDIR ? 0 : -fd;
    rc = fstatat(fd, name, st, AT_SYMLINK_NOFOLLOW) == 0 ? 1
         : errno == ENOENT || errno == ENOTDIR ? 0 : errno;
    close(fd);
    return rc;
}

/* Reports the top; queues it if a directory. */
static int start(struct walk *w, const uint8_t *top, size_t len)
{
    struct stat st;
    int rc;
    if (!len) {
        if (fstat(w->dir_fd, &st) != 0)
            return errno;
    } else {
        rc = lstat_top(w, top, len, &st);
        if (rc < 0)
            return rc;
        if (rc != 1)
            return rc ? add_error(w->errors, top, len, rc) : 0;
    }
    w->path.len = 0;
    if (append(&w->path, top, len) < 0)
        return -ENOMEM;
    rc = w->v->entry(w->v->ctx, w->path.data, len, &st);
    if (rc < 0)
        return rc;
    /* dir_fd is listed whatever it is: not a directory, that is its error. */
    return !len || S_ISDIR(st.st_mode) ? push(w->pending, top, len) : 0;
}

int wk_walk(int dir_fd, const uint8_t *top, size_t top_len, const wk_visitor *v,
            wk_errors *errors, int helper)
{
    struct walk w = {v, dir_fd, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME};
    struct crew *c = helper ? fd_mem.calloc(1, sizeof *c) : NULL;
    int rc;
    w.errors = errors;
    w.pending = c ? &c->pending : &w.own;
    rc = start(&w, top, top_len);
    if (rc > 0 && !top_len) {
        free_walk(&w);
        fd_mem.free(c);
        return rc;             /* dir_fd itself: the caller's error */
    }
    if (rc >= 0 && c) {
        c->helper = w;         /* the same tree, buffers of its own */
        c->helper.path = c->helper.own = c->helper.batch = (buffer){NULL, 0, 0};
        c->helper.crew = w.crew = c;
        if (!fd_start_helper(&c->thread, &c->lock, &c->moved, helper_run, &c->helper))
            w.crew = c->helper.crew = NULL;   /* alone, through the crew's pending */
    }
    if (rc >= 0)
        rc = run(&w);
    if (w.crew) {
        fd_end_helper(c->thread, &c->lock, &c->moved, &c->done);
        if (rc >= 0)
            rc = c->rc;
        free_walk(&c->helper);
    }
    if (c)
        fd_mem.free(c->pending.data);
    fd_mem.free(c);
    free_walk(&w);
    return rc < 0 ? rc : 0;
}

void wk_errors_free(wk_errors *e)
{
    fd_mem.free(e->items);
    fd_mem.free(e->paths);
    e->items = NULL;
    e->paths = NULL;
    e->n = e->cap = e->paths_len = e->paths_cap = 0;
}
