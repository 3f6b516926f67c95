/* See tarsplit.h. The rules each check mirrors are the Python reader's
 * (analyzer/sources/tarsplit.py iter_runs, HeaderReader.read) and verify's
 * (analyzer/engines/verify.py _LayerCheck.member): every check here is narrower.
 *
 * References: tar-split tar/storage/entry.go (Entry: the JSON field order Go writes);
 * Go archive/tar format.go (the ustar block), strconv.go (parseOctal).
 */
#define _GNU_SOURCE
#include "tarsplit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fd_internal.h"
#include "mem.h"
#include "safeopen.h"

#define BLOCK 512

enum { K_TYPE = 1, K_NAME = 2, K_SIZE = 4, K_PAYLOAD = 8, K_POSITION = 16, K_NULL_PAYLOAD = 32 };

/* A line in Go's exact form: {"key":value,...} without spaces, escapes or other keys;
 * a payload is a string or null, and given once. */
typedef struct {
    unsigned keys;
    uint64_t type, size;
    const uint8_t *name, *payload;
    size_t name_len, payload_len;
} ts_line;

/* A non-negative integer as Go writes one: 1 to 18 digits, no leading zero. */
static const uint8_t *parse_uint(const uint8_t *p, const uint8_t *end, uint64_t *out)
{
    const uint8_t *start = p;
    uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9' && p - start < 18)
        v = v * 10 + (uint64_t)(*p++ - '0');
    if (p == start || (p - start > 1 && *start == '0') || (p < end && *p >= '0' && *p <= '9'))
        return NULL;
    *out = v;
    return p;
}

/* A string of printable ASCII without escapes. */
static const uint8_t *parse_str(const uint8_t *p, const uint8_t *end, const uint8_t **s,
                                size_t *n)
{
    const uint8_t *start;
    if (p >= end || *p != '"')
        return NULL;
    start = ++p;
    while (p < end && *p != '"') {
        if (*p < 0x20 || *p > 0x7e || *p == '\\')
            return NULL;
        p++;
    }
    if (p >= end)
        return NULL;
    *s = start;
    *n = (size_t)(p - start);
    return p + 1;
}

/* A payload string, its bytes not looked at: every payload the scan judges by is
 * base64-decoded, and b64_decode refuses any byte parse_str would (a control, a
 * backslash, non-ASCII), so a line is still judged only in Go's exact form. Finding the
 * closing quote with memchr spares a byte-by-byte loop over the segments, the bulk of a
 * tar-split's bytes, which both the scan and its reader go through. */
static const uint8_t *parse_payload(const uint8_t *p, const uint8_t *end, const uint8_t **s,
                                    size_t *n)
{
    const uint8_t *close;
    if (p >= end || *p != '"')
        return NULL;
    close = memchr(p + 1, '"', (size_t)(end - p - 1));
    if (!close)
        return NULL;
    *s = p + 1;
    *n = (size_t)(close - p - 1);
    return close + 1;
}

static int key_is(const uint8_t *k, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(k, name, n) == 0;
}

static int parse_line(const uint8_t *p, const uint8_t *end, ts_line *out)
{
    const uint8_t *key;
    size_t key_len;
    unsigned bit, once;
    uint64_t ignored;
    memset(out, 0, sizeof(*out));
    if (p >= end || *p++ != '{')
        return 0;
    for (;;) {
        p = parse_str(p, end, &key, &key_len);
        if (!p || p >= end || *p++ != ':')
            return 0;
        if (key_is(key, key_len, "type"))
            bit = K_TYPE, p = parse_uint(p, end, &out->type);
        else if (key_is(key, key_len, "size"))
            bit = K_SIZE, p = parse_uint(p, end, &out->size);
        else if (key_is(key, key_len, "position"))
            bit = K_POSITION, p = parse_uint(p, end, &ignored);
        else if (key_is(key, key_len, "name"))
            bit = K_NAME, p = parse_str(p, end, &out->name, &out->name_len);
        else if (key_is(key, key_len, "payload") && end - p >= 4 && memcmp(p, "null", 4) == 0)
            bit = K_NULL_PAYLOAD, p += 4;          /* Go's nil []byte */
        else if (key_is(key, key_len, "payload"))
            bit = K_PAYLOAD, p = parse_payload(p, end, &out->payload, &out->payload_len);
        else
            return 0;
        /* each key once (a payload is a string or null) */
        once = bit & (K_PAYLOAD | K_NULL_PAYLOAD) ? K_PAYLOAD | K_NULL_PAYLOAD : bit;
        if (!p || (out->keys & once) || p >= end)
            return 0;
        out->keys |= bit;
        if (*p == '}')
            return p + 1 == end && (out->keys & K_TYPE);
        if (*p++ != ',')
            return 0;
    }
}

