/* hash_fd: a file region into SHA-256 and CRC-64 in one pass, without Python.
 *
 * Small regions are read with pread into a per-thread buffer. Regions of MAP_MIN bytes or
 * more are mapped instead, window by window, and a helper thread populates each window's
 * page tables (MADV_POPULATE_READ) a few MiB ahead of the hashing. Measured on an AMD EPYC
 * (Zen 4, SHA-NI, KVM, kernel 6.18; benchmarks/bench_digest.py), CPU time per 512 MiB
 * page-cached: the hash alone 335 ms; pread (the copy out of the page cache) adds 55-90 ms;
 * a mapping adds 10-20 ms of faults where the page cache holds large folios (data read from
 * disk), 55-90 ms where it holds small ones (data just written in small pieces, as dockerd
 * extracts layers), most of it in the hashing thread's page faults. With the faults moved to
 * the helper the hashing thread only hashes: 1.45-1.58 GB/s of its CPU time on a layer
 * dockerd extracted, against 1.39-1.46 faulting itself and OpenSSL's 1.54-1.60. (On a cold
 * cache the helper waits for the disk instead of the hashing thread; whether that beats the
 * kernel's read-ahead alone could not be told on the shared disk it was measured on.)
 *
 * A mapping turns what pread reports -- a file that shrank since fstat, an I/O error -- into
 * SIGBUS. The handler that fd_init installs jumps back out of the hashing when the fault
 * lies in the window this thread is hashing; the state saved before each piece is put back,
 * and the pread loop goes on from there, so a short read or an errno comes out as usual.
 * The helper never touches the mapping itself: MADV_POPULATE_READ returns an error where an
 * access would raise SIGBUS, and the helper then stops.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
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
/* The state is saved before each piece of a window, to resume after a SIGBUS; the helper
 * hears of the progress after each piece too. */
#define MAP_PIECE (1024 * 1024)
/* Windows this big get a helper: starting a thread costs ~50 us, 1% of hashing 8 MiB. */
#define POPULATE_MIN (8 * 1024 * 1024)
/* How far the helper runs ahead of the hashing: enough to keep the disk busy on a cold cache
 * beyond the kernel's own read-ahead, little enough that a window's pages are not evicted
 * before they are hashed. */
#define POPULATE_AHEAD (8 * 1024 * 1024)
#define POPULATE_PIECE (2 * 1024 * 1024)

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22     /* Linux 5.14; older kernels refuse it and nobody helps */
#endif

/* Initial-exec: the handler must not be the first to touch this thread's TLS. */
#define SIGNAL_SAFE_TLS __thread __attribute__((tls_model("initial-exec")))

static SIGNAL_SAFE_TLS struct {
    sigjmp_buf *jump;              /* set while this thread hashes [lo, hi) of a mapping */
    const uint8_t *lo, *hi;
} guard;

static struct sigaction previous_sigbus;
static int sigbus_handled;
static long page_size;
/* A helper runs only on a CPU no hashing thread needs: with as many layers hashing as there
 * are CPUs (verify -j 2 on two), the faults cost the same in the hashing threads and no
 * thread has to be scheduled in between. */
long fd_cpus;
static int hashing;        /* threads in hash_by_mapping, atomically */
static long passes;        /* in fd_pass_begin .. fd_pass_end, atomically */

int fd_pass_begin(void)
{
    return __atomic_add_fetch(&passes, 1, __ATOMIC_RELAXED) * 2 <= fd_cpus;
}

void fd_pass_end(void)
{
    __atomic_sub_fetch(&passes, 1, __ATOMIC_RELAXED);
}

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
    cpu_set_t allowed;
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;   /* so siglongjmp leaves the mask as it was */
    sigemptyset(&action.sa_mask);
    sigbus_handled = sigaction(SIGBUS, &action, &previous_sigbus) == 0;
    page_size = sysconf(_SC_PAGESIZE);
    /* the CPUs this process may run on (taskset, a container's cpuset), not all there are */
    fd_cpus = sched_getaffinity(0, sizeof allowed, &allowed) == 0 ? CPU_COUNT(&allowed)
                                                               : sysconf(_SC_NPROCESSORS_ONLN);
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

