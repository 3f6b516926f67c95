/* hash_fd: a file region into SHA-256 and CRC-64 in one pass, without Python.
 *
 * Small regions are read with pread into a per-thread buffer. Regions of MAP_MIN bytes or
 * more are mapped instead: the kernel's copy out of the page cache runs at only 6-9 GB/s
 * here, a serial cost of 15-25% next to SHA-256's 1.8 GB/s, while loads from a mapping
 * overlap the hashing (benchmarks/bench_digest.py shows both).
 *
 * A mapping turns what pread reports -- a file that shrank since fstat, an I/O error -- into
 * SIGBUS. The handler that fd_init installs jumps back out of the hashing when the fault
 * lies in the window this thread is hashing; the state saved before each piece is put back,
 * and the pread loop goes on from there, so a short read or an errno comes out as usual.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fd_internal.h"
#include "safeopen.h"

/* pread size: the syscall costs nothing next to hashing it, and it stays in L2. */
#define READ_SIZE (256 * 1024)
/* A mapping beats pread from about 256 KiB in one thread; from 1 MiB on its fixed costs
 * (mmap, munmap and the TLB shootdown that munmap sends to the other hashing threads) are
 * small next to the copy it saves. */
#define MAP_MIN (1024 * 1024)
#define MAP_WINDOW (16 * 1024 * 1024)
/* The state is saved before each piece of a window, to resume after a SIGBUS. */
#define MAP_PIECE (1024 * 1024)

/* Initial-exec: the handler must not be the first to touch this thread's TLS. */
#define SIGNAL_SAFE_TLS __thread __attribute__((tls_model("initial-exec")))

static SIGNAL_SAFE_TLS struct {
    sigjmp_buf *jump;              /* set while this thread hashes [lo, hi) of a mapping */
    const uint8_t *lo, *hi;
} guard;

static struct sigaction previous_sigbus;
static int sigbus_handled;
static long page_size;

/* Other faults go to whoever handled SIGBUS before; with nobody, the default action. */
static void on_sigbus(int sig, siginfo_t *info, void *context)
{
    const uint8_t *addr = info->si_addr;
    if (guard.jump && info->si_code > 0 && addr >= guard.lo && addr < guard.hi)
        siglongjmp(*guard.jump, 1);
    if (previous_sigbus.sa_flags & SA_SIGINFO) {
        previous_sigbus.sa_sigaction(sig, info, context);
    } else if (previous_sigbus.sa_handler != SIG_DFL && previous_sigbus.sa_handler != SIG_IGN) {
        previous_sigbus.sa_handler(sig);
    } else {
        sigaction(sig, &previous_sigbus, NULL);
        if (info->si_code <= 0)    /* sent by kill(): no access to fault again */
            raise(sig);
    }
}

void fd_hash_fd_init(void)
{
    struct sigaction action = {0};
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;   /* so siglongjmp leaves the mask as it was */
    sigemptyset(&action.sa_mask);
    sigbus_handled = sigaction(SIGBUS, &action, &previous_sigbus) == 0;
    page_size = sysconf(_SC_PAGESIZE);
}

/* One read buffer per thread, kept for the thread's life: layers are mostly small files,
 * and a fresh 256 KiB malloc is an mmap, page faults and zeroing on every call. */
static pthread_key_t buffer_key;
static pthread_once_t buffer_once = PTHREAD_ONCE_INIT;
static int buffer_key_failed;

static void make_buffer_key(void)
{
    buffer_key_failed = pthread_key_create(&buffer_key, free) != 0;
}

static uint8_t *thread_buffer(void)
{
    uint8_t *buf;
    pthread_once(&buffer_once, make_buffer_key);
    if (buffer_key_failed)
        return NULL;
    buf = pthread_getspecific(buffer_key);
    if (!buf) {
        buf = malloc(READ_SIZE);
        if (buf && pthread_setspecific(buffer_key, buf) != 0) {
            free(buf);
            buf = NULL;
        }
    }
    return buf;
}

static uint64_t feed(fd_sha256 *s, uint64_t crc, const uint8_t *p, size_t n)
{
    return s ? fd_sha256_crc64_update(s, crc, p, n) : fd_crc64_update(crc, p, n);
}

/* Where a window's hashing had got to, kept in memory so it survives the siglongjmp. */
struct progress {
    fd_sha256 sha;       /* *s before the current piece */
    uint64_t crc;        /* *crc before the current piece */
    size_t done;         /* bytes before the current piece */
};