/* The base64 alphabet's values, 64 for any other byte. */
static const uint8_t b64_table[256] = {
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 62, 64, 64, 64, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 64, 64, 64, 64, 64, 64,
    64, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 64, 64, 64, 64, 64,
    64, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
};

/* Standard padded base64 with zero bits after the last byte, as Go encodes; out has room
 * for n / 4 * 3 bytes. Returns the bytes decoded, or -1. */
static long b64_decode(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t i, o = 0, pad = 0, body;
    uint32_t acc;
    if (n % 4)
        return -1;
    if (n && in[n - 1] == '=')
        pad = in[n - 2] == '=' ? 2 : 1;
    body = n ? n - 4 : 0;            /* the last quad may be padded */
    for (i = 0; i < body; i += 4) {
        uint8_t a = b64_table[in[i]], b = b64_table[in[i + 1]];
        uint8_t c = b64_table[in[i + 2]], d = b64_table[in[i + 3]];
        if ((a | b | c | d) & 64)
            return -1;
        acc = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | d;
        out[o++] = (uint8_t)(acc >> 16);
        out[o++] = (uint8_t)(acc >> 8);
        out[o++] = (uint8_t)acc;
    }
    if (n) {
        uint8_t a = b64_table[in[i]], b = b64_table[in[i + 1]];
        uint8_t c = pad == 2 ? 0 : b64_table[in[i + 2]], d = pad ? 0 : b64_table[in[i + 3]];
        if ((a | b | c | d) & 64)
            return -1;
        acc = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | d;
        if ((pad == 1 && (acc & 0xff)) || (pad == 2 && (acc & 0xffff)))
            return -1;               /* bits Go would not have set */
        out[o++] = (uint8_t)(acc >> 16);
        if (pad < 2)
            out[o++] = (uint8_t)(acc >> 8);
        if (pad < 1)
            out[o++] = (uint8_t)acc;
    }
    return (long)o;
}

/* parseOctal of a numeric field, narrowed: spaces and NULs trimmed at both ends, then
 * only octal digits (base-256, signs and the rest are the caller's). */
static int parse_octal(const uint8_t *f, size_t n, uint64_t *out)
{
    size_t a = 0, b = n;
    uint64_t v = 0;
    while (a < b && (f[a] == ' ' || f[a] == 0))
        a++;
    while (b > a && (f[b - 1] == ' ' || f[b - 1] == 0))
        b--;
    for (; a < b; a++) {
        if (f[a] < '0' || f[a] > '7')
            return 0;
        v = v << 3 | (uint64_t)(f[a] - '0');
    }
    *out = v;
    return 1;
}

static size_t cstr_len(const uint8_t *f, size_t n)
{
    const uint8_t *z = memchr(f, 0, n);
    return z ? (size_t)(z - f) : n;
}

typedef struct {
    uint64_t mode, uid, gid, size;
} ts_header;

/* A ustar block b of a regular file ('0', NUL or '7') with octal numeric fields: 1, its
 * name (the prefix joined as HeaderReader.read joins it; *name_len bytes at name, which
 * has room for 256) and its fields in *h. */
static int header_fields(const uint8_t *b, uint8_t *name, size_t *name_len, ts_header *h)
{
    size_t n, pre = 0;
    if (b[156] != '0' && b[156] != 0 && b[156] != '7')
        return 0;
    n = cstr_len(b, 100);
    if (memcmp(b + 257, "ustar\0" "00", 8) == 0)
        pre = cstr_len(b + 345, memcmp(b + 508, "tar\0", 4) == 0 ? 131 : 155);
    if (pre) {
        memcpy(name, b + 345, pre);
        name[pre++] = '/';
    }
    memcpy(name + pre, b, n);
    *name_len = pre + n;
    return parse_octal(b + 100, 8, &h->mode) && parse_octal(b + 108, 8, &h->uid)
        && parse_octal(b + 116, 8, &h->gid) && parse_octal(b + 124, 12, &h->size);
}

/* The run holds the previous member's padding, then one ustar block of a regular file
 * named name (no extension headers before it). */
static int plain_header(const ts_scan *s, const uint8_t *name, size_t name_len, ts_header *h)
{
    uint8_t found[256];
    size_t n;
    if (s->skip > s->run_len || s->run_len - s->skip != BLOCK)
        return 0;
    return header_fields(s->run + s->skip, found, &n, h) && n == name_len
        && memcmp(found, name, n) == 0;
}

/* Clean as Go's filepath.Clean leaves it, relative, and not a whiteout. */
static int plain_name(const uint8_t *name, size_t n)
{
    size_t i, base = 0;
    if (n == 0 || n > TS_NAME_MAX || name[0] == '.' || name[0] == '/' || name[n - 1] == '/')
        return 0;
    for (i = 0; i + 1 < n; i++) {
        if (name[i] == '/') {
            if (name[i + 1] == '/' || name[i + 1] == '.')
                return 0;
            base = i + 1;
        }
    }
    return !(n - base >= 4 && memcmp(name + base, ".wh.", 4) == 0);
}