/* The helper of one window: it populates [base, base + len) piece by piece, never more
 * than POPULATE_AHEAD past what the hashing thread has done. */
struct populate {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t moved;
    uint8_t *base;
    size_t len;
    size_t hashed;       /* under lock: how far the hashing has got */
    int stop;            /* under lock: the hashing is over, whatever the helper has done */
};

static void *populate_run(void *arg)
{
    struct populate *pop = arg;
    size_t done = 0;
    while (done < pop->len) {
        size_t piece = pop->len - done < POPULATE_PIECE ? pop->len - done : POPULATE_PIECE;
        int stop;
        pthread_mutex_lock(&pop->lock);
        while (!pop->stop && done >= pop->hashed + POPULATE_AHEAD)
            pthread_cond_wait(&pop->moved, &pop->lock);
        stop = pop->stop;
        pthread_mutex_unlock(&pop->lock);
        /* an error (past the end of a file that shrank, EIO, an old kernel) ends the help:
         * the hashing thread faults the rest in itself */
        if (stop || madvise(pop->base + done, piece, MADV_POPULATE_READ) != 0)
            break;
        done += piece;
    }
    return NULL;
}

int fd_start_helper(pthread_t *thread, pthread_mutex_t *lock, pthread_cond_t *cond,
                    void *(*run)(void *), void *arg)
{
    sigset_t all, old;
    int err;
    if (pthread_mutex_init(lock, NULL) != 0)
        return 0;
    if (pthread_cond_init(cond, NULL) != 0) {
        pthread_mutex_destroy(lock);
        return 0;
    }
    /* Every signal stays with the threads that expect it (Python's main thread). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(thread, NULL, run, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        pthread_cond_destroy(cond);
        pthread_mutex_destroy(lock);
        return 0;
    }
    return 1;
}

void fd_end_helper(pthread_t thread, pthread_mutex_t *lock, pthread_cond_t *cond, int *done)
{
    pthread_mutex_lock(lock);
    *done = 1;
    pthread_cond_broadcast(cond);
    pthread_mutex_unlock(lock);
    pthread_join(thread, NULL);
    pthread_cond_destroy(cond);
    pthread_mutex_destroy(lock);
}

/* Starts the helper of a window; 0 when none could start (the hashing then does without). */
static int populate_start(struct populate *pop, uint8_t *base, size_t len)
{
    pop->base = base;
    pop->len = len;
    pop->hashed = 0;
    pop->stop = 0;
    return fd_start_helper(&pop->thread, &pop->lock, &pop->moved, populate_run, pop);
}

static void populate_tell(struct populate *pop, size_t hashed)
{
    pthread_mutex_lock(&pop->lock);
    pop->hashed = hashed;
    pthread_cond_signal(&pop->moved);
    pthread_mutex_unlock(&pop->lock);
}

static void populate_finish(struct populate *pop)
{
    fd_end_helper(pop->thread, &pop->lock, &pop->moved, &pop->stop);
}

/* Where a window's hashing had got to, kept in memory so it survives the siglongjmp. */
struct progress {
    fd_sha256 sha;       /* *s before the current piece */
    uint64_t crc;        /* *crc before the current piece */
    size_t done;         /* bytes before the current piece */
    struct populate *helper;   /* to tell after each piece, or NULL */
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
        if (at->helper)
            populate_tell(at->helper, at->done);
    }
    guard.jump = NULL;
    return len;
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

/* One window through a mapping: how many bytes it hashed, fewer when the file ended early
 * or faulted, or -1 when it could not be mapped. */
static int64_t hash_window_mapped(int fd, int64_t pos, size_t len, fd_sha256 *s, uint64_t *crc,
                                  int helped)
{
    struct progress at;
    struct populate helper;
    size_t skip = (size_t)(pos % page_size), done;
    uint8_t *map = mmap(NULL, skip + len, PROT_READ, MAP_SHARED, fd, (off_t)(pos - skip));
    if (map == MAP_FAILED)
        return -1;
    /* read-ahead as for read(), for files not in the page cache */
    madvise(map, skip + len, MADV_SEQUENTIAL);
    at.helper = helped && len >= POPULATE_MIN && populate_start(&helper, map + skip, len)
                ? &helper : NULL;
    done = hash_mapped(map + skip, len, s, crc, &at);
    if (at.helper)
        populate_finish(at.helper);
    munmap(map, skip + len);
    return (int64_t)done;
}

/* Which way whole windows are read is learnt at run time, because the answer differs by
 * CPU and kernel: on the AMD EPYC above pread's copy costs the hashing thread 20% more CPU
 * time than a mapping, while on an Intel Xeon (KVM, issue 15) pread hashed at 1.62 GB/s and a
 * mapping, whose faults and TLB misses are dear there, at 1.34. The first windows of POPULATE_MIN or
 * more alternate between the two ways (in whichever threads) until each has hashed
 * WAY_SAMPLE bytes; from then on every window goes the way that cost less CPU time of the
 * hashing thread a byte. Both ways give the same results. */
enum { WAY_MAP, WAY_PREAD };
#define WAY_SAMPLE (64 * 1024 * 1024)
static int64_t way_ns[2], way_bytes[2];     /* atomically */
static int way_chosen = -1;                 /* atomically; -1 while learning */

static int64_t thread_cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int choose_way(size_t len)
{
    int chosen = __atomic_load_n(&way_chosen, __ATOMIC_RELAXED);
    int64_t mapped, read;
    if (chosen >= 0)
        return chosen;
    if (len < POPULATE_MIN)
        return WAY_MAP;
    mapped = __atomic_load_n(&way_bytes[WAY_MAP], __ATOMIC_RELAXED);
    read = __atomic_load_n(&way_bytes[WAY_PREAD], __ATOMIC_RELAXED);
    if (mapped < WAY_SAMPLE || read < WAY_SAMPLE)
        return mapped <= read ? WAY_MAP : WAY_PREAD;
    chosen = (double)__atomic_load_n(&way_ns[WAY_PREAD], __ATOMIC_RELAXED) / (double)read
             < (double)__atomic_load_n(&way_ns[WAY_MAP], __ATOMIC_RELAXED) / (double)mapped
             ? WAY_PREAD : WAY_MAP;
    __atomic_store_n(&way_chosen, chosen, __ATOMIC_RELAXED);
    return chosen;
}

static void learn_way(int way, size_t len, int64_t ns, int64_t bytes)
{
    if (len < POPULATE_MIN || __atomic_load_n(&way_chosen, __ATOMIC_RELAXED) >= 0)
        return;
    __atomic_add_fetch(&way_ns[way], ns, __ATOMIC_RELAXED);
    __atomic_add_fetch(&way_bytes[way], bytes, __ATOMIC_RELAXED);
}

/* [offset + *nread, end) window by window; stops at the first window it cannot map, or that
 * ends short or fails, and leaves the rest to pread (which then reports it). */
static void hash_windows(int fd, int64_t offset, int64_t end, fd_sha256 *s, uint64_t *crc,
                         int64_t *nread, int helped)
{
    while (end - (offset + *nread) >= MAP_MIN) {
        int64_t pos = offset + *nread, before = *nread, start = thread_cpu_ns();
        size_t len = end - pos < MAP_WINDOW ? (size_t)(end - pos) : MAP_WINDOW;
        int way = choose_way(len);
        if (way == WAY_PREAD) {
            if (hash_by_reading(fd, offset, pos + (int64_t)len - offset, s, crc, nread) != 0)
                return;
        } else {
            int64_t done = hash_window_mapped(fd, pos, len, s, crc, helped);
            if (done < 0)
                return;
            *nread += done;
        }
        learn_way(way, len, thread_cpu_ns() - start, *nread - before);
        if (*nread - before < (int64_t)len)
            return;
    }
}

/* The part of the region the file holds now, through mappings. */
static void hash_by_mapping(int fd, int64_t offset, int64_t length, fd_sha256 *s,
                            uint64_t *crc, int64_t *nread)
{
    struct stat st;
    int64_t end;
    int helped;

    if (!sigbus_handled || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    end = st.st_size;
    if (length >= 0 && length < end - offset)
        end = offset + length;
    helped = __atomic_add_fetch(&hashing, 1, __ATOMIC_RELAXED) < fd_cpus;
    hash_windows(fd, offset, end, s, crc, nread, helped);
    __atomic_sub_fetch(&hashing, 1, __ATOMIC_RELAXED);
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