/* Hashes len mapped bytes at p; returns how many, fewer when a SIGBUS cut it short, with
 * *s and *crc covering exactly those. */
static size_t hash_mapped(const uint8_t *p, size_t len, fd_sha256 *s, uint64_t *crc,
                          struct progress *at)
{
    sigjmp_buf jump;
    at->done = 0;
    if (sigsetjmp(jump, 0)) {
        guard.jump = NULL;
        if (s)
            *s = at->sha;
        *crc = at->crc;
        return at->done;
    }
    guard.lo = p;
    guard.hi = p + len;
    guard.jump = &jump;
    while (at->done < len) {
        size_t piece = len - at->done < MAP_PIECE ? len - at->done : MAP_PIECE;
        if (s)
            at->sha = *s;
        at->crc = *crc;
        *crc = feed(s, *crc, p + at->done, piece);
        at->done += piece;
    }
    guard.jump = NULL;
    return len;
}

/* The part of the region the file holds now, window by window; stops at the first window
 * it cannot map or that faults, and leaves the rest to pread. */
static void hash_by_mapping(int fd, int64_t offset, int64_t length, fd_sha256 *s,
                            uint64_t *crc, int64_t *nread)
{
    struct stat st;
    struct progress at;
    int64_t end;

    if (!sigbus_handled || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    end = st.st_size;
    if (length >= 0 && length < end - offset)
        end = offset + length;
    while (end - (offset + *nread) >= MAP_MIN) {
        int64_t pos = offset + *nread;
        size_t skip = (size_t)(pos % page_size);
        size_t len = end - pos < MAP_WINDOW ? (size_t)(end - pos) : MAP_WINDOW;
        uint8_t *map = mmap(NULL, skip + len, PROT_READ, MAP_SHARED, fd, (off_t)(pos - skip));
        size_t done;
        if (map == MAP_FAILED)
            return;
        /* read-ahead as for read(), for files not in the page cache */
        madvise(map, skip + len, MADV_SEQUENTIAL);
        done = hash_mapped(map + skip, len, s, crc, &at);
        munmap(map, skip + len);
        *nread += (int64_t)done;
        if (done < len)
            return;
    }
}

static int hash_by_reading(int fd, int64_t offset, int64_t length, fd_sha256 *s,
                           uint64_t *crc, int64_t *nread)
{
    uint8_t *buf = thread_buffer();
    if (!buf)
        return ENOMEM;
    while (length < 0 || *nread < length) {
        size_t want = READ_SIZE;
        ssize_t got;
        if (length >= 0 && (uint64_t)(length - *nread) < want)
            want = (size_t)(length - *nread);
        got = pread(fd, buf, want, (off_t)(offset + *nread));
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (got == 0)
            break;
        *crc = feed(s, *crc, buf, (size_t)got);
        *nread += got;
    }
    return 0;
}

int fd_hash_fd(int fd, int64_t offset, int64_t length, fd_sha256 *s,
               uint64_t *crc, int64_t *nread)
{
    *crc = 0;
    *nread = 0;
    if (length < 0 || length >= MAP_MIN)
        hash_by_mapping(fd, offset, length, s, crc, nread);
    return hash_by_reading(fd, offset, length, s, crc, nread);
}

/* Shared by every thread: once O_NOATIME is refused, files are opened without it. A race
 * only costs another thread one more refused open. */
static int file_flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOATIME;

int fd_hash_file_at(int dirfd, const char *path, fd_sha256 *s, uint64_t *crc,
                    int64_t *nread, int *has_xattrs)
{
    struct stat st;
    ssize_t names;
    int err;
    int flags = file_flags;
    int fd = so_open_file(dirfd, path, &flags, 1, &st);

    *crc = 0;
    *nread = 0;
    *has_xattrs = 0;
    file_flags = flags;
    if (fd < 0)
        return errno == EINVAL ? FD_NOT_REGULAR : errno;
    err = fd_hash_fd(fd, 0, -1, s, crc, nread);
    if (!err) {
        names = flistxattr(fd, NULL, 0);
        if (names > 0)
            *has_xattrs = 1;
        else if (names < 0 && errno != ENOTSUP)
            err = errno;
    }
    close(fd);
    return err;
}