/* O_NOATIME is dropped at the first EPERM (safeopen.h), for every scan after (read and
 * written by the scans' threads and their readers alike, so atomically). */
static int file_flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOATIME;

static void close_dir(ts_dir *d)
{
    if (d->open)
        close(d->fd);
    d->open = 0;
}

/* The directory of path (its first len bytes; "" is the layer's at dir_fd), reached
 * beneath the layer with openat2 (no link, no way out), kept in *d for the files after: an
 * fd, or -1. */
static int parent_dir(int dir_fd, ts_dir *d, const char *path, size_t len)
{
    int flags = O_PATH | O_DIRECTORY | O_CLOEXEC, fd;
    if (!len)
        return dir_fd;
    if (d->open && d->len == len && memcmp(d->name, path, len) == 0)
        return d->fd;
    close_dir(d);
    memcpy(d->name, path, len);
    d->name[len] = 0;
    fd = so_open(dir_fd, d->name, &flags, 1);
    if (fd < 0)
        return -1;
    d->fd = fd;
    d->len = len;
    d->open = 1;
    return fd;
}

/* 1 when fd's extended attributes could be listed (*has_xattrs: whether it has any). */
static int list_xattrs(int fd, int *has_xattrs)
{
    ssize_t names = flistxattr(fd, NULL, 0);
    *has_xattrs = names > 0;
    return names >= 0 || errno == ENOTSUP;
}

/* Opens the regular file at path (n bytes, a plain_name) from its directory, kept in *d:
 * an fd when it is the file the walk saw (*walked: device and inode) of size bytes with,
 * when xattrs_known, its extended attributes listed into *has_xattrs; else -1. */
static int open_walked(int dir_fd, ts_dir *d, const char *path, size_t n,
                       const pi_stats *walked, uint64_t size, int xattrs_known,
                       int *has_xattrs)
{
    struct stat st;
    const char *slash = memrchr(path, '/', n);
    size_t base = slash ? (size_t)(slash - path) + 1 : 0;
    int flags = __atomic_load_n(&file_flags, __ATOMIC_RELAXED), fd, dir;
    *has_xattrs = 0;
    dir = parent_dir(dir_fd, d, path, base ? base - 1 : 0);
    if (dir < 0)
        return -1;
    /* One name of that directory, opened with O_NOFOLLOW: a plain_name's names are never
     * "." or ".." (none begins with '.'), so this open resolves that one entry, refuses a
     * link there, and cannot leave the directory: openat2's RESOLVE flags would guard
     * nothing more. The walk's lstat is the look before the open that so_open_file would
     * take again (safeopen.h): it found a regular file, and fstat confirms that the open
     * reached that very file before anything is read. */
    fd = so_open(dir, path + base, &flags, 0);
    __atomic_store_n(&file_flags, flags, __ATOMIC_RELAXED);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_dev != walked->dev
            || (uint64_t)st.st_ino != walked->ino || (uint64_t)st.st_size != size)
        goto fail;
    if (xattrs_known && !list_xattrs(fd, has_xattrs))
        goto fail;
    return fd;
fail:
    close(fd);
    return -1;
}

/* Reads a small file whole (size < cap) in one pread past its end (a short read of a
 * regular file is its end): 1 when it holds exactly size bytes. */
static int read_small(int fd, uint8_t *buf, uint64_t size)
{
    ssize_t got;
    do
        got = pread(fd, buf, size + 1, 0);
    while (got < 0 && errno == EINTR);
    return got >= 0 && (uint64_t)got == size;
}

/* Feeds the content of the open file fd (size bytes) to s->sha and its CRC-64 to *crc:
 * 1 when it holds exactly size bytes, else 0 (what was fed is the caller's to take back).
 * A small file is read in one pread; a big one as fd_hash_fd reads. */
static int feed_open(ts_scan *s, int fd, uint64_t size, uint64_t *crc)
{
    int64_t nread;
    *crc = 0;
    if (size < TS_SMALL_FILE) {
        if (!read_small(fd, s->buf, size))
            return 0;
        *crc = fd_sha256_crc64_update(s->sha, 0, s->buf, size);
        return 1;
    }
    return fd_hash_fd(fd, 0, -1, s->sha, crc, &nread) == 0 && (uint64_t)nread == size;
}

/* content() of this thread: the file opened and read here. */
static int content(ts_scan *s, const char *path, size_t n, const pi_stats *walked,
                   uint64_t size, uint64_t *crc, int *has_xattrs)
{
    int ok, fd = open_walked(s->dir_fd, &s->parent, path, n, walked, size, s->xattrs_known,
                             has_xattrs);
    *crc = 0;
    if (fd < 0)
        return 0;
    ok = feed_open(s, fd, size, crc);
    close(fd);
    return ok;
}

