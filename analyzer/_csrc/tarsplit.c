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
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

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
            bit = K_PAYLOAD, p = parse_str(p, end, &out->payload, &out->payload_len);
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

/* The run holds the previous member's padding, then one ustar block of a regular file
 * named name (no extension headers before it). */
static int plain_header(const ts_scan *s, const uint8_t *name, size_t name_len, ts_header *h)
{
    const uint8_t *b;
    size_t n, pre;
    if (s->skip > s->run_len || s->run_len - s->skip != BLOCK)
        return 0;
    b = s->run + s->skip;
    if (b[156] != '0' && b[156] != 0 && b[156] != '7')
        return 0;
    n = cstr_len(b, 100);
    pre = 0;
    if (memcmp(b + 257, "ustar\0" "00", 8) == 0)
        pre = cstr_len(b + 345, memcmp(b + 508, "tar\0", 4) == 0 ? 131 : 155);
    if (pre) {
        if (pre + 1 + n != name_len || memcmp(name, b + 345, pre) != 0 || name[pre] != '/'
                || memcmp(name + pre + 1, b, n) != 0)
            return 0;
    } else if (n != name_len || memcmp(name, b, n) != 0) {
        return 0;
    }
    return parse_octal(b + 100, 8, &h->mode) && parse_octal(b + 108, 8, &h->uid)
        && parse_octal(b + 116, 8, &h->gid) && parse_octal(b + 124, 12, &h->size);
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

/* O_NOATIME is dropped at the first EPERM (safeopen.h), for every scan after. */
static int file_flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOATIME;

static void close_parent(ts_scan *s)
{
    if (s->parent_open)
        close(s->parent_fd);
    s->parent_open = 0;
}

/* The directory of path (its first len bytes; "" is the layer's), reached beneath the
 * layer with openat2 (no link, no way out), kept for the files after: an fd, or -1. */
static int parent_dir(ts_scan *s, const char *path, size_t len)
{
    int flags = O_PATH | O_DIRECTORY | O_CLOEXEC, fd;
    if (!len)
        return s->dir_fd;
    if (s->parent_open && s->parent_len == len && memcmp(s->parent, path, len) == 0)
        return s->parent_fd;
    close_parent(s);
    memcpy(s->parent, path, len);
    s->parent[len] = 0;
    fd = so_open(s->dir_fd, s->parent, &flags, 1);
    if (fd < 0)
        return -1;
    s->parent_fd = fd;
    s->parent_len = len;
    s->parent_open = 1;
    s->parent_expected = 0;
    return fd;
}

/* Feeds the content of the regular file at path (n bytes, a plain_name) to s->sha and its
 * CRC-64 to *crc: 1 when it is the file the walk saw (*walked: device and inode) and
 * holds exactly size bytes, else 0 (what was fed is the caller's to take back). A small
 * file is read in one pread past its end (a short read of a regular file is its end); a
 * big one as fd_hash_fd reads. */
static int content(ts_scan *s, const char *path, size_t n, const pi_stats *walked,
                   uint64_t size, uint64_t *crc, int *has_xattrs)
{
    struct stat st;
    const char *slash = memrchr(path, '/', n);
    size_t base = slash ? (size_t)(slash - path) + 1 : 0;
    int flags = file_flags, ok = 0, fd, dir;
    *crc = 0;
    *has_xattrs = 0;
    dir = parent_dir(s, path, base ? base - 1 : 0);
    if (dir < 0)
        return 0;
    /* One name of that directory, opened with O_NOFOLLOW: a plain_name's names are never
     * "." or ".." (none begins with '.'), so this open resolves that one entry, refuses a
     * link there, and cannot leave the directory: openat2's RESOLVE flags would guard
     * nothing more. The walk's lstat is the look before the open that so_open_file would
     * take again (safeopen.h): it found a regular file, and fstat confirms that the open
     * reached that very file before anything is read. */
    fd = so_open(dir, path + base, &flags, 0);
    file_flags = flags;
    if (fd < 0)
        return 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_dev != walked->dev
            || (uint64_t)st.st_ino != walked->ino || (uint64_t)st.st_size != size)
        goto done;
    if (size < TS_SMALL_FILE) {
        ssize_t got;
        do
            got = pread(fd, s->buf, size + 1, 0);
        while (got < 0 && errno == EINTR);
        if (got < 0 || (uint64_t)got != size)
            goto done;
        *crc = fd_sha256_crc64_update(s->sha, 0, s->buf, size);
    } else {
        int64_t nread;
        if (fd_hash_fd(fd, 0, -1, s->sha, crc, &nread) || (uint64_t)nread != size)
            goto done;
    }
    if (s->xattrs_known) {
        ssize_t names = flistxattr(fd, NULL, 0);
        if (names < 0 && errno != ENOTSUP)
            goto done;
        *has_xattrs = names > 0;
    }
    ok = 1;
done:
    close(fd);
    return ok;
}

/* A file entry line: 1 when its member was judged sound and accounted for. */
static int file_member(ts_scan *s, const ts_line *l)
{
    ts_header h;
    pi_stats st;
    fd_sha256 saved;
    char path[TS_NAME_MAX + 1];
    uint8_t crc_raw[9], key[PI_KEY_SIZE], seen_key_buf[PI_KEY_SIZE];
    const uint8_t *seen_key = key;
    const char *slash;
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
    /* One keyed hash of the name serves both indexes when they share a key (verify's do). */
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
    if (!content(s, path, l->name_len, &st, l->size, &crc, &has_xattrs)
            || (l->size && crc != want_crc) || has_xattrs) {
        *s->sha = saved;
        return 0;
    }
    err = pi_add_key(s->seen, seen_key, NULL);
    if (err != 1) {
        *s->sha = saved;
        return err < 0 ? err : 0;
    }
    /* pi_expect(name): the name, then its ancestors, which need no hashing again while
     * its directory is the one content() keeps open (parent_dir) and they are marked. */
    slash = memrchr(path, '/', l->name_len);
    if (pi_expect_key(s->disk, key)) {
        if (!slash)
            pi_expect(s->disk, (const uint8_t *)"", 0);
        else if (!s->parent_expected) {
            pi_expect(s->disk, l->name, (size_t)(slash - path));
            s->parent_expected = 1;
        }
    }
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

int ts_scan_lines(ts_scan *s, const uint8_t *buf, size_t len, size_t *pos)
{
    ts_line l;
    int done;
    while (*pos < len) {
        const uint8_t *p = buf + *pos;
        const uint8_t *nl = memchr(p, '\n', len - *pos);
        if (!nl)
            return TS_END;
        if ((size_t)(nl - p) > s->max_line || !parse_line(p, nl, &l))
            return TS_SLOW;
        if (l.type == 2)
            done = segment(s, &l);
        else if (l.type == 1)
            done = file_member(s, &l);
        else
            done = 0;
        if (done < 0)
            return done;
        if (!done)
            return TS_SLOW;
        s->number++;
        *pos = (size_t)(nl - buf) + 1;
    }
    return TS_END;
}

void ts_scan_free(ts_scan *s)
{
    close_parent(s);
    fd_mem.free(s->run);
    s->run = NULL;
    s->run_len = s->run_cap = 0;
}