/* -- the reader thread ---------------------------------------------------------------- */

/* The scan and its reader go through the same lines, counting file entries from 0 in
 * each ts_scan_lines call. Each entry is claimed once, by whichever thread gets to it
 * first (claimed counts them): the reader runs ahead of the scan and leaves what it found
 * in the entry's slot; when the scan needs an entry the reader has not reached, it claims
 * a batch of entries from there and reads those files itself, and the reader goes on past
 * them. So the scan never waits for a reader that lags, at most for the one file the
 * reader is reading at that moment; and the two never fall into step (the scan waiting
 * at each file for the reader to finish it), since a batch puts the reader that far
 * ahead again. */

/* What the reader found of one file entry. A file smaller than TS_AHEAD_BYTES comes read,
 * its xattrs listed and closed: all its system calls are the reader's, and the scan claims
 * a batch for itself whenever it catches up, so the two threads' shares even out however
 * the work of a file divides. A bigger one comes open, as the scan reads it. */
struct ahead_slot {
    int ready;               /* 1 once filled (atomically; the scan sets it back to 0) */
    size_t line;             /* where its line starts in the block */
    uint8_t key[PI_KEY_SIZE];
    int ok;                  /* the file the walk saw, of the entry's size, open (or read) */
    int fd;                  /* -1 once read and closed */
    int has_xattrs;          /* listed when xattrs_known, for a file read whole */
    uint8_t data[TS_AHEAD_BYTES];   /* a file smaller than that: its content, read */
};

struct ts_ahead {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t moved;    /* both threads wait on it, each for its own condition */
    const ts_scan *s;        /* disk, dir_fd, max_line: read only */
    ts_dir dir;              /* the reader's own directory kept open */
    /* under lock */
    const uint8_t *buf;
    size_t len, pos;         /* the block to read ahead in, from pos */
    int quit;                /* the scan is done with the reader */
    /* Read and written without the lock (atomically, sequentially consistent): a thread
     * that must wait sets its flag and then looks again; the other changes what it waits
     * for and then takes the flag (exchanging it for 0), waking it under the lock. One of
     * the two sees the other's write, so no wake-up is lost. */
    int running;             /* a block is being read ahead */
    int stop;                /* the scan is done with the block */
    uint64_t claimed;        /* file entries claimed by either thread */
    uint64_t taken;          /* file entries the scan is done with */
    uint64_t own_until;      /* the scan's: entries before it that it claimed are its own */
    int reader_waits, scan_waits;
    struct ahead_slot slot[TS_AHEAD_SLOTS];
};

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_SEQ_CST)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_SEQ_CST)
#define CLAIM(x, n, k) __atomic_compare_exchange_n(&(x), &(uint64_t){n}, (n) + (k), 0, \
                                                   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
/* The reader, once the ring is full, waits for this many free slots: a wake-up costs a
 * futex call and a trip through the scheduler on each side, more than a file. */
#define AHEAD_BATCH (TS_AHEAD_SLOTS / 4)

static void wake_if(ts_ahead *a, int *waits)
{
    if (LOAD(*waits) && __atomic_exchange_n(waits, 0, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&a->lock);
        pthread_cond_broadcast(&a->moved);
        pthread_mutex_unlock(&a->lock);
    }
}

/* A wait is most often for the other thread's next file, a few microseconds away: it is
 * looked for that long first (the predicates read only atomics), which spares the futex
 * calls and the trips through the scheduler on both sides. */
#define SPIN_TRIES 1024

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Waits, flagged in *waits, until may_go(a, arg). */
static void wait_for(ts_ahead *a, int *waits, int (*may_go)(ts_ahead *, uint64_t),
                     uint64_t arg)
{
    for (int i = 0; i < SPIN_TRIES; i++) {
        if (may_go(a, arg))
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&a->lock);
    for (;;) {
        STORE(*waits, 1);
        if (may_go(a, arg))
            break;
        pthread_cond_wait(&a->moved, &a->lock);
    }
    STORE(*waits, 0);
    pthread_mutex_unlock(&a->lock);
}

/* The reader, its ring full, may fill entry n's slot: the scan has left a batch of slots
 * free, or stopped. */
static int reader_may_go(ts_ahead *a, uint64_t n)
{
    return LOAD(a->stop) || n <= LOAD(a->taken) + (TS_AHEAD_SLOTS - AHEAD_BATCH);
}

/* Reads the file of entry line l ahead into slot: 0 when it is one the reader does not
 * read (nothing opened), else 1 (slot->ok saying whether it is sound so far). */
static int read_ahead(ts_ahead *a, const ts_line *l, struct ahead_slot *slot)
{
    char path[TS_NAME_MAX + 1];
    pi_stats st;
    int small;
    slot->has_xattrs = 0;
    if (!(l->keys & K_NAME) || !plain_name(l->name, l->name_len))
        return 0;
    pi_key(a->s->disk, l->name, l->name_len, slot->key);
    if (!pi_get_key(a->s->disk, slot->key, &st) || !S_ISREG(st.mode) || st.size != l->size)
        return 0;
    memcpy(path, l->name, l->name_len);
    path[l->name_len] = 0;
    small = l->size < TS_AHEAD_BYTES;
    slot->fd = open_walked(a->s->dir_fd, &a->dir, path, l->name_len, &st, l->size,
                           small && a->s->xattrs_known, &slot->has_xattrs);
    slot->ok = slot->fd >= 0 && (!small || read_small(slot->fd, slot->data, l->size));
    if (small && slot->fd >= 0) {
        close(slot->fd);
        slot->fd = -1;
    }
    return 1;
}

/* Reads ahead through the file entries of buf[pos, len) not claimed yet, until the first
 * the scan would stop at (or that the reader does not read), or until stopped. */
static void ahead_block(ts_ahead *a, const uint8_t *buf, size_t len, size_t pos)
{
    ts_line l;
    uint64_t n = 0;          /* file entries so far */
    while (pos < len) {
        const uint8_t *p = buf + pos;
        const uint8_t *nl = memchr(p, '\n', len - pos);
        if (LOAD(a->stop) || !nl || (size_t)(nl - p) > a->s->max_line || !parse_line(p, nl, &l))
            return;
        if (l.type == 1) {
            if (n >= LOAD(a->claimed)) {
                struct ahead_slot *slot = &a->slot[n % TS_AHEAD_SLOTS];
                if (n >= LOAD(a->taken) + TS_AHEAD_SLOTS)
                    wait_for(a, &a->reader_waits, reader_may_go, n);
                if (LOAD(a->stop))
                    return;
                /* else the scan claimed it meanwhile, and some after it */
                if (CLAIM(a->claimed, n, 1)) {
                    if (!read_ahead(a, &l, slot)) {
                        slot->ok = 0;
                        slot->fd = -1;
                    }
                    slot->line = pos;
                    STORE(slot->ready, 1);
                    wake_if(a, &a->scan_waits);
                    if (!slot->ok)
                        return;  /* the scan stops there */
                }
            }
            n++;
        } else if (l.type != 2) {
            return;
        }
        pos = (size_t)(nl - buf) + 1;
    }
}

static void *ahead_run(void *arg)
{
    ts_ahead *a = arg;
    const uint8_t *buf;
    size_t len, pos;
    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (!a->quit && !LOAD(a->running))
            pthread_cond_wait(&a->moved, &a->lock);
        if (a->quit)
            break;
        buf = a->buf;
        len = a->len;
        pos = a->pos;
        pthread_mutex_unlock(&a->lock);
        ahead_block(a, buf, len, pos);
        pthread_mutex_lock(&a->lock);
        STORE(a->running, 0);
        pthread_cond_broadcast(&a->moved);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/* The scan's reader, started if need be; NULL when it could not start (the scan reads
 * its files itself). */
static ts_ahead *ahead_of(ts_scan *s)
{
    ts_ahead *a = s->ahead;
    if (a)
        return a;
    a = fd_mem.calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->s = s;
    if (!fd_start_helper(&a->thread, &a->lock, &a->moved, ahead_run, a)) {
        fd_mem.free(a);
        return NULL;
    }
    return s->ahead = a;
}

/* Whether the scan may have a reader: as s->readahead says, or while the layers' passes
 * running now leave a CPU free for each one's helper (free_cpu, fd_pass_begin's). */
static int may_read_ahead(const ts_scan *s, int free_cpu)
{
    return s->readahead > 0 || (s->readahead < 0 && free_cpu);
}

/* Sets the reader going through buf[pos, len): 1, or 0 when it could not start. */
static int ahead_start(ts_scan *s, const uint8_t *buf, size_t len, size_t pos)
{
    ts_ahead *a = ahead_of(s);
    if (!a)
        return 0;
    pthread_mutex_lock(&a->lock);
    a->buf = buf;
    a->len = len;
    a->pos = pos;
    STORE(a->claimed, 0);
    STORE(a->taken, 0);
    a->own_until = 0;
    STORE(a->stop, 0);
    STORE(a->running, 1);
    pthread_cond_broadcast(&a->moved);
    pthread_mutex_unlock(&a->lock);
    return 1;
}

static int slot_ready(ts_ahead *a, uint64_t n)
{
    return LOAD(a->slot[n % TS_AHEAD_SLOTS].ready);
}

/* File entry n of the call, whose line starts at line: the reader's slot once filled,
 * or NULL when the scan claims the entry and reads the file itself. The slot is the
 * scan's until ahead_done. */
static struct ahead_slot *ahead_take(ts_ahead *a, uint64_t n, size_t line, int *mismatch)
{
    struct ahead_slot *slot = &a->slot[n % TS_AHEAD_SLOTS];
    *mismatch = 0;
    if (n < a->own_until)
        return NULL;
    if (LOAD(a->claimed) == n && CLAIM(a->claimed, n, AHEAD_BATCH)) {
        a->own_until = n + AHEAD_BATCH;
        return NULL;
    }
    /* the reader claimed it, and may be reading it still */
    if (!slot_ready(a, n))
        wait_for(a, &a->scan_waits, slot_ready, n);
    /* the reader claims file entries in the scan's order: never another line's */
    *mismatch = slot->line != line;
    return slot;
}

/* The scan is done with file entry n (its slot, or NULL). */
static void ahead_done(ts_ahead *a, uint64_t n, struct ahead_slot *slot)
{
    if (slot) {
        if (slot->fd >= 0)
            close(slot->fd);
        STORE(slot->ready, 0);
    }
    STORE(a->taken, n + 1);
    if (LOAD(a->claimed) <= n + 1 + (TS_AHEAD_SLOTS - AHEAD_BATCH))
        wake_if(a, &a->reader_waits);
}

/* Stops the reader and waits until it is done with the block; closes what it left open. */
static void ahead_stop(ts_ahead *a)
{
    size_t i;
    pthread_mutex_lock(&a->lock);
    STORE(a->stop, 1);
    pthread_cond_broadcast(&a->moved);
    while (LOAD(a->running))
        pthread_cond_wait(&a->moved, &a->lock);
    pthread_mutex_unlock(&a->lock);
    for (i = 0; i < TS_AHEAD_SLOTS; i++) {
        struct ahead_slot *slot = &a->slot[i];
        if (slot->ready && slot->fd >= 0)
            close(slot->fd);
        slot->ready = 0;
    }
}

static void ahead_free(ts_ahead *a)
{
    fd_end_helper(a->thread, &a->lock, &a->moved, &a->quit);
    close_dir(&a->dir);
    fd_mem.free(a);
}

/* content() of a file the reader read ahead. */
static int content_ahead(ts_scan *s, const struct ahead_slot *slot, uint64_t size,
                         uint64_t *crc, int *has_xattrs)
{
    *crc = 0;
    *has_xattrs = 0;
    if (!slot->ok)
        return 0;
    if (size < TS_AHEAD_BYTES) {
        *has_xattrs = slot->has_xattrs;
        *crc = fd_sha256_crc64_update(s->sha, 0, slot->data, size);
        return 1;
    }
    if (s->xattrs_known && !list_xattrs(slot->fd, has_xattrs))
        return 0;
    return feed_open(s, slot->fd, size, crc);
}

/* Marks path (n bytes) and its ancestors expected in disk, the ancestors not again while
 * they are the last file's. */
static void expect_path(ts_scan *s, const uint8_t key[PI_KEY_SIZE], const char *path, size_t n)
{
    const char *slash = memrchr(path, '/', n);
    size_t len = slash ? (size_t)(slash - path) : 0;
    if (!pi_expect_key(s->disk, key))
        return;                  /* and so are its ancestors */
    if (!slash) {
        pi_expect(s->disk, (const uint8_t *)"", 0);
    } else if (!s->marked.open || s->marked.len != len || memcmp(s->marked.name, path, len)) {
        pi_expect(s->disk, (const uint8_t *)path, len);
        memcpy(s->marked.name, path, len);
        s->marked.len = len;
        s->marked.open = 1;
    }
}

/* A file entry line: 1 when its member was judged sound and accounted for. slot: the
 * reader's outcome for its file, or NULL (the file is opened here). */
static int file_member(ts_scan *s, const ts_line *l, const struct ahead_slot *slot)
{
    ts_header h;
    pi_stats st;
    fd_sha256 saved;
    char path[TS_NAME_MAX + 1];
    uint8_t crc_raw[9], key[PI_KEY_SIZE], seen_key_buf[PI_KEY_SIZE];
    const uint8_t *seen_key = key;
    uint64_t want_crc = 0, crc;
    int has_xattrs, err, i;
    if (!(l->keys & K_NAME) || !plain_name(l->name, l->name_len))
        return 0;
    if (l->keys & K_PAYLOAD) {
        if (l->payload_len != 12 || b64_decode(l->payload, 12, crc_raw) != 8 || l->size == 0)
            return 0;
        for (i = 0; i < 8; i++)
            want_crc = want_crc << 8 | crc_raw[i];
    } else if (l->size) {
        return 0;
    }
    if (!plain_header(s, l->name, l->name_len, &h))
        return 0;
    /* One keyed hash of the name serves both indexes when they share a key (verify's do);
     * the reader hashed it already. */
    if (slot)
        memcpy(key, slot->key, PI_KEY_SIZE);
    else
        pi_key(s->disk, l->name, l->name_len, key);
    if (!pi_same_key(s->disk, s->seen)) {
        pi_key(s->seen, l->name, l->name_len, seen_key_buf);
        seen_key = seen_key_buf;
    }
    if (!pi_get_key(s->disk, key, &st) || !S_ISREG(st.mode)
            || (st.mode & 07777) != (h.mode & 07777) || st.uid != h.uid + s->root_uid
            || st.gid != h.gid + s->root_gid || st.size != l->size)
        return 0;
    if (pi_get_key(s->seen, seen_key, NULL))
        return 0;
    memcpy(path, l->name, l->name_len);
    path[l->name_len] = 0;
    saved = *s->sha;
    fd_sha256_update(s->sha, s->run, s->run_len);
    if (!(slot ? content_ahead(s, slot, l->size, &crc, &has_xattrs)
               : content(s, path, l->name_len, &st, l->size, &crc, &has_xattrs))
            || (l->size && crc != want_crc) || has_xattrs) {
        *s->sha = saved;
        return 0;
    }
    err = pi_add_key(s->seen, seen_key, NULL);
    if (err != 1) {
        *s->sha = saved;
        return err < 0 ? err : 0;
    }
    expect_path(s, key, path, l->name_len);
    s->hashed += s->run_len + l->size;
    s->content += l->size;
    s->files++;
    s->run_len = 0;
    s->skip = -h.size % BLOCK;
    return 1;
}

/* A segment line: 1 when its bytes were added to the run. */
static int segment(ts_scan *s, const ts_line *l)
{
    uint8_t *run;
    long got;
    if (l->keys & (K_NAME | K_SIZE))
        return 0;
    if (!(l->keys & K_PAYLOAD) || l->payload_len == 0)
        return 1;
    run = fd_reserve(s->run, &s->run_cap, s->run_len + l->payload_len / 4 * 3, 1);
    if (!run)
        return -ENOMEM;
    s->run = run;
    got = b64_decode(l->payload, l->payload_len, run + s->run_len);
    if (got < 0 || s->run_len + (size_t)got > s->max_run)
        return 0;
    s->run_len += (size_t)got;
    return 1;
}

/* The lines of buf[*pos, len), as ts_scan_lines; *ahead says whether the reader was
 * started (once AHEAD_BATCH file entries in a row were sound: waking it costs more than a
 * few files, and a layer of many directories may have few files between its directories'
 * entries, which the scan leaves to its caller; at once when the last call's reader went
 * that far, as it does between the directories of a layer that has many files in each). */
static int scan_lines(ts_scan *s, const uint8_t *buf, size_t len, size_t *pos, int *ahead,
                      int free_cpu)
{
    ts_line l;
    uint64_t files = 0;      /* file entries so far, as the reader counts them once started */
    /* the reader starts at once when asked for always (the tests' and the fuzzer's) */
    uint64_t start = !may_read_ahead(s, free_cpu) ? UINT64_MAX
                     : s->readahead > 0 || s->warm ? 0 : AHEAD_BATCH;
    int done;
    while (*pos < len) {
        const uint8_t *p = buf + *pos;
        const uint8_t *nl = memchr(p, '\n', len - *pos);
        if (!*ahead && files == start) {
            *ahead = ahead_start(s, buf, len, *pos);
            files = 0;
        }
        if (!nl)
            return TS_END;
        if ((size_t)(nl - p) > s->max_line || !parse_line(p, nl, &l))
            return TS_SLOW;
        if (l.type == 2) {
            done = segment(s, &l);
        } else if (l.type == 1 && *ahead) {
            int mismatch;
            struct ahead_slot *slot = ahead_take(s->ahead, files, *pos, &mismatch);
            done = mismatch ? 0 : file_member(s, &l, slot);
            ahead_done(s->ahead, files++, slot);
        } else if (l.type == 1) {
            done = file_member(s, &l, NULL);
            files++;
        } else {
            done = 0;
        }
        if (done < 0)
            return done;
        if (!done)
            return TS_SLOW;
        s->number++;
        *pos = (size_t)(nl - buf) + 1;
    }
    return TS_END;
}

int ts_scan_lines(ts_scan *s, const uint8_t *buf, size_t len, size_t *pos)
{
    int rc, ahead = 0;
    rc = scan_lines(s, buf, len, pos, &ahead, fd_pass_begin());
    s->warm = ahead && LOAD(s->ahead->taken) >= AHEAD_BATCH;
    if (ahead)
        ahead_stop(s->ahead);
    fd_pass_end();
    return rc;
}

/* -- a layer blob's own tar stream --------------------------------------------------- */

/* The records of a PAX extended header's data (n bytes) in Go's form "%d %s=%s\n",
 * filling it exactly, each a time (mtime, atime, ctime): extraction takes nothing from
 * them that verify compares (sources/tarsplit.py HeaderReader.read uses path, linkpath,
 * uid, gid, size and xattrs). 1 when so. */
static int times_only(const uint8_t *p, size_t n)
{
    static const char *const times[] = {"mtime", "atime", "ctime"};
    while (n) {
        uint64_t len;
        const uint8_t *q = parse_uint(p, p + n, &len), *key, *eq;
        size_t i, ok = 0;
        if (!q || q >= p + n || *q != ' ')
            return 0;
        key = q + 1;
        if (len > n || len <= (uint64_t)(key - p) || p[len - 1] != '\n')
            return 0;
        eq = memchr(key, '=', (size_t)(p + len - 1 - key));
        if (!eq)
            return 0;
        for (i = 0; i < 3; i++)
            ok |= key_is(key, (size_t)(eq - key), times[i]);
        if (!ok)
            return 0;
        p += len;
        n -= len;
    }
    return 1;
}

/* A member of regular file name (a plain_name) with header h and its content data in the
 * stream: 1 when its file is the walk's, of h's mode, owner and size, with no xattrs,
 * holding data byte for byte, and it is accounted for; 0 when it is the caller's (nothing
 * of it done), or -ENOMEM. */
static int stream_file(ts_scan *s, const uint8_t *name, size_t n, const ts_header *h,
                       const uint8_t *data)
{
    pi_stats st;
    char path[TS_NAME_MAX + 1];
    uint8_t key[PI_KEY_SIZE], seen_key[PI_KEY_SIZE];
    int has_xattrs, fd, ok;
    pi_key(s->disk, name, n, key);
    pi_key(s->seen, name, n, seen_key);
    if (!pi_get_key(s->disk, key, &st) || !S_ISREG(st.mode)
            || (st.mode & 07777) != (h->mode & 07777) || st.uid != h->uid + s->root_uid
            || st.gid != h->gid + s->root_gid || st.size != h->size
            || pi_get_key(s->seen, seen_key, NULL))
        return 0;
    memcpy(path, name, n);
    path[n] = 0;
    fd = open_walked(s->dir_fd, &s->parent, path, n, &st, h->size, s->xattrs_known,
                     &has_xattrs);
    if (fd < 0)
        return 0;
    ok = !has_xattrs && read_small(fd, s->buf, h->size) && memcmp(s->buf, data, h->size) == 0;
    close(fd);
    if (ok)
        ok = pi_add_key(s->seen, seen_key, NULL);
    if (ok != 1)
        return ok < 0 ? ok : 0;
    expect_path(s, key, path, n);
    s->hashed += h->size;
    s->content += h->size;
    s->files++;
    return 1;
}

/* A small member at buf (its headers, content and padding within len bytes): 1 when
 * judged sound and accounted for (*used: its bytes), 0 when it is the caller's. */
static int stream_member(ts_scan *s, const uint8_t *buf, size_t len, size_t *used)
{
    uint8_t name[256];
    size_t name_len, at = 0, end;
    uint64_t pax;
    ts_header h;
    int done;
    if (len < BLOCK)
        return 0;
    if (buf[156] == 'x') {
        if (!parse_octal(buf + 124, 12, &pax) || pax > TS_PAX_MAX
                || len - BLOCK < pax + (-pax % BLOCK) || !times_only(buf + BLOCK, pax))
            return 0;
        at = BLOCK + pax + (-pax % BLOCK);
    }
    if (len - at < BLOCK || !header_fields(buf + at, name, &name_len, &h)
            || !plain_name(name, name_len) || h.size >= TS_SMALL_FILE)
        return 0;
    end = at + BLOCK + h.size + (-h.size % BLOCK);
    if (end > len)
        return 0;
    done = stream_file(s, name, name_len, &h, buf + at + BLOCK);
    if (done == 1)
        *used = end;
    return done;
}

int ts_scan_stream(ts_scan *s, const uint8_t *buf, size_t len, size_t *pos)
{
    size_t used;
    int done;
    while (*pos < len) {
        done = stream_member(s, buf + *pos, len - *pos, &used);
        if (done < 0)
            return done;
        if (!done)
            return TS_SLOW;
        *pos += used;
    }
    return TS_END;
}

void ts_scan_free(ts_scan *s)
{
    if (s->ahead)
        ahead_free(s->ahead);
    s->ahead = NULL;
    close_dir(&s->parent);
    s->marked.open = 0;
    fd_mem.free(s->run);
    s->run = NULL;
    s->run_len = s->run_cap = 0;
}
